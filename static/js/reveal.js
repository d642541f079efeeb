// Blurred previews: a click, or the r key, toggles the blur of the image under review.
(function () {
  var figures = document.querySelectorAll("[data-reveal]");
  function toggle() { figures.forEach(function (figure) { figure.classList.toggle("blurred"); }); }
  figures.forEach(function (figure) {
    figure.addEventListener("click", function () { figure.classList.toggle("blurred"); });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "r" || event.repeat || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest && event.target.closest("input[type=text], textarea, select, dialog[open]")) return;
    event.preventDefault();
    toggle();
  });
})();
