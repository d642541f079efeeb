// One-at-a-time review, keyboard first: a approve, x reject (with shift: with every near copy the
// page shows), 1-9 category, space skip, backspace undo, r reveal, ? shortcuts. Each decision
// submits once; time on the item is sent, and whether the image was unblurred. Approving an
// automatic reject (an audit) waits for a reveal or the "approve without looking" box.
(function () {
  var form = document.getElementById("decision-form");
  var skip = document.getElementById("skip-form");
  var undo = document.getElementById("undo-form");
  var figure = document.querySelector("figure.preview[data-reveal]");
  var needsReveal = document.querySelector("[data-needs-reveal]");
  var shown = performance.now();
  var revealed = false;
  var sent = false;

  if (figure) {
    new MutationObserver(function () {
      if (!figure.classList.contains("blurred")) revealed = true;
    }).observe(figure, { attributes: true, attributeFilter: ["class"] });
  }
  function approvalWaits() {
    if (!needsReveal || revealed) return false;
    var box = needsReveal.querySelector("input[type=checkbox]");
    if (box && box.checked) return false;
    needsReveal.classList.add("attention");
    return true;
  }
  function submitOnce(target, button) {
    if (sent || !target) return;
    sent = true;
    if (button) button.click(); else target.requestSubmit();
  }
  if (form) {
    form.addEventListener("submit", function (event) {
      if (event.submitter && event.submitter.value === "safe" && approvalWaits()) {
        event.preventDefault();
        sent = false;
        return;
      }
      form.querySelector("[name=time_spent_ms]").value = Math.round(performance.now() - shown);
      form.querySelector("[name=revealed]").value = revealed ? "1" : "";
    });
  }
  function decide(label) {
    if (form) submitOnce(form, form.querySelector("button[value=" + label + "]:not([data-group-decide])"));
  }
  // Shift+a / Shift+x: the picture and its near copies (only where the page shows a group). Caps
  // Lock without shift gives "A", which decides nothing, as before.
  function decideGroup(label) {
    var button = form && form.querySelector("button[data-group-decide][value=" + label + "]");
    if (button) submitOnce(form, button);
  }
  function chooseCategory(index) {
    var radios = form ? form.querySelectorAll("input[name=category]") : [];
    if (radios[index]) { radios[index].checked = true; radios[index].focus({ preventScroll: true }); radios[index].blur(); }
  }

  vigilKeys(function (event) {
    var lower = event.key.toLowerCase();
    if (event.shiftKey && (lower === "a" || lower === "x")) {
      decideGroup(lower === "a" ? "safe" : "harmful");
      return true;
    }
    switch (event.key) {
      case "a": decide("safe"); return true;
      case "x": decide("harmful"); return true;
      case " ": submitOnce(skip); return true;
      case "Backspace": submitOnce(undo); return true;
      default:
        if (/^[1-9]$/.test(event.key)) { chooseCategory(Number(event.key) - 1); return true; }
    }
  });
})();
