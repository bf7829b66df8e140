// nasmix serve: a cell's page. Fetches /api/cells/{id} on every new snapshot version and draws the
// search trajectory, the architecture weights per edge (heatmaps), the chosen arch as a graph (SVG),
// the evaluation curve with top-1 and top-5, the resources and the failure.
// Every string from the store is written as text (NX.el, SVG text nodes) or escaped for Plotly.
"use strict";

(function () {
  var el = NX.el, SVG = "http://www.w3.org/2000/svg", cell = null;  // the id, from <body data-cell>

  function fact(dl, name, value) {
    dl.appendChild(el("dt", {text: name}));
    dl.appendChild(el("dd", {text: value}));
  }

  function drawFacts(d) {
    var c = d.cell, p = c.progress, r = d.resources, dl = NX.clear(document.getElementById("facts"));
    var s = (p.search_total ? p.search_done + " of " + p.search_total : p.search_done) + " " + p.search_unit;
    fact(dl, "phase", p.phase + (p.attempts > 1 ? " (attempt " + p.attempts + ")" : ""));
    fact(dl, "search", s);
    fact(dl, "evaluation", (p.eval_total ? p.eval_done + " of " + p.eval_total : p.eval_done) + " epochs");
    fact(dl, "elapsed", NX.duration(p.elapsed_s));
    fact(dl, "ETA", NX.isNum(p.eta_s) ? NX.duration(p.eta_s) + " (" + p.eta_phase + ")" : "-");
    fact(dl, "last event", NX.isNum(p.last_event_s) ? NX.duration(p.last_event_s) + " ago" : "-");
    fact(dl, "test top-1 / top-5", NX.pct(c.top1) + " / " + NX.pct(c.top5));
    fact(dl, "peak GPU memory", NX.bytes(r.peak_gpu_bytes));
    fact(dl, "peak host memory", NX.bytes(r.peak_host_bytes));
    fact(dl, "search: wall / GPU time", NX.duration(r.search_s) + " / " + NX.duration(r.search_gpu_s));
    fact(dl, "training: wall / GPU time", NX.duration(r.eval_train_s) + " / " + NX.duration(r.eval_gpu_s));
    fact(dl, "testing time", NX.duration(r.eval_test_s));
    fact(dl, "energy", NX.isNum(r.energy_j) ? (r.energy_j / 3.6e6).toFixed(3) + " kWh" : "-");
    fact(dl, "params / FLOPs", NX.count(r.params) + " / " + NX.count(r.flops));
    fact(dl, "devices", r.devices.join(", ") || "-");
    d.caps.forEach(function (cap) {
      fact(dl, "capped (" + cap.phase + ")", (cap.reason || "") + " after " + NX.duration(cap.elapsed_s));
    });
    d.notes.forEach(function (n) { fact(dl, "note", n); });
  }

  function drawFailure(f) {
    var box = NX.clear(document.getElementById("failure"));
    box.hidden = !f;
    if (!f) return;
    box.appendChild(el("h2", {text: "Failed in the " + f.failed_in}));
    box.appendChild(el("p", {class: "reason", text: f.reason || "(no reason stored)"}));
    if (f.error) box.appendChild(el("p", {text: f.error}));
    if (f.traceback) {
      var tb = [el("summary", {text: "traceback"}), el("pre", {text: f.traceback})];
      box.appendChild(el("details", {}, tb));
    }
  }

  function line(x, y, name, color, extra) {
    return Object.assign({x: x, y: y, mode: "lines+markers", name: name, line: {color: color}}, extra || {});
  }

  function drawSearch(s) {
    var node = document.getElementById("search");
    document.getElementById("search-note").textContent = s.note || (s.kind ? "" : "No search events yet.");
    var traces = [];
    var layout = {height: 320, margin: {l: 55, r: 55, t: 10, b: 40}, legend: {orientation: "h", y: -0.2},
                  yaxis: {title: {text: "top-1"}, tickformat: ".0%"}};
    if (s.kind === "oneshot") {
      var x = s.epochs.map(function (e) { return e.epoch; });
      var col = function (f) { return s.epochs.map(function (e) { return e[f]; }); };
      traces.push(line(x, col("valid_top1"), "valid top-1", NX.COLORS.search));
      traces.push(line(x, col("train_top1"), "train top-1", NX.COLORS.train));
      traces.push(line(x, col("entropy"), "entropy (nats)", NX.COLORS.top5,
                       {yaxis: "y2", line: {dash: "dot", color: NX.COLORS.top5}}));
      layout.xaxis = {title: {text: "search epoch"}, dtick: x.length < 15 ? 1 : undefined};
      layout.yaxis2 = {title: {text: "entropy (nats)"}, overlaying: "y", side: "right", rangemode: "tozero"};
    } else if (s.kind === "discrete") {
      var i = s.candidates.map(function (c) { return c.index; });
      var cand = function (f) { return s.candidates.map(function (c) { return c[f]; }); };
      traces.push(line(i, cand("score"), "score", NX.COLORS.search, {mode: "markers"}));
      traces.push(line(i, cand("best_score"), "best so far", NX.COLORS.top1,
                       {line: {shape: "hv", color: NX.COLORS.top1}}));
      layout.xaxis = {title: {text: "candidate"}};
      layout.yaxis = {title: {text: "score"}};
    }
    node.setAttribute("data-points", traces.length ? traces[0].x.length : 0);
    Plotly.react(node, traces, layout, NX.PLOT_CONFIG);
  }

  // One heatmap per group: edges (rows) over epochs (columns); the strongest op's probability by
  // default, or one op's through the menu. Hover names the op.
  function drawHeatmaps(maps, note) {
    var box = document.getElementById("heatmaps"), keep = {};
    if (!maps.length) {
      var why = note || "No architecture weights stored yet.";
      NX.clear(box).appendChild(el("p", {class: "hint", text: why}));
      return;
    }
    Array.from(box.querySelectorAll("p.hint")).forEach(function (n) { box.removeChild(n); });
    maps.forEach(function (m) {
      keep[m.group] = true;
      var node = box.querySelector('[data-group="' + CSS.escape(m.group) + '"]');
      if (!node) { node = el("div", {class: "heatmap", "data-group": m.group}); box.appendChild(node); }
      var edges = m.probs[0].length, ops = m.ops.map(NX.plotText);
      var rows = [], best = [], names = [];
      var x = m.epochs.map(function (e, j) { return NX.isNum(e) ? e : j + 1; });
      for (var e = 0; e < edges; e++) {
        rows.push("edge " + e);
        best.push(m.probs.map(function (ep) { return Math.max.apply(null, ep[e]); }));
        names.push(m.probs.map(function (ep) { return ops[ep[e].indexOf(Math.max.apply(null, ep[e]))]; }));
      }
      var perOp = ops.map(function (_, o) {
        return rows.map(function (_, e) { return m.probs.map(function (ep) { return ep[e][o]; }); });
      });
      var buttons = [{label: "strongest op", method: "restyle", args: [{z: [best], text: [names]}]}].concat(
        ops.map(function (name, o) {
          var text = rows.map(function () { return x.map(function () { return name; }); });
          return {label: name, method: "restyle", args: [{z: [perOp[o]], text: [text]}]};
        }));
      var trace = {type: "heatmap", z: best, x: x, y: rows, text: names, zmin: 0, zmax: 1,
                   colorscale: "Viridis",
                   hovertemplate: "epoch %{x}, %{y}: %{text} %{z:.3f}<extra></extra>",
                   colorbar: {title: {text: "p"}}};
      var height = Math.max(240, 110 + 22 * edges);  // the menu sits in the top margin, above the rows
      var layout = {title: {text: NX.plotText(m.group), font: {size: 12}},
                    height: height, margin: {l: 70, r: 10, t: 70, b: 40},
                    xaxis: {title: {text: "search epoch"}, dtick: x.length < 15 ? 1 : undefined},
                    yaxis: {autorange: "reversed"},
                    updatemenus: [{buttons: buttons, x: 0, xanchor: "left", y: 1 + 36 / (height - 110),
                                   yanchor: "top",
                                   direction: "down"}]};
      node.setAttribute("data-epochs", x.length);
      Plotly.react(node, [trace], layout, NX.PLOT_CONFIG);
    });
    Array.from(box.children).forEach(function (n) {
      if (!keep[n.getAttribute("data-group")]) { Plotly.purge(n); box.removeChild(n); }
    });
  }

  function svg(tag, attrs, text) {
    var n = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { n.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) n.textContent = String(text);
    return n;
  }

  // A graph as SVG: nodes on a line in order, each edge an arc above it labelled with its op.
  function archGraph(g) {
    var gap = 120, r = 16, n = g.nodes.length, idx = {};
    g.nodes.forEach(function (name, i) { idx[name] = i; });
    var span = g.edges.reduce(function (a, e) { return Math.max(a, Math.abs(idx[e[1]] - idx[e[0]])); }, 1);
    var top = 34 + 26 * span, width = Math.max(gap * (n - 1) + 80, 200), height = top + 40;
    var s = svg("svg", {width: width, height: height, viewBox: "0 0 " + width + " " + height,
                        class: "archgraph",
                        "data-nodes": n, "data-edges": g.edges.length});
    s.appendChild(svg("text", {x: 4, y: 14, class: "gname"}, g.name));
    var cx = function (i) { return 40 + gap * i; };
    g.edges.forEach(function (e) {
      var a = idx[e[0]], b = idx[e[1]], lift = 26 * Math.abs(b - a);
      var x0 = cx(a), x1 = cx(b), mid = (x0 + x1) / 2;
      var y0 = top - r, path = "M" + x0 + "," + y0 + " Q" + mid + "," + (y0 - 2 * lift) + " " + x1 + "," + y0;
      s.appendChild(svg("path", {d: path, class: "edge"}));
      s.appendChild(svg("text", {x: mid, y: top - r - lift - 3, class: "op", "text-anchor": "middle"}, e[2]));
    });
    g.nodes.forEach(function (name, i) {
      s.appendChild(svg("circle", {cx: cx(i), cy: top, r: r, class: "node"}));
      s.appendChild(svg("text", {x: cx(i), y: top + 4, class: "nname", "text-anchor": "middle"}, name));
    });
    return s;
  }

  function drawArch(a) {
    var box = NX.clear(document.getElementById("arch"));
    var title = a && a.what !== "chosen" ? "Arch (" + a.what + ")" : "Chosen arch";
    document.getElementById("arch-title").textContent = title;
    if (!a) { box.appendChild(el("p", {class: "hint", text: "No arch chosen yet."})); return; }
    box.appendChild(el("pre", {class: "archstr", text: a.arch}));
    a.graphs.forEach(function (g) { box.appendChild(el("div", {class: "graph"}, [archGraph(g)])); });
    if (!a.graphs.length) box.appendChild(el("pre", {text: a.describe}));
  }

  function drawEval(ev) {
    var node = document.getElementById("eval"), x = ev.epochs.map(function (e) { return e.epoch; });
    var col = function (f) { return ev.epochs.map(function (e) { return e[f]; }); };
    var traces = [line(x, col("test_top1"), "test top-1", NX.COLORS.top1, {connectgaps: true}),
                  line(x, col("test_top5"), "test top-5", NX.COLORS.top5, {connectgaps: true}),
                  line(x, col("val_top1"), "valid top-1", NX.COLORS.val1,
                       {connectgaps: true, line: {dash: "dot", color: NX.COLORS.val1}}),
                  line(x, col("val_top5"), "valid top-5", NX.COLORS.val5,
                       {connectgaps: true, line: {dash: "dot", color: NX.COLORS.val5}}),
                  line(x, col("train_top1"), "train top-1", NX.COLORS.train,
                       {line: {dash: "dash", color: NX.COLORS.train}})];
    traces = traces.filter(function (t) { return t.y.some(NX.isNum); });
    var layout = {height: 320, margin: {l: 55, r: 10, t: 10, b: 40}, legend: {orientation: "h", y: -0.2},
                  xaxis: {title: {text: "evaluation epoch"}},
                  yaxis: {title: {text: "accuracy"}, tickformat: ".0%"}};
    if (ev.final && NX.isNum(ev.final.test_top1)) {
      layout.annotations = [{xref: "paper", yref: "paper", x: 1, y: 1.02, xanchor: "right", showarrow: false,
                             text: "final test top-1 " + NX.pct(ev.final.test_top1) +
                                   ", top-5 " + NX.pct(ev.final.test_top5)}];
    }
    node.setAttribute("data-points", x.length);
    Plotly.react(node, traces, layout, NX.PLOT_CONFIG);
  }

  function render(d) {
    NX.banner(d);
    var c = d.cell;
    document.getElementById("title").textContent = c.label;
    document.title = "nasmix: " + c.label;
    var badge = document.getElementById("state");
    badge.textContent = c.state;
    badge.className = "badge " + c.state;
    document.getElementById("meta").textContent = [c.study && "study " + c.study, "space " + c.space,
      "strategy " + c.strategy, "estimator " + c.estimator, "dataset " + c.dataset, "seed " + c.seed,
      "id " + c.id].filter(Boolean).join(" · ");
    document.getElementById("json-link").setAttribute("href", "/api/cells/" + encodeURIComponent(c.id));
    document.getElementById("json-link").textContent = "/api/cells/" + c.id;
    drawFailure(d.failure);
    drawFacts(d);
    drawSearch(d.search);
    drawHeatmaps(d.search.heatmaps, d.search.note);
    drawArch(d.arch);
    drawEval(d.eval);
    document.getElementById("settings").textContent = JSON.stringify(d.settings, null, 2);
    document.body.setAttribute("data-version", d.version);
  }

  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    NX.getJSON("/api/cells/" + encodeURIComponent(cell)).then(render).catch(function (err) {
      NX.banner({error: String(err.message || err), read_at: Date.now() / 1000});
    }).then(function () {
      busy = false;
      if (again) { again = false; refresh(); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    cell = document.body.getAttribute("data-cell");
    refresh();
    NX.live(refresh);
    setInterval(refresh, 30000);
  });
})();
