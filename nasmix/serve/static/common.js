// nasmix serve: helpers shared by the study and cell pages.
// Every value from the store is written as text (textContent, text nodes); strings handed to
// Plotly, which reads a few HTML-like tags in labels, are escaped first (NX.plotText).
"use strict";

var NX = (function () {
  var COLORS = {top1: "#1f77b4", top5: "#ff7f0e", search: "#2ca02c", divider: "#808080",
                val1: "#9467bd", val5: "#8c564b", train: "#7f7f7f"};
  var PLOT_CONFIG = {displaylogo: false, responsive: true,
                     modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"]};

  // An element with attributes and children (strings become text nodes, never markup).
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "text") node.textContent = String(v);
      else if (k === "class") node.className = v;
      else if (k === "href") node.setAttribute("href", safeHref(v));
      else node.setAttribute(k, String(v));
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      var text = typeof c === "string" || typeof c === "number";
      node.appendChild(text ? document.createTextNode(String(c)) : c);
    });
    return node;
  }

  // Links only to this server's own pages.
  function safeHref(v) {
    v = String(v);
    return v.charAt(0) === "/" && v.charAt(1) !== "/" ? v : "#";
  }

  function cellHref(id) { return "/cell/" + encodeURIComponent(id); }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  function isNum(x) { return typeof x === "number" && isFinite(x); }

  function pct(x, digits) {
    return isNum(x) ? (100 * x).toFixed(digits === undefined ? 1 : digits) + "%" : "-";
  }

  function duration(s) {
    if (!isNum(s)) return "-";
    s = Math.max(0, s);
    if (s < 60) return Math.round(s) + "s";
    var m = Math.floor(s / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
    if (d > 0) return d + "d " + (h % 24) + "h";
    if (h > 0) return h + "h " + String(m % 60).padStart(2, "0") + "m";
    return m + "m " + String(Math.round(s % 60)).padStart(2, "0") + "s";
  }

  function bytes(b) {
    if (!isNum(b)) return "-";
    var units = ["B", "KB", "MB", "GB", "TB"], i = 0;
    while (b >= 1000 && i < units.length - 1) { b /= 1000; i++; }
    return (i ? b.toFixed(2) : b) + " " + units[i];
  }

  function count(n) {
    if (!isNum(n)) return "-";
    if (n >= 1e9) return (n / 1e9).toFixed(2) + " G";
    if (n >= 1e6) return (n / 1e6).toFixed(2) + " M";
    if (n >= 1e3) return (n / 1e3).toFixed(1) + " k";
    return String(n);
  }

  // Text as Plotly shows it literally: it reads <b>, <br>, <a> and entities in labels.
  function plotText(s) {
    return String(s === null || s === undefined ? "" : s)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  // The unit a time axis reaching `hours` reads best in (as the report's figures).
  function timeUnit(hours) {
    var s = (hours || 0) * 3600;
    if (s < 120) return {name: "seconds", k: 3600};
    if (s < 7200) return {name: "minutes", k: 60};
    return {name: "hours", k: 1};
  }

  function getJSON(url) {
    return fetch(url, {cache: "no-store", headers: {accept: "application/json"}}).then(function (r) {
      if (!r.ok) return r.json().catch(function () { return {}; }).then(function (body) {
        throw new Error(body.error || (r.status + " " + r.statusText));
      });
      return r.json();
    });
  }

  // Calls onVersion(version) on every new snapshot version: server-sent events, or polling
  // /api/version every 3 s when the stream cannot be opened.
  function live(onVersion) {
    var last = null, status = document.getElementById("live"), polling = null;
    function seen(v, error) {
      if (status) {
        status.textContent = error ? "live, store unreadable" : "live";
        status.className = "live on";
      }
      if (v !== last) { last = v; onVersion(v); }
    }
    function poll() {
      if (polling) return;
      if (status) { status.textContent = "polling"; status.className = "live"; }
      polling = setInterval(function () {
        getJSON("/api/version").then(function (m) { seen(m.version, m.error); }).catch(function () {
          if (status) { status.textContent = "disconnected"; status.className = "live off"; }
        });
      }, 3000);
    }
    if (!window.EventSource) { poll(); return; }
    var source = new EventSource("/api/stream");
    source.addEventListener("update", function (e) {
      var d = JSON.parse(e.data);
      seen(d.version, d.error);
    });
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) poll();
      else if (status) { status.textContent = "reconnecting"; status.className = "live off"; }
    };
  }

  // The store's read error (the data shown are the last good ones), or none.
  function banner(meta) {
    var b = document.getElementById("banner");
    if (!b) return;
    if (meta.error) {
      b.hidden = false;
      var when = new Date(1000 * meta.read_at).toLocaleTimeString();
      b.textContent = "The store could not be read: " + meta.error +
                      " (showing what was read at " + when + ")";
    } else {
      b.hidden = true;
      b.textContent = "";
    }
  }

  // Policy violations are counted, so a test can tell that no blocked script tried to run.
  window.__nasmixViolations = [];
  document.addEventListener("securitypolicyviolation", function (e) {
    window.__nasmixViolations.push(e.violatedDirective + " " + e.blockedURI);
  });

  return {COLORS: COLORS, PLOT_CONFIG: PLOT_CONFIG, el: el, clear: clear, cellHref: cellHref, isNum: isNum,
          pct: pct, duration: duration, bytes: bytes, count: count, plotText: plotText, timeUnit: timeUnit,
          getJSON: getJSON, live: live, banner: banner};
})();
