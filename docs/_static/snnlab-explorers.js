/* snnlab's kernel-free explorers (see snnlab/explorers.py).
 *
 * A notebook cell's output holds <div class="snnlab-explorer" data-kind="..."> with its data as JSON; this script
 * finds those divs when the page loads and draws each one with its controls, as SVG. Nothing is fetched.
 *   surrogate: the surrogate shapes and the LIF neuron are computed here (a port of snnlab.surrogate and
 *              snnlab.neurons.LIF, checked against them by tests/test_docs_site.py);
 *   chi:       chi and gradient histograms precomputed on a grid of widths, one slider per spiking layer;
 *   landscape: loss surfaces precomputed for a few spans and seeds, drawn as a 1-D slice, contours or 3-D.
 * The maths is exposed as window.snnlabExplorers so that the tests can evaluate it on a grid of inputs.
 */
(function (global) {
  "use strict";

  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"];
  var SVGNS = "http://www.w3.org/2000/svg";

  // ---------------------------------------------------------------- maths: ports of snnlab.surrogate / neurons
  var SIGMOID_C = 4 * Math.asinh(1);  // k = 4 asinh(1) / width: the sigmoid's FWHM is the width
  function sig(z) { return 1 / (1 + Math.exp(-z)); }
  var SHAPES = {
    rectangle: { compact: true, support: function (w) { return w / 2; },
                 grad: function (x, w) { return Math.abs(x) < w / 2 ? 1 / w : 0; } },
    triangle:  { compact: true, support: function (w) { return w; },
                 grad: function (x, w) { return Math.max(0, w - Math.abs(x)) / (w * w); } },
    sigmoid:   { compact: false,
                 grad: function (x, w) { var k = SIGMOID_C / w; return k * sig(k * x) * sig(-k * x); },
                 // 4 s(kr) s(-kr) = rel: s(kr) = (1 + sqrt(1 - rel)) / 2
                 domain: function (w, rel) { var p = (1 + Math.sqrt(1 - rel)) / 2; return Math.log(p / (1 - p)) / (SIGMOID_C / w); } },
    atan:      { compact: false,
                 grad: function (x, w) { var a = 4 / (Math.PI * w), z = Math.PI * a * x / 2; return (a / 2) / (1 + z * z); },
                 domain: function (w, rel) { var a = 4 / (Math.PI * w); return (2 / (Math.PI * a)) * Math.sqrt(1 / rel - 1); } },
    gaussian:  { compact: false,
                 grad: function (x, w) { var s = w / (2 * Math.sqrt(2 * Math.log(2))); return Math.exp(-0.5 * (x / s) * (x / s)) / (Math.sqrt(2 * Math.PI) * s); },
                 domain: function (w, rel) { var s = w / (2 * Math.sqrt(2 * Math.log(2))); return s * Math.sqrt(-2 * Math.log(rel)); } }
  };
  function shapeOf(name) {
    if (!SHAPES.hasOwnProperty(name)) { throw new Error("unknown surrogate shape " + JSON.stringify(name) + "; allowed: " + Object.keys(SHAPES).join(", ")); }
    return SHAPES[name];
  }
  /** g(x) of the named shape at FWHM width w, for each x (snnlab.surrogate.get(name, w).grad). */
  function surrogateGrad(name, w, xs) { var s = shapeOf(name); return xs.map(function (x) { return s.grad(x, w); }); }
  /** Half-length of the region where g > relTol * g(0) (Surrogate.effective_domain, relTol 1e-3). */
  function effectiveDomain(name, w, relTol) {
    var s = shapeOf(name); relTol = relTol === undefined ? 1e-3 : relTol;
    return s.compact ? s.support(w) : s.domain(w, relTol);
  }
  /** snnlab.neurons.LIF(tau, v_th, reset="hard").simulate: u[t] = tau u[t-1] + I[t]; spike on u >= v_th; u -> 0. */
  function lif(input, tau, vth) {
    var u = 0, mem = [], spk = [];
    for (var t = 0; t < input.length; t++) {
      u = t ? input[t] + tau * u : input[t];
      var s = (u - vth >= 0) ? 1 : 0;
      mem.push(u); spk.push(s);
      u = u * (1 - s);
    }
    return { mem: mem, spk: spk };
  }

  // ---------------------------------------------------------------- a small SVG plotting kit
  function el(tag, attrs, parent) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs) { if (attrs.hasOwnProperty(k)) { e.setAttribute(k, attrs[k]); } }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function text(parent, x, y, str, attrs) {
    var a = { x: x, y: y, "font-size": 11, fill: "#222" };
    for (var k in attrs || {}) { a[k] = attrs[k]; }
    var t = el("text", a, parent); t.textContent = str; return t;
  }
  function fmt(v) {
    if (v === 0) { return "0"; }
    var a = Math.abs(v);
    return (a >= 1e4 || a < 1e-2) ? v.toExponential(1) : String(Number(v.toPrecision(3)));
  }
  function ticks(lo, hi, n) {
    var step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n || 1)));
    var err = (hi - lo) / n / step;
    step *= err >= 5 ? 10 : err >= 2 ? 5 : err >= 1.5 ? 2 : 1;
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) { out.push(Math.abs(v) < 1e-12 * step ? 0 : v); }
    return out;
  }
  function extent(values) {
    var lo = Infinity, hi = -Infinity;
    values.forEach(function (v) { if (v < lo) { lo = v; } if (v > hi) { hi = v; } });
    if (!isFinite(lo)) { return [0, 1]; }
    if (hi === lo) { hi = lo + 1; }
    return [lo, hi];
  }
  /** Axes in box {x, y, w, h} of svg for data limits xl, yl: returns {X, Y, g} (X, Y map data to pixels). */
  function axes(svg, box, xl, yl, opt) {
    opt = opt || {};
    var g = el("g", { "class": "snnlab-axes" }, svg);
    var X = function (v) { return box.x + (v - xl[0]) / (xl[1] - xl[0]) * box.w; };
    var Y = function (v) { return box.y + box.h - (v - yl[0]) / (yl[1] - yl[0]) * box.h; };
    el("rect", { x: box.x, y: box.y, width: box.w, height: box.h, fill: "none", stroke: "#888" }, g);
    if (!opt.noXTicks) {
      ticks(xl[0], xl[1], 5).forEach(function (v) {
        el("line", { x1: X(v), x2: X(v), y1: box.y + box.h, y2: box.y + box.h + 4, stroke: "#888" }, g);
        text(g, X(v), box.y + box.h + 15, fmt(v), { "text-anchor": "middle" });
      });
    }
    ticks(yl[0], yl[1], 4).forEach(function (v) {
      el("line", { x1: box.x - 4, x2: box.x, y1: Y(v), y2: Y(v), stroke: "#888" }, g);
      text(g, box.x - 6, Y(v) + 4, fmt(v), { "text-anchor": "end" });
    });
    if (opt.title) { text(g, box.x + box.w / 2, box.y - 8, opt.title, { "text-anchor": "middle", "font-size": 12 }); }
    if (opt.xlabel) { text(g, box.x + box.w / 2, box.y + box.h + 30, opt.xlabel, { "text-anchor": "middle" }); }
    if (opt.ylabel) { text(g, box.x - 42, box.y + box.h / 2, opt.ylabel, { "text-anchor": "middle", transform: "rotate(-90 " + (box.x - 42) + " " + (box.y + box.h / 2) + ")" }); }
    return { X: X, Y: Y, g: g };
  }
  function polyline(ax, xs, ys, color, attrs) {
    var pts = xs.map(function (x, i) { return ax.X(x).toFixed(1) + "," + ax.Y(ys[i]).toFixed(1); }).join(" ");
    var a = { points: pts, fill: "none", stroke: color, "stroke-width": 1.6 };
    for (var k in attrs || {}) { a[k] = attrs[k]; }
    return el("polyline", a, ax.g);
  }
  function newSvg(holder, w, h) {
    holder.innerHTML = "";
    return el("svg", { viewBox: "0 0 " + w + " " + h, width: "100%", role: "img", "class": "snnlab-figure" }, holder);
  }
  function viridis(t) {  // 5-stop approximation of matplotlib's viridis
    var stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
    t = Math.min(1, Math.max(0, t)) * 4;
    var i = Math.min(3, Math.floor(t)), f = t - i, a = stops[i], b = stops[i + 1];
    return "rgb(" + [0, 1, 2].map(function (k) { return Math.round(a[k] + f * (b[k] - a[k])); }).join(",") + ")";
  }

  // ---------------------------------------------------------------- controls
  function control(parent, label, input, show) {
    var wrap = document.createElement("label");
    wrap.className = "snnlab-control";
    var name = document.createElement("span"); name.textContent = label; wrap.appendChild(name);
    wrap.appendChild(input);
    if (show) { var out = document.createElement("output"); wrap.appendChild(out); input._out = out; }
    parent.appendChild(wrap);
    return input;
  }
  function slider(parent, label, min, max, step, value, name) {
    var i = document.createElement("input");
    i.type = "range"; i.min = min; i.max = max; i.step = step; i.value = value; i.name = name;
    return control(parent, label, i, true);
  }
  function select(parent, label, options, value, name) {
    var s = document.createElement("select"); s.name = name;
    options.forEach(function (o) { var op = document.createElement("option"); op.value = op.textContent = String(o); s.appendChild(op); });
    s.value = String(value);
    return control(parent, label, s, false);
  }
  function frame(root, title) {
    root.innerHTML = "";
    root.classList.add("snnlab-explorer-live");
    var head = document.createElement("div"); head.className = "snnlab-explorer-title"; head.textContent = title; root.appendChild(head);
    var controls = document.createElement("div"); controls.className = "snnlab-controls"; root.appendChild(controls);
    var fig = document.createElement("div"); fig.className = "snnlab-figure-holder"; root.appendChild(fig);
    return { controls: controls, fig: fig };
  }

  // ---------------------------------------------------------------- surrogate explorer
  function drawSurrogate(fig, p, data) {
    var svg = newSvg(fig, 900, 360);
    var xs = [], i;
    for (i = 0; i <= 600; i++) { xs.push(-3 + i * 0.01); }
    var g = surrogateGrad(p.shape, p.width, xs), r = effectiveDomain(p.shape, p.width);
    var axG = axes(svg, { x: 60, y: 30, w: 270, h: 280 }, [-3, 3], [0, Math.max.apply(null, g) * 1.08],
                   { title: p.shape + ": g(x), width (FWHM) = " + fmt(p.width), xlabel: "x = u - v_th" });
    el("rect", { x: axG.X(-Math.min(r, 3)), y: 30, width: axG.X(Math.min(r, 3)) - axG.X(-Math.min(r, 3)), height: 280, fill: COLORS[2], opacity: 0.12 }, axG.g);
    polyline(axG, xs, g, COLORS[2]);
    var input = data.base_input.map(function (b) { return p.drive * b; });
    var run = lif(input, p.tau, data.v_th), T = input.length, t = input.map(function (_, k) { return k; });
    var gt = run.mem.map(function (u) { return shapeOf(p.shape).grad(u - data.v_th, p.width); });
    var gmax = Math.max.apply(null, gt), flows = gt.filter(function (v) { return v > 1e-3 * Math.max(gmax, 1e-30); }).length;
    var ml = extent(run.mem.concat([data.v_th, 0]));
    var axM = axes(svg, { x: 430, y: 30, w: 450, h: 130 }, [-1, T], [ml[0], ml[1] + 0.1 * (ml[1] - ml[0])],
                   { title: p.shape + "(width=" + fmt(p.width) + "): gradient flows at " + Math.round(100 * flows / T) + "% of steps", ylabel: "membrane", noXTicks: true });
    if (isFinite(r)) {
      var y0 = axM.Y(Math.min(data.v_th + r, ml[1] + 0.1 * (ml[1] - ml[0]))), y1 = axM.Y(Math.max(data.v_th - r, ml[0]));
      el("rect", { x: 430, y: y0, width: 450, height: Math.max(0, y1 - y0), fill: COLORS[2], opacity: 0.12 }, axM.g);
    }
    run.spk.forEach(function (s, k) { if (s) { el("line", { x1: axM.X(k), x2: axM.X(k), y1: 30, y2: 160, stroke: COLORS[1], "stroke-width": 2, opacity: 0.3, "class": "spike" }, axM.g); } });
    el("line", { x1: 430, x2: 880, y1: axM.Y(data.v_th), y2: axM.Y(data.v_th), stroke: "#000", "stroke-dasharray": "5,4" }, axM.g);
    polyline(axM, t, run.mem, COLORS[0]);
    var axB = axes(svg, { x: 430, y: 180, w: 450, h: 130 }, [-1, T], [0, Math.max(gmax, 1e-12) * 1.08], { xlabel: "time step t", ylabel: "g(u - v_th)" });
    gt.forEach(function (v, k) { el("rect", { x: axB.X(k - 0.35), y: axB.Y(v), width: axB.X(0.7) - axB.X(0), height: 310 - axB.Y(v), fill: COLORS[2] }, axB.g); });
    return { spikes: run.spk.reduce(function (a, b) { return a + b; }, 0), flows: flows };
  }
  function surrogateExplorer(root, data) {
    var f = frame(root, "Surrogate explorer (computed in this page)");
    var c = {
      shape: select(f.controls, "shape", data.shapes, data.shape, "shape"),
      width: slider(f.controls, "width", data.ranges.log10_width[0], data.ranges.log10_width[1], data.ranges.log10_width[2], Math.log10(data.width), "width"),
      drive: slider(f.controls, "drive", data.ranges.drive[0], data.ranges.drive[1], data.ranges.drive[2], data.drive, "drive"),
      tau: slider(f.controls, "tau", data.ranges.tau[0], data.ranges.tau[1], data.ranges.tau[2], data.tau, "tau")
    };
    function redraw() {
      var p = { shape: c.shape.value, width: Math.pow(10, +c.width.value), drive: +c.drive.value, tau: +c.tau.value };
      c.width._out.textContent = fmt(p.width); c.drive._out.textContent = fmt(p.drive); c.tau._out.textContent = fmt(p.tau);
      drawSurrogate(f.fig, p, data);
    }
    Object.keys(c).forEach(function (k) { c[k].addEventListener("input", redraw); c[k].addEventListener("change", redraw); });
    redraw();
  }

  // ---------------------------------------------------------------- chi explorer
  function chiExplorer(root, data) {
    var f = frame(root, "chi explorer (precomputed on a grid of " + data.points.length + " width settings, batch of " + data.batch + ")");
    var sliders = data.neurons.map(function (n, i) {
      return slider(f.controls, "w " + n, 0, data.widths[i].length - 1, 1, data.start[i], "w" + i);
    });
    function redraw() {
      var idx = sliders.map(function (s) { return +s.value; }), flat = 0;
      idx.forEach(function (v, i) { flat = flat * data.widths[i].length + v; sliders[i]._out.textContent = fmt(data.widths[i][v]); });
      var point = data.points[flat], L = data.layers.length, pw = 260, svg = newSvg(f.fig, 70 + L * (pw + 70), 300);
      var edges = data.edges;
      point.forEach(function (e, k) {
        var ymax = Math.max(1, Math.max.apply(null, e.hist)) * 1.08;
        var neuron = data.layers[k].neuron, wi = neuron === null ? -1 : data.neurons.indexOf(neuron);
        var title = data.layers[k].name + ": chi = " + e.chi.toFixed(2) + (e.chi_u === null ? "" : ", chi_u = " + e.chi_u.toFixed(3) + " (w = " + fmt(data.widths[wi][idx[wi]]) + ")");
        var ax = axes(svg, { x: 70 + k * (pw + 70), y: 50, w: pw, h: 190 }, [edges[0], edges[edges.length - 1]], [0, ymax],
                      { title: title, xlabel: "log10 |dL/dW|", ylabel: k ? "" : "weights" });
        text(ax.g, 70 + k * (pw + 70) + pw / 2, 20, e.zeros + " of " + e.numel + " gradients are 0", { "text-anchor": "middle", "font-size": 10, fill: "#555" });
        e.hist.forEach(function (n, b) {
          if (n > 0) { el("rect", { x: ax.X(edges[b]), y: ax.Y(n), width: Math.max(0.5, ax.X(edges[b + 1]) - ax.X(edges[b]) - 0.5), height: 240 - ax.Y(n), fill: COLORS[0] }, ax.g); }
        });
      });
    }
    sliders.forEach(function (s) { s.addEventListener("input", redraw); s.addEventListener("change", redraw); });
    redraw();
  }

  // ---------------------------------------------------------------- landscape explorer
  /** Segments of the level-`level` iso line of Z (marching squares, one segment pair per saddle). */
  function isoSegments(Z, level) {
    var segs = [], n = Z.length, m = Z[0].length;
    function cross(a, b, za, zb) { var t = (level - za) / (zb - za); return [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])]; }
    for (var j = 0; j < n - 1; j++) {
      for (var i = 0; i < m - 1; i++) {
        var c = [[i, j], [i + 1, j], [i + 1, j + 1], [i, j + 1]], z = [Z[j][i], Z[j][i + 1], Z[j + 1][i + 1], Z[j + 1][i]], pts = [];
        for (var k = 0; k < 4; k++) {
          var za = z[k], zb = z[(k + 1) % 4];
          if ((za < level) !== (zb < level)) { pts.push(cross(c[k], c[(k + 1) % 4], za, zb)); }
        }
        if (pts.length === 2) { segs.push(pts); } else if (pts.length === 4) { segs.push([pts[0], pts[1]]); segs.push([pts[2], pts[3]]); }
      }
    }
    return segs;
  }
  function drawLandscape(fig, p, data) {
    var Z = data.surfaces[p.model + "|" + p.loss + "|" + p.span + "|" + p.seed], n = Z.length;
    var axis = Z.map(function (_, k) { return -p.span + 2 * p.span * k / (n - 1); });
    var flat = [].concat.apply([], Z), zl = extent(flat), svg = newSvg(fig, 620, 420);
    var title = p.loss + " around the " + p.model + " minimum (span " + p.span + ", seed " + p.seed + ")";
    if (p.view === "1d") {
      var row = Z[(n - 1) / 2], rl = extent(row);
      var ax = axes(svg, { x: 80, y: 40, w: 500, h: 320 }, [-p.span, p.span], [rl[0] - 0.05 * (rl[1] - rl[0]), rl[1] + 0.05 * (rl[1] - rl[0])],
                    { title: title, xlabel: "alpha (along d1; beta = 0)", ylabel: "loss" });
      polyline(ax, axis, row, COLORS[0], { "class": "landscape-line" });
    } else if (p.view === "contour") {
      var hd = p.span / (n - 1), lim = [-p.span - hd, p.span + hd];  // cells centred on the grid points
      var a2 = axes(svg, { x: 80, y: 40, w: 380, h: 320 }, lim, lim, { title: title, xlabel: "alpha (d1)", ylabel: "beta (d2)" });
      var cw = 380 / n, ch = 320 / n;
      Z.forEach(function (r, j) { r.forEach(function (v, i) {
        el("rect", { x: a2.X(axis[i]) - cw / 2, y: a2.Y(axis[j]) - ch / 2, width: cw + 0.6, height: ch + 0.6, fill: viridis((v - zl[0]) / (zl[1] - zl[0])) }, a2.g);
      }); });
      var I = function (v) { return -p.span + 2 * p.span * v / (n - 1); };
      for (var q = 1; q < 10; q++) {
        isoSegments(Z, zl[0] + q / 10 * (zl[1] - zl[0])).forEach(function (s) {
          el("line", { x1: a2.X(I(s[0][0])), y1: a2.Y(I(s[0][1])), x2: a2.X(I(s[1][0])), y2: a2.Y(I(s[1][1])), stroke: "#fff", "stroke-width": 0.8, opacity: 0.8 }, a2.g);
        });
      }
      for (var b = 0; b <= 20; b++) { el("rect", { x: 490, y: 360 - (b + 1) * 16, width: 16, height: 16.5, fill: viridis(b / 20) }, svg); }
      text(svg, 512, 360, fmt(zl[0])); text(svg, 512, 52, fmt(zl[1])); text(svg, 512, 206, "loss");
      el("circle", { cx: a2.X(0), cy: a2.Y(0), r: 3, fill: "#d62728" }, a2.g);
    } else {
      // 3-D wireframe: azimuth -60 deg, elevation 30 deg, as matplotlib's default view
      var az = -60 * Math.PI / 180, elv = 30 * Math.PI / 180;
      var P = function (i, j) {
        var x = (i / (n - 1)) * 2 - 1, y = (j / (n - 1)) * 2 - 1, z = (Z[j][i] - zl[0]) / (zl[1] - zl[0]) * 1.2 - 0.6;
        var xr = x * Math.cos(az) - y * Math.sin(az), yr = x * Math.sin(az) + y * Math.cos(az);
        return [310 + 150 * xr, 230 - 150 * (z * Math.cos(elv) + yr * Math.sin(elv))];
      };
      text(svg, 310, 24, title, { "text-anchor": "middle", "font-size": 12 });
      for (var jj = 0; jj < n; jj++) {
        for (var ii = 0; ii < n; ii++) {
          var a = P(ii, jj), col = viridis((Z[jj][ii] - zl[0]) / (zl[1] - zl[0]));
          if (ii < n - 1) { var bq = P(ii + 1, jj); el("line", { x1: a[0], y1: a[1], x2: bq[0], y2: bq[1], stroke: col, "stroke-width": 1 }, svg); }
          if (jj < n - 1) { var cq = P(ii, jj + 1); el("line", { x1: a[0], y1: a[1], x2: cq[0], y2: cq[1], stroke: col, "stroke-width": 1 }, svg); }
        }
      }
      text(svg, 20, 400, "loss from " + fmt(zl[0]) + " (dark) to " + fmt(zl[1]) + " (yellow)", { "font-size": 11 });
    }
    return zl;
  }
  function landscapeExplorer(root, data) {
    var f = frame(root, "Landscape explorer (precomputed: " + Object.keys(data.surfaces).length + " surfaces of " + data.resolution + " x " + data.resolution + ")");
    var c = {
      model: select(f.controls, "minimum", data.models, data.start.model, "model"),
      loss: select(f.controls, "loss", data.losses, data.start.loss, "loss"),
      view: select(f.controls, "view", data.views, data.view, "view"),
      span: select(f.controls, "span", data.spans.map(String), String(data.start.span), "span"),
      seed: select(f.controls, "seed", data.seeds.map(String), String(data.start.seed), "seed")
    };
    function redraw() {
      drawLandscape(f.fig, { model: c.model.value, loss: c.loss.value, view: c.view.value, span: +c.span.value, seed: +c.seed.value }, data);
    }
    Object.keys(c).forEach(function (k) { c[k].addEventListener("change", redraw); c[k].addEventListener("input", redraw); });
    redraw();
  }

  // ---------------------------------------------------------------- wiring
  var BUILDERS = { surrogate: surrogateExplorer, chi: chiExplorer, landscape: landscapeExplorer };
  function init() {
    var roots = document.querySelectorAll("div.snnlab-explorer");
    Array.prototype.forEach.call(roots, function (root) {
      if (root.dataset.ready) { return; }
      var kind = root.dataset.kind, node = root.querySelector("script.snnlab-explorer-data");
      if (!BUILDERS.hasOwnProperty(kind) || !node) { throw new Error("snnlab explorer: unknown kind " + JSON.stringify(kind) + " or no data"); }
      BUILDERS[kind](root, JSON.parse(node.textContent));
      root.dataset.ready = "1";
    });
  }
  global.snnlabExplorers = { SHAPES: Object.keys(SHAPES), surrogateGrad: surrogateGrad, effectiveDomain: effectiveDomain, lif: lif,
                             isoSegments: isoSegments, init: init };
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})(window);
