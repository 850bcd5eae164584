// Facts beside a live panel (a device's state, CIK and window on its admin page): whenever live.js re-renders the
// panel, the facts are re-read too, so the page never shows an older fact beside a fresher one.
(function () {
  "use strict";
  var facts = document.getElementById("live-facts");
  var panel = document.getElementById("live-panel");
  if (!facts || !panel || !window.MutationObserver) return;
  var reading = false, again = false;

  function reread() {
    if (reading) { again = true; return; }
    reading = true;
    fetch(facts.dataset.factsUrl, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) { if (facts.innerHTML.trim() !== html.trim()) facts.innerHTML = html; })
      .catch(function () {})
      .finally(function () { reading = false; if (again) { again = false; reread(); } });
  }

  new MutationObserver(reread).observe(panel, {childList: true, subtree: true, characterData: true});
})();
