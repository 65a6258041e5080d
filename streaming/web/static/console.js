/* The operator console: prepare, run and tidy council sessions through the JSON API.
 * All state lives on the server; this page polls it, so a reload or a second operator's
 * browser shows the same session. Every change carries the login's CSRF token. */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("console-config").textContent);
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var root = document.getElementById("console");
  var may = {};
  cfg.may.forEach(function (a) { may[a] = true; });

  // The words of this page's language, from the message catalogue (streaming/web/locales).
  var WORDS = JSON.parse(document.getElementById("words").textContent);
  function t(key) { return WORDS[key] || key; }
  // A catalogue message with its %(name)s placeholders filled.
  function fmt(key, values) {
    return t(key).replace(/%\((\w+)\)s/g, function (all, name) {
      return name in values ? String(values[name]) : all;
    }).replace(/%%/g, "%");
  }

  /* ---------- small helpers ---------- */

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") node.textContent = v;
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
      else if (k === "value") node.value = v;
      else if (k === "checked") node.checked = !!v;
      else node.setAttribute(k, v === true ? "" : v);
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function api(method, path, body, contentType) {
    var opts = { method: method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
    if (method !== "GET") opts.headers["X-CSRF-Token"] = csrf;
    if (body !== undefined) {
      if (contentType) { opts.headers["Content-Type"] = contentType; opts.body = body; }
      else { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    }
    return fetch(path, opts).then(function (resp) {
      var json = (resp.headers.get("Content-Type") || "").indexOf("json") >= 0;
      return (json ? resp.json() : resp.text()).then(function (data) {
        if (resp.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.hash); }
        if (!resp.ok) {
          var err = new Error((data && data.error) || ("HTTP " + resp.status));
          err.status = resp.status; err.data = data; throw err;
        }
        return data;
      });
    });
  }

  var messages = el("div", { id: "messages", role: "status", "aria-live": "polite" });
  function say(text, isError) {
    messages.textContent = "";
    messages.appendChild(el("p", { class: isError ? "error" : "ok", role: isError ? "alert" : null, text: text }));
  }
  function quiet(err) { say(err.message, true); }

  /* Times are shown and typed on the site's clock (cfg.zone, e.g. Europe/Warsaw), whatever
   * the zone of the browser: an operator abroad or a laptop set to UTC sees and enters the
   * times the chamber sees. */
  var ZONE = cfg.zone;
  var LOCALE = cfg.lang === "en" ? "en-GB" : "pl-PL";
  var wallClock = new Intl.DateTimeFormat("en-US", {
    timeZone: ZONE, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit"
  });
  // The site's wall clock at a moment (ms since the epoch), as two-digit strings.
  function zoneParts(ms) {
    var parts = {};
    wallClock.formatToParts(new Date(ms)).forEach(function (p) { parts[p.type] = p.value; });
    if (parts.hour === "24") parts.hour = "00";
    return parts;
  }
  // How far the site's clock is ahead of UTC at a moment, in ms (DST included).
  function zoneOffset(ms) {
    var p = zoneParts(ms);
    var wall = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
    return wall - Math.floor(ms / 1000) * 1000;
  }
  // A moment as a datetime-local value on the site's clock.
  function localInput(iso) {
    var p = zoneParts(new Date(iso).getTime());
    return p.year + "-" + p.month + "-" + p.day + "T" + p.hour + ":" + p.minute;
  }
  // A datetime-local value read on the site's clock, as UTC. The offset is that of the moment
  // itself, found in two steps, so a time on the other side of a DST change is right too.
  function isoFromInput(value) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value);
    if (!m) return new Date(value).toISOString();
    var wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
    var guess = wall - zoneOffset(wall);
    return new Date(wall - zoneOffset(guess)).toISOString();
  }
  function when(iso) { return iso ? new Date(iso).toLocaleString(LOCALE, { timeZone: ZONE }) : ""; }
  // A second of the recording as m:ss or h:mm:ss.
  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds || 0));
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + ":" + pad(m) : String(m)) + ":" + pad(s % 60);
  }
  // A moment as the time of day, with the date too when it is not today.
  function soon(iso) {
    var d = new Date(iso);
    var time = d.toLocaleTimeString(LOCALE, { hour: "2-digit", minute: "2-digit", timeZone: ZONE });
    var day = function (x) { return x.toLocaleDateString(LOCALE, { timeZone: ZONE }); };
    return day(d) === day(new Date()) ? time : day(d) + " " + time;
  }

  /* ---------- transcription progress (the sessions list and the transcript view) ---------- */

  function progressBusy(p) { return !!p && (p.state === "queued" || p.state === "running"); }
  function progressText(p) {
    if (!p) return t("tr_none");
    var text = t("tr_" + p.state);
    // After live captions: first what they did not hear, then (the transcript whole) all again.
    if (progressBusy(p) && p.pass === "rest") text = t("tr_rest") + ": " + text;
    else if (progressBusy(p) && p.completed_at) text = t("tr_refining") + ": " + text;
    if (progressBusy(p)) text += ", " + Math.round(100 * (p.fraction || 0)) + " %";
    if (p.state === "running" && p.estimated_finish) text += ", " + t("tr_finish") + " " + soon(p.estimated_finish);
    if (p.state === "failed" && p.error) text += ": " + p.error;
    return text;
  }
  // A running session's live captions: how far behind they are, and what they skipped.
  function liveText(c) {
    var text = t("live_captions") + ": ";
    if (c.state === "waiting" && !c.windows) text += t("live_waiting");
    else text += t("live_lag") + " " + Math.round(c.lag_seconds) + " s";
    if (c.skipped_seconds > 0) text += ", " + t("live_skipped") + " " + Math.round(c.skipped_seconds) + " s (" + t("live_rest") + ")";
    if (c.state === "failed" && c.error) text += ", " + t("live_failed") + ": " + c.error;
    return text;
  }
  // What the recogniser's state means for staff; null when it is ready.
  function modelNote(model, id) {
    if (!model || model.state === "ready") return null;
    if (model.state === "unavailable") {
      return el("p", { id: id, class: "error", role: "alert", text: t("model_unavailable") + ": " + (model.error || "") });
    }
    return el("p", { id: id, class: "hint", text: t(model.state === "loading" ? "model_loading" : "model_off") });
  }

  // The recording as it was made (staff only), played with hls.js where the browser needs it.
  function recordingPlayer(sid, id, label) {
    var video = el("video", { id: id, controls: true, width: "640", "aria-label": label });
    var attached = false;
    return {
      video: video,
      attach: function () {
        if (attached) return;
        attached = true;
        var src = "/sessions/" + sid + "/original.m3u8";
        if (window.Hls && window.Hls.isSupported()) {
          var hls = new window.Hls();
          hls.loadSource(src); hls.attachMedia(video);
          onLeave(function () { hls.destroy(); });
        } else video.src = src;
      }
    };
  }
  function play(video, at) {
    video.currentTime = at;
    var started = video.play();
    if (started && started.catch) started.catch(function () {});  // (paused again, or not loaded)
  }

  function flatItems(items, out) {
    out = out || [];
    items.forEach(function (i) { out.push(i); flatItems(i.items, out); });
    return out;
  }
  function stateOf(detail) {
    if (detail.state === "live" && detail.closed) return "closed";
    if (detail.state === "live" && detail.in_break) return "break";
    return detail.state;
  }

  /* ---------- navigation ---------- */

  var views = [
    ["sessions", "console.view"], ["councillors", "console.view"], ["run", "console.view"],
    ["after", "record.edit"], ["users", "users.manage"], ["audit", "audit.read"]
  ];
  var nav = el("nav", { "aria-label": t("console") });
  var navList = el("ul", { class: "tabs" });
  nav.appendChild(navList);
  var main = el("section", { id: "view" });
  root.textContent = "";
  root.appendChild(nav);
  root.appendChild(messages);
  root.appendChild(main);

  var timers = [];
  var leaving = [];  // what to stop when the view changes (a player's hls.js)
  function onLeave(fn) { leaving.push(fn); }
  function clearTimers() {
    timers.forEach(clearInterval); timers = [];
    leaving.forEach(function (fn) { try { fn(); } catch (e) { /* already gone */ } }); leaving = [];
  }
  function every(ms, fn) { fn(); timers.push(setInterval(fn, ms)); }
  var keyHandler = null;

  function route() {
    clearTimers();
    keyHandler = null;
    var parts = (location.hash || "#sessions").slice(1).split("/");
    var name = parts[0] || "sessions";
    navList.textContent = "";
    views.forEach(function (v) {
      if (!may[v[1]]) return;
      var link = el("a", { href: "#" + v[0], text: t(v[0]) });
      if (v[0] === name) link.setAttribute("aria-current", "page");
      navList.appendChild(el("li", {}, [link]));
    });
    main.textContent = "";
    var id = parts[1] ? parseInt(parts[1], 10) : null;
    if (name === "councillors") return viewCouncillors();
    if (name === "run") return id ? viewRun(id) : viewSessions();
    if (name === "after") return id ? viewAfter(id) : viewSessions();
    if (name === "transcript") return id && may["record.edit"] ? viewTranscript(id) : viewSessions();
    if (name === "users" && may["users.manage"]) return viewUsers();
    if (name === "audit" && may["audit.read"]) return viewAudit(id);
    return viewSessions();
  }
  window.addEventListener("hashchange", route);
  document.addEventListener("keydown", function (ev) {
    var tag = (ev.target && ev.target.tagName) || "";
    if (ev.ctrlKey || ev.metaKey || ev.altKey || /INPUT|TEXTAREA|SELECT/.test(tag)) return;
    if (keyHandler && keyHandler(ev.key)) ev.preventDefault();
  });

  /* ---------- sessions ---------- */

  function sessionForm(existing, done) {
    var chamberSel = el("select", { id: "s-chamber", name: "chamber" },
      cfg.chambers.map(function (c) { return el("option", { value: c.id, text: c.name }); }));
    var kindSel = el("select", { id: "s-kind", name: "kind" }, [
      el("option", { value: "session", text: t("kind_session") }),
      el("option", { value: "committee", text: t("kind_committee") })
    ]);
    var now = new Date(Date.now() + 3600e3);
    var title = el("input", { id: "s-title", name: "title", required: true, maxlength: "300", value: existing ? existing.title : "" });
    var start = el("input", { id: "s-start", type: "datetime-local", required: true, value: localInput(existing ? existing.scheduled_start : now.toISOString()) });
    var end = el("input", { id: "s-end", type: "datetime-local", required: true, value: localInput(existing ? existing.scheduled_end : new Date(now.getTime() + 4 * 3600e3).toISOString()) });
    if (existing) { chamberSel.value = existing.chamber; kindSel.value = existing.kind; }
    var agenda = el("textarea", { id: "s-agenda", rows: "12", cols: "80", "aria-describedby": "s-agenda-hint" });
    var tree = el("div", { id: "agenda-preview", "aria-live": "polite" });
    var previewed = null;
    function preview() {
      return api("POST", "/api/v1/agenda/preview", { agenda_text: agenda.value }).then(function (r) {
        tree.textContent = "";
        if (r.ok) {
          previewed = agenda.value;
          tree.appendChild(el("p", { text: t("parsed") }));
          tree.appendChild(renderTree(r.items));
        } else {
          previewed = null;
          tree.appendChild(el("p", { class: "error", role: "alert", text: t("not_parsed") }));
          tree.appendChild(el("ul", { class: "agenda-errors" }, r.lines.map(function (l) {
            return el("li", { text: t("line") + " " + l.line + ": " + l.text + " – " + l.problem });
          })));
        }
      }).catch(quiet);
    }
    var form = el("form", { id: existing ? "edit-session" : "new-session", class: "stack" }, [
      el("h2", { text: existing ? t("edit") + ": " + existing.title : t("new_session") }),
      el("p", {}, [el("label", { for: "s-title", text: t("title") }), title]),
      el("p", {}, [el("label", { for: "s-kind", text: t("kind") }), kindSel]),
      el("p", {}, [el("label", { for: "s-chamber", text: t("chamber") }), chamberSel]),
      el("p", {}, [el("label", { for: "s-start", text: t("start") }), start]),
      el("p", {}, [el("label", { for: "s-end", text: t("end") }), end])
    ]);
    var needsAgenda = !existing || existing.state === "scheduled";
    if (needsAgenda) {
      form.appendChild(el("p", {}, [
        el("label", { for: "s-agenda", text: t("agenda") }),
        el("span", { id: "s-agenda-hint", class: "hint", text: " " + t("agenda_hint") }), el("br"), agenda
      ]));
      form.appendChild(el("p", {}, [el("button", { type: "button", id: "preview-agenda", onclick: preview, text: t("preview") })]));
      form.appendChild(tree);
    }
    form.appendChild(el("p", {}, [el("button", { type: "submit", id: "save-session", text: t("save") })]));
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var body = {
        title: title.value, kind: kindSel.value, chamber: chamberSel.value,
        scheduled_start: isoFromInput(start.value), scheduled_end: isoFromInput(end.value)
      };
      var agendaChanged = needsAgenda && agenda.value.trim() !== "";
      if ((!existing || agendaChanged) && previewed !== agenda.value) { say(t("preview_first"), true); return; }
      var req;
      if (existing) {
        if (existing.state !== "scheduled") { body = { title: body.title, scheduled_end: body.scheduled_end }; }
        req = api("PATCH", "/api/v1/sessions/" + existing.id, body).then(function (d) {
          return agendaChanged ? api("PUT", "/api/v1/sessions/" + existing.id + "/agenda", { agenda_text: agenda.value }) : d;
        });
      } else {
        body.agenda_text = agenda.value;
        req = api("POST", "/api/v1/sessions", body);
      }
      req.then(function (d) { say(t("saved")); done(d); }).catch(quiet);
    });
    return form;
  }

  function renderTree(items) {
    return el("ol", { class: "agenda-tree" }, items.map(function (i) {
      return el("li", {}, [el("span", { text: i.number + ". " + i.title }), i.items.length ? renderTree(i.items) : null]);
    }));
  }

  function viewSessions() {
    main.appendChild(el("h2", { text: t("sessions") }));
    // The recogniser's state, when it is not ready (a missing model is said here plainly).
    var modelBox = el("div", { id: "transcription-model" });
    main.appendChild(modelBox);
    var table = el("table", { id: "sessions" }, [el("caption", { text: t("sessions") })]);
    main.appendChild(table);
    var formBox = el("div", {});
    var busy = false;
    // Each ended session's transcription: its state, how far it has got and when it should end.
    function showTranscription(status) {
      modelBox.textContent = "";
      var note = modelNote(status.model, "model-state");
      if (note && status.model.state !== "off") modelBox.appendChild(note);
      var found = {}, live = {};
      status.sessions.forEach(function (p) { found[p.session_id] = p; });
      (status.live || []).forEach(function (c) { if (c.state !== "ended") live[c.session_id] = c; });
      busy = status.model.state === "loading" || status.sessions.some(progressBusy) || Object.keys(live).length > 0;
      Array.prototype.forEach.call(table.querySelectorAll("td.transcription"), function (cell) {
        var id = cell.getAttribute("data-session");
        var p = found[id] || null;
        var text = live[id] ? liveText(live[id])
          : !p && cell.getAttribute("data-published") === "0" ? t("tr_withdrawn") : progressText(p);
        if (cell.textContent !== text) cell.textContent = text;
        cell.className = "transcription" + (p && p.state === "failed" ? " error" : "");
      });
    }
    function transcription() { return api("GET", "/api/v1/transcription").then(showTranscription).catch(function () {}); }
    api("GET", "/api/v1/sessions").then(function (r) {
      table.appendChild(el("tr", {}, [t("title"), t("start"), t("chamber"), t("transcription"), ""].map(function (h) { return el("th", { scope: "col", text: h }); })));
      r.sessions.forEach(function (s) {
        var actions = el("td", {}, [el("a", { href: "#run/" + s.id, text: t("open_run") })]);
        if (may["record.edit"]) { actions.appendChild(document.createTextNode(" · ")); actions.appendChild(el("a", { href: "#after/" + s.id, text: t("open_after") })); }
        if (may["record.edit"] && s.state === "ended") {
          actions.appendChild(document.createTextNode(" · "));
          actions.appendChild(el("a", { href: "#transcript/" + s.id, text: t("transcript"), "aria-label": t("transcript") + ": " + s.title }));
        }
        if (may["session.edit"] && s.state !== "ended") {
          actions.appendChild(document.createTextNode(" · "));
          actions.appendChild(el("button", { type: "button", text: t("edit"), onclick: function () {
            formBox.textContent = "";
            formBox.appendChild(sessionForm(s, function () { route(); }));
          } }));
        }
        table.appendChild(el("tr", {}, [
          el("td", {}, [el("span", { text: s.title + " " }), el("span", { class: "badge", text: "(" + t("state_" + s.state) + ")" })]),
          el("td", { text: when(s.scheduled_start) }), el("td", { text: s.chamber }),
          s.state !== "scheduled" ? el("td", { class: "transcription", "data-session": String(s.id), "data-published": s.published ? "1" : "0" }) : el("td", {}),
          actions
        ]));
      });
      return transcription();
    }).catch(quiet);
    // While something is queued or being recognised, its progress is kept current.
    timers.push(setInterval(function () { if (busy) transcription(); }, 2000));
    main.appendChild(formBox);
    if (may["session.create"]) {
      main.appendChild(sessionForm(null, function (d) { location.hash = "#run/" + d.id; }));
    }
  }

  /* ---------- councillors ---------- */

  function viewCouncillors() {
    main.appendChild(el("h2", { text: t("councillors") + " (" + cfg.term + ")" }));
    var table = el("table", { id: "councillors" });
    main.appendChild(table);
    function load() {
      api("GET", "/api/v1/councillors?all=1").then(function (r) {
        table.textContent = "";
        table.appendChild(el("tr", {}, [t("name"), t("caucus"), t("active")].map(function (h) { return el("th", { scope: "col", text: h }); })));
        r.councillors.forEach(function (c) {
          var caucus = el("input", { value: c.caucus, "aria-label": t("caucus") + ": " + c.name, disabled: !may["councillors.edit"] });
          caucus.addEventListener("change", function () { api("PATCH", "/api/v1/councillors/" + c.id, { caucus: caucus.value }).then(function () { say(t("saved")); }).catch(quiet); });
          var active = el("input", { type: "checkbox", checked: c.active, "aria-label": t("active") + ": " + c.name, disabled: !may["councillors.edit"] });
          active.addEventListener("change", function () { api("PATCH", "/api/v1/councillors/" + c.id, { active: active.checked }).then(load).catch(quiet); });
          table.appendChild(el("tr", {}, [el("td", { text: c.name }), el("td", {}, [caucus]), el("td", {}, [active])]));
        });
      }).catch(quiet);
    }
    load();
    if (!may["councillors.edit"]) return;
    var bulk = el("textarea", { id: "c-bulk", rows: "6", cols: "60", "aria-describedby": "c-bulk-hint" });
    main.appendChild(el("form", { id: "add-councillors", onsubmit: function (ev) {
      ev.preventDefault();
      var list = bulk.value.split("\n").map(function (line) { return line.trim(); }).filter(Boolean).map(function (line) {
        var parts = line.split(/[;\t]/);
        return { name: parts[0].trim(), caucus: (parts[1] || "").trim() };
      });
      api("POST", "/api/v1/councillors", { councillors: list }).then(function () { bulk.value = ""; say(t("saved")); load(); }).catch(quiet);
    } }, [
      el("h3", { text: t("add") }),
      el("p", {}, [el("label", { for: "c-bulk", text: t("councillors") }), el("span", { id: "c-bulk-hint", class: "hint", text: " " + t("bulk_hint") }), el("br"), bulk]),
      el("button", { type: "submit", id: "add-councillors-button", text: t("add") })
    ]));
  }

  /* ---------- running a session ---------- */

  function viewRun(sid) {
    var detail = null;
    var councillors = [];
    var head = el("div", { id: "run-head" });
    var controls = el("div", { id: "run-controls", class: "controls" });
    var agendaBox = el("div", { id: "run-agenda" });
    var voteBox = el("div", { id: "run-votes" });
    var preflightBox = el("div", { id: "preflight" });
    var offairBox = el("section", { id: "offair", "aria-labelledby": "offair-title" });
    var shortcutBox = el("details", { id: "shortcuts" }, [
      el("summary", { text: t("shortcuts") }),
      el("ul", {}, ["sc_next", "sc_prev", "sc_break", "sc_closed", "sc_vote", "sc_cam"].map(function (k) { return el("li", { text: t(k) }); }))
    ]);
    [head, controls, offairBox, preflightBox, agendaBox, voteBox, shortcutBox].forEach(function (n) { main.appendChild(n); });

    var shownKey = "";
    function act(method, path, body) {
      return api(method, path, body).then(function (d) {
        if (d && d.agenda) { d.program = detail && detail.program; detail = d; shownKey = ""; render(); }
        return d;
      }).catch(quiet);
    }
    function items() { return flatItems(detail.agenda).filter(function (i) { return !i.removed; }); }
    function step(delta) {
      var list = items();
      var at = list.findIndex(function (i) { return i.id === detail.current_item_id; });
      var next = list[at < 0 ? (delta > 0 ? 0 : -1) : at + delta];
      if (next) return act("POST", "/api/v1/sessions/" + sid + "/items/" + next.id + "/start");
    }
    function toggle(what, on) { return act("POST", "/api/v1/sessions/" + sid + "/" + what, { on: on }); }

    function render() {
      if (!detail) return;
      var state = stateOf(detail);
      head.textContent = "";
      head.appendChild(el("h2", { text: detail.title }));
      head.appendChild(el("p", { id: "run-state", class: "state state-" + state, text: t("state_" + state) }));
      controls.textContent = "";
      if (!may["session.run"]) return renderAgenda();
      if (detail.state === "scheduled") {
        controls.appendChild(el("button", { type: "button", id: "start", class: "primary", text: t("start_session"), onclick: function () { act("POST", "/api/v1/sessions/" + sid + "/start"); } }));
      }
      if (detail.state === "live") {
        controls.appendChild(el("button", { type: "button", id: "prev-item", text: t("prev_item"), onclick: function () { step(-1); } }));
        controls.appendChild(el("button", { type: "button", id: "next-item", text: t("next_item"), onclick: function () { step(1); } }));
        controls.appendChild(el("button", { type: "button", id: "break", "aria-pressed": detail.in_break ? "true" : "false", text: detail.in_break ? t("break_off") : t("break_on"), onclick: function () { toggle("break", !detail.in_break); } }));
        controls.appendChild(el("button", { type: "button", id: "closed", "aria-pressed": detail.closed ? "true" : "false", text: detail.closed ? t("closed_off") : t("closed_on"), onclick: function () { toggle("closed", !detail.closed); } }));
        var chamber = cfg.chambers.find(function (c) { return c.id === detail.chamber; });
        if (chamber && chamber.cameras.length > 1) {
          var group = el("fieldset", { id: "program" }, [el("legend", { text: t("program") })]);
          chamber.cameras.forEach(function (cam, n) {
            group.appendChild(el("button", { type: "button", "data-camera": cam.id, "aria-pressed": cam.id === detail.program ? "true" : "false", text: (n + 1) + ". " + cam.name, onclick: function () {
              api("POST", "/api/v1/chambers/" + detail.chamber + "/program", { camera: cam.id }).then(function (r) { detail.program = r.program; render(); }).catch(quiet);
            } }));
          });
          controls.appendChild(group);
        }
        controls.appendChild(el("button", { type: "button", id: "stop", class: "danger", text: t("stop_session"), onclick: function () {
          if (window.confirm(t("confirm_stop"))) act("POST", "/api/v1/sessions/" + sid + "/stop");
        } }));
      }
      renderAgenda();
      renderVotes();
    }

    function renderAgenda() {
      agendaBox.textContent = "";
      agendaBox.appendChild(el("h3", { text: t("agenda") }));
      var editable = may["agenda.edit"] && detail.state !== "ended";
      function list(itemsNow) {
        return el("ol", { class: "run-agenda" }, itemsNow.map(function (i, n) {
          var current = i.id === detail.current_item_id;
          var label = (i.number ? i.number + ". " : "") + i.title + (i.removed ? " (" + t("removed") + ")" : "") + (i.added ? " (" + t("item_added") + ")" : "");
          var li = el("li", { "data-item": i.id, class: (current ? "current " : "") + (i.removed ? "removed" : ""), "aria-current": current ? "true" : null }, [el("span", { class: "item-title", text: label })]);
          if (detail.state === "live" && !i.removed && may["session.run"]) {
            li.appendChild(el("button", { type: "button", class: "take-up", "aria-label": t("take_up") + ": " + label, text: t("take_up"), onclick: function () {
              act("POST", "/api/v1/sessions/" + sid + "/items/" + i.id + "/start");
            } }));
          }
          if (editable) {
            var change = function (body) { return act("POST", "/api/v1/sessions/" + sid + "/agenda", body); };
            if (n > 0) li.appendChild(el("button", { type: "button", "aria-label": t("move_up") + ": " + label, text: "↑", onclick: function () { change({ op: "move", item_id: i.id, index: n - 1 }); } }));
            if (n < itemsNow.length - 1) li.appendChild(el("button", { type: "button", "aria-label": t("move_down") + ": " + label, text: "↓", onclick: function () { change({ op: "move", item_id: i.id, index: n + 1 }); } }));
            li.appendChild(el("button", { type: "button", text: i.removed ? t("restore") : t("remove"), "aria-label": (i.removed ? t("restore") : t("remove")) + ": " + label, onclick: function () { change({ op: i.removed ? "restore" : "remove", item_id: i.id }); } }));
          }
          if (i.items.length) li.appendChild(list(i.items));
          return li;
        }));
      }
      agendaBox.appendChild(list(detail.agenda));
      if (editable) {
        var title = el("input", { id: "new-item-title", maxlength: "300" });
        var where = el("select", { id: "new-item-before" }, [el("option", { value: "", text: t("at_end") })].concat(
          detail.agenda.map(function (i) { return el("option", { value: String(i.id), text: t("before_item") + " " + (i.number || "–") + ". " + i.title }); })));
        agendaBox.appendChild(el("form", { id: "add-item", onsubmit: function (ev) {
          ev.preventDefault();
          var body = { op: "add", title: title.value };
          if (where.value) body.before_id = parseInt(where.value, 10);
          act("POST", "/api/v1/sessions/" + sid + "/agenda", body);
        } }, [el("h4", { text: t("agenda_change") }), el("label", { for: "new-item-title", text: t("add_item") + " " }), title, " ", el("label", { for: "new-item-before", text: t("item_place") + " " }), where, " ", el("button", { type: "submit", text: t("add") })]));
      }
    }

    var voteForm = null;
    function renderVotes() {
      voteBox.textContent = "";
      voteBox.appendChild(el("h3", { text: t("votes") }));
      var listed = el("ol", { id: "vote-list" });
      detail.votes.forEach(function (v) {
        var tot = v.totals;
        listed.appendChild(el("li", { "data-vote": v.id }, [
          el("strong", { text: v.subject }), el("br"),
          el("span", { class: "totals", text: t("for") + ": " + tot.for + ", " + t("against") + ": " + tot.against + ", " + t("abstain") + ": " + tot.abstain + ", " + t("absent") + ": " + tot.absent })
        ]));
      });
      voteBox.appendChild(detail.votes.length ? listed : el("p", { text: t("none") }));
      if (detail.state === "live" && may["vote.record"]) {
        if (!voteForm) voteForm = buildVoteForm();
        voteBox.appendChild(voteForm);
      }
    }

    function buildVoteForm() {
      var subject = el("input", { id: "vote-subject", size: "60", maxlength: "500" });
      var rows = el("tbody", {});
      var csvInput = el("input", { type: "file", id: "vote-csv", accept: ".csv,text/csv,text/plain" });
      var note = el("div", { id: "vote-note", "aria-live": "polite" });
      var source = "console";
      function setChoice(cid, choice) {
        var radio = rows.querySelector('input[name="c' + cid + '"][value="' + choice + '"]');
        if (radio) radio.checked = true;
      }
      function fill() {
        rows.textContent = "";
        if (!councillors.length) { note.textContent = t("no_councillors"); return; }
        councillors.forEach(function (c) {
          var tr = el("tr", { "data-councillor": c.id }, [el("th", { scope: "row", text: c.name + (c.caucus ? " (" + c.caucus + ")" : "") })]);
          ["for", "against", "abstain", "absent"].forEach(function (choice) {
            var id = "c" + c.id + "-" + choice;
            tr.appendChild(el("td", {}, [
              el("input", { type: "radio", name: "c" + c.id, id: id, value: choice, checked: choice === "absent" }),
              el("label", { for: id, text: t(choice) })
            ]));
          });
          rows.appendChild(tr);
        });
      }
      api("GET", "/api/v1/councillors").then(function (r) { councillors = r.councillors; fill(); }).catch(quiet);
      csvInput.addEventListener("change", function () {
        var file = csvInput.files[0];
        if (!file) return;
        file.arrayBuffer().then(function (buf) {
          return api("POST", "/api/v1/sessions/" + sid + "/votes/csv", buf, "text/csv");
        }).then(function (r) {
          source = "csv";
          r.choices.forEach(function (c) { setChoice(c.councillor_id, c.choice); });
          r.missing.forEach(function (m) { setChoice(m.councillor_id, "absent"); });
          note.textContent = t("csv_read") + (r.missing.length ? " " + t("csv_missing") + " " + r.missing.map(function (m) { return m.name; }).join(", ") : "");
        }).catch(function (err) {
          note.textContent = err.message + (err.data && err.data.lines ? " — " + err.data.lines.map(function (l) { return t("line") + " " + l.line + ": " + l.problem; }).join("; ") : "");
        });
      });
      var form = el("form", { id: "vote-form", onsubmit: function (ev) {
        ev.preventDefault();
        var choices = {};
        councillors.forEach(function (c) {
          var picked = rows.querySelector('input[name="c' + c.id + '"]:checked');
          choices[String(c.id)] = picked ? picked.value : "absent";
        });
        api("POST", "/api/v1/sessions/" + sid + "/votes", { subject: subject.value, choices: choices, source: source }).then(function () {
          subject.value = ""; source = "console"; note.textContent = t("saved"); fill(); refresh();
        }).catch(quiet);
      } }, [
        el("h4", { text: t("new_vote") }),
        el("p", {}, [el("label", { for: "vote-subject", text: t("subject") + " " }), subject]),
        el("p", {}, [el("label", { for: "vote-csv", text: t("import_csv") + " " }), csvInput]),
        note,
        el("table", { class: "vote-table" }, [rows]),
        el("p", {}, [
          el("button", { type: "button", id: "all-for", text: t("all_for"), onclick: function () { councillors.forEach(function (c) { setChoice(c.id, "for"); }); } }),
          " ",
          el("button", { type: "submit", id: "save-vote", text: t("save_vote") })
        ])
      ]);
      return form;
    }

    var preflightShape = "";
    function diskText(disk) {
      return t("disk") + ": " + (disk.free_bytes / 1e9).toFixed(1) + " GB" +
        (disk.hours_left !== null && disk.hours_left !== undefined ? " (" + disk.hours_left.toFixed(1) + " " + t("hours_left") + ")" : "");
    }
    function renderPreflight() {
      if (!detail || !may["preflight"] || detail.state === "ended") { preflightBox.textContent = ""; preflightShape = ""; return; }
      api("GET", "/api/v1/chambers/" + detail.chamber + "/preflight").then(function (p) {
        var shape = JSON.stringify([(p.cameras || []).map(function (c) { return [c.id, c.state, !!c.preview_at]; }),
          (p.test_recordings || []).slice(0, 1).map(function (r) { return [r.id, r.state]; }), detail.state]);
        if (shape === preflightShape) {
          // Same cameras and recordings: refresh the pictures, meters and disk in place.
          (p.cameras || []).forEach(function (cam) {
            var fig = preflightBox.querySelector('figure[data-camera="' + cam.id + '"]');
            if (!fig) return;
            var img = fig.querySelector("img");
            if (img && cam.preview_at) img.src = cam.preview_url + "?at=" + encodeURIComponent(cam.preview_at);
            var level = cam.audio && cam.audio.peak_db !== null && cam.audio.peak_db !== undefined ? cam.audio.peak_db : -90;
            var meter = fig.querySelector("meter");
            if (meter) meter.value = Math.max(-60, level);
            var label = fig.querySelector(".db");
            if (label) label.textContent = " " + Math.round(level) + " dBFS";
          });
          var disk = document.getElementById("disk");
          if (disk && p.disk) disk.textContent = diskText(p.disk);
          return;
        }
        preflightShape = shape;
        preflightBox.textContent = "";
        var box = el("details", { open: detail.state === "scheduled" }, [el("summary", { text: t("preflight") })]);
        (p.cameras || []).forEach(function (cam) {
          var level = cam.audio && cam.audio.peak_db !== null && cam.audio.peak_db !== undefined ? cam.audio.peak_db : -90;
          box.appendChild(el("figure", { class: "preview", "data-camera": cam.id }, [
            cam.preview_at ? el("img", { src: cam.preview_url + "?at=" + encodeURIComponent(cam.preview_at), alt: cam.name || cam.id, width: "320" }) : el("p", { text: cam.state + (cam.error ? ": " + cam.error : "") }),
            el("figcaption", {}, [
              el("span", { text: (cam.name || cam.id) + " – " + t("audio") + " " }),
              el("meter", { min: "-60", max: "0", low: "-30", high: "-6", optimum: "-18", value: String(Math.max(-60, level)), "aria-label": t("audio") + " " + (cam.name || cam.id) }),
              el("span", { class: "db", text: " " + Math.round(level) + " dBFS" })
            ])
          ]));
        });
        if (p.disk) {
          box.appendChild(el("p", { id: "disk", text: diskText(p.disk) }));
        }
        var cams = (p.cameras || []);
        if (cams.length) {
          box.appendChild(el("button", { type: "button", id: "test-recording", text: t("test_recording"), onclick: function () {
            api("POST", "/api/v1/chambers/" + detail.chamber + "/test-recordings", { camera: cams[0].id, seconds: 10 }).then(function () { say(t("saved")); }).catch(quiet);
          } }));
        }
        // The newest test recording, playable here once done.
        (p.test_recordings || []).slice(0, 1).forEach(function (r) {
          if (r.state === "done" && r.video_url) {
            box.appendChild(el("video", { id: "test-recording-video", controls: true, src: r.video_url, width: "320", "aria-label": t("test_recording") }));
          } else {
            box.appendChild(el("p", { text: t("test_recording") + ": " + r.state }));
          }
        });
        preflightBox.appendChild(box);
      }).catch(function () { preflightBox.textContent = ""; preflightShape = ""; });
    }

    function refresh() {
      return api("GET", "/api/v1/sessions/" + sid).then(function (d) {
        var chamber = cfg.chambers.find(function (c) { return c.id === d.chamber; });
        return api("GET", "/api/v1/chambers").then(function (r) {
          var info = r.chambers.find(function (c) { return chamber && c.id === chamber.id; });
          d.program = info ? info.program : null;
          // Rebuild only when something shown changed (the recording grows every second): a
          // rebuilt button under the operator's pointer would swallow their click.
          // (Offsets are left out: they are refined as the recording's clock settles.)
          var key = JSON.stringify([d.title, d.state, d.in_break, d.closed, d.current_item_id,
            d.program, d.agenda, d.votes.map(function (v) { return [v.id, v.subject, v.totals]; })]);
          if (key === shownKey) return;
          shownKey = key;
          var focused = document.activeElement && document.activeElement.id;
          detail = d; render();
          if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
        });
      }).catch(quiet);
    }

    /* What the public receives (GET /api/v1/status "offair"): alarms with their cause and
     * since when, "starting", or on air; and the last recovery. Rebuilt only when it changes,
     * so a screen reader hears an alarm once (role="alert"). */
    var offairShape = "";
    function offairCause(cause) { return t("offair_cause_" + cause); }
    function renderOffair() {
      if (!detail || detail.state === "ended") { offairBox.textContent = ""; offairShape = ""; return; }
      api("GET", "/api/v1/status").then(function (status) {
        var r = (status.offair || []).find(function (o) { return o.chamber === detail.chamber; });
        var shape = JSON.stringify(r ? [r.alarms, r.state, r.expected, r.last_recovery] : null);
        if (shape === offairShape) return;
        offairShape = shape;
        offairBox.textContent = "";
        if (!r) return;
        offairBox.appendChild(el("h3", { id: "offair-title", text: t("offair") }));
        var alarms = r.alarms || [];
        if (alarms.length) {
          offairBox.appendChild(el("div", { id: "offair-alarm", class: "error", role: "alert" }, [
            el("strong", { text: t("offair_alarm") }),
            el("ul", {}, alarms.map(function (a) {
              // The cause in this language; the service's own sentence (English) on hover.
              return el("li", { "data-cause": a.cause, title: a.message, text: offairCause(a.cause) + " (" + fmt("offair_since", { at: when(a.since) }) + ")" });
            }))
          ]));
        } else {
          var word = !r.expected ? "offair_idle" : (r.state === "starting" ? "offair_starting" : "offair_ok");
          offairBox.appendChild(el("p", { id: "offair-state", class: word === "offair_ok" ? "ok" : "", text: t(word) }));
        }
        var back = r.last_recovery;
        if (back) {
          offairBox.appendChild(el("p", { id: "offair-recovery", title: back.message, text: fmt("offair_recovered", {
            cause: offairCause(back.cause), seconds: Math.round(back.duration_seconds), at: when(back.ended)
          }) }));
        }
      }).catch(function () { offairBox.textContent = ""; offairShape = ""; });
    }

    keyHandler = function (key) {
      if (!detail || detail.state !== "live" || !may["session.run"]) return false;
      var k = key.toLowerCase();
      if (k === "n") { step(1); return true; }
      if (k === "p") { step(-1); return true; }
      if (k === "b") { toggle("break", !detail.in_break); return true; }
      if (k === "j") { toggle("closed", !detail.closed); return true; }
      if (k === "g") { var s = document.getElementById("vote-subject"); if (s) s.focus(); return true; }
      if (/^[1-9]$/.test(k)) {
        var chamber = cfg.chambers.find(function (c) { return c.id === detail.chamber; });
        var cam = chamber && chamber.cameras[parseInt(k, 10) - 1];
        if (cam) api("POST", "/api/v1/chambers/" + detail.chamber + "/program", { camera: cam.id }).then(refresh).catch(quiet);
        return !!cam;
      }
      return false;
    };
    every(1000, refresh);
    timers.push(setInterval(renderPreflight, 1000));  // the meters: about live
    timers.push(setInterval(renderOffair, 2000));
    setTimeout(renderOffair, 300);
    setTimeout(renderPreflight, 300);
  }

  /* ---------- after the session ---------- */

  function viewAfter(sid) {
    var recording = recordingPlayer(sid, "after-player", t("after"));
    var player = recording.video;
    var box = el("div", { id: "after" });
    main.appendChild(player);
    main.appendChild(box);
    function secondsInput(id, value, label) {
      return el("input", { id: id, type: "number", step: "0.1", min: "0", value: value === null || value === undefined ? "" : String(value), "aria-label": label, size: "8" });
    }
    function load() {
      api("GET", "/api/v1/sessions/" + sid).then(function (d) {
        recording.attach();
        box.textContent = "";
        box.appendChild(el("h2", { text: d.title }));
        if (d.state === "ended") {
          box.appendChild(el("p", {}, [el("a", { id: "open-transcript", href: "#transcript/" + sid, text: t("transcript") })]));
        }
        var items = {};
        flatItems(d.agenda).forEach(function (i) { items[i.id] = i; });
        if (may["record.publish"]) {
          box.appendChild(el("p", {}, [
            el("span", { id: "published", text: (d.published ? t("published") : t("withdrawn")) + " " }),
            el("button", { type: "button", id: "publish-toggle", text: d.published ? t("withdraw") : t("publish"), onclick: function () {
              api("POST", "/api/v1/sessions/" + sid + "/publish", { published: !d.published }).then(load).catch(quiet);
            } })
          ]));
        }
        box.appendChild(el("h3", { text: t("markers") }));
        // The timeline: each marker where it falls in the recording; a click plays from there.
        var duration = d.recording.duration_seconds || 1;
        var line = el("div", { id: "timeline", class: "timeline", role: "group", "aria-label": t("markers") });
        d.markers.forEach(function (m) {
          if (m.offset_seconds === null) return;
          var name = m.kind === "item_start" && items[m.item_id] ? items[m.item_id].number + ". " + items[m.item_id].title : t(m.kind);
          line.appendChild(el("button", {
            type: "button", class: "tick tick-" + m.kind, title: name, "aria-label": name + " (" + m.offset_seconds.toFixed(1) + " s)",
            style: "left:" + (100 * m.offset_seconds / duration).toFixed(2) + "%",
            onclick: function () { player.currentTime = m.offset_seconds; player.play(); }
          }));
        });
        (d.votes || []).forEach(function (v) {
          if (v.offset_seconds === null) return;
          line.appendChild(el("span", { class: "tick tick-vote", title: v.subject, style: "left:" + (100 * v.offset_seconds / duration).toFixed(2) + "%" }));
        });
        box.appendChild(line);
        var list = el("ol", { id: "markers" });
        d.markers.forEach(function (m) {
          var label = m.kind === "item_start" && items[m.item_id] ? items[m.item_id].number + ". " + items[m.item_id].title : t(m.kind);
          var offset = secondsInput("m-" + m.id, m.offset_seconds, t("offset") + ": " + label);
          var li = el("li", { "data-marker": m.id }, [el("span", { text: label + " – " }), offset, " " + t("seconds") + " "]);
          li.appendChild(el("button", { type: "button", text: t("set_from_player"), onclick: function () { offset.value = player.currentTime.toFixed(1); offset.dispatchEvent(new Event("change")); } }));
          offset.addEventListener("change", function () {
            api("PATCH", "/api/v1/sessions/" + sid + "/markers/" + m.id, { offset_seconds: parseFloat(offset.value) }).then(load).catch(quiet);
          });
          li.appendChild(el("button", { type: "button", text: "▶", "aria-label": "▶ " + label, onclick: function () { player.currentTime = m.offset_seconds || 0; player.play(); } }));
          if (m.kind === "item_start") {
            li.appendChild(el("button", { type: "button", text: t("merge"), onclick: function () { api("DELETE", "/api/v1/sessions/" + sid + "/markers/" + m.id).then(load).catch(quiet); } }));
            var name = el("input", { value: items[m.item_id] ? items[m.item_id].title : "", "aria-label": t("rename") + ": " + label, size: "40" });
            li.appendChild(name);
            li.appendChild(el("button", { type: "button", text: t("rename"), onclick: function () {
              api("PATCH", "/api/v1/sessions/" + sid + "/items/" + m.item_id, { title: name.value }).then(load).catch(quiet);
            } }));
          }
          list.appendChild(li);
        });
        box.appendChild(list);
        var splitTitle = el("input", { id: "split-title", size: "40", "aria-label": t("title") });
        box.appendChild(el("p", {}, [splitTitle, " ", el("button", { type: "button", id: "split", text: t("split"), onclick: function () {
          api("POST", "/api/v1/sessions/" + sid + "/markers", { kind: "item_start", offset_seconds: player.currentTime, title: splitTitle.value }).then(load).catch(quiet);
        } })]));
        if (may["record.redact"]) {
          box.appendChild(el("h3", { text: t("redactions") }));
          var rlist = el("ul", { id: "redactions" });
          box.appendChild(rlist);
          api("GET", "/api/v1/sessions/" + sid + "/redactions").then(function (r) {
            (r.redactions || []).forEach(function (x) {
              line.appendChild(el("span", { class: "redacted", title: x.reason, style: "left:" + (100 * x.start_seconds / duration).toFixed(2) + "%;width:" + (100 * (x.end_seconds - x.start_seconds) / duration).toFixed(2) + "%" }));
              rlist.appendChild(el("li", {}, [x.start_seconds + "–" + x.end_seconds + " s: " + x.reason + " ",
                el("button", { type: "button", text: "✕", "aria-label": "✕ " + x.reason, onclick: function () { api("DELETE", "/api/v1/sessions/" + sid + "/redactions/" + x.id).then(load).catch(quiet); } })]));
            });
          }).catch(quiet);
          var from = secondsInput("r-from", null, t("from")), to = secondsInput("r-to", null, t("to"));
          var reason = el("input", { id: "r-reason", "aria-label": t("reason"), size: "30" });
          box.appendChild(el("form", { id: "add-redaction", onsubmit: function (ev) {
            ev.preventDefault();
            api("POST", "/api/v1/sessions/" + sid + "/redactions", { start_seconds: parseFloat(from.value), end_seconds: parseFloat(to.value), reason: reason.value }).then(load).catch(quiet);
          } }, [
            el("label", { for: "r-from", text: t("from") + " " }), from,
            el("button", { type: "button", text: t("set_from_player"), onclick: function () { from.value = player.currentTime.toFixed(1); } }),
            el("label", { for: "r-to", text: " " + t("to") + " " }), to,
            el("button", { type: "button", text: t("set_from_player"), onclick: function () { to.value = player.currentTime.toFixed(1); } }),
            el("label", { for: "r-reason", text: " " + t("reason") + " " }), reason, " ",
            el("button", { type: "submit", text: t("add") })
          ]));
        }
      }).catch(quiet);
    }
    load();
  }

  /* ---------- the transcript: staff correct what recognition heard ---------- */

  function viewTranscript(sid) {
    var recording = recordingPlayer(sid, "transcript-player", t("recording"));
    var player = recording.video;
    var head = el("div", { id: "transcript-head" });
    var modelBox = el("div", { id: "transcript-model" });
    var status = el("p", { id: "transcript-progress" });
    var bar = el("progress", { id: "transcript-bar", max: "100", value: "0", "aria-label": t("tr_progress") });
    var rerun = el("button", { type: "button", id: "transcript-run", text: t("tr_rerun"), "aria-describedby": "transcript-run-hint", onclick: function () {
      api("POST", "/api/v1/sessions/" + sid + "/transcript/run").then(function (p) {
        progress = p; say(t("tr_requeued")); renderProgress();
      }).catch(quiet);
    } });
    var list = el("ol", { id: "transcript-lines", "aria-labelledby": "transcript-lines-title" });
    var empty = el("p", { id: "transcript-empty", text: t("no_lines") });
    // A long session has thousands of lines: they are shown PAGE_LINES at a time, and the page
    // follows the recording while it plays.
    var PAGE_LINES = 200, page = 0;
    var pageInfo = el("span", { id: "transcript-page", "aria-live": "polite" });
    var previousPage = el("button", { type: "button", id: "transcript-previous", text: t("previous"), onclick: function () { showPage(page - 1); } });
    var nextPage = el("button", { type: "button", id: "transcript-next", text: t("next"), onclick: function () { showPage(page + 1); } });
    var pager = el("nav", { id: "transcript-pager", "aria-label": t("lines_pages") }, [previousPage, " ", pageInfo, " ", nextPage]);
    // A line recognition missed, added by hand at the moment the recording is at.
    var addStart = el("input", { id: "add-start", type: "number", step: "0.1", min: "0", required: true });
    var addEnd = el("input", { id: "add-end", type: "number", step: "0.1", min: "0", required: true });
    var addText = el("textarea", { id: "add-text", rows: "2", required: true });
    var addForm = el("form", { id: "add-line", class: "add-line", "aria-labelledby": "add-line-title" }, [
      el("h4", { id: "add-line-title", text: t("add_line") }),
      el("p", { class: "hint", id: "add-line-hint", text: t("add_line_hint") }),
      el("label", { for: "add-start", text: t("line_start") }), addStart,
      el("button", { type: "button", text: t("start_here"), onclick: function () {
        addStart.value = player.currentTime.toFixed(1);
        if (!addEnd.value || Number(addEnd.value) <= player.currentTime) addEnd.value = (player.currentTime + 3).toFixed(1);
      } }),
      el("label", { for: "add-end", text: t("line_end") }), addEnd,
      el("label", { for: "add-text", text: t("line_text") }), addText,
      el("button", { type: "submit", id: "add-submit", text: t("add"), "aria-describedby": "add-line-hint" })
    ]);
    addForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      api("POST", "/api/v1/sessions/" + sid + "/transcript/lines", {
        start_seconds: Number(addStart.value), end_seconds: Number(addEnd.value), text: addText.value
      }).then(function (added) {
        addText.value = "";
        say(t("added"));
        return load(added.id);
      }).catch(quiet);
    });
    main.appendChild(head);
    main.appendChild(el("div", { id: "transcript", class: "transcript-view" }, [
      el("div", { class: "transcript-video" }, [
        player, modelBox, status, bar,
        el("p", {}, [rerun, " ", el("span", { id: "transcript-run-hint", class: "hint", text: t("tr_rerun_hint") })])
      ]),
      el("div", { class: "transcript-text" }, [
        el("h3", { id: "transcript-lines-title", text: t("transcript") }),
        el("p", { class: "hint", id: "transcript-hint", text: t("lines_hint") }),
        empty, pager, list, addForm
      ])
    ]));

    var lines = [], hidden = [], progress = null, model = null, shownKey = null;
    var drafts = {};  // line id -> what staff typed and have not saved yet (kept across refreshes)
    var timeDrafts = {};  // line id -> [start, end] typed and not saved yet
    var nodes = {};   // line id -> its <li>
    var playingId = null;

    function renderProgress() {
      status.textContent = t("transcription") + ": " + progressText(progress);
      status.className = progress && progress.state === "failed" ? "error" : "";
      bar.value = Math.round(100 * (progress ? progress.fraction || 0 : 0));
      bar.hidden = !progressBusy(progress);
      modelBox.textContent = "";
      var note = modelNote(model, "transcript-model-state");
      if (note) modelBox.appendChild(note);
      // Nothing to queue while it runs, or when there is no recogniser to run it (said above).
      rerun.disabled = progressBusy(progress) || (!!model && (model.state === "off" || model.state === "unavailable"));
    }

    function hiddenLine(line) {
      return hidden.some(function (h) { return h[0] < line.end_seconds && h[1] > line.start_seconds; });
    }

    function lineItem(line) {
      var id = line.id, span = clock(line.start_seconds) + "–" + clock(line.end_seconds);
      var field = el("textarea", { id: "tl-" + id, rows: "2", "aria-describedby": "tn-" + id,
        value: drafts[id] !== undefined ? drafts[id] : line.text });
      var saveButton = el("button", { type: "button", id: "ts-" + id, class: "save-line", text: t("save_line"),
        "aria-label": t("save_line") + " " + span, onclick: function () { save(line, field); } });
      field.addEventListener("input", function () { drafts[id] = field.value; });
      field.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); save(line, field); }
      });
      var typed = timeDrafts[id] || [line.start_seconds.toFixed(3), line.end_seconds.toFixed(3)];
      var startField = el("input", { id: "tsa-" + id, type: "number", step: "0.1", min: "0", value: typed[0] });
      var endField = el("input", { id: "tse-" + id, type: "number", step: "0.1", min: "0", value: typed[1] });
      var keepTimes = function () { timeDrafts[id] = [startField.value, endField.value]; };
      startField.addEventListener("input", keepTimes);
      endField.addEventListener("input", keepTimes);
      var times = el("details", { class: "line-times" }, [
        el("summary", { text: t("line_times"), "aria-label": t("line_times") + " " + span }),
        el("label", { for: "tsa-" + id, text: t("line_start") }), startField,
        el("button", { type: "button", text: t("start_here"), onclick: function () { startField.value = player.currentTime.toFixed(1); keepTimes(); } }),
        el("label", { for: "tse-" + id, text: t("line_end") }), endField,
        el("button", { type: "button", text: t("end_here"), onclick: function () { endField.value = player.currentTime.toFixed(1); keepTimes(); } })
      ]);
      if (timeDrafts[id]) times.open = true;
      var notes = el("div", { id: "tn-" + id, class: "notes" });
      if (line.corrected) {
        notes.appendChild(el("p", { class: "note corrected-note", text: t("corrected_by") + " " + (line.corrected_by || "?") + ", " + when(line.corrected_at) }));
        if (line.automatic_text !== null && line.automatic_text !== undefined && line.automatic_text !== line.text) {
          notes.appendChild(el("p", { class: "note automatic-note" }, [t("was_automatic") + ": ", el("q", { text: line.automatic_text })]));
        }
      }
      if (line.text === "") notes.appendChild(el("p", { class: "note", text: t("nothing_said") }));
      if (hiddenLine(line)) notes.appendChild(el("p", { class: "note", text: t("hidden_part") }));
      var classes = ["transcript-line"];
      if (line.corrected) classes.push("corrected");
      if (id === playingId) classes.push("playing");
      return el("li", { "data-line": String(id), class: classes.join(" "), "aria-current": id === playingId ? "time" : null }, [
        el("button", { type: "button", id: "tp-" + id, class: "line-time", text: clock(line.start_seconds),
          "aria-label": t("play_from") + " " + clock(line.start_seconds), onclick: function () { play(player, line.start_seconds); } }),
        el("div", { class: "line-body" }, [
          el("label", { for: "tl-" + id, class: "visually-hidden", text: t("line_text") + " " + span }),
          field, notes
        ]),
        // After Save: Tab from the text reaches its Save button first.
        saveButton, times
      ]);
    }

    // Rebuilt only when the lines changed (recognition adds them as it goes); the focus, the
    // caret and anything typed and not yet saved stay.
    function renderLines() {
      var active = document.activeElement;
      var activeId = active && list.contains(active) ? active.id : null;
      var caret = activeId && active.tagName === "TEXTAREA" ? [active.selectionStart, active.selectionEnd] : null;
      list.textContent = "";
      nodes = {};
      var pages = Math.max(1, Math.ceil(lines.length / PAGE_LINES));
      page = Math.min(Math.max(0, page), pages - 1);
      var first = page * PAGE_LINES, shown = lines.slice(first, first + PAGE_LINES);
      shown.forEach(function (line) { nodes[line.id] = list.appendChild(lineItem(line)); });
      empty.hidden = lines.length > 0;
      pager.hidden = pages < 2;
      previousPage.disabled = page === 0;
      nextPage.disabled = page >= pages - 1;
      pageInfo.textContent = fmt("lines_range", { a: first + 1, b: first + shown.length, n: lines.length });
      if (activeId && document.getElementById(activeId)) {
        var again = document.getElementById(activeId);
        again.focus();
        if (caret) again.setSelectionRange(caret[0], caret[1]);
      }
    }

    function showPage(number) {
      page = number;
      renderLines();
    }
    function pageOf(lineId) {
      for (var i = 0; i < lines.length; i++) if (lines[i].id === lineId) return Math.floor(i / PAGE_LINES);
      return page;
    }

    function save(line, field) {
      var body = { text: field.value };
      var typed = timeDrafts[line.id];
      if (typed) { body.start_seconds = Number(typed[0]); body.end_seconds = Number(typed[1]); }
      api("PATCH", "/api/v1/sessions/" + sid + "/transcript/lines/" + line.id, body).then(function (saved) {
        delete drafts[line.id];
        delete timeDrafts[line.id];
        lines = lines.map(function (l) { return l.id === saved.id ? saved : l; });
        shownKey = JSON.stringify([lines, hidden]);
        var old = nodes[saved.id];
        var focused = old && old.contains(document.activeElement) ? document.activeElement.id : null;
        if (old) { nodes[saved.id] = lineItem(saved); list.replaceChild(nodes[saved.id], old); }
        if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
        say(t("saved"));
      }).catch(quiet);
    }

    // The line being played is marked (and kept in view while playing, unless staff are typing).
    player.addEventListener("timeupdate", function () {
      var now = player.currentTime, found = null;
      for (var i = 0; i < lines.length; i++) {
        if (lines[i].start_seconds <= now && now < lines[i].end_seconds) { found = lines[i].id; break; }
      }
      if (found === playingId) return;
      var typing = document.activeElement && /^(TEXTAREA|INPUT)$/.test(document.activeElement.tagName);
      if (found !== null && !nodes[found] && !player.paused && !typing) {
        playingId = found;
        showPage(pageOf(found));
      }
      var before = playingId !== null && nodes[playingId];
      if (before) { before.classList.remove("playing"); before.removeAttribute("aria-current"); }
      playingId = found;
      var li = found !== null && nodes[found];
      if (!li) return;
      li.classList.add("playing");
      li.setAttribute("aria-current", "time");
      if (!player.paused && !typing && li.scrollIntoView) li.scrollIntoView({ block: "nearest" });
    });

    function load(showLine) {
      return Promise.all([
        api("GET", "/api/v1/sessions/" + sid + "/transcript"),
        api("GET", "/api/v1/transcription").catch(function () { return null; })
      ]).then(function (r) {
        var found = r[0];
        progress = found.progress;
        if (r[1]) model = r[1].model;
        var key = JSON.stringify([found.lines, found.hidden || []]);
        if (key !== shownKey) {
          shownKey = key; lines = found.lines; hidden = found.hidden || [];
          if (showLine !== undefined) page = pageOf(showLine);
          renderLines();
        }
        renderProgress();
      }).catch(quiet);
    }

    api("GET", "/api/v1/sessions/" + sid).then(function (d) {
      head.appendChild(el("h2", { text: t("transcript") + ": " + d.title }));
      head.appendChild(el("p", {}, [el("a", { href: "#after/" + sid, text: t("after") })]));
      if (d.recording && d.recording.duration_seconds) recording.attach();
      else player.hidden = true;  // nothing recorded (yet): no empty player
    }).catch(quiet);
    load();
    // Every 2 s while it is queued or being recognised (or the model is still loading).
    timers.push(setInterval(function () {
      if (progressBusy(progress) || (model && model.state === "loading")) load();
    }, 2000));
  }

  /* ---------- users and audit ---------- */

  function viewUsers() {
    main.appendChild(el("h2", { text: t("users") }));
    var table = el("table", { id: "users" });
    main.appendChild(table);
    function load() {
      api("GET", "/api/v1/users").then(function (r) {
        table.textContent = "";
        table.appendChild(el("tr", {}, [t("name"), t("role"), t("disabled")].map(function (h) { return el("th", { scope: "col", text: h }); })));
        r.users.forEach(function (u) {
          var role = el("select", { "aria-label": t("role") + ": " + u.name }, ["operator", "staff", "admin"].map(function (x) { return el("option", { value: x, text: x }); }));
          role.value = u.role;
          role.addEventListener("change", function () { api("PATCH", "/api/v1/users/" + encodeURIComponent(u.name), { role: role.value }).then(load).catch(quiet); });
          var off = el("input", { type: "checkbox", checked: u.disabled, "aria-label": t("disabled") + ": " + u.name });
          off.addEventListener("change", function () { api("PATCH", "/api/v1/users/" + encodeURIComponent(u.name), { disabled: off.checked }).then(load).catch(quiet); });
          table.appendChild(el("tr", {}, [el("td", { text: u.name }), el("td", {}, [role]), el("td", {}, [off])]));
        });
      }).catch(quiet);
    }
    load();
    var name = el("input", { id: "u-name", required: true }), pass = el("input", { id: "u-pass", type: "password", required: true, minlength: "8" });
    var role = el("select", { id: "u-role" }, ["operator", "staff", "admin"].map(function (x) { return el("option", { value: x, text: x }); }));
    main.appendChild(el("form", { id: "add-user", onsubmit: function (ev) {
      ev.preventDefault();
      api("POST", "/api/v1/users", { name: name.value, role: role.value, password: pass.value }).then(function () { name.value = ""; pass.value = ""; load(); }).catch(quiet);
    } }, [el("label", { for: "u-name", text: t("name") + " " }), name, el("label", { for: "u-role", text: " " + t("role") + " " }), role,
      el("label", { for: "u-pass", text: " " + t("password") + " " }), pass, " ", el("button", { type: "submit", text: t("add") })]));
  }

  function viewAudit(sid) {
    main.appendChild(el("h2", { text: t("audit") }));
    var table = el("table", { id: "audit" });
    main.appendChild(table);
    api("GET", "/api/v1/audit" + (sid ? "?session_id=" + sid : "")).then(function (r) {
      table.appendChild(el("tr", {}, [t("when"), t("who"), t("what"), t("target"), t("before"), t("after_")].map(function (h) { return el("th", { scope: "col", text: h }); })));
      r.entries.forEach(function (e) {
        table.appendChild(el("tr", {}, [
          el("td", { text: when(e.at) }), el("td", { text: e.user }), el("td", { text: e.action }), el("td", { text: e.target }),
          el("td", {}, [el("code", { text: e.before === null ? "" : JSON.stringify(e.before).slice(0, 300) })]),
          el("td", {}, [el("code", { text: e.after === null ? "" : JSON.stringify(e.after).slice(0, 300) })])
        ]));
      });
    }).catch(quiet);
  }

  route();
})();
