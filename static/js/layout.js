// Phones, progressive enhancement: a wide table says that it scrolls (and can be scrolled
// from the keyboard); a question select shows its whole chosen question, which the closed
// control cuts off on a narrow screen. Texts come translated from the page.
(function () {
  "use strict";

  function markScrollingTables() {
    var text = document.body.getAttribute("data-scroll-hint") || "";
    Array.prototype.forEach.call(document.querySelectorAll(".table-scroll"), function (box, index) {
      var hint = box.previousElementSibling;
      var hasHint = hint && hint.classList.contains("scroll-hint");
      var scrolls = box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !hasHint && text) {
        hint = document.createElement("p");
        hint.className = "scroll-hint";
        hint.id = "scroll-hint-" + index;
        hint.textContent = text;
        box.insertAdjacentElement("beforebegin", hint);
        if (!box.hasAttribute("tabindex")) {
          box.setAttribute("tabindex", "0");
        }
        if (!box.hasAttribute("role")) {
          box.setAttribute("role", "region");
          box.setAttribute("aria-labelledby", hint.id);
        }
      } else if (!scrolls && hasHint) {
        hint.hidden = true;
      } else if (scrolls && hasHint) {
        hint.hidden = false;
      }
    });
  }

  function echoQuestion(select) {
    var echo = document.createElement("p");
    echo.className = "hint question-echo";
    echo.setAttribute("aria-hidden", "true"); // the select already says it to screen readers
    select.insertAdjacentElement("afterend", echo);
    function update() {
      var option = select.options[select.selectedIndex];
      echo.textContent = option && option.value ? option.text : "";
      if (option && option.lang) {
        echo.lang = option.lang;
      } else {
        echo.removeAttribute("lang");
      }
    }
    select.addEventListener("change", update);
    update();
  }

  function start() {
    markScrollingTables();
    window.addEventListener("resize", markScrollingTables);
    Array.prototype.forEach.call(document.querySelectorAll(".question-slot select"), echoQuestion);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
