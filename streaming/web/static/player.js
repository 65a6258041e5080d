// Attaches HLS to the page's <video>: natively where the browser can, else with hls.js.
// Its words come from the page (the #player-words block: the message catalogue of the page's
// language, Polish, or English with ?lang=en).
(function () {
  var video = document.getElementById("player");
  if (!video) return;
  // hls.js plays faster to catch up only while it is less than one target duration past its
  // target latency; further back it takes the viewer for one who went back on purpose and
  // stays there. A resident on the live page who fell behind through a stall (a network
  // hiccup, a busy machine) did not: after two checks that far back, jump to where hls.js
  // would start a live player. Someone who paused or moved back themselves is left where
  // they are, until they come back near the edge.
  function keepUp(hls) {
    var own = false, chose = false, far = 0;
    function behind() {
      var edge = hls.liveSyncPosition;
      return edge === null || edge === undefined || !isFinite(edge) ? null : edge - video.currentTime;
    }
    function allowed() {
      var level = hls.levels && hls.levels[hls.currentLevel];
      var target = level && level.details ? level.details.targetduration : null;
      return target ? target : null;
    }
    var last = 0;
    video.addEventListener("timeupdate", function () { if (!video.seeking) last = video.currentTime; });
    // A seek back past the limit is the viewer's choice (hls.js itself only seeks forward, over
    // holes in the buffer); any seek that lands near the edge returns them to the live picture.
    video.addEventListener("seeking", function () {
      if (own) { own = false; return; }
      var gap = behind(), limit = allowed();
      if (gap === null || limit === null) return;
      if (gap <= limit) chose = false;
      else if (video.currentTime < last - 0.5) chose = true;
    });
    video.addEventListener("pause", function () { chose = true; });
    window.obradyKeepUp = function () { return { chose: chose, far: far, own: own }; };
    setInterval(function () {
      var gap = behind(), limit = allowed();
      if (chose || video.paused || video.seeking || gap === null || limit === null) { far = 0; return; }
      far = gap > limit ? far + 1 : 0;
      if (far < 2) return;
      far = 0;
      own = true;
      window.obradyCaughtUp = (window.obradyCaughtUp || 0) + 1;
      video.currentTime = hls.liveSyncPosition;
    }, 1000);
  }
  var wordsBlock = document.getElementById("player-words");
  var said = wordsBlock ? JSON.parse(wordsBlock.textContent) : {};
  function w(key) { return said[key] || key; }
  var src = video.dataset.src;
  // ?t= as checked by the session page (data-start); the embed page passes its ?t= as it is.
  var asked = video.dataset.start || new URLSearchParams(location.search).get("t") || "";
  var start = /^\d{1,7}(\.\d{1,3})?$/.test(asked) ? Number(asked) : null;
  if (video.dataset.live) start = null;
  if (window.Hls && window.Hls.isSupported()) {
    // Low-Latency HLS on the live URL: parts, blocking reloads, delta updates; a player that
    // fell behind (a stall, a background tab) catches up by playing slightly faster. A
    // recording asked for at ?t= loads from there rather than from its beginning.
    var hls = new window.Hls({
      lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5,
      startPosition: start === null ? -1 : start
    });
    // The live URL answers 404 while nothing is transmitted (no session yet, not even the
    // slate before it), and a network or gateway hiccup is fatal to hls.js: keep trying,
    // sooner when the session's state changes (window.obradyRetry), so the picture comes on
    // by itself on the same URL.
    var retryDelay = 1000, retryTimer = null;
    var retry = function (now) {
      clearTimeout(retryTimer);
      retryTimer = setTimeout(function () {
        retryTimer = null;
        hls.loadSource(src);
      }, now ? 0 : retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    };
    hls.on(window.Hls.Events.ERROR, function (event, data) {
      if (!data.fatal) return;
      if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else retry(false);
    });
    hls.on(window.Hls.Events.MANIFEST_PARSED, function () {
      retryDelay = 1000;
      var played = video.play();
      if (played && played.catch) played.catch(function () {});
    });
    window.obradyRetry = function () { if (retryTimer !== null) retry(true); };
    if (video.dataset.live) keepUp(hls);
    hls.loadSource(src);
    hls.attachMedia(video);
    window.obradyHls = hls; // for the off-air checks and the latency benchmark
  } else {
    video.src = src;
  }
  if (start !== null) {
    video.addEventListener("loadedmetadata", function () {
      if (Math.abs(video.currentTime - start) > 1) video.currentTime = start;
    }, { once: true });
  }
  // Captions: a track is added once the recording has them (the page names their URL).
  if (video.dataset.captions) {
    var track = document.createElement("track");
    track.kind = "captions";
    track.src = video.dataset.captions;
    track.srclang = "pl";
    track.label = w("player.captions");
    track.default = true;
    video.appendChild(track);
  }
  // A live player says it is playing every 5 s, so that viewers are counted once each (a
  // player makes several requests a second); the id is random and lives only in this page.
  var chamber = video.dataset.chamber;
  if (video.dataset.live && chamber && window.fetch) {
    var id = Math.random().toString(36).slice(2) + Date.now().toString(36);
    var beacon = function () {
      if (video.paused || document.hidden) return;
      fetch("/live/" + chamber + "/viewers", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ id: id }), keepalive: true
      }).catch(function () {});
    };
    video.addEventListener("playing", beacon);
    setInterval(beacon, 5000);
  }

  // Chapters, votes and timeline entries move the player without reloading the page; the
  // address follows, so it can be copied as a link to that moment.
  var moment = document.getElementById("moment");
  // Without live.public_url the page's addresses start at the site's root: this browser's own
  // address completes them (the server never guesses it from the Host header).
  function absolute(address) {
    return new URL(address, location.href).href;
  }
  function momentUrl(seconds) {
    return absolute(moment.dataset.base) + "?t=" + Math.floor(seconds);
  }
  if (moment) moment.value = absolute(moment.value);
  var embedCode = document.getElementById("embed-code");
  if (embedCode) {
    embedCode.value = embedCode.value.replace(/ src="(\/[^"]*)"/, function (_, src) {
      return ' src="' + absolute(src) + '"';
    });
  }
  document.querySelectorAll("[data-t]").forEach(function (link) {
    link.addEventListener("click", function (ev) {
      if (ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button) return; // a new tab: let it go
      ev.preventDefault();
      var t = Number(link.dataset.t);
      video.currentTime = t;
      var played = video.play();
      if (played && played.catch) played.catch(function () {});
      if (window.history && history.replaceState) {
        var query = new URLSearchParams(location.search);
        query.set("t", String(Math.floor(t)));
        history.replaceState(null, "", location.pathname + "?" + query.toString());
      }
    });
  });
  var chapters = document.querySelectorAll("ol.chapters li[data-start]");
  var lastSecond = -1;
  function followTime() {
    var now = video.currentTime;
    if (Math.floor(now) === lastSecond) return;
    lastSecond = Math.floor(now);
    if (moment) moment.value = momentUrl(now);
    chapters.forEach(function (li) {
      var inside = now >= Number(li.dataset.start) && now < Number(li.dataset.end);
      li.classList.toggle("current", inside);
      if (inside) li.setAttribute("aria-current", "true"); else li.removeAttribute("aria-current");
    });
  }
  video.addEventListener("timeupdate", followTime);
  video.addEventListener("seeked", followTime);
  if (moment) {
    moment.addEventListener("focus", function () { moment.select(); });
  }

  var status = document.getElementById("status");
  if (status && video.dataset.live) followChamber(status);

  // The state of the session, its agenda with the current item, and vote results, as the
  // operator sets them: asked every second, so a change shows within about two.
  function followChamber(status) {
    var agenda = document.getElementById("agenda");
    var votes = document.getElementById("votes");
    var announce = document.getElementById("announce");
    var STATES = {
      idle: w("player.state_idle"), before: w("player.state_before"), live: w("player.state_live"),
      "break": w("player.state_break"), closed: w("player.state_closed"),
      ended: w("player.state_ended")
    };
    var CHOICES = {
      "for": w("choice.for"), against: w("choice.against"), abstain: w("choice.abstain"),
      absent: w("choice.absent")
    };
    var WORDS = {
      agenda: w("player.agenda"), votes: w("player.votes"), nominal: w("player.nominal"),
      totals: [w("totals.for"), w("totals.against"), w("totals.abstain"), w("totals.absent")],
      now: w("player.now"), vote: w("player.vote"), current: w("player.current"),
      page: w("player.page")
    };
    var shownState = "", shownAgenda = "", shownVotes = "", firstRender = true;
    var lastCurrent = null, lastVote = null;
    function node(tag, text, attrs) {
      var n = document.createElement(tag);
      if (text) n.textContent = text;
      Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
      return n;
    }
    function label(i) { return (i.number ? i.number + ". " : "") + i.title; }
    function find(list, id) {
      for (var k = 0; k < list.length; k++) {
        if (list[k].id === id) return list[k];
        var inner = find(list[k].items || [], id);
        if (inner) return inner;
      }
      return null;
    }
    function items(list, current) {
      var ol = node("ol");
      list.forEach(function (i) {
        if (i.removed) return;
        var li = node("li", label(i), { "data-item": i.id });
        if (i.id === current) {
          li.className = "current";
          li.setAttribute("aria-current", "true");
          li.appendChild(node("span", " (" + WORDS.current + ")", { "class": "visually-hidden" }));
        }
        if (i.items.length) li.appendChild(items(i.items, current));
        ol.appendChild(li);
      });
      return ol;
    }
    function totals(tot) {
      var w = WORDS.totals;
      return w[0] + ": " + tot["for"] + ", " + w[1] + ": " + tot.against + ", " + w[2] + ": " +
        tot.abstain + ", " + w[3] + ": " + tot.absent;
    }
    function say(text) {
      // Only changes after the page opened are announced, not what was there already.
      if (announce && !firstRender) announce.textContent = text;
    }
    function renderVotes(list) {
      // A councillor's list opened by the reader stays open when the results are redrawn.
      var open = {};
      votes.querySelectorAll("section[data-vote] details[open]").forEach(function (d) {
        open[d.parentNode.getAttribute("data-vote")] = true;
      });
      votes.textContent = "";
      if (!list || !list.length) return;
      votes.appendChild(node("h2", WORDS.votes));
      list.forEach(function (v) {
        var section = node("section", null, { "data-vote": v.id });
        section.appendChild(node("h3", v.subject));
        section.appendChild(node("p", totals(v.totals), { "class": "totals" }));
        var details = node("details");
        if (open[String(v.id)]) details.open = true;
        details.appendChild(node("summary", WORDS.nominal));
        var ul = node("ul");
        v.choices.forEach(function (c) {
          ul.appendChild(node("li", c.name + (c.caucus ? " (" + c.caucus + ")" : "") + ": " + CHOICES[c.choice]));
        });
        details.appendChild(ul);
        section.appendChild(details);
        votes.appendChild(section);
      });
    }
    function render(now) {
      var stateKey = JSON.stringify([now.state, now.session && now.session.title]);
      if (stateKey !== shownState) {
        shownState = stateKey;
        status.dataset.state = now.state;
        // The live URL may have just come on (or back): a player waiting to retry goes now.
        if (window.obradyRetry) window.obradyRetry();
        var text = STATES[now.state] || now.state;
        if (now.session && now.state !== "idle") text += " – " + now.session.title;
        status.textContent = text;
        // The session's own page: its agenda as chapters, votes, and later its recording.
        var link = document.getElementById("session-link");
        if (link) {
          link.textContent = "";
          if (now.session && now.state !== "idle") {
            link.appendChild(node("a", WORDS.page + ": " + now.session.title,
              { href: "/sessions/" + now.session.id }));
          }
        }
      }
      var agendaKey = JSON.stringify([now.agenda, now.current_item_id]);
      if (agenda && agendaKey !== shownAgenda) {
        shownAgenda = agendaKey;
        agenda.textContent = "";
        if (now.agenda) {
          agenda.appendChild(node("h2", WORDS.agenda));
          agenda.appendChild(items(now.agenda, now.current_item_id));
          if (now.current_item_id && now.current_item_id !== lastCurrent) {
            var item = find(now.agenda, now.current_item_id);
            if (item) say(WORDS.now + label(item));
          }
        }
        lastCurrent = now.current_item_id;
      }
      var votesKey = JSON.stringify(now.votes || []);
      if (votes && votesKey !== shownVotes) {
        shownVotes = votesKey;
        renderVotes(now.votes);
        var newest = now.votes && now.votes.length ? now.votes[0] : null;
        if (newest && newest.id !== lastVote) say(WORDS.vote + newest.subject + ". " + totals(newest.totals));
        lastVote = newest ? newest.id : null;
      }
      renderCaptions(now.state === "live" ? now.captions : null);
      firstRender = false;
    }
    // Live captions: the newest lines recognised, each shown once the player has played the
    // moment it was said (a viewer behind the live edge does not read ahead of the picture).
    var captionBox = document.getElementById("live-captions");
    var shownCaptions = "";
    function renderCaptions(list) {
      if (!captionBox) return;
      var played = window.obradyHls && window.obradyHls.playingDate;
      var due = (list || []).filter(function (c) {
        return !played || !c.at || new Date(c.at) <= played;
      }).slice(-2);
      var key = JSON.stringify(due.map(function (c) { return [c.id, c.text]; }));
      if (key === shownCaptions) return;
      shownCaptions = key;
      captionBox.hidden = !(list && list.length);
      var lines = captionBox.querySelector(".caption-lines");
      lines.textContent = "";
      due.forEach(function (c, k) {
        if (k) lines.appendChild(document.createElement("br"));
        lines.appendChild(document.createTextNode(c.text));
      });
    }
    function refresh() {
      fetch("/api/v1/chambers/" + status.dataset.chamber + "/now")
        .then(function (r) { return r.json(); }).then(render).catch(function () {});
    }
    refresh();
    setInterval(refresh, 1000);
  }
})();
