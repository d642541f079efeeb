// Blurred previews: click (or press r) toggles the blur.
(function () {
  function toggle(figure) { figure.classList.toggle("blurred"); }
  document.querySelectorAll("[data-reveal]").forEach(function (figure) {
    figure.addEventListener("click", function () { toggle(figure); });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "r" || event.target.closest("input, textarea")) return;
    document.querySelectorAll("[data-reveal]").forEach(toggle);
  });
})();
