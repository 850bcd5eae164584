// Live changelist: when an event of one of the list's types arrives (or the socket reconnects), re-read the same URL and
// update the rows in place: changed cells are replaced, new rows are added on top. The first cell (the action
// checkbox) of an existing row is never touched, so a selection survives; a new row's checkbox is disabled until the
// page is reloaded (Django's actions script counts only the rows it saw). Nothing changes while focus is in the table.
// An empty list has no table (Django renders none): it follows all the same, and its first rows bring Django's table
// in where Django puts it. When rows arrive, the counts Django prints (the paginator's "N deliveries", the search
// bar's "N results") are taken from the same read; rows are never removed, so otherwise the counts stay as loaded.
// The socket is socket.js's (loaded first).
(function () {
  "use strict";
  var marker = document.getElementById("live-list");
  if (!marker) return;
  var table = document.getElementById("result_list");  // null while the list is empty
  var ownCounter = !table;  // Django's actions script starts only on a page loaded with rows, else "0 of N" is ours
  var status = document.getElementById("live-list-status");
  var types = (marker.dataset.eventType || "").split(" ").filter(Boolean);  // one or more, space-separated
  var timer = null, reading = false, again = false;
  var RELOAD = "Reload the page to select this new row";

  function say(text) { if (status) status.textContent = text; }

  function key(row) {
    var box = row.querySelector("input.action-select");
    return box ? box.value : (row.querySelector("th a, td a") || {}).textContent;
  }

  function arrived(row) {
    row.classList.add("live-new");
    var box = row.querySelector("input.action-select");
    if (box) { box.disabled = true; box.title = RELOAD; }
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
      arrived(copy);
      body.insertBefore(copy, first);
      added++;
    });
    return added;
  }

  // The first rows of an empty list: the fresh table in its .results box (Django's change_list_results.html) goes
  // right after the marker, past the actions bar when the fresh page has that bar above the table and this one has
  // it too (Django shows no bar on an empty list that counts its full result, so there is none to pass then).
  function insert(fresh) {
    var box = fresh.parentNode.classList.contains("results") ? fresh.parentNode : fresh;
    var at = marker.nextElementSibling, before = box.previousElementSibling;
    if (before && before.classList.contains("actions") && at && at.classList.contains("actions")) {
      at = at.nextElementSibling;
    }
    var copy = document.importNode(box, true);
    marker.parentNode.insertBefore(copy, at);
    table = copy.id === "result_list" ? copy : copy.querySelector("#result_list");
    var toggle = table.querySelector("#action-toggle");  // the "select all" box: Django's script never saw it either
    if (toggle) { toggle.disabled = true; toggle.title = "Reload the page to select these new rows"; }
    var rows = table.tBodies[0] ? table.tBodies[0].rows : [];
    Array.prototype.forEach.call(rows, arrived);
    return rows.length;
  }

  // Django's counts of the list, from the fresh page: the paginator's text, the search bar's "N results (...)" (shown
  // only on some pages: added or removed with the fresh page), the actions bar's "0 of N selected" when it is ours.
  function recount(doc) {
    replace("#changelist-form .paginator", doc, null);
    replace("#changelist-search .quiet", doc, "#changelist-search input[type=submit]");
    if (ownCounter) replace("#changelist-form .action-counter", doc, null);
  }

  function replace(selector, doc, after) {
    var old = document.querySelector(selector), fresh = doc.querySelector(selector);
    if (old && fresh) {
      if (old.innerHTML !== fresh.innerHTML) old.innerHTML = fresh.innerHTML;
    } else if (old) {
      old.parentNode.removeChild(old);
    } else if (fresh && after && document.querySelector(after)) {
      var anchor = document.querySelector(after);
      anchor.parentNode.insertBefore(document.importNode(fresh, true), anchor.nextSibling);
    }
  }

  function reread() {
    if (reading) { again = true; return; }
    if (table && table.contains(document.activeElement)) { again = true; setTimeout(reread, 2000); return; }
    reading = true;
    fetch(location.href, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html"), fresh = doc.getElementById("result_list");
        var added = !fresh ? 0 : table ? merge(fresh) : insert(fresh);
        if (added) recount(doc);
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
