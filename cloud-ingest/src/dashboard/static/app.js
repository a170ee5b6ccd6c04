// Live alerts on every signed-in page: an EventSource on the dashboard's
// alert stream (the session cookie authenticates it), each alert listed
// with an Acknowledge button that POSTs with the page's CSRF token.
// No inline script: the Content-Security-Policy allows only this file.
"use strict";
(function () {
  var region = document.getElementById("live-alerts");
  if (!region || typeof EventSource === "undefined") { return; }
  var csrf = region.getAttribute("data-csrf");
  var list = document.getElementById("live-list");
  var state = document.getElementById("live-state");
  var seen = {};

  function text(s) { return document.createTextNode(String(s)); }

  function ack(id, item, button) {
    button.disabled = true;
    fetch("/dashboard/alerts/" + encodeURIComponent(id) + "/ack", {
      method: "POST",
      credentials: "same-origin",
      headers: { "x-csrf-token": csrf }
    }).then(function (r) {
      if (r.ok) {
        item.setAttribute("data-acked", "true");
        button.replaceWith(text(" — acknowledged"));
      } else {
        button.disabled = false;
      }
    }, function () { button.disabled = false; });
  }

  function show(alert) {
    if (seen[alert.id]) { return; }
    seen[alert.id] = true;
    var item = document.createElement("li");
    item.id = "alert-" + alert.id;
    item.setAttribute("data-alert-id", alert.id);
    var when = new Date(alert.at);
    item.appendChild(text("Patient " + alert.patient_id + ": " + alert.kind + " at " + when.toLocaleTimeString() + " "));
    if (!alert.acknowledged) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "ack";
      b.appendChild(text("Acknowledge"));
      b.addEventListener("click", function () { ack(alert.id, item, b); });
      item.appendChild(b);
    }
    list.insertBefore(item, list.firstChild);
  }

  var source = new EventSource("/dashboard/alerts/stream");
  source.addEventListener("open", function () { state.textContent = "Connected."; });
  source.addEventListener("error", function () { state.textContent = "Reconnecting…"; });
  source.addEventListener("alert", function (e) {
    try { show(JSON.parse(e.data)); } catch (err) { /* ignore a malformed event */ }
  });
}());
