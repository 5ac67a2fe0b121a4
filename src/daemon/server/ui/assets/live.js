// steward's live updates: the page's #live-region is fetched again and swapped in place when
// /live (server-sent events) says a run, action or change moved. No reload: what the visitor
// typed elsewhere on the page stays.
(function () {
  "use strict";
  var region = document.getElementById("live-region");
  if (!region || !window.EventSource || !window.fetch) { return; }
  var url = "/live";
  if (region.dataset.live === "run") {
    url += "?run=" + encodeURIComponent(region.dataset.run);
  }
  var dot = document.getElementById("live-dot");
  var source = new EventSource(url);
  source.onopen = function () { if (dot) { dot.classList.add("on"); } document.body.dataset.live = "on"; };
  source.onerror = function () { if (dot) { dot.classList.remove("on"); } document.body.dataset.live = "off"; };
  var busy = false;
  var again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (res) { return res.ok ? res.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live-region");
        var current = document.getElementById("live-region");
        if (fresh && current) {
          current.replaceWith(fresh);
          dot = document.getElementById("live-dot") || dot;
          if (dot) { dot.classList.add("on"); }
          document.body.dataset.refreshed = String((parseInt(document.body.dataset.refreshed || "0", 10)) + 1);
        }
      })
      .catch(function () { /* the next event tries again */ })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }
  source.addEventListener("update", refresh);
  source.addEventListener("stage", refresh);
})();
