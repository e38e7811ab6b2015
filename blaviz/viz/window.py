"""Chapter 3 figures: sliding a frequency window with bounded memory.

* :func:`spectrum_traces` / :func:`spectrum_figure` / :func:`spectrum_slider_figure`: the
  eigenvalues of the transition ``A = P - e r(W-1)^T`` in the complex plane, with the unit
  circle, their moduli by angle, and the gap ``1 - max |λ|`` against ``N``.
* :func:`impulse_traces` / :func:`impulse_figure` / :func:`impulse_slider_figure`: BLA's impulse
  response at one lag against the ideal windowed kernel ``D_N(t - s) [t < W]``, and the leakage
  against ``N``.
* :func:`leaving_traces` / :func:`leaving_slider_figure`: the sample leaving the window (and the
  newest one), what a buffered sliding DFT reads for it, and what BLA reads from its own state.

The numbers come from :mod:`blaviz.analysis.impulse` and :mod:`blaviz.analysis.weights`.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from blaviz.analysis.impulse import (Leakage, erasing_states, ideal_impulse_response,
                                     impulse_response, leakage, leaving_estimates,
                                     sample_key_channel, sliding_dft)
from blaviz.analysis.weights import (resolution_grid, spectral_radius, transition_eigenvalues,
                                     valid_resolution)

from .figures import compact, slider_figure

#: steps of a precomputed slider over N (every other odd N at W = 64): the page stays light
SLIDER_STEPS = 17


def _slider_grid(window: int, active: int) -> list[int]:
    """:func:`resolution_grid` thinned to :data:`SLIDER_STEPS`, keeping ``active`` when valid."""
    grid = resolution_grid(window, max_steps=SLIDER_STEPS)
    if active in resolution_grid(window) and active not in grid:
        grid = sorted({*grid, active})
    return grid

__all__ = ["spectrum_layout", "spectrum_curve", "spectrum_traces", "spectrum_figure",
           "spectrum_slider_figure", "impulse_layout", "leakage_curve", "impulse_traces",
           "impulse_figure", "impulse_slider_figure", "leaving_layout", "leaving_traces",
           "leaving_slider_figure"]

BLUE, RED, GREY = "#1f77b4", "#d62728", "#7f7f7f"


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().to(torch.float64).numpy() if isinstance(t, torch.Tensor) else t,
                      dtype=np.float64)


def _compacted(fig: go.Figure, traces) -> go.Figure:
    """Add ``traces`` to ``fig`` with their x/y data compacted (see :func:`compact`)."""
    for trace in traces:
        props = trace.to_plotly_json()
        for key in ("x", "y"):
            if props.get(key) is not None:
                props[key] = compact(props[key])
        fig.add_trace(trace.__class__(props))
    return fig


# ----------------------------------------------------------------------------- eigenvalues
def spectrum_layout(*, height: int = 430) -> go.Figure:
    """Three panels: the complex plane (``x/y``, equal scales), ``|λ|`` against ``arg λ``
    (``x2/y2``), and the gap ``1 - max |λ|`` against ``N`` (``x3/y3``, log scale)."""
    fig = make_subplots(rows=1, cols=3, column_widths=[0.32, 0.34, 0.34], horizontal_spacing=0.11,
                        subplot_titles=("eigenvalues λ of A", "|λ| against arg λ",
                                        "gap to the circle 1 - max |λ|"))
    fig.update_xaxes(title_text="Re λ", range=[-1.1, 1.1], row=1, col=1)
    fig.update_yaxes(title_text="Im λ", range=[-1.1, 1.1], scaleanchor="x", scaleratio=1, row=1, col=1)
    fig.update_xaxes(title_text="arg λ (radians)", range=[-3.3, 3.3], row=1, col=2)
    fig.update_yaxes(title_text="|λ|", row=1, col=2)
    fig.update_xaxes(title_text="resolution N", row=1, col=3)
    fig.update_yaxes(title_text="1 - max |λ|", type="log", row=1, col=3)
    fig.update_layout(height=height, margin=dict(l=50, r=20, t=90, b=40),
                      title=dict(y=0.98, yanchor="top", font=dict(size=14)),
                      legend=dict(orientation="h", x=0, y=1.1, yanchor="bottom"))
    return fig


def spectrum_curve(window: int, resolutions: Sequence[int] | None = None) -> tuple[list[int], list[float]]:
    """``(resolutions, spectral radii)``: by default every odd ``N < W`` and ``N = W``."""
    Ns = list(resolution_grid(window)) if resolutions is None else [int(n) for n in resolutions]
    return Ns, [spectral_radius(window, n) for n in Ns]


def _spectrum_title(W: int, N: int, rho: float) -> str:
    if N == W:
        return f"W = {W}, N = {N}: a shift register, A<sup>W</sup> = 0 (all eigenvalues are 0)"
    half_life = math.log(0.5) / math.log(rho)
    return (f"W = {W}, N = {N}: spectral radius {rho:.4f}, the slowest mode halves every "
            f"{half_life:.0f} steps")


def spectrum_traces(window: int, resolution: int, *, curve=None) -> list:
    """Seven traces: unit circle, circle of radius ``rho = max |λ|`` and the eigenvalues (complex
    plane); the line ``|λ| = 1`` and the eigenvalues' moduli by angle; ``1 - rho`` against N and
    the current N. ``curve`` is ``spectrum_curve(window)`` (pass it to reuse it across steps).
    """
    W, N = int(window), int(resolution)
    Ns, rhos = spectrum_curve(W) if curve is None else curve
    ev = transition_eigenvalues(W, N)
    rho = float(ev.abs().max())
    theta = np.linspace(-np.pi, np.pi, 181)
    return [
        go.Scatter(x=np.cos(theta), y=np.sin(theta), mode="lines", line=dict(color=GREY, width=1),
                   name="unit circle", xaxis="x", yaxis="y", hoverinfo="skip"),
        go.Scatter(x=rho * np.cos(theta), y=rho * np.sin(theta), mode="lines",
                   line=dict(color=RED, width=1, dash="dot"), name="radius max |λ|",
                   xaxis="x", yaxis="y", hoverinfo="skip"),
        go.Scatter(x=_np(ev.real), y=_np(ev.imag), mode="markers", marker=dict(color=BLUE, size=6),
                   name=f"eigenvalues ({N})", xaxis="x", yaxis="y",
                   hovertemplate="λ = %{x:.4f} %{y:+.4f}i<extra></extra>"),
        go.Scatter(x=[-np.pi, np.pi], y=[1.0, 1.0], mode="lines", line=dict(color=GREY, width=1),
                   showlegend=False, xaxis="x2", yaxis="y2", hoverinfo="skip"),
        go.Scatter(x=_np(torch.angle(ev)), y=_np(ev.abs()), mode="markers", marker=dict(color=BLUE, size=6),
                   showlegend=False, xaxis="x2", yaxis="y2",
                   hovertemplate="arg λ = %{x:.3f}: |λ| = %{y:.5f}<extra></extra>"),
        go.Scatter(x=np.asarray(Ns, dtype=np.float64), y=1.0 - np.asarray(rhos), mode="lines+markers",
                   line=dict(color=BLUE), marker=dict(size=4), name="1 - max |λ| (this W)",
                   xaxis="x3", yaxis="y3", hovertemplate="N=%{x}: %{y:.4g}<extra></extra>"),
        go.Scatter(x=[float(N)], y=[1.0 - rho], mode="markers", marker=dict(color=RED, size=11, symbol="circle-open",
                   line=dict(width=2)), name="this N", xaxis="x3", yaxis="y3"),
    ]


def spectrum_figure(window: int = 64, resolution: int = 9, *, curve_steps: int = 24) -> go.Figure:
    """The eigenvalue figure for one ``(W, N)`` (``N`` snapped to a valid value; for live sliders).

    The radius curve uses at most ``curve_steps`` resolutions.
    """
    W = int(window)
    N = valid_resolution(W, resolution)
    curve = spectrum_curve(W, resolution_grid(W, max_steps=curve_steps))
    fig = _compacted(spectrum_layout(), spectrum_traces(W, N, curve=curve))
    fig.update_layout(title_text=_spectrum_title(W, N, spectral_radius(W, N)))
    return fig


def spectrum_slider_figure(window: int = 64, resolutions: Sequence[int] | None = None, *,
                           active: int = 9) -> go.Figure:
    """The eigenvalue figure with a static slider over ``N`` (default: every odd ``N < W`` and ``W``)."""
    W = int(window)
    Ns = _slider_grid(W, active) if resolutions is None else [int(n) for n in resolutions]
    curve = spectrum_curve(W, Ns)
    steps = [(str(N), spectrum_traces(W, N, curve=curve), {"title.text": _spectrum_title(W, N, rho)})
             for N, rho in zip(*curve)]
    idx = Ns.index(active) if active in Ns else 0
    return slider_figure(steps, slider_label="resolution N", layout=spectrum_layout(), active=idx)


# ----------------------------------------------------------------------------- impulse responses
def impulse_layout(window: int, *, height: int = 430) -> go.Figure:
    """Response against time (``x/y``, the window's end marked at ``t = W``) and leakage vs N."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.1,
                        subplot_titles=("impulse response at lag s", "leakage against N"))
    fig.add_vrect(x0=window - 0.5, x1=3 * window, fillcolor=GREY, opacity=0.12, line_width=0,
                  row=1, col=1, exclude_empty_subplots=False)
    fig.add_annotation(x=window - 0.5, y=1, yref="y domain", xanchor="left", yanchor="top",
                       text=" after the window (t ≥ W)", showarrow=False, font=dict(size=11, color=GREY),
                       row=1, col=1, exclude_empty_subplots=False)
    fig.update_xaxes(title_text="time since the impulse t", range=[-1, 3 * window], row=1, col=1)
    fig.update_xaxes(title_text="resolution N", row=1, col=2)
    fig.update_yaxes(title_text="share", row=1, col=2)
    fig.update_layout(height=height, margin=dict(l=50, r=20, t=90, b=40),
                      title=dict(y=0.98, yanchor="top", font=dict(size=14)),
                      legend=dict(orientation="h", x=0, y=1.1, yanchor="bottom"))
    return fig


def leakage_curve(window: int, lag: float, resolutions: Sequence[int] | None = None):
    """``(resolutions, outside shares, inside errors)`` of :func:`blaviz.analysis.impulse.leakage`."""
    Ns = list(resolution_grid(window)) if resolutions is None else [int(n) for n in resolutions]
    leaks = [leakage(window, n, lag) for n in Ns]
    return Ns, [lk.outside for lk in leaks], [lk.inside_error for lk in leaks]


def _impulse_title(W: int, N: int, lag: float, outside: float, inside: float) -> str:
    return (f"W = {W}, N = {N}, lag s = {lag:g}: {100 * outside:.3g}% of the energy after the "
            f"window, error inside {inside:.2g}")


def impulse_traces(window: int, resolution: int, lag: float, *, curve=None) -> list:
    """Six traces: BLA's response and the ideal one over ``t = 0 .. 3W-1``, then the leakage
    curves (outside share, inside error) and the current ``N`` on each.

    ``curve`` is ``leakage_curve(window, lag)`` (pass it to reuse it across slider steps).
    """
    W, N = int(window), int(resolution)
    Ns, outs, ins = leakage_curve(W, lag) if curve is None else curve
    length = 3 * W
    t = np.arange(length, dtype=np.float64)
    h = impulse_response(W, N, [lag], length)[0]
    ideal = ideal_impulse_response(W, N, [lag], length)[0]
    if N in Ns:                                   # already on the curve
        i = list(Ns).index(N)
        lk = Leakage(outs[i], ins[i])
    else:
        lk = leakage(W, N, lag)
    n = np.asarray(Ns, dtype=np.float64)
    return [
        go.Scatter(x=t, y=_np(ideal), mode="lines", line=dict(color=GREY, width=3),
                   name="ideal: D<sub>N</sub>(t - s) [t < W]", xaxis="x", yaxis="y"),
        go.Scatter(x=t, y=_np(h), mode="lines", line=dict(color=BLUE, width=1.5),
                   name="BLA: R<sub>s</sub>(F(t))", xaxis="x", yaxis="y"),
        go.Scatter(x=n, y=np.asarray(outs), mode="lines", line=dict(color=RED),
                   name="energy share after the window", xaxis="x2", yaxis="y2",
                   hovertemplate="N=%{x}: %{y:.3g}<extra>outside</extra>"),
        go.Scatter(x=n, y=np.asarray(ins), mode="lines", line=dict(color=BLUE, dash="dot"),
                   name="relative error inside", xaxis="x2", yaxis="y2",
                   hovertemplate="N=%{x}: %{y:.3g}<extra>inside</extra>"),
        go.Scatter(x=[float(N)], y=[lk.outside], mode="markers", showlegend=False,
                   marker=dict(color=RED, size=10, symbol="circle-open", line=dict(width=2)),
                   xaxis="x2", yaxis="y2", hovertemplate="N=%{x}: %{y:.3g}<extra>outside</extra>"),
        go.Scatter(x=[float(N)], y=[lk.inside_error], mode="markers", showlegend=False,
                   marker=dict(color=BLUE, size=10, symbol="circle-open", line=dict(width=2)),
                   xaxis="x2", yaxis="y2", hovertemplate="N=%{x}: %{y:.3g}<extra>inside</extra>"),
    ]


def impulse_figure(window: int = 64, resolution: int = 9, lag: float = 16, *,
                   curve_steps: int = 16) -> go.Figure:
    """The impulse-response figure for one ``(W, N, s)``, for live sliders: ``N`` is snapped to a
    valid value, ``s`` clipped to ``0 .. W-1``; the leakage curve uses at most ``curve_steps`` N."""
    W = int(window)
    N = valid_resolution(W, resolution)
    lag = float(min(max(lag, 0), W - 1))
    curve = leakage_curve(W, lag, resolution_grid(W, max_steps=curve_steps))
    traces = impulse_traces(W, N, lag, curve=curve)
    fig = _compacted(impulse_layout(W), traces)
    outside, inside = traces[4].y[0], traces[5].y[0]   # the markers at this N
    fig.update_layout(title_text=_impulse_title(W, N, lag, outside, inside))
    return fig


def impulse_slider_figure(window: int = 64, lag: float = 16, resolutions: Sequence[int] | None = None,
                          *, active: int = 9) -> go.Figure:
    """The impulse-response figure with a static slider over ``N`` (default: the odd ``N < W``
    and ``N = W``, thinned to :data:`SLIDER_STEPS`)."""
    W = int(window)
    Ns = _slider_grid(W, active) if resolutions is None else [int(n) for n in resolutions]
    curve = leakage_curve(W, lag, Ns)
    steps = [(str(N), impulse_traces(W, N, lag, curve=curve),
              {"title.text": _impulse_title(W, N, lag, out, inside)})
             for N, out, inside in zip(*curve)]
    idx = Ns.index(active) if active in Ns else 0
    return slider_figure(steps, slider_label="resolution N", layout=impulse_layout(W), active=idx)


# ----------------------------------------------------------------------------- the leaving sample
def leaving_layout(*, height: int = 380) -> go.Figure:
    """One panel: the value leaving the window against time."""
    fig = go.Figure()
    fig.update_layout(height=height, margin=dict(l=50, r=20, t=90, b=40),
                      title=dict(y=0.98, yanchor="top", font=dict(size=14)),
                      legend=dict(orientation="h", x=0, y=1.04, yanchor="bottom"),
                      xaxis=dict(title="time t"), yaxis=dict(title="value leaving at t"))
    return fig


def leaving_traces(x: torch.Tensor, window: int, resolution: int) -> list:
    """Four traces over time: the true leaving sample ``x_{t-W}``, the newest sample of the
    previous window ``x_{t-1}``, the buffered sliding DFT's reading of the leaving sample
    ``R_{W-1}(F(t-1))``, and BLA's reading from its own state (what it erases).

    The newest sample is there because the window is periodic: lag ``W-1`` neighbours lag 0, and
    a blurry reading at the far end also picks up the near end.
    """
    W, N = int(window), int(resolution)
    x = torch.as_tensor(x, dtype=torch.float64)
    T = x.shape[0]
    t = np.arange(T, dtype=np.float64)
    leaving = torch.cat([torch.zeros(min(W, T), dtype=torch.float64), x[:max(T - W, 0)]])
    newest = torch.cat([torch.zeros(1, dtype=torch.float64), x[:-1]])
    sdft = leaving_estimates(sliding_dft(x, W, N), W, N)
    bla = leaving_estimates(erasing_states(x, W, N), W, N)
    return [
        go.Scatter(x=t, y=_np(leaving), mode="markers", marker=dict(color="#b279a2", size=4),
                   name="x<sub>t-W</sub> (leaving)"),
        go.Scatter(x=t, y=_np(newest), mode="lines", line=dict(color="#ff7f0e", width=1, dash="dot"),
                   name="x<sub>t-1</sub> (newest)"),
        go.Scatter(x=t, y=_np(sdft), mode="lines", line=dict(color=GREY, width=3),
                   name="sliding DFT's blurry reading"),
        go.Scatter(x=t, y=_np(bla), mode="lines", line=dict(color=BLUE, width=1.5),
                   name="BLA's reading (what it erases)"),
    ]


def leaving_slider_figure(x: torch.Tensor | None = None, window: int = 64,
                          resolutions: Sequence[int] = (3, 9, 21, 41, 63, 64), *,
                          active: int = 9) -> go.Figure:
    """:func:`leaving_traces` with a static slider over ``N``; ``x`` defaults to four windows of
    ``sample_key_channel`` (slow cosines per window, six spikes)."""
    W = int(window)
    if x is None:
        x = sample_key_channel(4 * W, seed=1, num_spikes=6, period=W)
    x = torch.as_tensor(x, dtype=torch.float64)
    Ns = [int(n) for n in resolutions]
    steps = []
    for N in Ns:
        traces = leaving_traces(x, W, N)
        gap = float(np.sqrt(np.mean((traces[3].y - traces[2].y) ** 2)))
        steps.append((str(N), traces, {"title.text": f"W = {W}, N = {N}: RMS gap between BLA's "
                                                      f"reading and the buffer's {gap:.2g}"}))
    idx = Ns.index(active) if active in Ns else 0
    return slider_figure(steps, slider_label="resolution N", layout=leaving_layout(), active=idx)
