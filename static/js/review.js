// One-at-a-time review, keyboard first: a approve, x reject, 1-5 category, space skip,
// backspace undo, r reveal, ? shortcuts. Each decision submits once; time on the item is sent.
(function () {
  var form = document.getElementById("decision-form");
  var skip = document.getElementById("skip-form");
  var undo = document.getElementById("undo-form");
  var shown = performance.now();
  var sent = false;

  function submitOnce(target, button) {
    if (sent || !target) return;
    sent = true;
    if (button) button.click(); else target.requestSubmit();
  }
  if (form) {
    form.addEventListener("submit", function () {
      form.querySelector("[name=time_spent_ms]").value = Math.round(performance.now() - shown);
    });
  }
  function decide(label) {
    if (form) submitOnce(form, form.querySelector("button[value=" + label + "]"));
  }
  function chooseCategory(index) {
    var radios = form ? form.querySelectorAll("input[name=category]") : [];
    if (radios[index]) { radios[index].checked = true; radios[index].focus({ preventScroll: true }); radios[index].blur(); }
  }

  vigilKeys(function (event) {
    switch (event.key) {
      case "a": decide("safe"); return true;
      case "x": decide("harmful"); return true;
      case " ": submitOnce(skip); return true;
      case "Backspace": submitOnce(undo); return true;
      default:
        if (/^[1-5]$/.test(event.key)) { chooseCategory(Number(event.key) - 1); return true; }
    }
  });
})();
