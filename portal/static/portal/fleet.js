// The fleet dashboard, live: re-reads the server-rendered panel when the staff socket (/ws/staff/) relays an event,
// at most once per 2 s (one more read if events came meanwhile), on every (re)connect (channel layers deliver at most
// once, so a reconnect may have missed events) and, where the layer carries nothing between processes, every few
// seconds. Replacing the panel never moves the keyboard focus: a focused link inside it gets focus back. The socket is
// socket.js's (loaded first). No framework.
(function () {
  "use strict";
  var panel = document.getElementById("fleet-panel");
  if (!panel) return;
  var status = document.getElementById("fleet-updated");
  var banner = document.getElementById("fleet-banner");
  var pollSeconds = parseInt(panel.dataset.pollSeconds || "0", 10);
  var THROTTLE_MS = 2000;
  var reading = false, pending = false, lastRead = 0, timer = null;

  function say(text) { if (status) status.textContent = text; }

  function focusKey() {
    // The focused link inside the panel (by its href), to give the focus back to its copy in the new panel.
    var active = document.activeElement;
    if (!active || !panel.contains(active)) return null;
    return {href: active.getAttribute("href"), tag: active.tagName};
  }

  function restoreFocus(key) {
    if (!key) return;
    var candidates = panel.querySelectorAll(key.tag.toLowerCase() + (key.href ? "[href]" : ""));
    for (var i = 0; i < candidates.length; i++) {
      if (!key.href || candidates[i].getAttribute("href") === key.href) {
        candidates[i].focus({preventScroll: true});
        return;
      }
    }
  }

  function openDetails() {
    var open = [];
    panel.querySelectorAll("details[open]").forEach(function (d) {
      var chart = d.closest("[data-chart]");
      if (chart) open.push(chart.dataset.chart);
    });
    return open;
  }

  function read() {
    reading = true;
    pending = false;
    lastRead = Date.now();
    fetch(panel.dataset.panelUrl, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
      .then(function (r) { if (!r.ok && r.status !== 400) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var key = focusKey(), open = openDetails();
        panel.innerHTML = html;
        open.forEach(function (name) {
          var d = panel.querySelector('[data-chart="' + name + '"] details');
          if (d) d.open = true;
        });
        restoreFocus(key);
        say("Live updates: on");
      })
      .catch(function () { say("Live updates: could not refresh"); })
      .finally(function () {
        reading = false;
        if (pending) schedule();
      });
  }

  function schedule() {
    // At most one read per THROTTLE_MS; an event during a read or the wait asks for exactly one more.
    pending = true;
    if (reading || timer) return;
    var wait = Math.max(0, lastRead + THROTTLE_MS - Date.now());
    timer = setTimeout(function () { timer = null; read(); }, wait);
  }

  window.portalSocket.follow({
    path: panel.dataset.socketPath,
    banner: banner,
    say: say,
    pollSeconds: pollSeconds,
    onOpen: function () { say("Live updates: on"); schedule(); },
    onEvent: schedule,
    onPoll: schedule
  });
})();
