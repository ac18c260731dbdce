// Follows a campaign's or a rollout's progress over server-sent events; the page works without
// it (its Refresh link shows the same counts). A rollout page reloads when the state changes, so
// its buttons match the new state.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var live = document.getElementById("live");
  if (!live || live.dataset.finished === "yes" || !window.EventSource) return;
  var source = new EventSource(live.dataset.events);
  source.addEventListener("progress", function (e) {
    var p = JSON.parse(e.data), done = 0, body = document.querySelector("#counts tbody");
    document.getElementById("state").textContent = p.state;
    body.textContent = "";
    Object.keys(p.counts).forEach(function (k) {
      var tr = document.createElement("tr"), a = document.createElement("td"), b = document.createElement("td");
      tr.dataset.outcome = k; a.textContent = k; b.textContent = p.counts[k]; b.className = "num";
      tr.append(a, b); body.append(tr);
      if (k !== "pending" && k !== "sending") done += p.counts[k];
    });
    if (typeof p.done === "number") done = p.done;
    var bar = document.getElementById("progress");
    bar.max = p.devices; bar.value = done;
    if (live.dataset.reload === "yes" && live.dataset.state !== p.state) {
      source.close();
      window.location.reload();
      return;
    }
    if (p.finished) {
      live.dataset.finished = "yes";
      source.close();
      var cancel = document.getElementById("cancel-form"), retry = document.getElementById("retry-form");
      if (cancel) cancel.hidden = true;
      if (retry) retry.hidden = false;
    } else if (p.state === "running") {
      var again = document.getElementById("retry-form");
      if (again) again.hidden = true;
    }
  });
  source.addEventListener("end", function () { source.close(); });
});
