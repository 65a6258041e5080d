vcl 4.1;

# Varnish in front of obrady: a cache that multiplies how many viewers one gateway holds, and
# (unlike nginx, see config/nginx.conf) wakes the requests waiting for a Low-Latency HLS part the
# moment obrady answers. Varnish speaks no TLS: config/hitch.conf puts hitch in front of it for
# https, on a listener named "tls"; plain http arrives on the listener named "http" and is sent to
# https, but for certbot's challenges. Every answer carries the security headers a public site
# sends (vcl_deliver, vcl_synth); obrady sets Referrer-Policy and X-Frame-Options per page.
# Install (Debian: `apt-get install varnish`) as /etc/varnish/default.vcl, adjust the two
# backend ports, then `systemctl reload varnish` (or `varnishd -f /etc/varnish/default.vcl
# -a :80 -s malloc,256m`). Tested by tests/config/test_varnish.py (with its own ports and
# working folder) and measured by `bench/scale.py --targets varnish`.
#
# What is cached follows obrady's own Cache-Control headers (Varnish honours max-age):
#   live playlists        max-age=1; a blocking reload (?_HLS_msn=..&_HLS_part=..) max-age=6
#   live parts, segments  max-age=600 (a published part never changes)
#   recording playlists   max-age=1 while live, 60 once the session ended
#   recorded segments     max-age=600 (so that a withdrawal or a redaction reaches the public
#                         within minutes); those outside the public program, redacted or
#                         withdrawn say "private, no-store" and are never kept
#   the live page's state (/api/v1/chambers/<id>/now) max-age=1
# The query string is part of the cache key (the whole URL is), so each blocking reload, delta
# update (_HLS_skip=YES) and hinted part is its own object. Request coalescing: however many
# viewers ask for the same not-yet-cached URL, obrady is asked once and the others wait on the
# waiting list; they are all woken as soon as obrady's answer arrives (no polling interval), so
# an LL-HLS part held by obrady until it exists reaches every viewer within milliseconds.
#
# Not cached: the API and /metrics (control port), anything but GET/HEAD (the players' viewer
# beacon POST /live/{chamber}/viewers), the console and signing in (/console, /login, /logout),
# and requests with credentials: Authorization, or the console's login cookie (staff viewing
# sealed recordings). Other cookies are dropped from the public GETs: obrady reads none there,
# and a cookie of the city's site must not make every viewer miss the cache.
# Errors (404 before anything is live, 503 after a blocking reload timed out, 400) are kept for
# one second only; caching them that briefly, rather than marking them uncacheable for two
# minutes as Varnish would by default, keeps identical requests collapsed meanwhile.

backend viewers {
    # live.gateway_port: the viewers' gateway process
    .host = "127.0.0.1";
    .port = "8081";
    .connect_timeout = 2s;
    # obrady holds a blocking reload up to 3 target durations (6 s with 2 s segments).
    .first_byte_timeout = 15s;
    .between_bytes_timeout = 10s;
}

backend acme {
    # certbot --standalone --http-01-port 8888, only while it renews (config/hitch.conf)
    .host = "127.0.0.1";
    .port = "8888";
}

backend control {
    # server.port: API, control room and everything else
    .host = "127.0.0.1";
    .port = "8080";
    .connect_timeout = 2s;
    .first_byte_timeout = 60s;
    .between_bytes_timeout = 30s;
}

acl monitoring {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    # Plain http (the listener named "http"): certbot's challenges, and a redirect to https.
    if (local.socket == "http") {
        if (req.url ~ "^/\.well-known/acme-challenge/") {
            set req.backend_hint = acme;
            return (pass);
        }
        # The public hostname (as in config/hitch.conf's certificate), never the Host header.
        return (synth(301, "https://transmisja.example.pl" + req.url));
    }
    # What residents' live pages ask every second: from the gateway, through the cache.
    if (req.url ~ "^/api/v1/chambers/[^/]+/now$" && req.method == "GET") {
        set req.backend_hint = viewers;
        unset req.http.Cookie;
        return (hash);
    }
    # The console and signing in and out: the control port, never cached.
    if (req.url ~ "^/(console|login|logout)(/|\?|$)") {
        set req.backend_hint = control;
        return (pass);
    }
    # The API and operator calls are never cached.
    if (req.url ~ "^/api/") {
        set req.backend_hint = control;
        return (pass);
    }
    # MP4 downloads are made and served by the control port (the gateway has no exports);
    # large files with Range requests: passed, never stored.
    if (req.url ~ "^/sessions/[0-9]+/(recording\.mp4|clip\.mp4|items/[0-9]+/clip\.mp4)(\?|$)") {
        set req.backend_hint = control;
        return (pass);
    }
    if (req.url ~ "^/metrics(\?|$)") {
        # Monitoring only: keep it off the public internet.
        if (client.ip !~ monitoring) {
            return (synth(403, "Forbidden"));
        }
        set req.backend_hint = control;
        return (pass);
    }
    # Live and recorded HLS, chapters, pages: served by the gateway through the cache.
    set req.backend_hint = viewers;
    if (req.method != "GET" && req.method != "HEAD") {
        # The viewer beacon (POST), and whatever else: straight to obrady.
        return (pass);
    }
    if (req.http.Authorization || req.http.Cookie ~ "(^|;\s*)obrady_login=") {
        # Staff-only recordings: never from or into the shared cache.
        return (pass);
    }
    unset req.http.Cookie;
    # Blocking reloads have query strings too: look them up (and coalesce them) like any URL.
    return (hash);
}

sub vcl_backend_response {
    if (bereq.uncacheable) {
        return (deliver);
    }
    if (beresp.status >= 400 && beresp.http.Cache-Control !~ "no-store|private") {
        set beresp.ttl = 1s;
        set beresp.grace = 0s;
        return (deliver);
    }
    if (beresp.http.Content-Type ~ "(?i)mpegurl") {
        # A live playlist past its second is no answer for a low-latency player: fetch afresh
        # (the fetch is collapsed) rather than hand out a stale one in the meantime.
        set beresp.grace = 0s;
    }
    # Otherwise Varnish's built-in rules: the TTL from Cache-Control max-age.
}

sub security_headers {
    set resp.http.Strict-Transport-Security = "max-age=63072000";
    set resp.http.X-Content-Type-Options = "nosniff";
    set resp.http.Permissions-Policy = "camera=(), microphone=(), geolocation=()";
}

sub vcl_synth {
    if (resp.status == 301) {
        set resp.http.Location = resp.reason;
        set resp.reason = "Moved Permanently";
        return (deliver);
    }
    call security_headers;
}

sub vcl_deliver {
    call security_headers;
    # Like nginx's X-Cache-Status: HIT (a request that waited for another's fetch is a HIT too),
    # MISS (this request fetched it from obrady), PASS (never cached).
    if (obj.uncacheable) {
        set resp.http.X-Cache = "PASS";
    } else if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
