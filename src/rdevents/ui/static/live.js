// The live events list: every two seconds, ask the server for events received since the newest
// shown, and add those not shown yet on top. The page works without this script (reload it).
(function () {
  "use strict";
  var table = document.getElementById("events");
  var template = document.getElementById("event-row");
  if (!table || !template || !table.dataset.live) return;
  var body = table.tBodies[0];
  var empty = document.getElementById("events-empty");
  var status = document.getElementById("live-status");
  var toggle = document.getElementById("live-toggle");
  var since = table.dataset.since;
  var seen = new Set();
  var paused = false;
  var INTERVAL = 2000, KEEP = 200;

  Array.prototype.forEach.call(body.rows, function (row) { seen.add(row.dataset.uuid); });

  function say(text) { status.textContent = text; }

  function row(event) {
    var tr = template.content.firstElementChild.cloneNode(true);
    var cells = tr.cells;
    tr.dataset.uuid = event.uuid;
    tr.className = "fresh";
    var link = cells[0].querySelector("a");
    link.href = event.href;
    var time = cells[0].querySelector("time");
    time.dateTime = event.received_at;
    time.textContent = event.received_at_shown;
    cells[1].querySelector(".badge").textContent = event.event_type;
    if (event.contact_href) {
      var contact = document.createElement("a");
      contact.href = event.contact_href;
      contact.textContent = event.contact_email;
      cells[2].appendChild(contact);
    } else {
      cells[2].textContent = "erased";
      cells[2].className = "muted";
    }
    cells[3].textContent = event.identifier;
    if (event.identifier === event.event_type) cells[3].classList.add("muted");
    return tr;
  }

  function add(events) {
    // The server lists newest first: insert from the oldest so the newest ends on top.
    var added = 0;
    for (var i = events.length - 1; i >= 0; i--) {
      if (seen.has(events[i].uuid)) continue;
      seen.add(events[i].uuid);
      body.insertBefore(row(events[i]), body.firstChild);
      added++;
    }
    while (body.rows.length > KEEP) body.deleteRow(body.rows.length - 1);
    if (added) {
      table.hidden = false;
      if (empty) empty.hidden = true;
      say(added === 1 ? "1 new event" : added + " new events");
    }
  }

  function poll() {
    if (paused || document.hidden) return schedule();
    var url = table.dataset.live + (table.dataset.live.indexOf("?") < 0 ? "?" : "&") +
      "since=" + encodeURIComponent(since);
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (response) {
        if (response.status === 401) {
          say("You were signed out. Reload the page to sign in again.");
          return null;
        }
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (data) {
        if (data === null) return;
        since = data.newest;
        add(data.events);
        schedule();
      })
      .catch(function () {
        say("Cannot reach the server; trying again.");
        schedule();
      });
  }

  function schedule() { window.setTimeout(poll, INTERVAL); }

  toggle.hidden = false;
  toggle.addEventListener("click", function () {
    paused = !paused;
    toggle.textContent = paused ? "Resume" : "Pause";
    toggle.setAttribute("aria-pressed", paused ? "true" : "false");
    say(paused ? "Paused." : "Live: new events appear here as they arrive.");
  });
  table.classList.add("is-live");
  say("Live: new events appear here as they arrive.");
  schedule();
})();
