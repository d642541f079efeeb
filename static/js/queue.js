// Queue and decisions pages: the shared keys (n next item, g grid, q queue, ? shortcuts), and
// backspace undoes the last decision where the page offers it (after the queue ran out).
(function () {
  var undo = document.getElementById("undo-form");
  var sent = false;
  vigilKeys(function (event) {
    if (event.key === "Backspace" && undo && !sent) {
      sent = true;
      undo.requestSubmit();
      return true;
    }
  });
})();
