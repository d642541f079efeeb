// Animated uploads: step through the scored frames with the buttons or the , and . keys. The
// page opens on the worst frame (the display image); each step loads that frame, still blurred.
(function () {
  var box = document.querySelector("[data-frames]");
  var data = document.getElementById("frame-data");
  if (!box || !data) return;
  var frames = JSON.parse(data.textContent);
  var image = box.closest("figure").querySelector("img");
  var label = box.querySelector("[data-frame-label]");
  var count = box.dataset.frameCount;
  var at = frames.findIndex(function (f) { return f.worst; });

  function show(step) {
    at = (at + step + frames.length) % frames.length;
    var frame = frames[at];
    image.src = frame.url;
    label.textContent = "frame " + frame.number + " of " + count + (frame.worst ? " (worst)" : "") +
      " · " + frame.harmful.toFixed(3);
  }
  box.querySelectorAll("[data-frame-step]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      event.stopPropagation();  // a click on the controls does not reveal the image
      show(Number(button.dataset.frameStep));
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "," && event.key !== ".") return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest && event.target.closest("input[type=text], input[type=number], textarea, select, dialog[open]")) return;
    event.preventDefault();
    show(event.key === "." ? 1 : -1);
  });
})();
