"""Figures whose sliders take any value on the website: the browser recomputes them.

A precomputed plotly slider holds a few steps. For the figures readers play with most, the
book's website instead draws one setting and adds range and number inputs wired to a small
self-hosted JavaScript module (``book/_static/blaviz-free/``: ``math.js`` evaluates the same
formulas as blaviz in float64, ``traces.js`` builds the figure's traces, ``mount.js`` reads the
inputs and calls ``Plotly.react``). :class:`FreeFigure` carries both forms:

* in Jupyter (the plotly JSON mime type) it is the ordinary figure with its precomputed slider;
* its ``text/html`` (what the website shows, under the book's renderer) is :func:`free_html`:
  the figure for the initial setting, the data the module needs (keys, or ``q`` and ``k``, as
  base64 float64) and a loader that imports ``_static/blaviz-free/mount.js``.

The chapter figure functions return a :class:`FreeFigure`; tests/viz/test_free_js.py checks the
module against blaviz under node, tests/site/free_sliders.py in chromium on the built pages.
"""
from __future__ import annotations

import base64
import html
import json
import uuid

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from .plotly_html import RENDERER_NAME, figure_html

__all__ = ["FreeFigure", "free_html", "control", "float64_b64", "STATIC_DIR"]

#: where the module lives under the site's ``_static``
STATIC_DIR = "blaviz-free"

_LOADER = """<script type="text/javascript">
(function () {
  var root = document.currentScript.parentNode;
  // the site's own scripts sit in _static/: load the module from the same place, on any page
  var s = document.querySelector('script[src*="_static/"]');
  var base = s ? s.src.replace(/_static\\/.*$/, "_static/") : new URL("_static/", document.baseURI).href;
  import(base + "%s/mount.js").then(function (m) { return m.mount(root); }).catch(function (e) {
    root.setAttribute("data-error", String(e));
    console.warn("blaviz free sliders: " + e);
  });
})();
</script>""" % STATIC_DIR


def float64_b64(values) -> str:
    """Numbers as base64 of little-endian float64 (what ``mount.js`` decodes, exact)."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f8").tobytes()).decode("ascii")


def control(name: str, label: str, lo: int, hi: int) -> dict:
    """One integer input: ``name`` as the module knows it (``"W"`` or ``"N"``), an HTML ``label``,
    its range ``lo .. hi`` (for ``N`` the module offers the allowed values for the current ``W``)."""
    if not lo <= hi:
        raise ValueError(f"control {name!r}: need lo <= hi, got {lo} and {hi}")
    return dict(name=name, label=label, min=int(lo), max=int(hi))


def free_html(site_figure: go.Figure, spec: dict, *, div_id: str | None = None) -> str:
    """The website HTML of a free-slider figure: the figure, its spec, the module's loader.

    ``spec``: ``kind`` (``"dirichlet"`` or ``"effective-weights"``), ``controls`` (two
    :func:`control`), ``initial`` (``{"W": .., "N": ..}``), ``data`` (what the kind needs), and
    an optional ``note`` shown under the inputs.
    """
    body = json.dumps(spec, separators=(",", ":")).replace("</", "<\\/")
    return (f'<div class="blaviz-free" data-blaviz-free="{html.escape(spec["kind"])}">\n'
            f"{figure_html(site_figure, div_id=div_id)}\n"
            f'<script type="application/json" class="blaviz-free-spec">{body}</script>\n'
            f"{_LOADER}\n</div>")


class FreeFigure(go.Figure):
    """A plotly figure (with its precomputed slider) that the website draws with free sliders.

    ``figure`` is what Jupyter shows; ``site_figure`` (one setting, no slider) and ``spec`` (see
    :func:`free_html`) make the website's HTML. Everything else is a ``go.Figure``.
    """

    def __init__(self, figure=None, *, site_figure: go.Figure | None = None,
                 spec: dict | None = None, **kwargs):
        # plotly may rebuild a figure as type(fig)(...): without a spec it is a plain figure
        super().__init__(figure, **kwargs)
        if (site_figure is None) != (spec is None):
            raise ValueError("FreeFigure needs both site_figure and spec, or neither")
        self._free_site_figure = site_figure
        self._free_spec = spec

    @property
    def free_spec(self) -> dict | None:
        return self._free_spec

    def site_html(self, *, div_id: str | None = None) -> str:
        """The HTML the website shows (see :func:`free_html`)."""
        return free_html(self._free_site_figure, self._free_spec,
                         div_id=div_id or f"blaviz-free-{uuid.uuid4().hex[:12]}")

    def _repr_mimebundle_(self, include=None, exclude=None, validate=True, **kwargs):
        bundle = super()._repr_mimebundle_(include, exclude, validate, **kwargs)
        # only the book's renderer writes HTML for the website; Colab's draws the slider figure
        ours = self._free_spec is not None and pio.renderers.default == RENDERER_NAME
        if ours and "text/html" in bundle:
            bundle["text/html"] = self.site_html()
        return bundle

    def _ipython_display_(self):
        # IPython asks _ipython_display_ first, and plotly's goes through pio.show, which never
        # sees this class: publish our own bundle instead
        if self._free_spec is None or not pio.renderers.render_on_display:
            return super()._ipython_display_()
        from IPython.display import display

        display(self._repr_mimebundle_(), raw=True)
