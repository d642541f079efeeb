// Threshold page: move a slider, see what the policy would have done to the window's traffic.
// Mirrors route_cells() and project() in metrics/services/projection.py (a browser test checks
// they agree). Sliders step over score-bin edges; positions, not raw numbers, are compared.
(function () {
  var data = JSON.parse(document.getElementById("traffic-data").textContent);
  var form = document.getElementById("policy-form");
  var APPROVE = 0, QUEUE = 1, REJECT = 2;

  function positions() {
    var result = {};
    form.querySelectorAll("tr[data-category]").forEach(function (row) {
      result[row.dataset.category] = [
        Number(row.querySelector("[data-kind=approve]").value),
        Number(row.querySelector("[data-kind=reject]").value),
      ];
    });
    return result;
  }

  function route(bins, pos) {
    var reject = false, approve = true;
    data.categories.forEach(function (name, j) {
      var b = bins[j], present = b >= 0;
      if (!(name in pos)) { if (present) approve = false; return; }
      if (present && b >= pos[name][1]) reject = true;
      if (present && b >= pos[name][0]) approve = false;
    });
    return reject ? REJECT : (approve ? APPROVE : QUEUE);
  }

  function estimate(routes, band, wrongIndex) {
    var pooledWrong = 0, pooledN = 0;
    data.cells.forEach(function (cell, i) {
      if (routes[i] !== band) return;
      pooledWrong += cell[wrongIndex]; pooledN += cell[2] + cell[3];
    });
    if (!pooledN) return null;
    var pooled = pooledWrong / pooledN, total = 0;
    data.cells.forEach(function (cell, i) {
      if (routes[i] !== band) return;
      var labelled = cell[2] + cell[3];
      total += cell[1] * (labelled ? cell[wrongIndex] / labelled : pooled);
    });
    return total;
  }

  function project(pos) {
    var p = { scored: 0, bands: [0, 0, 0], harmful: [0, 0, 0], safe: [0, 0, 0] };
    var routes = data.cells.map(function (cell) {
      var r = route(cell[0], pos);
      p.scored += cell[1]; p.bands[r] += cell[1]; p.harmful[r] += cell[2]; p.safe[r] += cell[3];
      return r;
    });
    p.estHarmful = estimate(routes, APPROVE, 2);
    p.estSafe = estimate(routes, REJECT, 3);
    return p;
  }

  function show(name, text) {
    var el = document.querySelector("[data-out=" + name + "]");
    if (el) el.textContent = text;
  }
  function share(n, total) { return Math.round(100 * n / (total || 1)) + "%"; }
  function fixed(x, digits) { return x === null ? "–" : x.toFixed(digits); }

  function update() {
    var pos = positions();
    form.querySelectorAll("tr[data-category]").forEach(function (row) {
      ["approve", "reject"].forEach(function (kind) {
        var k = Number(row.querySelector("[data-kind=" + kind + "]").value);
        var value = data.edges[k];
        row.querySelector("[data-show=" + kind + "]").textContent = value.toFixed(4);
        row.querySelector("input[type=hidden][name^=" + (kind === "approve" ? "approve_below" : "reject_from") + "]").value = value;
      });
    });
    var p = project(pos);
    var labelledHarmful = p.harmful[0] + p.harmful[1] + p.harmful[2];
    var rejectedLabelled = p.harmful[REJECT] + p.safe[REJECT];
    show("approved", p.bands[APPROVE]); show("approved-share", share(p.bands[APPROVE], p.scored));
    show("queued", p.bands[QUEUE]); show("queued-share", share(p.bands[QUEUE], p.scored));
    show("rejected", p.bands[REJECT]); show("rejected-share", share(p.bands[REJECT], p.scored));
    show("per-day", (data.days ? p.bands[QUEUE] / data.days : 0).toFixed(1));
    show("harmful-approved", p.harmful[APPROVE]); show("safe-rejected", p.safe[REJECT]);
    show("est-harmful", fixed(p.estHarmful, 1)); show("est-safe", fixed(p.estSafe, 1));
    show("recall", labelledHarmful ? (1 - p.harmful[APPROVE] / labelledHarmful).toFixed(4) : "–");
    show("precision", rejectedLabelled ? (p.harmful[REJECT] / rejectedLabelled).toFixed(4) : "–");
  }

  form.querySelectorAll("input[type=range]").forEach(function (slider) {
    slider.addEventListener("input", function () {
      // Keep approve_below <= reject_from: the one not being moved gives way.
      var row = slider.closest("tr");
      var approve = row.querySelector("[data-kind=approve]"), reject = row.querySelector("[data-kind=reject]");
      if (Number(approve.value) > Number(reject.value)) {
        if (slider === approve) reject.value = approve.value; else approve.value = reject.value;
      }
      update();
    });
  });
  update();
})();
