// The live pages' one WebSocket client (live.js, fleet.js and livelist.js follow their socket through it): connects,
// hands every event to the page, and reconnects with backoff (0.5 s doubling up to 15 s) when the socket drops,
// with the page's banner saying so ("Live updates lost — reconnecting…", then "Live updates are back."). A refusal
// at the handshake (4401 anonymous, 4403 not allowed) is final. Channel layers deliver at most once, so the page's
// onOpen runs on every (re)connect: a page re-reads what it shows then. pollSeconds adds a periodic onPoll while the
// tab is visible (for layers that carry nothing between processes). Plain script, no build step: load it (defer)
// before the page's own script.
(function () {
  "use strict";

  function follow(options) {
    var say = options.say || function () {};
    var banner = options.banner || null;
    var delay = 500, lost = false, hideTimer = null;

    function showBanner(kind, text) {
      if (!banner) return;
      clearTimeout(hideTimer);
      banner.className = "banner " + kind;
      banner.textContent = text;
      banner.hidden = false;
      if (kind === "back") hideTimer = setTimeout(function () { banner.hidden = true; }, 4000);
    }

    function connect() {
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var socket = new WebSocket(scheme + location.host + options.path);
      socket.onopen = function () {
        delay = 500;
        if (lost) { lost = false; showBanner("back", "Live updates are back."); }
        options.onOpen();
      };
      socket.onmessage = function (message) {
        var event;
        try { event = JSON.parse(message.data); } catch (e) { return; }
        if (options.onEvent) options.onEvent(event);
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
    var poll = options.pollSeconds || 0;
    if (poll > 0) {
      setInterval(function () { if (!document.hidden) (options.onPoll || options.onOpen)(); }, poll * 1000);
    }
  }

  window.portalSocket = {follow: follow};
})();
