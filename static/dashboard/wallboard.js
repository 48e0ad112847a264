/* SWAN wallboard: a company's queues and agents sized to fill one screen, from the dashboard stream. */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("wallboard-config").textContent);
  var T = config.texts;
  var LOGGED_OUT = "logged_out";
  var ICONS = {
    available: "\u2713",
    ringing: "\u260E",
    busy: "\u25A0",
    pause: "\u275A\u275A",
    unavailable: "\u25CB",
    logged_out: "\u2298"
  };
  // Tile proportions, in units of the tile's font size: what one agent tile needs to be readable.
  var AGENT_EMS = { width: 9.5, height: 5.4 };
  var QUEUE_MIN_WIDTH_PX = 260;
  var QUEUE_EMS_WIDE = 12;
  var MIN_NAME_SCALE = 0.45;
  var MIN_QUEUE_NAME_SCALE = 0.8;

  var state = {
    users: [],
    usersById: new Map(),
    queues: [],
    loggedIn: new Set(),
    pbx: { connected: null, since: null },
    clockOffsetMs: 0,
    stream: { open: false, retryAt: 0 }
  };

  var el = {
    agents: document.getElementById("wb-agents"),
    queues: document.getElementById("wb-queues"),
    connection: document.getElementById("connection"),
    clock: document.getElementById("clock")
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

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return key in values ? values[key] : whole;
    });
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

  function pct(value) {
    return (Math.round(value * 100) / 100) + " %";
  }

  /* ---------- agents ---------- */

  function agentStatus(user) {
    // Logged in to no queue: the agent takes no queue call, whatever its phone says.
    return state.loggedIn.has(user.extension) ? user.status : LOGGED_OUT;
  }

  function agentNote(user, status) {
    if (status !== LOGGED_OUT) return user.reason || "";
    if (user.status === "available") return "";
    var label = config.statusLabels[user.status] || user.status;
    return user.reason ? label + " \u00B7 " + user.reason : label;
  }

  function agentTile(user) {
    var status = agentStatus(user);
    var since = status === LOGGED_OUT ? null : user.since;
    return h("li", {
      className: "wb-agent status-" + (status in ICONS ? status : "unavailable"),
      tabindex: "0",
      "data-user": user.id,
      "data-extension": user.extension,
      "data-status": status
    }, [
      h("div", { className: "wb-agent-state" }, [
        h("span", { className: "wb-agent-icon", "aria-hidden": "true", text: ICONS[status] || ICONS.unavailable }),
        h("span", { className: "wb-agent-status", text: config.statusLabels[status] || status })
      ]),
      h("div", { className: "wb-agent-name", text: user.name }),
      h("div", { className: "wb-agent-foot" }, [
        h("span", { className: "wb-agent-ext" }, [h("span", { className: "visually-hidden", text: T.extension + " " }), user.extension]),
        h("span", { className: "wb-agent-note", text: agentNote(user, status) }),
        since ? h("time", { className: "wb-agent-time", "data-since": since, datetime: since, text: duration(secondsSince(since)) }) : null
      ])
    ]);
  }

  function fitName(tile) {
    // Names are never cut: a name that does not fit its lines gets smaller type instead.
    var name = tile.querySelector(".wb-agent-name");
    var scale = 1;
    name.style.fontSize = "";
    while (scale > MIN_NAME_SCALE &&
      (name.scrollHeight > name.clientHeight + 1 || name.scrollWidth > name.clientWidth + 1)) {
      scale -= 0.05;
      name.style.fontSize = scale.toFixed(2) + "em";
    }
  }

  function putAgent(user) {
    state.usersById.set(user.id, user);
    var fresh = agentTile(user);
    var old = el.agents.querySelector('[data-user="' + user.id + '"]');
    if (old) {
      var focused = document.activeElement === old;
      el.agents.replaceChild(fresh, old);
      if (focused) fresh.focus();
    } else {
      el.agents.appendChild(fresh);
    }
    fitName(fresh);
  }

  function renderAgents() {
    el.agents.textContent = "";
    state.usersById = new Map();
    if (!state.users.length) el.agents.appendChild(h("li", { className: "placeholder", text: T.noUsers }));
    state.users.forEach(function (user) {
      state.usersById.set(user.id, user);
      el.agents.appendChild(agentTile(user));
    });
    layoutAgents();
  }

  function updateUser(user) {
    var index = state.users.findIndex(function (u) { return u.id === user.id; });
    if (index >= 0) state.users[index] = user;
    else {
      state.users.push(user);
      renderAgents();
      return;
    }
    putAgent(user);
    renderQueues();
  }

  // The grid with the largest tiles for this many agents in this box.
  function bestGrid(count, width, height, gap) {
    var best = { cols: 1, rows: 1, unit: 0 };
    for (var cols = 1; cols <= Math.max(1, count); cols++) {
      var rows = Math.ceil(count / cols) || 1;
      var tileW = (width - gap * (cols - 1)) / cols;
      var tileH = (height - gap * (rows - 1)) / rows;
      var unit = Math.min(tileW / AGENT_EMS.width, tileH / AGENT_EMS.height);
      if (unit > best.unit) best = { cols: cols, rows: rows, unit: unit };
    }
    return best;
  }

  function layoutAgents() {
    var box = el.agents.parentNode.getBoundingClientRect();
    var gap = parseFloat(getComputedStyle(el.agents).rowGap) || 0;
    var grid = bestGrid(state.users.length, box.width, box.height, gap);
    el.agents.style.setProperty("--cols", grid.cols);
    el.agents.style.setProperty("--rows", grid.rows);
    el.agents.style.setProperty("--unit", Math.max(8, Math.floor(grid.unit)) + "px");
    el.agents.querySelectorAll(".wb-agent").forEach(fitName);
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

  function breaches(queue) {
    // The server judged every rule when it sent the update; the wait rule depends on the clock,
    // so it is judged again here every second.
    var list = queue.alarm_breaches.filter(function (b) { return b.rule !== "wait_seconds"; });
    var threshold = queue.alarm_rules.wait_seconds;
    var longest = longestWait(queue);
    if (threshold !== null && longest !== null && longest >= threshold) {
      list.push({ rule: "wait_seconds", threshold: threshold, value: longest });
    }
    return list;
  }

  function breachText(breach) {
    var values;
    if (breach.rule === "waiting_calls") {
      values = { value: breach.value, threshold: breach.threshold, excess: breach.value - breach.threshold };
    } else if (breach.rule === "wait_seconds") {
      values = { value: duration(breach.value), threshold: duration(breach.threshold), excess: duration(breach.value - breach.threshold) };
    } else {
      values = { value: pct(breach.value), threshold: pct(breach.threshold), excess: Math.round((breach.threshold - breach.value) * 100) / 100 };
    }
    return fill(config.alarmTexts[breach.rule] || breach.rule, values);
  }

  function freeAgents(queue) {
    var free = 0;
    queue.members.forEach(function (m) {
      if (m.paused || m.in_call) return;
      var user = state.users.find(function (u) { return u.extension === m.extension; });
      if (!user || user.status === "available") free += 1;
    });
    return free;
  }

  function figure(label, value, role) {
    return h("div", { className: "wb-figure" }, [
      h("dt", { text: label }),
      h("dd", { "data-role": role || null, text: String(value) })
    ]);
  }

  function alarmList(queue) {
    var list = breaches(queue);
    return h("ul", { className: "wb-alarms", "data-count": list.length }, list.map(function (b) {
      return h("li", { className: "wb-alarm", "data-rule": b.rule }, [
        h("span", { "aria-hidden": "true", text: "\u26A0 " }),
        h("span", { className: "visually-hidden", text: T.alarm + ": " }),
        h("span", { className: "wb-alarm-text", text: breachText(b) })
      ]);
    }));
  }

  function queueTile(queue) {
    var alarms = alarmList(queue);
    var name = queue.display_name || queue.group;
    return h("article", {
      className: "wb-queue" + (alarms.childNodes.length ? " is-alarm" : ""),
      tabindex: "0",
      "data-group": queue.group,
      "aria-label": name
    }, [
      h("h3", { className: "wb-queue-name", text: name }),
      h("div", { className: "wb-queue-main" }, [
        h("div", { className: "wb-big" }, [
          h("span", { className: "wb-big-value", "data-role": "waiting", text: String(queue.currentCalls) }),
          h("span", { className: "wb-big-label", text: T.waiting })
        ]),
        h("div", { className: "wb-big" }, [
          h("span", { className: "wb-big-value", "data-role": "longest", text: duration(longestWait(queue)) }),
          h("span", { className: "wb-big-label", text: T.longestWait })
        ])
      ]),
      h("dl", { className: "wb-figures" }, [
        figure(T.completed, queue.completed),
        figure(T.abandoned, queue.abandoned),
        figure(T.serviceRatio, pct(queue.serviceRatio)),
        figure(T.freeAgents, freeAgents(queue) + " / " + queue.members.length, "free")
      ]),
      alarms
    ]);
  }

  function fitQueueName(tile) {
    // One line while a smaller type allows it; below that the name wraps. Never cut.
    var name = tile.querySelector(".wb-queue-name");
    var scale = 1;
    name.style.fontSize = "";
    name.classList.add("is-one-line");
    while (scale > MIN_QUEUE_NAME_SCALE && name.scrollWidth > name.clientWidth + 1) {
      scale -= 0.05;
      name.style.fontSize = scale.toFixed(2) + "em";
    }
    if (name.scrollWidth > name.clientWidth + 1) {
      name.style.fontSize = "";
      name.classList.remove("is-one-line");
    }
  }

  function layoutQueues() {
    var count = Math.max(1, state.queues.length);
    var width = el.queues.getBoundingClientRect().width;
    var gap = parseFloat(getComputedStyle(el.queues).columnGap) || 0;
    var cols = Math.max(1, Math.min(count, Math.floor((width + gap) / (QUEUE_MIN_WIDTH_PX + gap))));
    var tileW = (width - gap * (cols - 1)) / cols;
    el.queues.style.setProperty("--qcols", cols);
    el.queues.style.setProperty("--qunit", Math.max(10, Math.min(40, Math.floor(tileW / QUEUE_EMS_WIDE))) + "px");
    el.queues.querySelectorAll(".wb-queue").forEach(fitQueueName);
  }

  function renderQueues() {
    var focused = document.activeElement && document.activeElement.getAttribute("data-group");
    state.loggedIn = new Set();
    state.queues.forEach(function (q) {
      q.members.forEach(function (m) { if (m.extension) state.loggedIn.add(m.extension); });
    });
    el.queues.textContent = "";
    if (!state.queues.length) el.queues.appendChild(h("p", { className: "placeholder", text: T.noQueues }));
    state.queues.forEach(function (queue) { el.queues.appendChild(queueTile(queue)); });
    if (focused) {
      var again = el.queues.querySelector('[data-group="' + CSS.escape(focused) + '"]');
      if (again) again.focus();
    }
    layoutQueues();
  }

  function updateQueue(queue) {
    var index = state.queues.findIndex(function (q) { return q.group === queue.group; });
    if (index >= 0) state.queues[index] = queue;
    else state.queues.push(queue);
    var before = state.loggedIn;
    renderQueues();
    // Logging in or out of the last queue changes the agent's tile.
    state.users.forEach(function (user) {
      if (before.has(user.extension) !== state.loggedIn.has(user.extension)) putAgent(user);
    });
  }

  function tickQueues() {
    state.queues.forEach(function (queue) {
      var tile = el.queues.querySelector('[data-group="' + CSS.escape(queue.group) + '"]');
      if (!tile) return;
      tile.querySelector('[data-role="longest"]').textContent = duration(longestWait(queue));
      var fresh = alarmList(queue);
      var old = tile.querySelector(".wb-alarms");
      if (old.textContent !== fresh.textContent) {
        tile.replaceChild(fresh, old);
        tile.classList.toggle("is-alarm", fresh.childNodes.length > 0);
      }
    });
  }

  /* ---------- connection and clock ---------- */

  function setConnection(kind, text) {
    var icons = { connecting: "\u2026", live: "\u25CF", stale: "\u26A0", offline: "\u2715" };
    el.connection.className = "connection connection-" + kind;
    el.connection.setAttribute("data-state", kind);
    el.connection.querySelector(".connection-icon").textContent = icons[kind];
    el.connection.querySelector(".connection-text").textContent = text;
    document.body.classList.toggle("is-stale", kind !== "live");
  }

  function renderConnection() {
    if (!state.stream.open) {
      var retryAt = state.stream.retryAt;
      var wait = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      setConnection(retryAt ? "offline" : "connecting", retryAt ? T.offline.replace("%s", wait) : T.connecting);
    } else if (state.pbx.connected === true) {
      setConnection("live", T.live);
    } else {
      setConnection("stale", state.pbx.connected === false ? T.stale : T.staleUnknown);
    }
  }

  function renderClock() {
    var text = new Date(serverNow()).toLocaleTimeString(config.language, {
      hour: "2-digit", minute: "2-digit", timeZone: config.timeZone
    });
    if (el.clock.textContent !== text) el.clock.textContent = text;
  }

  /* ---------- the stream ---------- */

  function apply(message) {
    var p = message.payload;
    switch (message.type) {
      case "snapshot":
        state.clockOffsetMs = Date.parse(p.generated_at) - Date.now();
        state.pbx = p.pbx;
        state.users = p.users.slice();
        state.queues = p.queues.slice();
        renderQueues();
        renderAgents();
        break;
      case "user.status": updateUser(p); break;
      case "queue.update": updateQueue(p); break;
      case "pbx.gateway.connection": state.pbx = p; break;
    }
    renderConnection();
  }

  window.SwanStream.open(config.wsPath, {
    wsPort: config.wsPort,
    onMessage: apply,
    onState: function (stream) {
      state.stream = stream;
      renderConnection();
    }
  });

  new ResizeObserver(function () { layoutAgents(); }).observe(el.agents.parentNode);
  new ResizeObserver(function () { layoutQueues(); }).observe(el.queues);

  setInterval(function () {
    el.agents.querySelectorAll("time[data-since]").forEach(function (node) {
      node.textContent = duration(secondsSince(node.getAttribute("data-since")));
    });
    tickQueues();
    renderClock();
    if (!state.stream.open && state.stream.retryAt) renderConnection();
  }, 1000);

  renderClock();
  renderConnection();
})();
