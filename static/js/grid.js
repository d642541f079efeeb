// Grid mode: arrows move between tiles, space selects, * selects all, a/x decide the selection,
// 1-5 choose the reject category, r reveals the focused tile (shift+r all tiles).
(function () {
  var form = document.querySelector("[data-grid]");
  if (!form) { vigilKeys(function () {}); return; }
  var tiles = Array.prototype.slice.call(form.querySelectorAll("[data-tile]"));
  var current = 0;
  var sent = false;

  function focus(index) {
    current = Math.max(0, Math.min(tiles.length - 1, index));
    tiles[current].focus();
  }
  function columns() {
    var top = tiles[0].offsetTop, n = 0;
    while (n < tiles.length && tiles[n].offsetTop === top) n++;
    return Math.max(n, 1);
  }
  function toggle(tile) {
    var box = tile.querySelector("input");
    box.checked = !box.checked;
    tile.classList.toggle("selected", box.checked);
  }
  tiles.forEach(function (tile, index) {
    tile.addEventListener("click", function (event) {
      event.preventDefault();
      current = index;
      toggle(tile);
    });
  });
  function decide(label) {
    if (sent) return;
    if (!form.querySelector("input[name=rounds]:checked")) return;
    sent = true;
    form.querySelector("button[value=" + label + "]").click();
  }
  vigilKeys(function (event) {
    var key = event.key;
    if (key === "ArrowRight") { focus(current + 1); return true; }
    if (key === "ArrowLeft") { focus(current - 1); return true; }
    if (key === "ArrowDown") { focus(current + columns()); return true; }
    if (key === "ArrowUp") { focus(current - columns()); return true; }
    if (key === " ") { toggle(tiles[current]); return true; }
    if (key === "*") {
      var all = tiles.some(function (t) { return !t.querySelector("input").checked; });
      tiles.forEach(function (t) { if (t.querySelector("input").checked !== all) toggle(t); });
      return true;
    }
    if (key === "a") { decide("safe"); return true; }
    if (key === "x") { decide("harmful"); return true; }
    if (key === "r") { tiles[current].classList.toggle("blurred"); return true; }
    if (key === "R") { tiles.forEach(function (t) { t.classList.toggle("blurred"); }); return true; }
    if (/^[1-5]$/.test(key)) {
      var radio = form.querySelectorAll("input[name=category]")[Number(key) - 1];
      if (radio) radio.checked = true;
      return true;
    }
  });
  focus(0);
})();
