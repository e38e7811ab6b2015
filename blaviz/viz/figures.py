"""Static interactive figures: plotly-native sliders over precomputed steps (no kernel needed)."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import plotly.graph_objects as go

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
