// Attaches HLS to the page's <video>: natively where the browser can, else with hls.js.
(function () {
  var video = document.getElementById("player");
  if (!video) return;
  var src = video.dataset.src;
  if (window.Hls && window.Hls.isSupported()) {
    // Low-Latency HLS on the live URL: parts, blocking reloads, delta updates; a player that
    // fell behind (a stall, a background tab) catches up by playing slightly faster.
    var hls = new window.Hls({ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.5 });
    hls.loadSource(src);
    hls.attachMedia(video);
    window.obradyHls = hls; // for the off-air checks and the latency benchmark
  } else {
    video.src = src;
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
  var t = new URLSearchParams(location.search).get("t");
  if (t) video.addEventListener("loadedmetadata", function () { video.currentTime = Number(t); }, { once: true });
  document.querySelectorAll("[data-t]").forEach(function (link) {
    link.addEventListener("click", function (ev) {
      ev.preventDefault();
      video.currentTime = Number(link.dataset.t);
      video.play();
    });
  });
  var status = document.getElementById("status");
  if (status && video.dataset.live) {
    var refresh = function () {
      fetch("/api/v1/sessions").then(function (r) { return r.json(); }).then(function (data) {
        var live = data.sessions.filter(function (s) {
          return s.state === "live" && s.chamber === status.dataset.chamber;
        })[0];
        status.textContent = live ? "Na żywo: " + live.title : "Obecnie nie trwa żadne posiedzenie.";
      }).catch(function () {});
    };
    refresh();
    setInterval(refresh, 5000);
  }
})();
