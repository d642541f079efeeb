// Grid mode: arrows move between tiles, space (or the tile's box) selects, * selects all, a/x
// decide the selection, 0-9 choose the reject category (0: each image's top category), a click
// or r reveals a tile (shift+r all tiles), backspace undoes the last decision. A revealed tile
// is reported with the decision.
(function () {
  var form = document.querySelector("[data-grid]");
  var undo = document.getElementById("undo-form");
  var sent = false;
  function undoLast() {
    if (sent || !undo) return;
    sent = true;
    undo.requestSubmit();
  }
  if (!form) {
    vigilKeys(function (event) { if (event.key === "Backspace") { undoLast(); return true; } });
    return;
  }
  var tiles = Array.prototype.slice.call(form.querySelectorAll("[data-tile]"));
  var current = 0;

  function focus(index) {
    current = Math.max(0, Math.min(tiles.length - 1, index));
    tiles[current].focus();
  }
  function columns() {
    var top = tiles[0].offsetTop, n = 0;
    while (n < tiles.length && tiles[n].offsetTop === top) n++;
    return Math.max(n, 1);
  }
  function box(tile) { return tile.querySelector("input[name=rounds]"); }
  function select(tile, on) {
    box(tile).checked = on;
    tile.classList.toggle("selected", on);
  }
  function reveal(tile, on) {
    tile.classList.toggle("blurred", !on);
    if (on) tile.querySelector("[data-revealed]").checked = true;
  }
  tiles.forEach(function (tile, index) {
    tile.addEventListener("focus", function () { current = index; });
    box(tile).addEventListener("change", function () { current = index; select(tile, box(tile).checked); });
    tile.querySelector("img").addEventListener("click", function () {
      current = index;
      tile.focus();
      reveal(tile, tile.classList.contains("blurred"));
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
    if (key === " ") { select(tiles[current], !box(tiles[current]).checked); return true; }
    if (key === "*") {
      var all = tiles.some(function (t) { return !box(t).checked; });
      tiles.forEach(function (t) { select(t, all); });
      return true;
    }
    if (key === "a") { decide("safe"); return true; }
    if (key === "x") { decide("harmful"); return true; }
    if (key === "Backspace") { undoLast(); return true; }
    if (key === "r") { reveal(tiles[current], tiles[current].classList.contains("blurred")); return true; }
    if (key === "R") {
      var any = tiles.some(function (t) { return t.classList.contains("blurred"); });
      tiles.forEach(function (t) { reveal(t, any); });
      return true;
    }
    if (/^[0-9]$/.test(key)) {
      var radio = form.querySelectorAll("input[name=category]")[Number(key)];
      if (radio) radio.checked = true;
      return true;
    }
  });
  focus(0);
})();
