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
  if (status && video.dataset.live) followChamber(status);

  // The state of the session, its agenda with the current item, and vote results, as the
  // operator sets them: asked every second, so a change shows within about two.
  function followChamber(status) {
    var agenda = document.getElementById("agenda");
    var votes = document.getElementById("votes");
    var STATES = {
      idle: "Obecnie nie trwa żadne posiedzenie.", before: "Posiedzenie jeszcze się nie rozpoczęło.",
      live: "Na żywo", "break": "Przerwa w obradach", closed: "Obrady niejawne (wyłączenie jawności)",
      ended: "Posiedzenie zakończone."
    };
    var CHOICES = { "for": "za", against: "przeciw", abstain: "wstrzymał się", absent: "nie głosował" };
    var shown = "";
    function node(tag, text, attrs) {
      var n = document.createElement(tag);
      if (text) n.textContent = text;
      Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
      return n;
    }
    function items(list, current) {
      var ol = node("ol");
      list.forEach(function (i) {
        if (i.removed) return;
        var li = node("li", (i.number ? i.number + ". " : "") + i.title, { "data-item": i.id });
        if (i.id === current) { li.className = "current"; li.setAttribute("aria-current", "true"); }
        if (i.items.length) li.appendChild(items(i.items, current));
        ol.appendChild(li);
      });
      return ol;
    }
    function render(now) {
      var key = JSON.stringify(now);
      if (key === shown) return;
      shown = key;
      status.dataset.state = now.state;
      var text = STATES[now.state] || now.state;
      if (now.session && now.state !== "idle") text += " – " + now.session.title;
      status.textContent = text;
      if (agenda) {
        agenda.textContent = "";
        if (now.agenda) {
          agenda.appendChild(node("h2", "Porządek obrad"));
          agenda.appendChild(items(now.agenda, now.current_item_id));
        }
      }
      if (votes) {
        votes.textContent = "";
        if (now.votes && now.votes.length) {
          votes.appendChild(node("h2", "Głosowania"));
          now.votes.forEach(function (v) {
            var section = node("section", null, { "data-vote": v.id });
            section.appendChild(node("h3", v.subject));
            var tot = v.totals;
            section.appendChild(node("p", "Za: " + tot["for"] + ", przeciw: " + tot.against +
              ", wstrzymało się: " + tot.abstain + ", nie głosowało: " + tot.absent, { "class": "totals" }));
            var details = node("details");
            details.appendChild(node("summary", "Wykaz imienny"));
            var ul = node("ul");
            v.choices.forEach(function (c) {
              ul.appendChild(node("li", c.name + (c.caucus ? " (" + c.caucus + ")" : "") + ": " + CHOICES[c.choice]));
            });
            details.appendChild(ul);
            section.appendChild(details);
            votes.appendChild(section);
          });
        }
      }
    }
    function refresh() {
      fetch("/api/v1/chambers/" + status.dataset.chamber + "/now")
        .then(function (r) { return r.json(); }).then(render).catch(function () {});
    }
    refresh();
    setInterval(refresh, 1000);
  }
})();
