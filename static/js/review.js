// Review page keys: a approves (safe), x rejects (harmful). Time on the item is sent along.
(function () {
  var form = document.getElementById("decision-form");
  if (!form) return;
  var shown = performance.now();
  function decide(label) {
    form.querySelector("[name=time_spent_ms]").value = Math.round(performance.now() - shown);
    form.querySelector("button[value=" + label + "]").click();
  }
  form.addEventListener("submit", function () {
    form.querySelector("[name=time_spent_ms]").value = Math.round(performance.now() - shown);
  });
  document.addEventListener("keydown", function (event) {
    if (event.target.closest("input, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "a") decide("safe");
    if (event.key === "x") decide("harmful");
  });
})();
