"""Chapter 5 figures: BLA seen as kernel slot attention (the ABC view) and as GSA (slot space).

* :func:`slot_kernels_figure`: the fixed causal kernels ``h_j(D)`` through which BLA's slots read
  raw keys (:func:`blaviz.dirichlet.bla_slot_kernels`), next to GSA's constant-gate kernels
  ``(1 - a_j) a_j^D`` (:func:`blaviz.ops.kernel_slot.gsa_constant_gate_kernel`).
* :func:`transition_figure`: the slot-space transition ``T``, the write vector ``w``
  (:func:`blaviz.dirichlet.slot_space`) and the eigenvalues of ``T``.

Each has a static slider over the resolution ``N`` and a ``*_view`` for :func:`blaviz.viz.live_app`.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from blaviz.analysis.weights import resolution_grid, transition_eigenvalues, valid_resolution
from blaviz.dirichlet import bla_slot_kernels, check_config, slot_lags, slot_space

from .bla import _active_index, _empty_scatter, _slot_colors
from .figures import compact, slider_figure

__all__ = [
    "matched_gsa_decays", "slot_kernels_traces", "slot_kernels_layout", "slot_kernels_figure",
    "slot_kernels_view", "transition_traces", "transition_layout", "transition_figure",
    "transition_view",
]


# ----------------------------------------------------------------------------- kernels (ABC view)
def matched_gsa_decays(window: int, num_slots: int) -> torch.Tensor:
    """Constant GSA decays ``a_j`` whose kernels ``(1 - a_j) a_j^D`` have mean lag ``s_j = j W / S``.

    The mean lag of ``(1 - a) a^D`` is ``a / (1 - a)``, so ``a_j = s_j / (1 + s_j)`` (float64 ``[S]``).
    A like-for-like comparison: each GSA slot looks as far back, on average, as BLA's slot ``j``.
    """
    s = slot_lags(window, num_slots)
    return s / (1 + s)


def slot_kernels_traces(window: int, resolution: int, *, num_slots: int | None = None,
                        length: int | None = None, pad_to: int | None = None) -> list[go.Scatter]:
    """BLA's kernels ``h_j(D)`` (axes ``x/y``) then GSA's matched kernels (axes ``x2/y2``).

    ``S`` curves each (padded with empty curves to ``pad_to``); ``length`` defaults to ``3 W`` lags.
    """
    from blaviz.ops.kernel_slot import gsa_constant_gate_kernel

    W, N, S = check_config(window, resolution, num_slots)
    L = 3 * W if length is None else int(length)
    h = bla_slot_kernels(W, N, S, L).numpy()
    g = gsa_constant_gate_kernel(matched_gsa_decays(W, S), L).numpy()
    lags = slot_lags(W, S).numpy()
    D = np.arange(L)
    colors = _slot_colors(S)
    traces = []
    for kernels, (xa, ya), what in ((h, ("x", "y"), "BLA"), (g, ("x2", "y2"), "GSA")):
        for j in range(S):
            traces.append(go.Scatter(
                x=D, y=kernels[j], mode="lines", line=dict(color=colors[j], width=2), showlegend=False,
                xaxis=xa, yaxis=ya,
                hovertemplate=f"{what} slot {j} (s = {lags[j]:.3g})<br>h(%{{x}}) = %{{y:.4f}}<extra></extra>"))
        traces += [_empty_scatter(xaxis=xa, yaxis=ya) for _ in range(S, pad_to or S)]
    return traces


def slot_kernels_layout(window: int, *, length: int | None = None, height: int = 420) -> go.Figure:
    """Two panels sharing the lag axis: BLA's kernels (left) and GSA's matched kernels (right)."""
    L = 3 * window if length is None else int(length)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.07,
                        subplot_titles=("BLA: <i>h</i><sub>j</sub>(<i>D</i>), bumps at <i>s</i><sub>j</sub>",
                                        "GSA: (1 − <i>a</i><sub>j</sub>) <i>a</i><sub>j</sub><sup><i>D</i></sup>,"
                                        " same mean lag"))
    for col in (1, 2):
        fig.add_vrect(x0=-0.5, x1=window - 0.5, row=1, col=col, fillcolor="rgba(120,120,120,0.12)",
                      line_width=0, layer="below", exclude_empty_subplots=False)
        fig.update_xaxes(title_text="lag <i>D</i> = <i>t</i> − τ", range=[-0.5, L - 0.5], row=1, col=col)
    fig.update_yaxes(title_text="weight of slot <i>j</i> on <i>k</i><sub>t−D</sub>", row=1, col=1)
    fig.update_layout(height=height, margin=dict(l=60, r=20, t=50, b=40))
    return fig


def slot_kernels_figure(window: int = 16, resolutions: Sequence[int] | None = None, *,
                        active: int | None = None, length: int | None = None) -> go.Figure:
    """The kernels of the ABC view with a static slider over ``N`` (``S = N``)."""
    resolutions = list(resolutions or resolution_grid(window))
    pad = max(resolutions)
    steps = [(str(n), slot_kernels_traces(window, n, length=length, pad_to=pad)) for n in resolutions]
    return slider_figure(steps, slider_label="resolution N (= slots S)", active=_active_index(resolutions, active),
                         layout=slot_kernels_layout(window, length=length), digits=4)


def slot_kernels_view(window: int, resolution: int, num_slots: int | None = None) -> go.Figure:
    """One ``(W, N, S)`` of :func:`slot_kernels_figure` for :func:`blaviz.viz.live_app`.

    ``resolution`` is moved to the nearest allowed value (odd, or ``W``).
    """
    N = valid_resolution(window, resolution)
    fig = slot_kernels_layout(window)
    for tr in slot_kernels_traces(window, N, num_slots=num_slots):
        fig.add_trace(tr)
    S = N if num_slots is None else num_slots
    fig.update_layout(title=dict(text=f"W = {window}, N = {N}, S = {S}", font=dict(size=14), x=0))
    return fig


# ----------------------------------------------------------------------------- slot space (GSA view)
_CIRCLE = np.linspace(0, 2 * math.pi, 121)


def transition_traces(window: int, resolution: int) -> list:
    """``T`` (heatmap, ``x/y``), ``w`` (one-column heatmap, ``x2/y2``), the eigenvalues of ``T``
    with the unit circle and a label (``x3/y3``): five traces."""
    W, N, _ = check_config(window, resolution)
    Tm, w = slot_space(W, N)
    Tm, w = Tm.numpy(), w.numpy()
    ev = transition_eigenvalues(W, N)
    rho = float(ev.abs().max())
    label = ("<i>N</i> = <i>W</i>: <i>T</i> is the shift matrix,<br>nilpotent"
             " (<i>T</i><sup><i>W</i></sup> = 0): every eigenvalue is 0"
             if N == W else f"spectral radius {rho:.4f}<br>(slowest mode halves in {math.log(0.5) / math.log(rho):.1f} steps)")
    return [
        go.Heatmap(z=compact(Tm, 4), coloraxis="coloraxis", xaxis="x", yaxis="y", name="T",
                   hovertemplate="T[%{y}, %{x}] = %{z:.4f}<extra></extra>"),
        go.Heatmap(z=compact(w[:, None], 4), x=["w"], coloraxis="coloraxis", xaxis="x2", yaxis="y2",
                   name="w",
                   hovertemplate="w[%{y}] = %{z:.4f}<extra></extra>"),
        go.Scatter(x=np.cos(_CIRCLE), y=np.sin(_CIRCLE), mode="lines", line=dict(color="gray", width=1),
                   xaxis="x3", yaxis="y3", showlegend=False, hoverinfo="skip"),
        go.Scatter(x=ev.real.numpy(), y=ev.imag.numpy(), mode="markers", xaxis="x3", yaxis="y3",
                   marker=dict(size=9, color="#d62728", line=dict(color="#7f7f7f", width=1)),
                   showlegend=False, hovertemplate="%{x:.4f} %{y:+.4f} i<extra>eigenvalue</extra>"),
        go.Scatter(x=[0.0], y=[-1.2], mode="text", text=[label], xaxis="x3", yaxis="y3",
                   textposition="bottom center", showlegend=False, hoverinfo="skip"),
    ]


def _transition_ticks(window: int, resolution: int) -> dict:
    """A slider step's layout update: integer slot ticks on the ``T`` and ``w`` heatmaps and
    their shared color range (symmetric around 0)."""
    step = max(1, math.ceil(resolution / 10))
    Tm, w = slot_space(*check_config(window, resolution)[:2])
    lim = float(max(Tm.abs().max(), w.abs().max()))
    return {"xaxis.dtick": step, "yaxis.dtick": step, "yaxis2.dtick": step,
            "coloraxis.cmin": -lim, "coloraxis.cmax": lim}


def transition_layout(*, height: int = 470) -> go.Figure:
    """``T`` and ``w`` side by side (slot rows, top to bottom), the complex plane on the right."""
    fig = make_subplots(rows=1, cols=3, column_widths=[0.44, 0.05, 0.51], horizontal_spacing=0.07,
                        subplot_titles=("<i>T</i> (row <i>j</i> from <i>i</i>)", "<i>w</i>",
                                        "eigenvalues of <i>T</i>"))
    fig.update_yaxes(autorange="reversed", title_text="slot j", row=1, col=1)
    fig.update_yaxes(autorange="reversed", showticklabels=False, row=1, col=2)
    fig.update_xaxes(title_text="slot i", row=1, col=1)
    fig.update_xaxes(range=[-1.35, 1.35], zeroline=True, title_text="real part (imaginary upward)",
                     row=1, col=3)
    fig.update_yaxes(range=[-1.75, 1.2], zeroline=True, scaleanchor="x3", row=1, col=3)
    # one color scale for T and w; its colorbar at the far right (clear of panels and slider)
    fig.update_layout(height=height, margin=dict(l=60, r=20, t=50, b=40),
                      coloraxis=dict(colorscale="RdBu_r", cmid=0.0,
                                     colorbar=dict(x=1.02, xanchor="left", thickness=10, len=0.8,
                                                   tickfont=dict(size=10),
                                                   title=dict(text="<i>T</i>, <i>w</i>"))))
    return fig


def transition_figure(window: int = 16, resolutions: Sequence[int] | None = None, *,
                      active: int | None = None) -> go.Figure:
    """``T``, ``w`` and the spectrum of ``T`` with a static slider over ``N``."""
    resolutions = list(resolutions or resolution_grid(window))
    steps = [(str(n), transition_traces(window, n), _transition_ticks(window, n))
             for n in resolutions]
    return slider_figure(steps, slider_label="resolution N (= slots S)", layout=transition_layout(),
                         active=_active_index(resolutions, active), digits=4)


def transition_view(window: int, resolution: int) -> go.Figure:
    """One ``(W, N)`` of :func:`transition_figure`, for :func:`blaviz.viz.live_app`."""
    N = valid_resolution(window, resolution)
    fig = transition_layout()
    for tr in transition_traces(window, N):
        fig.add_trace(tr)
    fig.update_layout(title=dict(text=f"W = {window}, N = {N}", font=dict(size=14), x=0))
    fig.update_layout(_transition_ticks(window, N))
    return fig
