"""Local Sphinx extension: the book's pages load nothing from outside the site.

* plotly.js: the ``plotly.min.js`` shipped inside the installed plotly package is copied into
  ``_static/`` and added to exactly the pages that hold a plotly figure (figures arrive as HTML
  from ``blaviz.viz.BookRenderer``; they only call ``Plotly.newPlot``).
* MathJax: served by ``sphinx-mathjax-offline`` (pinned in requirements.txt, listed in
  ``_config.yml``). This extension refuses to build if ``mathjax_path`` points off the site.
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
import shutil
from pathlib import Path

from sphinx.errors import ConfigError

PLOTLY_JS = "plotly.min.js"
PLOTLY_MARKER = "plotly-graph-div"


def _plotly_js_source() -> Path:
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / PLOTLY_JS
    if not path.is_file():
        raise ConfigError(f"blaviz_site: {path} not found: is the plotly package complete?")
    return path


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


def _add_plotly_js(app, pagename, templatename, context, doctree) -> None:
    if PLOTLY_MARKER in (context.get("body") or ""):
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


def _copy_plotly_js(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    static.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_plotly_js_source(), static / PLOTLY_JS)


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
    _plotly_js_source()  # fail early when plotly is missing
    _register_plotly_mime_plugin()
    os.environ["BLAVIZ_BOOK_BUILD"] = "1"  # inherited by the kernels that execute the notebooks
    app.connect("config-inited", _check_config, priority=900)
    app.connect("html-page-context", _add_plotly_js)
    app.connect("html-page-context", _dedupe_scripts, priority=900)
    app.connect("build-finished", _copy_plotly_js)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
