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

  // Alert kinds in the words the server lists on the page (one vocabulary).
  var words = {};
  var listed = document.querySelectorAll("#kind-words li");
  for (var w = 0; w < listed.length; w++) {
    words[listed[w].getAttribute("data-kind")] = listed[w].textContent;
  }
  function kindWords(kind) {
    return words[kind] || String(kind).replace(/_/g, " ");
  }

  // A moment as every dashboard page shows one: the time today, the date
  // and time on any other day (here in the reader's own time zone).
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function moment(when) {
    var clock = two(when.getHours()) + ":" + two(when.getMinutes());
    if (when.toDateString() === new Date().toDateString()) { return clock; }
    return when.getFullYear() + "-" + two(when.getMonth() + 1) + "-" + two(when.getDate()) + " " + clock;
  }

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
    if (alert.phase === "end" || seen[alert.alert_id]) { return; }
    seen[alert.alert_id] = true;
    var item = document.createElement("li");
    item.setAttribute("data-alert-id", alert.alert_id);
    var when = new Date(alert.time);
    item.appendChild(text("Patient " + alert.patient + ": " + kindWords(alert.kind) + " at "));
    var stamp = document.createElement("time");
    stamp.setAttribute("datetime", when.toISOString());
    stamp.appendChild(text(moment(when)));
    item.appendChild(stamp);
    item.appendChild(text(" "));
    var b = document.createElement("button");
    b.type = "button";
    b.className = "ack";
    b.appendChild(text("Acknowledge"));
    b.addEventListener("click", function () { ack(alert.alert_id, item, b); });
    item.appendChild(b);
    list.insertBefore(item, list.firstChild);
  }

  function acked(ev) {
    var items = list.querySelectorAll("li");
    for (var i = 0; i < items.length; i++) {
      var item = items[i];
      if (item.getAttribute("data-alert-id") === ev.alert_id && item.getAttribute("data-acked") !== "true") {
        item.setAttribute("data-acked", "true");
        var b = item.querySelector("button");
        if (b) { b.replaceWith(text(" — acknowledged")); }
      }
    }
  }

  var source = new EventSource("/dashboard/alerts/stream");
  source.addEventListener("open", function () { state.textContent = "Connected."; });
  source.addEventListener("error", function () { state.textContent = "Reconnecting…"; });
  source.addEventListener("alert", function (e) {
    try { show(JSON.parse(e.data)); } catch (err) { /* ignore a malformed event */ }
  });
  source.addEventListener("ack", function (e) {
    try { acked(JSON.parse(e.data)); } catch (err) { /* ignore a malformed event */ }
  });
}());
