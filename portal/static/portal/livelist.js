// Live changelist: when an event of one of the list's types arrives (or the socket reconnects), re-read the same URL and
// update the rows in place: changed cells are replaced, new rows are added on top. The first cell (the action
// checkbox) of an existing row is never touched, so a selection survives; a new row's checkbox is disabled until the
// page is reloaded (Django's actions script counts only the rows it saw). Nothing changes while focus is in the table.
// The socket is socket.js's (loaded first).
(function () {
  "use strict";
  var marker = document.getElementById("live-list");
  var table = document.getElementById("result_list");
  if (!marker || !table) return;
  var status = document.getElementById("live-list-status");
  var types = (marker.dataset.eventType || "").split(" ").filter(Boolean);  // one or more, space-separated
  var timer = null, reading = false, again = false;

  function say(text) { if (status) status.textContent = text; }

  function key(row) {
    var box = row.querySelector("input.action-select");
    return box ? box.value : (row.querySelector("th a, td a") || {}).textContent;
  }

  function merge(fresh) {
    var body = table.tBodies[0], freshBody = fresh.tBodies[0];
    if (!body || !freshBody) return 0;
    var rows = {};
    Array.prototype.forEach.call(body.rows, function (row) { rows[key(row)] = row; });
    var added = 0, first = body.rows[0] || null;
    Array.prototype.forEach.call(freshBody.rows, function (row) {
      var old = rows[key(row)];
      if (old) {
        for (var i = 1; i < row.cells.length && i < old.cells.length; i++) {
          if (old.cells[i].innerHTML !== row.cells[i].innerHTML) old.cells[i].innerHTML = row.cells[i].innerHTML;
        }
        return;
      }
      var copy = document.importNode(row, true);
      copy.classList.add("live-new");
      var box = copy.querySelector("input.action-select");
      if (box) { box.disabled = true; box.title = "Reload the page to select this new row"; }
      body.insertBefore(copy, first);
      added++;
    });
    return added;
  }

  function reread() {
    if (reading) { again = true; return; }
    if (table.contains(document.activeElement)) { again = true; setTimeout(reread, 2000); return; }
    reading = true;
    fetch(location.href, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("result_list");
        var added = fresh ? merge(fresh) : 0;
        say("Live updates: on — updated " + new Date().toLocaleTimeString("en-GB") +
            (added ? " (" + added + " new)" : ""));
      })
      .catch(function () { say("Live updates: could not refresh"); })
      .finally(function () { reading = false; if (again) { again = false; schedule(); } });
  }

  function schedule() {  // at most one read every 2 s, however many events arrive
    if (timer) return;
    timer = setTimeout(function () { timer = null; reread(); }, 2000);
  }

  // Events say when something finished; rows that only began (a new request, a queued command) show on the next read.
  window.portalSocket.follow({
    path: marker.dataset.socketPath,
    say: say,
    pollSeconds: parseInt(marker.dataset.pollSeconds || "0", 10),
    onOpen: function () { say("Live updates: on"); schedule(); },
    onEvent: function (event) { if (!types.length || types.indexOf(event.type) >= 0) schedule(); },
    onPoll: schedule
  });
})();
