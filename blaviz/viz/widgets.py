"""Live figures: ipywidgets sliders that recompute a plotly figure (needs a running kernel)."""
from __future__ import annotations

import html
import os
from typing import Any, Callable

import plotly.graph_objects as go

#: set (to "1") by the book's Sphinx extension; the kernels the website build starts inherit it
BUILD_ENV = "BLAVIZ_BOOK_BUILD"


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _parse_spec(name: str, spec: Any) -> tuple[str, dict]:
    """A slider spec -> (kind, options); kind is int, float, select, widget or fixed."""
    if hasattr(spec, "observe") and hasattr(spec, "value"):  # an ipywidgets value widget
        return "widget", {"value": spec.value}
    if isinstance(spec, tuple):
        if not 2 <= len(spec) <= 4:
            raise ValueError(f"{name}: a range spec is (min, max[, step[, value]]), got {spec!r}")
        lo, hi = spec[0], spec[1]
        ints = _is_int(lo) and _is_int(hi)
        step = spec[2] if len(spec) > 2 else (1 if ints else (hi - lo) / 100)
        value = spec[3] if len(spec) > 3 else lo
        if not lo <= value <= hi:
            raise ValueError(f"{name}: value {value!r} is outside [{lo}, {hi}]")
        kind = "int" if all(_is_int(x) for x in (lo, hi, step, value)) else "float"
        return kind, {"min": lo, "max": hi, "step": step, "value": value}
    if isinstance(spec, list):
        if not spec:
            raise ValueError(f"{name}: empty list of options")
        return "select", {"options": spec, "value": spec[0]}
    return "fixed", {"value": spec}


def _make_control(name: str, kind: str, options: dict, spec: Any, continuous_update: bool):
    import ipywidgets as W

    if kind == "widget":
        if not getattr(spec, "description", ""):
            spec.description = name
        return spec
    common = dict(description=name, style={"description_width": "initial"},
                  continuous_update=continuous_update, **options)
    cls = {"int": W.IntSlider, "float": W.FloatSlider, "select": W.SelectionSlider}[kind]
    return cls(**common)


class LiveAppPlaceholder:
    """What :func:`live_app` returns while the website is built: no widgets, a short note.

    The site cannot run the sliders' Python callbacks, and widget comm traffic under nbclient
    occasionally stalls a cell until the execution timeout (nbclient issue #312). The figure is
    still computed once, so a broken ``update_fn`` fails the build.
    """

    def __init__(self, names, figure: Callable[[], go.Figure]):
        self.names = list(names)
        self.controls: dict = {}
        self.figure = figure

    def redraw(self, _change=None) -> None:
        """Nothing to redraw: there are no widgets."""

    def _repr_html_(self) -> str:
        knobs = ", ".join(html.escape(n) for n in self.names) or "none"
        return ('<div class="admonition note blaviz-live-app"><p class="admonition-title">Live app</p>'
                f"<p>An app with sliders ({knobs}) runs here when the notebook is opened in "
                "Jupyter or Colab; it needs a Python kernel, so the website leaves it out.</p></div>")

    def __repr__(self) -> str:
        return f"LiveAppPlaceholder(sliders={self.names}): run the notebook in Jupyter or Colab"


def live_app(update_fn: Callable[..., Any], *, layout=None, continuous_update: bool = False,
             **sliders):
    """An ipywidgets app: sliders, and a plotly figure recomputed by ``update_fn``.

    Each keyword is one argument of ``update_fn``; its spec is
    ``(min, max[, step[, value]])`` (a tuple: an ``IntSlider`` when all are ints, else a
    ``FloatSlider``), a list of options (a ``SelectionSlider``), any ipywidgets value widget, or
    a plain value (fixed, no widget). ``update_fn(**values)`` returns a list of plotly traces
    (drawn with ``layout``) or a whole ``go.Figure``.

    The figure is drawn once immediately (so a broken ``update_fn`` fails the cell, also headless
    under nbclient/nbval) and again on every slider release. Returns the ``ipywidgets.VBox``
    (display it as the cell's last expression); it also carries ``app.controls`` (name ->
    widget), ``app.figure()`` (the figure for the current values) and ``app.redraw()``.

    On the static website the Python callbacks are dead: tag the cell ``remove-output`` and say
    in the text that the live version runs in Jupyter or Colab. While the website is built
    (environment variable ``BLAVIZ_BOOK_BUILD``, set by ``book/_ext/blaviz_site.py``) no widget
    is created: the figure is computed once and a :class:`LiveAppPlaceholder` is returned.
    """
    parsed = {name: _parse_spec(name, spec) for name, spec in sliders.items()}

    def figure_for(values: dict) -> go.Figure:
        result = update_fn(**values)
        if isinstance(result, go.Figure):
            return result
        return go.Figure(data=list(result), layout=layout)

    if os.environ.get(BUILD_ENV):  # building the website: no kernel will ever move these sliders
        defaults = {name: options["value"] for name, (_, options) in parsed.items()}
        figure_for(defaults)  # a broken update_fn still fails the build
        names = [name for name, (kind, _) in parsed.items() if kind != "fixed"]
        return LiveAppPlaceholder(names, lambda: figure_for(defaults))

    import ipywidgets as W
    from IPython.display import display

    controls, fixed = {}, {}
    for name, (kind, options) in parsed.items():
        if kind == "fixed":
            fixed[name] = options["value"]
        else:
            controls[name] = _make_control(name, kind, options, sliders[name], continuous_update)

    def figure() -> go.Figure:
        return figure_for({**fixed, **{name: w.value for name, w in controls.items()}})

    out = W.Output()

    def draw(fig: go.Figure) -> None:
        with out:
            out.clear_output(wait=True)
            display(fig)

    def redraw(_change=None) -> None:
        draw(figure())

    first = figure()  # outside the Output: an error here fails the cell loudly
    for widget in controls.values():
        widget.observe(redraw, names="value")
    draw(first)

    app = W.VBox([W.VBox(list(controls.values())), out])
    app.controls = controls
    app.figure = figure
    app.redraw = redraw
    return app
