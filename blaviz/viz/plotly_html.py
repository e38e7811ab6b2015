"""A plotly renderer that writes HTML, so figures reach the static website.

Why: plotly 7 executed headless (nbclient, as the book build does) emits only its JSON mime type
``application/vnd.plotly.v1+json``. Sphinx/myst-nb cannot render that, and the figure silently
vanishes from the page. The :class:`BookRenderer` emits *both*

* ``application/vnd.plotly.v1+json`` - JupyterLab, Notebook 7 and VS Code draw this natively, and
* ``text/html`` - a ``<div>`` plus a ``<script>`` calling ``Plotly.newPlot``; the website renders
  this one. It loads nothing: plotly.js is served by the site itself (``book/_ext/blaviz_site.py``
  adds the vendored cartesian bundle from ``book/_static/vendor``), and no MathJax is injected
  (the page has its own). After drawing it calls ``window.blavizFigure`` when the page defines
  it (``book/_static/blaviz-site.js``: dark theme, legends below the plot on a phone).

On Colab (which renders only HTML and is online) :func:`setup_plotly` selects plotly's own
``colab`` renderer instead.
"""
from __future__ import annotations

import json
import sys
import uuid

import plotly.io as pio
from plotly.io.base_renderers import MimetypeRenderer

RENDERER_NAME = "blaviz"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
DEFAULT_CONFIG = {"responsive": True, "displaylogo": False}

_HTML = """<div class="blaviz-plotly">
<div id="{div_id}" class="plotly-graph-div" style="height:{height}; width:{width};"></div>
<script type="text/javascript">
(function () {{
  var fig = {fig_json};
  function draw() {{
    var el = document.getElementById("{div_id}");
    if (!el) {{ return true; }}
    if (!window.Plotly) {{ return false; }}
    window.Plotly.newPlot(el, fig.data, fig.layout || {{}}, fig.config || {{}});
    if (window.blavizFigure) {{ window.blavizFigure(el); }}  // theme and narrow-screen legend
    return true;
  }}
  if (!draw()) {{
    window.addEventListener("load", function () {{
      if (!draw()) {{
        document.getElementById("{div_id}").textContent =
          "[plotly.js is not loaded on this page: the figure cannot be drawn]";
      }}
    }});
  }}
}})();
</script>
</div>"""


def _fig_dict(fig) -> dict:
    return fig if isinstance(fig, dict) else fig.to_dict()


def _css_size(value, default: str) -> str:
    return default if value is None else f"{float(value):g}px"


def figure_html(fig, *, config: dict | None = None, div_id: str | None = None) -> str:
    """HTML for one figure: a div and a script calling ``Plotly.newPlot`` (loads no script).

    ``fig`` is a ``plotly.graph_objects.Figure`` or its ``to_dict()``. Numeric arrays travel as
    plotly's base64 typed arrays (float32 stays 4 bytes a number).
    """
    fig_dict = dict(_fig_dict(fig))
    cfg = dict(DEFAULT_CONFIG)
    cfg.update(fig_dict.get("config") or {})
    cfg.update(config or {})
    fig_dict["config"] = cfg
    layout = fig_dict.get("layout") or {}
    fig_json = pio.to_json(fig_dict, validate=False, remove_uids=True)
    # a JSON string may contain "</script>": keep the HTML parser out of it
    fig_json = fig_json.replace("</", "<\\/")
    return _HTML.format(
        div_id=div_id or f"blaviz-{uuid.uuid4().hex[:12]}",
        height=_css_size(layout.get("height"), "450px"),
        width=_css_size(layout.get("width"), "100%"),
        fig_json=fig_json,
    )


class BookRenderer(MimetypeRenderer):
    """Plotly renderer emitting ``text/html`` (website) and the plotly JSON mime type (Jupyter)."""

    def __init__(self, config: dict | None = None):
        self.config = dict(config) if config else {}

    def to_mimebundle(self, fig_dict):
        html = figure_html(fig_dict, config=self.config)
        as_json = json.loads(pio.to_json(fig_dict, validate=False, remove_uids=True))
        if self.config:
            as_json["config"] = {**DEFAULT_CONFIG, **self.config}
        return {PLOTLY_MIME: as_json, "text/html": html}


def setup_plotly(*, template: str | None = "blaviz", colab: bool | None = None) -> str:
    """Register the book's renderer and select it (idempotent). Returns the renderer's name.

    ``template`` sets ``plotly.io.templates.default`` (``None`` leaves it alone); the default
    is the book's own (:mod:`blaviz.viz.figures`, light; dark follows the site's theme). ``colab``
    forces or disables the Colab branch; by default it is detected from ``google.colab``.
    """
    from .figures import register_templates

    register_templates()
    pio.renderers[RENDERER_NAME] = BookRenderer()
    in_colab = ("google.colab" in sys.modules) if colab is None else bool(colab)
    pio.renderers.default = "colab" if in_colab else RENDERER_NAME
    if template is not None:
        pio.templates.default = template
    return pio.renderers.default
