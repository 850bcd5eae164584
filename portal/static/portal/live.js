// Live panel: re-reads the server-rendered panel when an event arrives and on every (re)connect of the WebSocket
// (channel layers deliver at most once, so a reconnect may have missed events). The socket is socket.js's (loaded
// first). No framework, no build step.
//
// A re-read never rebuilds the panel: an answer equal to the last one touches nothing, and a different one changes
// only the nodes that differ (children matched by their data-key or id, else by position and tag). The element with
// the keyboard focus, an open <details> and the screen reader's place survive; the status line is written only when
// its words change, so that its aria-live region announces changes and nothing else (not a relative time ticking).
(function () {
  "use strict";
  var panel = document.getElementById("live-panel");
  if (!panel) return;
  var banner = document.getElementById("live-banner");
  var status = document.getElementById("live-updated");
  var pollSeconds = parseInt(panel.dataset.pollSeconds || "0", 10);
  var filter = panel.dataset.eventFilter ? JSON.parse(panel.dataset.eventFilter) : null;
  var reading = null, again = false, lastHtml = null;

  function say(text) { if (status && status.textContent !== text) status.textContent = text; }

  // --- patching the panel in place ------------------------------------------------------------------------------

  function keyOf(node) {
    if (node.nodeType !== 1) return null;
    var key = node.getAttribute("data-key");
    if (key) return "k:" + key;
    return node.id ? "id:" + node.id : null;
  }

  function sameKind(a, b) {
    return a.nodeType === b.nodeType && a.nodeName === b.nodeName;
  }

  function patchAttributes(from, to) {
    var i, name;
    for (i = from.attributes.length - 1; i >= 0; i--) {
      name = from.attributes[i].name;
      // An open <details> is the reader's choice, not the server's.
      if (!to.hasAttribute(name) && !(name === "open" && from.nodeName === "DETAILS")) from.removeAttribute(name);
    }
    for (i = 0; i < to.attributes.length; i++) {
      name = to.attributes[i].name;
      if (from.getAttribute(name) !== to.attributes[i].value) from.setAttribute(name, to.attributes[i].value);
    }
  }

  function patch(from, to) {
    if (from.nodeType !== 1) {
      if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
      return;
    }
    patchAttributes(from, to);
    patchChildren(from, to);
  }

  function patchChildren(parent, model) {
    var old = Array.prototype.slice.call(parent.childNodes);
    var wanted = Array.prototype.slice.call(model.childNodes);
    var keyed = {}, loose = [], next = 0;
    old.forEach(function (node) {
      var key = keyOf(node);
      if (key) keyed[key] = node; else loose.push(node);
    });
    wanted.forEach(function (node, index) {
      var key = keyOf(node), match = null;
      if (key) {
        if (keyed[key] && sameKind(keyed[key], node)) { match = keyed[key]; delete keyed[key]; }
      } else {
        while (next < loose.length && !match) {
          if (sameKind(loose[next], node)) match = loose[next];
          next++;
        }
      }
      var here = parent.childNodes[index] || null;
      if (match) {
        patch(match, node);
        if (match !== here) parent.insertBefore(match, here);
      } else {
        parent.insertBefore(node, here);  // a new node, moved out of the parsed answer
      }
    });
    while (parent.childNodes.length > wanted.length) parent.removeChild(parent.lastChild);
  }

  // The answer less the words of its <time> elements: "12 s ago" turning into "17 s ago" is patched in, but it is
  // not news to announce (a new moment also changes the absolute time written beside it, outside the element).
  function news(html) { return html.replace(/<time\b[^>]*>[\s\S]*?<\/time>/g, "<time>"); }

  function update(html) {
    if (html === lastHtml) return false;
    var announce = lastHtml !== null && news(html) !== news(lastHtml);
    lastHtml = html;
    var answer = document.createElement("template");
    answer.innerHTML = html;
    patchChildren(panel, answer.content);
    return announce;
  }

  function clock() {
    // The time of day as the pages write it (24 h, with the zone): the browser's own zone.
    // hour12: false alone gives "9:05:07" before ten (the numeric hour); spell every field out: "09:05:07 UTC".
    return new Date().toLocaleTimeString("en-GB", {
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short",
    });
  }

  // --- reading and listening ------------------------------------------------------------------------------------

  function reread() {
    // One read at a time; events arriving meanwhile cause exactly one more read.
    if (reading) { again = true; return; }
    reading = fetch(panel.dataset.panelUrl, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        if (update(html)) say("Live updates: on — changed at " + clock());
        else if (status && status.textContent.indexOf("Live updates: on") !== 0) say("Live updates: on");
      })
      .catch(function () { say("Live updates: could not refresh"); })
      .finally(function () { reading = null; if (again) { again = false; reread(); } });
  }

  function fits(item) {
    return Object.keys(filter).every(function (k) { return String(item[k]) === String(filter[k]); });
  }

  // An event matches the filter itself, or through one item of a list it carries (a batch's summary, e.g.
  // cas.requests: {"requests": [{"number": …}, …]}).
  function matches(event) {
    if (!filter || fits(event)) return true;
    return Object.keys(event).some(function (k) {
      var items = event[k];
      return Array.isArray(items) && items.some(function (item) {
        return item !== null && typeof item === "object" && fits(item);
      });
    });
  }

  window.portalSocket.follow({
    path: panel.dataset.socketPath,
    banner: banner,
    say: say,
    pollSeconds: pollSeconds,
    onOpen: reread,
    onEvent: function (event) { if (matches(event)) reread(); }
  });
})();
