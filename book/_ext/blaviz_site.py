"""Local Sphinx extension: the book's pages load nothing from outside the site, and little.

* plotly.js: plotly's *cartesian* bundle (the trace types the book draws: scatter, bar, heatmap;
  1.5 MB instead of the full 4.8 MB), vendored from npm's ``plotly.js-cartesian-dist-min`` into
  ``book/_static/vendor/``, is added to exactly the pages that hold a plotly figure (figures
  arrive as HTML from ``blaviz.viz.BookRenderer``; they only call ``Plotly.newPlot``). The
  build fails when its major version differs from the plotly.js inside the python plotly
  package (which Jupyter and Colab use), or when a page draws a trace type the bundle lacks.
* MathJax 3: a minimal copy of npm's ``mathjax`` (``book/_static/vendor/mathjax``: the loader,
  TeX input, CHTML output, its woff fonts and the TeX extensions that ``autoload`` fetches on
  demand); ``_config.yml`` points ``mathjax_path`` at its ``startup.js`` and lists the
  components in ``mathjax3_config``. This extension refuses to build if ``mathjax_path`` points
  off the site.
* the page's own look: ``_static/blaviz-site.css`` and ``blaviz-site.js`` on every page (wider
  column, equations and tables that scroll in their own box, figures that follow the dark
  theme); ``_static/blaviz-templates.js`` (the plotly templates, written from
  ``blaviz.viz.figures``) on pages with a figure.
* icons: see ``blaviz_icons`` (only the Font Awesome icons the pages show).
* plotly's own mime type: myst-nb does not know ``application/vnd.plotly.v1+json`` (it warns,
  and a figure that carries only that type - plotly's default under nbclient - silently vanishes
  from the page). This extension adds a myst-nb mime-render plugin that draws it with the same
  HTML as ``blaviz.viz.BookRenderer`` (``text/html`` keeps priority when both are present).
* ipywidgets: ``nb_ipywidgets_js`` must be empty (myst-nb's default loads require.js and the
  widget manager from CDNs); live-app cells are tagged ``remove-output`` in the notebooks, and
  this extension sets ``BLAVIZ_BOOK_BUILD=1``, which the notebook kernels inherit, so
  ``blaviz.viz.live_app`` builds no widgets during the build (widget comm traffic under nbclient
  sometimes stalls a cell until the execution timeout, nbclient issue #312).
* duplicated scripts: under jupyter-book 1.x sphinx-thebe's inline config is added twice and the
  second copy throws a SyntaxError on every page; repeated script entries are dropped.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from sphinx.errors import ConfigError

import blaviz_icons  # noqa: E402 (book/_ext is on the path: a local extension)

STATIC = Path(__file__).resolve().parents[1] / "_static"
PLOTLY_JS = "vendor/plotly-cartesian.min.js"
PLOTLY_MARKER = "plotly-graph-div"
TEMPLATES_JS = "blaviz-templates.js"
#: trace types in plotly.js's cartesian bundle (its README); the book draws scatter, bar, heatmap
CARTESIAN_TRACES = {"scatter", "bar", "box", "heatmap", "histogram", "histogram2d",
                    "histogram2dcontour", "contour", "image", "pie", "violin"}
_VERSION = re.compile(r"plotly\.js(?: \([^)]*\))? v(\d+)\.(\d+)\.(\d+)")


def _plotly_js_source() -> Path:
    path = STATIC / PLOTLY_JS
    if not path.is_file():
        raise ConfigError(f"blaviz_site: {path} not found (vendored from npm's plotly.js-cartesian-dist-min)")
    return path


def _major(text: str, what: str) -> int:
    match = _VERSION.search(text[:2000])
    if match is None:
        raise ConfigError(f"blaviz_site: no plotly.js version in the header of {what}")
    return int(match.group(1))


def check_plotly_versions() -> None:
    """The vendored bundle and the python plotly's plotly.js share their major version."""
    from plotly.offline import get_plotlyjs_version

    ours = _major(_plotly_js_source().read_text(encoding="utf-8", errors="replace"), PLOTLY_JS)
    theirs = int(get_plotlyjs_version().split(".")[0])
    if ours != theirs:
        raise ConfigError(f"blaviz_site: {PLOTLY_JS} is plotly.js {ours}.x but the python plotly "
                          f"package draws with {get_plotlyjs_version()}: vendor the matching "
                          "plotly.js-cartesian-dist-min from npm")


def _is_remote(url: str) -> bool:
    return "://" in url or url.startswith("//")


def _check_config(app, config) -> None:
    mathjax_path = getattr(config, "mathjax_path", "") or ""
    if _is_remote(mathjax_path):
        raise ConfigError(f"blaviz_site: mathjax_path={mathjax_path!r} is remote; the book must "
                          "serve MathJax itself (add the sphinx-mathjax-offline extension)")
    remote = [u for u in (getattr(config, "nb_ipywidgets_js", None) or {}) if _is_remote(u)]
    if remote:
        raise ConfigError(f"blaviz_site: nb_ipywidgets_js loads {remote} from a CDN; set it to {{}}")


def figure_trace_types(body: str) -> set:
    """Trace types drawn by the figures in a page's HTML (``var fig = {...}`` of
    ``blaviz.viz.plotly_html.figure_html``); a template's trace defaults do not count."""
    from json import JSONDecoder

    decoder, found = JSONDecoder(), set()
    for match in re.finditer(r"var fig = ", body):
        fig, _ = decoder.raw_decode(body, match.end())
        found |= {t.get("type", "scatter") for t in fig.get("data", []) if isinstance(t, dict)}
    return found


def _add_plotly_js(app, pagename, templatename, context, doctree) -> None:
    body = context.get("body") or ""
    if PLOTLY_MARKER in body:
        missing = figure_trace_types(body) - CARTESIAN_TRACES
        if missing:
            raise ConfigError(f"blaviz_site: {pagename} draws {sorted(missing)}, which plotly.js's "
                              "cartesian bundle lacks: vendor a larger bundle")
        app.add_js_file(TEMPLATES_JS, priority=100)
        app.add_js_file(PLOTLY_JS, priority=100)  # only on this page (Sphinx resets per page)


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    """Drop repeated script entries. Under jupyter-book 1.x, sphinx-thebe's inline config
    (``const THEBE_JS_URL = ...``) is added twice, and the second copy throws a SyntaxError
    ("Identifier 'THEBE_JS_URL' has already been declared") on every page."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        # the two copies differ only in filename None vs "" (registry vs builder)
        attributes = getattr(js, "__dict__", {}).get("attributes") or {}
        key = (str(js.__dict__.get("filename") or "") if hasattr(js, "__dict__") else str(js),
               tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def _write_templates_js(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from blaviz.viz.figures import templates_js

    static = Path(app.outdir) / "_static"
    static.mkdir(parents=True, exist_ok=True)
    (static / TEMPLATES_JS).write_text(templates_js(), encoding="utf-8")


class PlotlyJsonMimeRenderer:
    """myst-nb mime-render plugin: ``application/vnd.plotly.v1+json`` -> the book's figure HTML."""

    mime_type = "application/vnd.plotly.v1+json"
    # ascending priority: after text/html (30), before the images (40+) and text/plain (100)
    mime_priority_overrides = [("html", mime_type, 35), ("dirhtml", mime_type, 35),
                               ("singlehtml", mime_type, 35)]

    @staticmethod
    def handle_mime(renderer, data, inline):
        if data.mime_type != PlotlyJsonMimeRenderer.mime_type:
            return None
        from blaviz.viz.plotly_html import figure_html

        html = dataclasses.replace(data, mime_type="text/html", content=figure_html(data.content))
        return renderer.render_text_html_inline(html) if inline else renderer.render_text_html(html)


def _register_plotly_mime_plugin() -> None:
    """myst-nb finds mime plugins through entry points; a local extension has none, so wrap
    the lookup (used for rendering and for the mime priority list) to append ours."""
    from myst_nb.core import render

    if getattr(render.load_mime_renders, "_blaviz", False):
        return
    original = render.load_mime_renders

    def load_mime_renders():
        return [*original(), PlotlyJsonMimeRenderer]

    load_mime_renders._blaviz = True
    render.load_mime_renders = load_mime_renders


def setup(app):
    check_plotly_versions()  # fail early when the vendored bundle is missing or mismatched
    _register_plotly_mime_plugin()
    os.environ["BLAVIZ_BOOK_BUILD"] = "1"  # inherited by the kernels that execute the notebooks
    app.connect("config-inited", _check_config, priority=900)
    app.add_css_file("blaviz-site.css", priority=900)
    app.add_js_file("blaviz-site.js", priority=900)
    app.connect("html-page-context", _add_plotly_js)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("build-finished", _write_templates_js)
    app.connect("build-finished", blaviz_icons.write_icons_js)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
