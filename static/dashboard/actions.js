/* SWAN supervisor dashboard: the actions panel. Each button POSTs (with the CSRF token) to
   /dashboard/<company>/actions/<action>/ and shows the PBX's answer; the agent's new status
   arrives on the websocket like any other change. */
(function () {
  "use strict";

  var form = document.getElementById("action-form");
  if (!form) return;
  var T = JSON.parse(document.getElementById("actions-texts").textContent);
  var agent = document.getElementById("action-agent");
  var result = document.getElementById("action-result");
  var message = result.querySelector(".action-message");
  var pbxTitle = result.querySelector(".action-pbx-title");
  var pbxList = result.querySelector(".action-pbx");
  var buttons = form.querySelectorAll(".action-button");
  var busy = false;

  function csrfToken() {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function show(kind, text, answers) {
    result.hidden = false;
    result.setAttribute("data-outcome", kind);
    result.className = "action-result action-" + kind;
    message.textContent = text;
    pbxList.textContent = "";
    pbxTitle.textContent = answers && answers.length ? T.pbxAnswered : "";
    (answers || []).forEach(function (answer) {
      var item = document.createElement("li");
      item.className = answer.ok ? "pbx-ok" : "pbx-error";
      item.textContent = answer.action + " " + answer.target + ": " + (answer.message || (answer.ok ? "ok" : "error"));
      pbxList.appendChild(item);
    });
  }

  function setBusy(on) {
    busy = on;
    form.setAttribute("aria-busy", on ? "true" : "false");
    buttons.forEach(function (button) { button.disabled = on; });
  }

  function send(action) {
    var body = new URLSearchParams();
    body.set("extension", agent.value);
    var reason = form.querySelector("[name=reason]");
    if (reason && action === "pause") body.set("reason", reason.value);
    setBusy(true);
    show("working", T.working, []);
    fetch(form.getAttribute("data-url").replace("ACTION", encodeURIComponent(action)), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" },
      body: body
    }).then(function (response) {
      return response.json().then(function (data) {
        var outcome = data.result ? data.result.outcome : "refused";
        var text = data.error ? data["error-msg"] : data.result.message;
        show(outcome, text, data.result ? data.result.pbx : []);
      }, function () {
        show("refused", T.failed.replace("%s", response.status), []);
      });
    }, function () {
      show("unavailable", T.offline, []);
    }).then(function () { setBusy(false); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = event.submitter;
    if (busy || !button || !button.value) return;
    send(button.value);
  });

  // Clicking (or pressing Enter on) an extension's card chooses that agent.
  function pick(event) {
    var card = event.target.closest && event.target.closest("[data-extension]");
    if (!card || !document.getElementById("blf").contains(card)) return;
    if (event.type === "keydown" && event.key !== "Enter") return;
    agent.value = card.getAttribute("data-extension");
  }
  document.getElementById("blf").addEventListener("click", pick);
  document.getElementById("blf").addEventListener("keydown", pick);
})();
