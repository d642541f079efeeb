// Shared keyboard plumbing: ignore keys typed into fields or with modifiers; ? toggles the
// shortcut list; n, g and q open the next item, grid mode and the queue (keeping the filters).
window.vigilKeys = function (handler) {
  var dialog = document.getElementById("shortcuts");
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest && event.target.closest("input[type=text], input[type=number], textarea, select")) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (event.key === "?") {
      event.preventDefault();
      if (!dialog) return;
      if (dialog.open) dialog.close(); else dialog.showModal();
      return;
    }
    if (dialog && dialog.open) return;  // the dialog handles Esc itself
    if (event.repeat) return;
    if (event.key === "n") { window.location.href = "/review/next/" + window.location.search; return; }
    if (event.key === "g") { window.location.href = "/review/grid/" + window.location.search; return; }
    if (event.key === "q") { window.location.href = "/review/" + window.location.search; return; }
    if (handler(event) === true) event.preventDefault();
  });
};
