/* The book's page behaviour (loaded, not deferred, on every page by book/_ext/blaviz_site.py):
   - plotly figures follow the page's light/dark theme (pydata-sphinx-theme's data-theme on
     <html>) with the book's templates (window.BLAVIZ_TEMPLATES, _static/blaviz-templates.js,
     generated from blaviz.viz.figures), and put their legend below the plot (and below a
     slider) on screens narrower than 600 px, growing the figure by the legend's height;
   - display equations wider than their box get the class blaviz-scrolls (a visible cue);
   - tables wider than the column scroll inside a wrapper. */
(function () {
  "use strict";
  var NARROW_PX = 600;

  function theme() {
    return document.documentElement.dataset.theme === "dark" ? "dark" : "light";
  }

  /* --- figures ---------------------------------------------------------------------------- */
  function styleFigure(gd) {
    if (!window.Plotly || !gd || !gd._fullLayout || !gd.layout) { return; }
    var update = {};
    var templates = window.BLAVIZ_TEMPLATES;
    var want = theme();
    if (templates && gd._blavizTheme !== want && gd.dataset.blavizTemplate !== "none") {
      if (want === "dark" || gd._blavizTheme) {
        update.template = templates[want];
      }
      gd._blavizTheme = want;
    }
    var narrow = gd.clientWidth > 0 && gd.clientWidth < NARROW_PX;
    var fl = gd._fullLayout;
    if (narrow && !gd._blavizWide && fl.showlegend) {
      // the legend goes below everything (plot, axis titles, slider): at the bottom of the
      // figure, which grows by the legend's height
      var legend = gd.layout.legend || {};
      gd._blavizWide = {legend: JSON.parse(JSON.stringify(legend)),
                        marginB: fl.margin.b, height: fl.height, css: gd.style.height};
      update["legend.orientation"] = "h";
      update["legend.x"] = 0;
      update["legend.xanchor"] = "left";
      update["legend.yref"] = "container";
      update["legend.y"] = 0;
      update["legend.yanchor"] = "bottom";
      window.Plotly.relayout(gd, update).then(function () {
        var lh = Math.ceil(gd._fullLayout.legend._effHeight || gd._fullLayout.legend._height || 0);
        var wide = gd._blavizWide;
        if (!lh || !wide) { return; }
        gd.style.height = (wide.height + lh + 8) + "px";
        window.Plotly.relayout(gd, {"margin.b": wide.marginB + lh + 8, height: wide.height + lh + 8});
      });
      return;
    } else if (!narrow && gd._blavizWide) {
      var w = gd._blavizWide;
      gd._blavizWide = null;
      gd.style.height = w.css;
      update.legend = w.legend;
      update["margin.b"] = w.marginB;
      update.height = w.height;
    }
    if (Object.keys(update).length) { window.Plotly.relayout(gd, update); }
  }
  function styleAllFigures() {
    document.querySelectorAll(".plotly-graph-div").forEach(styleFigure);
  }
  /* figure_html (blaviz.viz.plotly_html) calls this right after Plotly.newPlot */
  window.blavizFigure = styleFigure;

  /* --- equations and tables --------------------------------------------------------------- */
  function markEquations() {
    document.querySelectorAll('mjx-container[display="true"]').forEach(function (c) {
      var box = c.closest("div.math");
      var scrolls = c.scrollWidth > c.clientWidth + 1;
      c.classList.toggle("blaviz-scrolls", scrolls);
      if (box) { box.classList.toggle("blaviz-scrolls", scrolls); }
    });
  }
  function wrapTables() {
    document.querySelectorAll("article table").forEach(function (t) {
      var p = t.parentElement;
      if (p.classList.contains("blaviz-table-scroll") ||
          p.classList.contains("pst-scrollable-table-container")) { return; }
      var wrap = document.createElement("div");
      wrap.className = "blaviz-table-scroll";
      p.insertBefore(wrap, t);
      wrap.appendChild(t);
    });
  }
  function whenMathJaxReady(fn, tries) {
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) {
      mj.startup.promise.then(fn);
    } else if ((tries || 0) < 100) {
      setTimeout(function () { whenMathJaxReady(fn, (tries || 0) + 1); }, 100);
    }
  }

  var resizeTimer = null;
  function onResize() {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { markEquations(); styleAllFigures(); }, 150);
  }

  document.addEventListener("DOMContentLoaded", function () {
    wrapTables();
    styleAllFigures();
    if (document.querySelector(".math")) { whenMathJaxReady(markEquations); }
    new MutationObserver(styleAllFigures)
      .observe(document.documentElement, {attributes: true, attributeFilter: ["data-theme"]});
    window.addEventListener("resize", onResize);
  });
  window.addEventListener("load", styleAllFigures);
})();
