// Video review: the player starts blurred, muted and paused; a worst-frame button jumps the player
// to that frame's time (still paused). Clicks on the player or the buttons never toggle the blur.
(function () {
  var box = document.querySelector("[data-video-review]");
  if (!box) return;
  var player = box.querySelector("[data-player]");
  player.muted = true;
  player.addEventListener("click", function (event) { event.stopPropagation(); });
  box.querySelectorAll("[data-seek]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      event.stopPropagation();
      player.pause();
      player.currentTime = Number(button.dataset.seek);
      box.querySelectorAll("[data-seek]").forEach(function (b) { b.classList.toggle("current", b === button); });
    });
  });
})();
