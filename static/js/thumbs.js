// Blurred thumbnails (decision lists): a click reveals one, a second click blurs it again.
document.addEventListener("click", function (event) {
  var thumb = event.target.closest && event.target.closest("[data-thumb]");
  if (!thumb) return;
  event.preventDefault();
  thumb.classList.toggle("blurred");
});
