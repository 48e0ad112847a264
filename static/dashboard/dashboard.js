/* SWAN supervisor dashboard: renders the company's live state from the dashboard websocket. */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("dashboard-config").textContent);
  var T = config.texts;
  var STATUS_ICONS = {
    available: "\u2713",
    ringing: "\u260E",
    busy: "\u25A0",
    pause: "\u275A\u275A",
    unavailable: "\u25CB"
  };
  var STATUS_ORDER = ["available", "ringing", "busy", "pause", "unavailable"];
  var MAX_BACKOFF_SECONDS = 30;
  var BEEP_EVERY_MS = 2500;

  var state = {
    users: new Map(),
    userOrder: [],
    queues: new Map(),
    queueOrder: [],
    hourly: null,
    pbx: { connected: null, since: null },
    lastSeq: null,
    clockOffsetMs: 0,
    socketOpen: false
  };
  var socket = null;
  var attempt = 0;
  var retryAt = 0;
  var reconnectTimer = null;
  var audio = null;
  var soundOn = localStorage.getItem("swan.dashboard.sound") === "on";
  var lastBeep = 0;
  var resumeNow = false;
  var ticks = 0;

  var el = {
    blf: document.getElementById("blf"),
    blfSummary: document.getElementById("blf-summary"),
    queues: document.getElementById("queues"),
    hourly: document.getElementById("hourly"),
    hourlyTable: document.querySelector("#hourly-table tbody"),
    connection: document.getElementById("connection"),
    sound: document.getElementById("sound-toggle"),
    alarmBanner: document.getElementById("alarm-banner")
  };

  /* ---------- helpers ---------- */

  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function fmt(template, value) {
    return template.replace("%s", value);
  }

  function serverNow() {
    return Date.now() + state.clockOffsetMs;
  }

  function secondsSince(iso) {
    if (!iso) return null;
    return Math.max(0, Math.floor((serverNow() - Date.parse(iso)) / 1000));
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "\u2014";
    var hours = Math.floor(seconds / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    var secs = Math.floor(seconds % 60);
    var mm = (hours && minutes < 10 ? "0" : "") + minutes;
    var ss = (secs < 10 ? "0" : "") + secs;
    return (hours ? hours + ":" : "") + mm + ":" + ss;
  }

  function ticker(iso) {
    return h("time", { "data-since": iso || "", datetime: iso || null, text: duration(secondsSince(iso)) });
  }

  /* ---------- BLF grid ---------- */

  function userCard(user) {
    var status = user.status in STATUS_ICONS ? user.status : "unavailable";
    return h("li", { className: "blf-card status-" + status, tabindex: "0", "data-user": user.id, "data-status": status, "data-extension": user.extension }, [
      h("div", { className: "blf-top" }, [
        h("span", { className: "blf-ext" }, [h("span", { className: "visually-hidden", text: T.extension + " " }), user.extension]),
        h("span", { className: "status-badge" }, [
          h("span", { className: "status-icon", "aria-hidden": "true", text: STATUS_ICONS[status] }),
          h("span", { className: "status-text", text: config.statusLabels[status] || status })
        ])
      ]),
      h("div", { className: "blf-name", text: user.name }),
      h("div", { className: "blf-reason", text: user.reason || "" }),
      h("div", { className: "blf-time" }, [h("span", { className: "visually-hidden", text: T.since + " " }), ticker(user.since)])
    ]);
  }

  function putUser(user) {
    var fresh = userCard(user);
    var old = el.blf.querySelector('[data-user="' + user.id + '"]');
    if (old) {
      var focused = document.activeElement === old;
      el.blf.replaceChild(fresh, old);
      if (focused) fresh.focus();
    } else {
      el.blf.appendChild(fresh);
    }
    state.users.set(user.id, user);
  }

  function renderUsers(users) {
    var focusedId = document.activeElement && document.activeElement.getAttribute("data-user");
    state.users = new Map();
    el.blf.textContent = "";
    if (!users.length) el.blf.appendChild(h("li", { className: "placeholder", text: T.noUsers }));
    users.forEach(putUser);
    if (focusedId) {
      var again = el.blf.querySelector('[data-user="' + focusedId + '"]');
      if (again) again.focus();
    }
    renderSummary();
  }

  function renderSummary() {
    var counts = {};
    state.users.forEach(function (user) {
      counts[user.status] = (counts[user.status] || 0) + 1;
    });
    el.blfSummary.textContent = STATUS_ORDER.filter(function (s) { return counts[s]; })
      .map(function (s) { return counts[s] + " " + config.statusLabels[s]; })
      .join(" \u00B7 ");
  }

  /* ---------- queues ---------- */

  function longestWait(queue) {
    var longest = null;
    queue.callers.forEach(function (caller) {
      var waited = secondsSince(caller.entered_at);
      if (longest === null || waited > longest) longest = waited;
    });
    return longest;
  }

  function alarmReasons(queue) {
    // The wait rule depends on the clock, so it is judged here every second, not only on updates.
    var reasons = queue.alarm_reasons.filter(function (r) { return r !== "wait_seconds"; });
    var rule = queue.alarm_rules.wait_seconds;
    var longest = longestWait(queue);
    if (rule !== null && longest !== null && longest >= rule) reasons.push("wait_seconds");
    return reasons;
  }

  function figure(label, value, extra) {
    return h("div", { className: "figure" + (extra ? " " + extra : "") }, [
      h("dt", { text: label }),
      h("dd", { text: String(value) })
    ]);
  }

  function pct(value) {
    return (Math.round(value * 100) / 100) + " %";
  }

  function queueBody(queue) {
    var reasons = alarmReasons(queue);
    var titleId = "queue-title-" + queue.group.replace(/[^A-Za-z0-9_-]/g, "_");
    var alarmText = reasons.length
      ? T.alarm + ": " + reasons.map(function (r) { return config.alarmReasons[r] || r; }).join("; ")
      : T.noAlarm;
    var members = queue.members.length
      ? h("ul", { className: "members" }, queue.members.map(function (m) {
        var flags = [];
        if (m.paused) flags.push(T.paused + (m.paused_reason ? " (" + m.paused_reason + ")" : ""));
        if (m.in_call) flags.push(T.inCall);
        return h("li", { className: m.paused ? "member is-paused" : (m.in_call ? "member is-in-call" : "member") }, [
          h("span", { className: "member-ext", text: m.extension || "" }),
          " ",
          h("span", { className: "member-name", text: m.name }),
          flags.length ? h("span", { className: "member-flags", text: " \u2014 " + flags.join(", ") }) : null
        ]);
      }))
      : h("p", { className: "empty", text: T.noMembers });
    var callers = queue.callers.length
      ? h("ol", { className: "callers" }, queue.callers.map(function (c) {
        return h("li", {}, [h("span", { className: "caller", text: c.caller || "?" }), " ", ticker(c.entered_at)]);
      }))
      : h("p", { className: "empty", text: T.noCallers });
    return [
      h("header", { className: "queue-head" }, [
        h("h3", { id: titleId, text: queue.display_name || queue.group }),
        h("p", { className: "alarm-state" + (reasons.length ? " alarm-on" : ""), "data-alarm": reasons.length ? "on" : "off" }, [
          h("span", { "aria-hidden": "true", text: reasons.length ? "\u26A0 " : "\u2713 " }),
          alarmText
        ])
      ]),
      h("dl", { className: "figures" }, [
        figure(T.waiting, queue.currentCalls, "figure-main"),
        figure(T.completed, queue.completed),
        figure(T.abandoned, queue.abandoned),
        figure(T.serviceRatio, pct(queue.serviceRatio)),
        figure(T.answeredRatio, pct(queue.abandonedRatio)),
        figure(T.avgWait, duration(queue.avgRingTime)),
        figure(T.maxWait, duration(queue.maxRingTime))
      ]),
      h("div", { className: "queue-lists" }, [
        h("div", {}, [h("h4", { text: T.callers + " (" + queue.callers.length + ")" }), callers]),
        h("div", {}, [h("h4", { text: T.members + " (" + queue.members.length + ")" }), members])
      ])
    ];
  }

  function putQueue(queue) {
    state.queues.set(queue.group, queue);
    var card = el.queues.querySelector('[data-group="' + CSS.escape(queue.group) + '"]');
    if (!card) {
      card = h("article", { className: "queue-card", tabindex: "0", "data-group": queue.group });
      el.queues.appendChild(card);
    }
    card.textContent = "";
    queueBody(queue).forEach(function (child) { if (child) card.appendChild(child); });
    card.setAttribute("aria-labelledby", card.querySelector("h3").id);
    card.classList.toggle("is-alarm", alarmReasons(queue).length > 0);
  }

  function renderQueues(queues) {
    state.queues = new Map();
    el.queues.textContent = "";
    if (!queues.length) el.queues.appendChild(h("p", { className: "placeholder", text: T.noQueues }));
    queues.forEach(putQueue);
    updateAlarms();
  }

  /* ---------- alarm and sound ---------- */

  function updateAlarms() {
    var alarmed = [];
    state.queues.forEach(function (queue) {
      var reasons = alarmReasons(queue);
      var card = el.queues.querySelector('[data-group="' + CSS.escape(queue.group) + '"]');
      var on = reasons.length > 0;
      if (card && card.classList.contains("is-alarm") !== on) putQueue(queue);
      if (on) alarmed.push((queue.display_name || queue.group) + ": " + reasons.map(function (r) { return config.alarmReasons[r] || r; }).join("; "));
    });
    var text = alarmed.length ? "\u26A0 " + T.alarm + " \u2014 " + alarmed.join(" \u00B7 ") : "";
    if (el.alarmBanner.textContent !== text) el.alarmBanner.textContent = text;
    el.alarmBanner.hidden = !alarmed.length;
    document.body.classList.toggle("has-alarm", alarmed.length > 0);
    if (alarmed.length && soundOn && Date.now() - lastBeep >= BEEP_EVERY_MS) {
      lastBeep = Date.now();
      beep();
    }
  }

  function ensureAudio() {
    if (!audio) {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return null;
      audio = new Context();
    }
    if (audio.state === "suspended") audio.resume();
    return audio;
  }

  function tone(ctx, frequency, start) {
    var osc = ctx.createOscillator();
    var gain = ctx.createGain();
    osc.type = "square";
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(0.15, start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.28);
    osc.connect(gain);
    gain.connect(ctx.destination);
    osc.start(start);
    osc.stop(start + 0.3);
  }

  function beep() {
    if (!audio || audio.state !== "running") return;
    var now = audio.currentTime;
    tone(audio, 880, now);
    tone(audio, 660, now + 0.32);
  }

  function renderSound() {
    el.sound.setAttribute("aria-pressed", soundOn ? "true" : "false");
    el.sound.querySelector(".sound-text").textContent = soundOn ? T.soundOn : T.soundOff;
  }

  el.sound.addEventListener("click", function () {
    soundOn = !soundOn;
    localStorage.setItem("swan.dashboard.sound", soundOn ? "on" : "off");
    if (soundOn) ensureAudio();
    lastBeep = 0;
    renderSound();
    updateAlarms();
  });
  // Browsers start audio only after a gesture: a remembered "on" arms it at the first one.
  ["click", "keydown"].forEach(function (type) {
    document.addEventListener(type, function () { if (soundOn) ensureAudio(); }, { once: true });
  });

  /* ---------- calls per hour ---------- */

  var SVG = "http://www.w3.org/2000/svg";

  function s(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Four grid steps of 1, 2 or 5 times a power of ten, so every axis label is a whole number.
  function niceMax(value) {
    var raw = Math.max(1, value) / 4;
    var magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * magnitude; })
      .filter(function (x) { return x >= raw && x >= 1; })[0];
    return Math.max(1, Math.ceil(step)) * 4;
  }

  function renderHourly(hourly) {
    state.hourly = hourly;
    var width = 760, height = 260, left = 40, bottom = 28, top = 10;
    var plotW = width - left - 10, plotH = height - top - bottom;
    var slot = plotW / 24;
    var max = niceMax(Math.max.apply(null, hourly.hours.map(function (x) { return Math.max(x.answered, x.abandoned); })));
    var svg = s("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": T.chartLabel, preserveAspectRatio: "xMidYMid meet" });
    var defs = s("defs", {});
    var pattern = s("pattern", { id: "stripes", width: "6", height: "6", patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
    pattern.appendChild(s("rect", { width: "6", height: "6", class: "bar-abandoned-bg" }));
    pattern.appendChild(s("rect", { width: "3", height: "6", class: "bar-abandoned-stripe" }));
    defs.appendChild(pattern);
    svg.appendChild(defs);
    for (var g = 0; g <= 4; g++) {
      var y = top + plotH - (plotH * g) / 4;
      svg.appendChild(s("line", { x1: left, x2: width - 10, y1: y, y2: y, class: "grid" }));
      svg.appendChild(s("text", { x: left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, String(Math.round((max * g) / 4))));
    }
    var currentHour = new Date(serverNow()).toLocaleString("en-GB", { hour: "2-digit", hour12: false, timeZone: config.timeZone });
    hourly.hours.forEach(function (x) {
      var x0 = left + x.hour * slot;
      if (Number(currentHour) === x.hour) {
        svg.appendChild(s("rect", { x: x0, y: top, width: slot, height: plotH, class: "now" }));
      }
      var barW = slot * 0.38;
      var hA = (plotH * x.answered) / max, hB = (plotH * x.abandoned) / max;
      var label = (x.hour < 10 ? "0" : "") + x.hour + ":00 \u2014 " + T.completed + " " + x.answered + ", " + T.abandoned + " " + x.abandoned;
      var a = s("rect", { x: x0 + slot * 0.1, y: top + plotH - hA, width: barW, height: hA, class: "bar-answered" });
      a.appendChild(s("title", {}, label));
      var b = s("rect", { x: x0 + slot * 0.1 + barW + 1, y: top + plotH - hB, width: barW, height: hB, class: "bar-abandoned", fill: "url(#stripes)" });
      b.appendChild(s("title", {}, label));
      svg.appendChild(a);
      svg.appendChild(b);
      if (x.hour % 2 === 0) {
        svg.appendChild(s("text", { x: x0 + slot / 2, y: height - 8, class: "axis", "text-anchor": "middle" }, (x.hour < 10 ? "0" : "") + x.hour));
      }
    });
    el.hourly.textContent = "";
    el.hourly.appendChild(svg);
    el.hourlyTable.textContent = "";
    hourly.hours.forEach(function (x) {
      el.hourlyTable.appendChild(h("tr", {}, [
        h("th", { scope: "row", text: (x.hour < 10 ? "0" : "") + x.hour + ":00" }),
        h("td", { text: String(x.answered) }),
        h("td", { text: String(x.abandoned) })
      ]));
    });
  }

  /* ---------- connection state ---------- */

  function setConnection(kind, text) {
    var icons = { connecting: "\u2026", live: "\u25CF", stale: "\u26A0", offline: "\u2715" };
    el.connection.className = "connection connection-" + kind;
    el.connection.setAttribute("data-state", kind);
    el.connection.querySelector(".connection-icon").textContent = icons[kind];
    el.connection.querySelector(".connection-text").textContent = text;
    document.body.classList.toggle("is-stale", kind !== "live");
  }

  function renderConnection() {
    if (!state.socketOpen) {
      var wait = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      setConnection(retryAt ? "offline" : "connecting", retryAt ? fmt(T.offline, wait) : T.connecting);
    } else if (state.pbx.connected === true) {
      setConnection("live", T.live);
    } else {
      setConnection("stale", state.pbx.connected === false ? T.stale : T.staleUnknown);
    }
  }

  /* ---------- the stream ---------- */

  function applySnapshot(payload) {
    state.clockOffsetMs = Date.parse(payload.generated_at) - Date.now();
    state.pbx = payload.pbx;
    renderUsers(payload.users);
    renderQueues(payload.queues);
    renderHourly(payload.hourly);
  }

  function apply(message) {
    var p = message.payload;
    switch (message.type) {
      case "user.status": putUser(p); renderSummary(); break;
      case "queue.update": putQueue(p); updateAlarms(); break;
      case "calls.hourly": renderHourly(p); break;
      case "pbx.gateway.connection": state.pbx = p; break;
      case "snapshot": applySnapshot(p); break;
    }
    renderConnection();
  }

  function handle(message) {
    if (message.type === "pong") return;
    if (message.type === "resumed") { renderConnection(); return; }
    if (typeof message.seq !== "number") return;
    if (message.type === "snapshot" || state.lastSeq === null) {
      state.lastSeq = message.seq;
      apply(message);
      return;
    }
    if (message.seq <= state.lastSeq) return;
    if (message.seq !== state.lastSeq + 1) {
      // A hole in the stream: reconnect at once and resume from the last message we applied.
      resumeNow = true;
      socket.close(4000, "gap");
      return;
    }
    state.lastSeq = message.seq;
    apply(message);
  }

  function connect() {
    reconnectTimer = null;
    var host = config.wsPort ? location.hostname + ":" + config.wsPort : location.host;
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + host + config.wsPath;
    if (state.lastSeq !== null) url += "?since=" + encodeURIComponent(state.lastSeq);
    socket = new WebSocket(url);
    socket.addEventListener("open", function () {
      attempt = 0;
      retryAt = 0;
      state.socketOpen = true;
    });
    socket.addEventListener("message", function (event) {
      handle(JSON.parse(event.data));
    });
    socket.addEventListener("close", function (event) {
      state.socketOpen = false;
      socket = null;
      var seconds = resumeNow ? 0 : Math.min(MAX_BACKOFF_SECONDS, Math.pow(2, attempt));
      attempt = resumeNow ? 0 : attempt + 1;
      resumeNow = false;
      // Jitter keeps a wall of screens from reconnecting in lock-step after a restart.
      var delay = seconds * 1000 * (0.5 + Math.random() * 0.5);
      retryAt = Date.now() + delay;
      renderConnection();
      reconnectTimer = setTimeout(connect, delay);
    });
  }

  /* ---------- every second ---------- */

  setInterval(function () {
    document.querySelectorAll("time[data-since]").forEach(function (node) {
      var iso = node.getAttribute("data-since");
      if (iso) node.textContent = duration(secondsSince(iso));
    });
    updateAlarms();
    if (!state.socketOpen && retryAt) renderConnection();
    ticks += 1;
    // Proxies drop idle websockets; a ping every 25 s keeps the wall screen's connection up.
    if (socket && state.socketOpen && ticks % 25 === 0) socket.send(JSON.stringify({ type: "ping" }));
  }, 1000);

  renderSound();
  renderConnection();
  connect();
})();
