// Live panel: re-reads the server-rendered panel when an event arrives and on every (re)connect of the WebSocket
// (channel layers deliver at most once, so a reconnect may have missed events). No framework, no build step.
(function () {
  "use strict";
  var panel = document.getElementById("live-panel");
  if (!panel) return;
  var banner = document.getElementById("live-banner");
  var status = document.getElementById("live-updated");
  var pollSeconds = parseInt(panel.dataset.pollSeconds || "0", 10);
  var filter = panel.dataset.eventFilter ? JSON.parse(panel.dataset.eventFilter) : null;
  var delay = 500, lost = false, hideTimer = null, reading = null, again = false;

  function say(text) { if (status) status.textContent = text; }

  function showBanner(kind, text) {
    if (!banner) return;
    clearTimeout(hideTimer);
    banner.className = "banner " + kind;
    banner.textContent = text;
    banner.hidden = false;
    if (kind === "back") hideTimer = setTimeout(function () { banner.hidden = true; }, 4000);
  }

  function reread() {
    // One read at a time; events arriving meanwhile cause exactly one more read.
    if (reading) { again = true; return; }
    reading = fetch(panel.dataset.panelUrl, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        panel.innerHTML = html;
        say("Live updates: on — updated " + new Date().toLocaleTimeString());
      })
      .catch(function () { say("Live updates: could not refresh"); })
      .finally(function () { reading = null; if (again) { again = false; reread(); } });
  }

  function matches(event) {
    if (!filter) return true;
    return Object.keys(filter).every(function (k) { return String(event[k]) === String(filter[k]); });
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + location.host + panel.dataset.socketPath);
    socket.onopen = function () {
      delay = 500;
      if (lost) { lost = false; showBanner("back", "Live updates are back."); }
      reread();
    };
    socket.onmessage = function (message) {
      var event = JSON.parse(message.data);
      if (matches(event)) reread();
    };
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
    setInterval(function () { if (!document.hidden) reread(); }, pollSeconds * 1000);
  }
})();
