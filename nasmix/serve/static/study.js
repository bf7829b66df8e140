// nasmix serve: the study page. Fetches /api/study on every new snapshot version and redraws
// the grid of cells, each cell's accuracy over runtime, and each group's ranking and Pareto front.
// Every string from the store is written as text (NX.el) or escaped for Plotly (NX.plotText).
"use strict";

(function () {
  var el = NX.el;

  function progressBar(label, fraction, done, total) {
    var bar = el("div", {class: "bar"}, [el("span", {class: "fill"})]);
    bar.firstChild.style.width = (NX.isNum(fraction) ? 100 * fraction : 0) + "%";
    var text = total ? done + "/" + total : (done ? String(done) : "-");
    return el("div", {class: "prog"}, [el("span", {class: "plabel", text: label}), bar,
                                        el("span", {class: "pnum", text: text})]);
  }

  function card(c) {
    var p = c.progress;
    var eta = NX.isNum(p.eta_s) ? NX.duration(p.eta_s) + " (" + p.eta_phase + ")" : "-";
    var best = NX.isNum(c.top1) ? "top-1 " + NX.pct(c.top1) : "";
    return el("a", {class: "card state-" + c.state, href: NX.cellHref(c.id), "data-cell": c.id,
                    "data-state": c.state}, [
      el("div", {class: "card-head"}, [el("span", {class: "badge " + c.state, text: c.state}),
                                       el("span", {class: "acc", text: best})]),
      el("div", {class: "label", text: c.label}),
      progressBar("S", p.search_fraction, p.search_done, p.search_total),
      progressBar("E", p.eval_fraction, p.eval_done, p.eval_total),
      el("div", {class: "times"}, [el("span", {text: "elapsed " + NX.duration(p.elapsed_s)}),
                                   el("span", {text: "ETA " + eta})]),
      c.reason ? el("div", {class: "reason", text: c.reason}) : null,
    ]);
  }

  // One cell's accuracy over runtime, as the report draws it: the search's own accuracy (green),
  // the chosen arch's test top-1 over search + training time, and a divider at the search's end.
  function curveTraces(c) {
    var cv = c.curve, end = Math.max(cv.end_h || 0, cv.projected_h || 0, cv.search_end_h || 0, 1e-6);
    var u = NX.timeUnit(end), k = u.k, traces = [], shapes = [];
    var search = cv.search.filter(function (p) { return NX.isNum(p[1]); });
    if (search.length) {
      traces.push({x: search.map(function (p) { return p[0] * k; }),
                   y: search.map(function (p) { return p[1]; }),
                   mode: "lines+markers", name: "search", line: {color: NX.COLORS.search},
                   hovertemplate: NX.plotText(cv.search_label) + ": %{y:.1%}<extra></extra>"});
    }
    var pts = cv.points.filter(function (p) { return NX.isNum(p.top1); });
    traces.push({x: pts.map(function (p) { return p.x_h * k; }), y: pts.map(function (p) { return p.top1; }),
                 mode: "lines+markers", name: "test top-1", line: {color: NX.COLORS.top1},
                 text: pts.map(function (p) { return "epoch " + p.epoch; }),
                 hovertemplate: "%{text}: %{y:.1%}<extra></extra>"});
    if (NX.isNum(cv.search_end_h)) {
      shapes.push({type: "line", xref: "x", yref: "paper", x0: cv.search_end_h * k, x1: cv.search_end_h * k,
                   y0: 0, y1: 1, line: {color: NX.COLORS.divider, dash: "dot", width: 1}});
    }
    var layout = {showlegend: false, height: 190, margin: {l: 40, r: 8, t: 8, b: 34}, shapes: shapes,
                  xaxis: {title: {text: u.name, font: {size: 10}}, rangemode: "tozero"},
                  yaxis: {tickformat: ".0%", range: [0, 1.02]}};
    if (!search.length && !pts.length) {
      layout.annotations = [{text: "no accuracy yet", showarrow: false, xref: "paper", yref: "paper",
                             x: 0.5, y: 0.5}];
      layout.xaxis.visible = false;
    }
    return {traces: traces, layout: layout, points: search.length + pts.length};
  }

  function drawCurves(cells) {
    var box = document.getElementById("curves"), ids = {};
    cells.forEach(function (c) {
      ids[c.id] = true;
      var node = box.querySelector('[data-curve="' + CSS.escape(c.id) + '"]');
      if (!node) {
        node = el("div", {class: "curve", "data-curve": c.id});
        box.appendChild(el("div", {class: "curve-box"}, [
          el("a", {class: "curve-title", href: NX.cellHref(c.id), text: c.label}), node]));
      }
      var t = curveTraces(c);
      node.setAttribute("data-points", t.points);
      node.setAttribute("data-state", c.state);
      Plotly.react(node, t.traces, t.layout, Object.assign({}, NX.PLOT_CONFIG, {displayModeBar: false}));
    });
    Array.from(box.children).forEach(function (b) {
      var n = b.querySelector("[data-curve]");
      if (!ids[n.getAttribute("data-curve")]) { Plotly.purge(n); box.removeChild(b); }
    });
  }

  function rankingTable(g) {
    var head = ["rank", "cell", "state", "top-1 within budget", "reached at", "cost", "final top-1",
                "Pareto"];
    var rows = g.ranking.map(function (r) {
      return el("tr", {class: r.pareto_layer === 1 ? "front" : null}, [
        el("td", {text: r.rank}),
        el("td", {}, [el("a", {href: NX.cellHref(r.id), text: r.label})]),
        el("td", {text: r.state}),
        el("td", {text: NX.pct(r.top1_at_budget)}),
        el("td", {text: NX.duration(NX.isNum(r.reach_h) ? 3600 * r.reach_h : null)}),
        el("td", {text: NX.duration(NX.isNum(r.cost_h) ? 3600 * r.cost_h : null)}),
        el("td", {text: NX.pct(r.top1)}),
        el("td", {text: r.pareto_layer === 1 ? "front" : (r.pareto_layer || "-")}),
      ]);
    });
    return el("table", {class: "ranking"}, [
      el("thead", {}, [el("tr", {}, head.map(function (h) { return el("th", {text: h}); }))]),
      el("tbody", {}, rows)]);
  }

  function paretoChart(node, g) {
    var r = g.ranking.filter(function (x) { return NX.isNum(x.cost_h) && NX.isNum(x.top1_at_budget); });
    var front = r.filter(function (x) { return x.pareto_layer === 1; })
      .sort(function (a, b) { return a.cost_h - b.cost_h; });
    var traces = [
      {x: r.map(function (x) { return x.cost_h; }), y: r.map(function (x) { return x.top1_at_budget; }),
       mode: "markers", name: "cells", marker: {color: NX.COLORS.top1, size: 9},
       text: r.map(function (x) { return NX.plotText(x.label); }),
       hovertemplate: "%{text}<br>cost %{x:.3g} h, top-1 %{y:.1%}<extra></extra>"},
      {x: front.map(function (x) { return x.cost_h; }),
       y: front.map(function (x) { return x.top1_at_budget; }),
       mode: "lines", name: "Pareto front", line: {color: NX.COLORS.top5, shape: "hv"}, hoverinfo: "skip"}];
    var layout = {height: 280, margin: {l: 50, r: 10, t: 10, b: 40}, showlegend: true,
                  legend: {orientation: "h", y: -0.25},
                  xaxis: {title: {text: (g.cost_basis === "gpu" ? "GPU" : "wall") + " hours"}},
                  yaxis: {title: {text: "top-1 within budget"}, tickformat: ".0%"}};
    Plotly.react(node, traces, layout, NX.PLOT_CONFIG);
  }

  function drawGroups(groups) {
    var box = NX.clear(document.getElementById("groups"));
    if (!groups.length) { box.appendChild(el("p", {class: "hint", text: "No cells yet."})); return; }
    groups.forEach(function (g) {
      var chart = el("div", {class: "pareto"});
      var note = g.unranked ? g.unranked + " cell(s) not ranked (running, failed or without a test)." : "";
      box.appendChild(el("div", {class: "group"}, [
        el("h3", {text: g.group}),
        el("p", {class: "hint", text: "budget " + NX.duration(3600 * g.budget_h) + " (" + g.cost_basis +
                                      " time). " + note}),
        el("div", {class: "group-body"}, [
          g.ranking.length ? rankingTable(g) : el("p", {text: "No ranked cell yet."}), chart])]));
      if (g.ranking.length) paretoChart(chart, g);
    });
  }

  function render(d) {
    NX.banner(d);
    var title = d.studies.length ? "nasmix study: " + d.studies.join(", ") : "nasmix study";
    document.getElementById("title").textContent = title;
    document.title = title;
    var counts = Object.keys(d.counts).filter(function (k) { return d.counts[k]; })
      .map(function (k) { return d.counts[k] + " " + k; });
    var summary = d.cells.length + " cells: " + (counts.join(", ") || "none");
    document.getElementById("counts").textContent = summary;
    var grid = NX.clear(document.getElementById("cells"));
    d.cells.forEach(function (c) { grid.appendChild(card(c)); });
    drawCurves(d.cells);
    drawGroups(d.groups);
    document.getElementById("footer").setAttribute("data-store", d.store);
    document.body.setAttribute("data-version", d.version);
  }

  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    NX.getJSON("/api/study").then(render).catch(function (err) {
      NX.banner({error: String(err.message || err), read_at: Date.now() / 1000});
    }).then(function () {
      busy = false;
      if (again) { again = false; refresh(); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    refresh();
    NX.live(refresh);
    setInterval(refresh, 30000);  // elapsed times and ETAs move on between events too
  });
})();
