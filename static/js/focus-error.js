// Progressive enhancement: when a form comes back with errors, move focus to the error
// summary so a screen reader reads it first and a keyboard user starts from its links.
// The page works without this file: the summary is at the top of <main> and role="alert".
(function () {
  "use strict";

  function focusSummary() {
    var summary = document.getElementById("error-summary");
    if (summary && !window.location.hash) {
      summary.focus();
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", focusSummary);
  } else {
    focusSummary();
  }
})();
