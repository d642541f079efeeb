// Threshold page: move a slider or type a number, see what the policy would have done to the
// window's traffic. Mirrors route_cells(), project() and Figure in metrics/services/projection.py
// (a browser test checks they agree). The numbers are what gets saved, exactly; sliders step over
// score-bin edges, and the projection works on the sliders' positions (the nearest edges).
(function () {
  var data = JSON.parse(document.getElementById("traffic-data").textContent);
  var form = document.getElementById("policy-form");
  var APPROVE = 0, QUEUE = 1, REJECT = 2;
  var KINDS = ["approve", "reject"];
  var TOP = data.edges.length - 1;

  var rows = Array.prototype.map.call(form.querySelectorAll("tr[data-category]"), function (tr) {
    var row = { name: tr.dataset.category, tr: tr, slider: {}, exact: {} };
    KINDS.forEach(function (kind) {
      row.slider[kind] = tr.querySelector("input[type=range][data-kind=" + kind + "]");
      row.exact[kind] = tr.querySelector("input[data-exact=" + kind + "]");
    });
    return row;
  });

  // moderation/bins.py threshold_position: the edge nearest to a value (the lower one on a tie).
  function nearestEdge(value) {
    if (value >= 1) return TOP;
    if (value <= 0) return 0;
    var lo = 0, hi = TOP;  // the largest k with edges[k] <= value
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (data.edges[mid] <= value) lo = mid; else hi = mid - 1;
    }
    if (lo < TOP && Math.abs(data.edges[lo + 1] - value) < Math.abs(data.edges[lo] - value)) return lo + 1;
    return lo;
  }

  function exactValue(input) {
    return input.value === "" ? NaN : input.valueAsNumber;
  }

  function positions() {
    var result = {};
    rows.forEach(function (row) {
      result[row.name] = [Number(row.slider.approve.value), Number(row.slider.reject.value)];
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
    var p = { scored: 0, bands: [0, 0, 0], harmful: [0, 0, 0], safe: [0, 0, 0], categories: {} };
    data.categories.forEach(function (name) {
      p.categories[name] = { harmful: 0, kept: 0, bandHarmful: 0, bandLabelled: 0 };
    });
    var routes = data.cells.map(function (cell) {
      var r = route(cell[0], pos);
      p.scored += cell[1]; p.bands[r] += cell[1]; p.harmful[r] += cell[2]; p.safe[r] += cell[3];
      data.categories.forEach(function (name, j) {
        var c = p.categories[name], b = cell[0][j], named = cell.length > 4 ? cell[4][j] : 0;
        c.harmful += named;
        if (r !== APPROVE) c.kept += named;
        if (name in pos && b >= 0 && b >= pos[name][1]) { c.bandHarmful += cell[2]; c.bandLabelled += cell[2] + cell[3]; }
      });
      return r;
    });
    p.estHarmful = estimate(routes, APPROVE, 2);
    p.estSafe = estimate(routes, REJECT, 3);
    return p;
  }

  // scipy's Wilson score interval (binomtest(k, n).proportion_ci(method="wilson")), same operations.
  function wilson(k, n) {
    var z = data.z, p = k / n, q = 1 - p;
    var denom = 2 * (n + z * z);
    var center = (2 * n * p + z * z) / denom;
    var delta = z / denom * Math.sqrt(4 * n * p * q + z * z);
    return [k === 0 ? 0 : center - delta, k === n ? 1 : center + delta];
  }

  // Figure.__str__ in projection.py.
  function figureText(k, n) {
    if (!(n > 0 && n >= data.min_labels)) return "not enough labels (" + n + " of " + data.min_labels + ")";
    var ci = wilson(k, n);
    return (k / n).toFixed(4) + " (" + ci[0].toFixed(3) + "–" + ci[1].toFixed(3) + ", n = " + n + ")";
  }

  function show(name, text) {
    var el = document.querySelector('[data-out="' + name + '"]');
    if (el) el.textContent = text;
  }
  function share(n, total) { return Math.round(100 * n / (total || 1)) + "%"; }
  function fixed(x, digits) { return x === null ? "–" : x.toFixed(digits); }

  function update() {
    var bandless = [];
    rows.forEach(function (row) {
      var a = exactValue(row.exact.approve), r = exactValue(row.exact.reject);
      row.exact.approve.setCustomValidity(a > r ? "approve below must not exceed reject from" : "");
      row.tr.classList.toggle("no-human-band", a === r);
      if (a === r) bandless.push(row.name);
    });
    // approve below = reject from leaves no human band: the confirmation appears (the server insists).
    var confirmBox = document.getElementById("band-confirm");
    if (confirmBox) {
      confirmBox.hidden = !bandless.length;
      confirmBox.querySelector("[data-bandless]").textContent = bandless.join(", ");
    }
    var p = project(positions());
    var labelledHarmful = p.harmful[0] + p.harmful[1] + p.harmful[2];
    show("approved", p.bands[APPROVE]); show("approved-share", share(p.bands[APPROVE], p.scored));
    show("queued", p.bands[QUEUE]); show("queued-share", share(p.bands[QUEUE], p.scored));
    show("rejected", p.bands[REJECT]); show("rejected-share", share(p.bands[REJECT], p.scored));
    show("per-day", (data.days ? p.bands[QUEUE] / data.days : 0).toFixed(1));
    show("harmful-approved", p.harmful[APPROVE]); show("safe-rejected", p.safe[REJECT]);
    show("est-harmful", fixed(p.estHarmful, 1)); show("est-safe", fixed(p.estSafe, 1));
    show("recall", figureText(labelledHarmful - p.harmful[APPROVE], labelledHarmful));
    show("precision", figureText(p.harmful[REJECT], p.harmful[REJECT] + p.safe[REJECT]));
    data.categories.forEach(function (name) {
      var c = p.categories[name];
      show("recall:" + name, figureText(c.kept, c.harmful));
      show("precision:" + name, figureText(c.bandHarmful, c.bandLabelled));
    });
  }

  // A slider writes its edge into its own number only; if that crosses the other number of the
  // row, the other gives way to the same edge (approve_below <= reject_from always holds).
  function slid(row, kind) {
    var other = kind === "approve" ? "reject" : "approve";
    var k = Number(row.slider[kind].value);
    row.exact[kind].value = String(data.edges[k]);
    if (exactValue(row.exact.approve) > exactValue(row.exact.reject)) {
      row.exact[other].value = String(data.edges[k]);
      row.slider[other].value = k;
    }
    update();
  }

  // A typed number moves its slider to the nearest edge and stays as typed.
  function typed(row, kind) {
    var value = exactValue(row.exact[kind]);
    if (!isNaN(value)) row.slider[kind].value = nearestEdge(value);
    update();
  }

  rows.forEach(function (row) {
    KINDS.forEach(function (kind) {
      row.slider[kind].addEventListener("input", function () { slid(row, kind); });
      row.exact[kind].addEventListener("input", function () { typed(row, kind); });
      var value = exactValue(row.exact[kind]);  // a re-shown form holds what was posted
      if (!isNaN(value)) row.slider[kind].value = nearestEdge(value);
    });
  });
  update();
})();
