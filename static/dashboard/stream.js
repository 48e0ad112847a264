/* SWAN dashboard stream client (docs/websocket.md): snapshot, numbered changes, resume, backoff.
 *
 * SwanStream.open(wsPath, { onMessage(message), onState({ open, retryAt }), wsPort }) applies nothing
 * itself: it hands over, in order and once each, every message that should be applied, and
 * reconnects with `?since=<last applied>` after a close or a hole in the numbering. */
(function () {
  "use strict";

  var MAX_BACKOFF_SECONDS = 30;
  var PING_EVERY_MS = 25000;

  function open(wsPath, handlers) {
    var lastSeq = null;
    var socket = null;
    var attempt = 0;
    var resumeNow = false;
    var state = { open: false, retryAt: 0 };

    function report() {
      if (handlers.onState) handlers.onState({ open: state.open, retryAt: state.retryAt });
    }

    function handle(message) {
      if (message.type === "pong") return;
      if (message.type === "resumed") { report(); return; }
      if (typeof message.seq !== "number") return;
      if (message.type === "snapshot" || lastSeq === null) {
        lastSeq = message.seq;
        handlers.onMessage(message);
        return;
      }
      if (message.seq <= lastSeq) return; // a duplicate: already applied
      if (message.seq !== lastSeq + 1) {
        // A hole in the stream: reconnect at once and resume from the last message applied.
        resumeNow = true;
        socket.close(4000, "gap");
        return;
      }
      lastSeq = message.seq;
      handlers.onMessage(message);
    }

    function connect() {
      // wsPort: the websockets' own port when no proxy serves them on this origin (make serve).
      var host = handlers.wsPort ? location.hostname + ":" + handlers.wsPort : location.host;
      var url = (location.protocol === "https:" ? "wss://" : "ws://") + host + wsPath;
      if (lastSeq !== null) url += "?since=" + encodeURIComponent(lastSeq);
      socket = new WebSocket(url);
      socket.addEventListener("open", function () {
        attempt = 0;
        state.open = true;
        state.retryAt = 0;
        report();
      });
      socket.addEventListener("message", function (event) {
        handle(JSON.parse(event.data));
      });
      socket.addEventListener("close", function () {
        state.open = false;
        socket = null;
        var seconds = resumeNow ? 0 : Math.min(MAX_BACKOFF_SECONDS, Math.pow(2, attempt));
        attempt = resumeNow ? 0 : attempt + 1;
        resumeNow = false;
        // Jitter keeps a wall of screens from reconnecting in lock-step after a restart.
        var delay = seconds * 1000 * (0.5 + Math.random() * 0.5);
        state.retryAt = Date.now() + delay;
        report();
        setTimeout(connect, delay);
      });
    }

    // Proxies drop idle websockets; a ping now and then keeps a wall screen's connection up.
    setInterval(function () {
      if (socket && state.open) socket.send(JSON.stringify({ type: "ping" }));
    }, PING_EVERY_MS);

    connect();
  }

  window.SwanStream = { open: open };
})();
