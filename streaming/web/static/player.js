// Attaches HLS to the page's <video>: natively where the browser can, else with hls.js.
(function () {
  var video = document.getElementById("player");
  if (!video) return;
  var src = video.dataset.src;
  if (window.Hls && window.Hls.isSupported()) {
    var hls = new window.Hls({ lowLatencyMode: true });
    hls.loadSource(src);
    hls.attachMedia(video);
  } else {
    video.src = src;
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
