// The fleet dashboard, live: re-reads the server-rendered panel when the staff socket (/ws/staff/) relays an event,
// at most once per 2 s (one more read if events came meanwhile), on every (re)connect (channel layers deliver at most
// once, so a reconnect may have missed events) and, where the layer carries nothing between processes, every few
// seconds. Replacing the panel never moves the keyboard focus: a focused link inside it gets focus back. No framework.
(function () {
  "use strict";
  var panel = document.getElementById("fleet-panel");
  if (!panel) return;
  var status = document.getElementById("fleet-updated");
  var banner = document.getElementById("fleet-banner");
  var pollSeconds = parseInt(panel.dataset.pollSeconds || "0", 10);
  var THROTTLE_MS = 2000;
  var delay = 500, lost = false, reading = false, pending = false, lastRead = 0, timer = null, hideTimer = null;

  function say(text) { if (status) status.textContent = text; }

  function showBanner(kind, text) {
    if (!banner) return;
    clearTimeout(hideTimer);
    banner.className = "banner " + kind;
    banner.textContent = text;
    banner.hidden = false;
    if (kind === "back") hideTimer = setTimeout(function () { banner.hidden = true; }, 4000);
  }

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

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + panel.dataset.socketPath);
    socket.onopen = function () {
      delay = 500;
      if (lost) { lost = false; showBanner("back", "Live updates are back."); }
      say("Live updates: on");
      schedule();
    };
    socket.onmessage = function () { schedule(); };
    socket.onclose = function (close) {
      if (close.code === 4403 || close.code === 4401) { say("Live updates: not allowed"); return; }
      if (!lost) { lost = true; showBanner("lost", "Live updates lost — reconnecting…"); }
      say("Live updates: reconnecting…");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }

  connect();
  if (pollSeconds > 0) {
    setInterval(function () { if (!document.hidden) schedule(); }, pollSeconds * 1000);
  }
})();
