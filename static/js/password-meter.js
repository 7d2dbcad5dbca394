// Password forms, progressive enhancement: a live length hint under the new password
// and a show/hide button on each password field. The page works without this file;
// the server's password policy (length, guessability, personal words) is the authority.
// Texts come translated from data-text-* attributes of the form.
(function () {
  "use strict";

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  function addMeter(form, input) {
    var minimum = parseInt(form.getAttribute("data-min-length"), 10) || 8;
    var meter = document.createElement("meter");
    meter.min = 0;
    meter.max = minimum * 2;
    meter.low = minimum;
    meter.high = Math.ceil(minimum * 1.5);
    meter.optimum = minimum * 2;
    meter.value = 0;
    meter.setAttribute("aria-hidden", "true");
    meter.className = "password-meter";
    var hint = document.createElement("p");
    hint.className = "hint password-meter-text";
    hint.setAttribute("aria-live", "polite");
    input.insertAdjacentElement("afterend", hint);
    input.insertAdjacentElement("afterend", meter);

    function update() {
      // Count characters, not UTF-16 units, as the server does.
      var count = Array.from(input.value.normalize ? input.value.normalize("NFC") : input.value).length;
      meter.value = Math.min(count, minimum * 2);
      if (count === 0) {
        hint.textContent = "";
        return;
      }
      var key = count < minimum ? "data-text-short" : count < minimum * 1.5 ? "data-text-enough" : "data-text-long";
      hint.textContent = fill(form.getAttribute(key) || "", { count: count, min: minimum });
    }

    input.addEventListener("input", update);
    update();
  }

  function addToggle(form, input) {
    var showText = form.getAttribute("data-text-show") || "Show password";
    var hideText = form.getAttribute("data-text-hide") || "Hide password";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "reveal-button";
    button.textContent = showText;
    button.setAttribute("aria-controls", input.id);
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", function () {
      var hidden = input.type === "password";
      input.type = hidden ? "text" : "password";
      button.textContent = hidden ? hideText : showText;
      button.setAttribute("aria-pressed", hidden ? "true" : "false");
      input.focus();
    });
    input.insertAdjacentElement("afterend", button);
  }

  function enhance(form) {
    var inputs = form.querySelectorAll("input[type=password]");
    Array.prototype.forEach.call(inputs, function (input) {
      if (input.hasAttribute("data-password-meter")) {
        addMeter(form, input);
      }
      addToggle(form, input);
    });
    // Never submit a password field left in text mode into the browser's form history.
    form.addEventListener("submit", function () {
      Array.prototype.forEach.call(inputs, function (input) {
        input.type = "password";
      });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("form[data-password-form]"), enhance);
})();
