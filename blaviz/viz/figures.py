"""The book's figures: one plotly template (light and dark), and static sliders.

* :data:`TEMPLATE_LIGHT` / :data:`TEMPLATE_DARK` - the book's template, registered with plotly as
  ``"blaviz"`` and ``"blaviz_dark"`` (``setup_plotly`` makes ``"blaviz"`` the default). Paper and
  plot are transparent, so a figure sits on the page's own background; on the website
  ``_static/blaviz-site.js`` relayouts every figure with the dark one when the reader switches
  the theme (both are written to ``_static/blaviz-templates.js`` from here by the book's Sphinx
  extension: one source).
* :func:`slider_figure` - plotly-native sliders over precomputed steps (no kernel needed).

Checklist for a book figure (what the site check and a reader's eye look for):

1. No colors for paper, plot, grid or fonts in the figure: the template sets them, so dark mode
   works. Give lines colors only to say something (same method, same color across a chapter).
2. Heatmaps keep their colorbar (the template's default; never ``showscale=False``), with a
   title that names the quantity; a shared color scale uses one ``coloraxis``.
3. Math in titles, axis labels and legends as plotly's HTML, not pseudo-TeX: ``<i>h</i><sub>j</sub>(<i>D</i>)``,
   ``(<i>I</i> + <i>L</i><sub>C</sub>)<sup>−1</sup>``, Greek letters as Unicode (τ, λ). No ``$...$``:
   plotly would need MathJax's SVG output, which the site does not load.
4. Short titles (a phone is 390 px wide): the subject in the title, details in the caption text.
   Subplot titles of at most ~30 characters; more than two columns of subplots only when the
   panels are tiny anyway.
5. Legends never cover data: outside the plot (``legend=dict(orientation="h", y=-0.2)`` or to the
   right); the site moves every legend below the plot on screens narrower than 600 px.
6. Distinct lines look distinct without color too (``dash``/``marker`` for reference lines).
7. No fixed ``width``: figures take the column's width; set ``height`` only.
8. Data as float32 rounded to a few digits (:func:`compact`); a page stays < 4 MB cold.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io.json import to_json_plotly

FONT = ('-apple-system, BlinkMacSystemFont, "Segoe UI", "Helvetica Neue", Arial, '
        'sans-serif')
#: a palette that reads on white and on the dark theme's near-black
COLORWAY = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2",
            "#ff9da6", "#9d755d", "#bab0ac", "#eeca3b"]


def _template(*, text: str, muted: str, grid: str, line: str, hover_bg: str) -> go.layout.Template:
    axis = dict(gridcolor=grid, zerolinecolor=line, linecolor=line, tickcolor=line,
                automargin=True, title=dict(standoff=8), showline=True, ticks="outside")
    return go.layout.Template(
        layout=dict(
            font=dict(family=FONT, color=text, size=13),
            title=dict(font=dict(size=15), x=0.0, xref="paper", xanchor="left"),
            paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
            colorway=COLORWAY,
            colorscale=dict(sequential="Viridis", diverging="RdBu"),
            margin=dict(l=60, r=20, t=60, b=50),
            xaxis=axis, yaxis=axis,
            legend=dict(bgcolor="rgba(0,0,0,0)", font=dict(color=text)),
            hoverlabel=dict(bgcolor=hover_bg, font=dict(color=text, family=FONT)),
            annotationdefaults=dict(font=dict(color=text, size=13)),
            sliderdefaults=dict(font=dict(color=text), bordercolor=line, tickcolor=line,
                                currentvalue=dict(font=dict(color=text))),
            updatemenudefaults=dict(font=dict(color="#222222"), bordercolor=line),
            coloraxis=dict(colorbar=dict(thickness=12, outlinewidth=0,
                                         tickfont=dict(color=muted))),
        ),
        data=dict(
            heatmap=[go.Heatmap(colorbar=dict(thickness=12, outlinewidth=0,
                                              tickfont=dict(color=muted)))],
        ),
    )


TEMPLATE_LIGHT = _template(text="#222222", muted="#555555", grid="#e6e6e6", line="#9a9a9a",
                           hover_bg="#ffffff")
TEMPLATE_DARK = _template(text="#e6e6e6", muted="#b0b0b0", grid="#343a40", line="#7a7f85",
                          hover_bg="#22272e")
TEMPLATE_NAMES = {"light": "blaviz", "dark": "blaviz_dark"}


def register_templates() -> None:
    """Register the book's templates with plotly as ``"blaviz"`` and ``"blaviz_dark"``."""
    pio.templates[TEMPLATE_NAMES["light"]] = TEMPLATE_LIGHT
    pio.templates[TEMPLATE_NAMES["dark"]] = TEMPLATE_DARK


def templates_js() -> str:
    """``window.BLAVIZ_TEMPLATES = {light, dark}``: the templates for the site's theme switch."""
    light = to_json_plotly(TEMPLATE_LIGHT.to_plotly_json())
    dark = to_json_plotly(TEMPLATE_DARK.to_plotly_json())
    return ("/* Generated from blaviz.viz.figures by book/_ext/blaviz_site.py. */\n"
            f"window.BLAVIZ_TEMPLATES = {{light: {light}, dark: {dark}}};\n")

#: trace attributes holding numeric data that :func:`slider_figure` compacts
DATA_KEYS = ("x", "y", "z")


def compact(values, digits: int = 5):
    """Round floating-point data to ``digits`` significant digits and store it as float32.

    Figures embedded in a page carry every number; float32 halves their size and the rounding
    makes them compress well. Integers, booleans and strings come back unchanged (as given).
    float16 is never used: it loses too much (3 digits, overflow above 65504).
    """
    if values is None or isinstance(values, str):
        return values
    arr = np.asarray(values)
    if arr.dtype.kind != "f":
        return values
    a = arr.astype(np.float64)
    finite = np.isfinite(a) & (a != 0)
    out = a.copy()
    if finite.any():
        exponent = np.floor(np.log10(np.abs(a[finite])))
        scale = 10.0 ** (digits - 1 - np.clip(exponent, -300, 300))
        out[finite] = np.round(a[finite] * scale) / scale
    return out.astype(np.float32)


def _split_step(step) -> tuple[str, list, dict]:
    if not isinstance(step, (tuple, list)) or len(step) not in (2, 3):
        raise ValueError("each step must be (label, traces) or (label, traces, layout_update)")
    label, traces = step[0], list(step[1])
    layout_update = dict(step[2]) if len(step) == 3 and step[2] is not None else {}
    return str(label), traces, layout_update


def _base_layout(layout) -> go.Layout:
    if layout is None:
        return go.Layout()
    if isinstance(layout, go.Figure):  # e.g. plotly.subplots.make_subplots(...): take its axes
        return go.Layout(layout.layout)
    return go.Layout(layout)


def slider_figure(steps: Sequence[tuple[Any, Iterable]], *, slider_label: str, layout=None,
                  active: int = 0, digits: int = 5) -> go.Figure:
    """A figure with a plotly-native slider over precomputed ``steps`` (works on a static page).

    ``steps`` is a list of ``(label, traces)`` - optionally ``(label, traces, layout_update)``,
    where ``layout_update`` is applied when the step is selected (give every step the same
    keys). Every step must hold the same number of traces, of the same kinds in the same order.
    All traces of all steps are added to the figure; the slider toggles their visibility
    (``method="update"``), so step ``i`` shows traces ``i*n .. i*n+n-1`` (``n`` traces per step).
    Traces may live on subplots: pass the figure from ``plotly.subplots.make_subplots`` (or its
    layout) as ``layout`` and give each trace its ``xaxis``/``yaxis`` (``row``/``col`` are not
    used here). Numeric ``x``/``y``/``z`` data are stored as float32 rounded to ``digits``
    significant digits (see :func:`compact`).
    """
    parsed = [_split_step(s) for s in steps]
    if not parsed:
        raise ValueError("slider_figure needs at least one step")
    n = len(parsed[0][1])
    if n == 0:
        raise ValueError("each step needs at least one trace")
    kinds = [t.type for t in parsed[0][1]]
    for label, traces, _ in parsed:
        if [t.type for t in traces] != kinds:
            raise ValueError(f"step {label!r} has traces {[t.type for t in traces]}, "
                             f"but the first step has {kinds}: every step needs the same traces")
    if not 0 <= active < len(parsed):
        raise ValueError(f"active={active} is not a step index (0..{len(parsed) - 1})")

    fig = go.Figure(layout=_base_layout(layout))
    for i, (_, traces, _) in enumerate(parsed):
        for trace in traces:
            props = trace.to_plotly_json()  # a copy: the caller's objects stay untouched
            for key in DATA_KEYS:
                if props.get(key) is not None:
                    props[key] = compact(props[key], digits)
            props["visible"] = i == active
            fig.add_trace(trace.__class__(props))

    slider_steps = []
    for i, (label, _, layout_update) in enumerate(parsed):
        visible = [i * n <= k < (i + 1) * n for k in range(len(parsed) * n)]
        slider_steps.append(dict(label=label, method="update", args=[{"visible": visible}, layout_update]))
    if parsed[active][2]:
        fig.update_layout(parsed[active][2])
    fig.update_layout(sliders=[dict(
        active=active,
        currentvalue=dict(prefix=f"{slider_label} = "),
        pad=dict(t=50),
        steps=slider_steps,
    )])
    return fig
