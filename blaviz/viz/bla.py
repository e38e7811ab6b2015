"""Chapter 4 figures: BLA's slots, the weight each query puts on the past, and BLA's state.

Each figure has a static form with a plotly-native slider over the resolution ``N`` (works on the
website) and a ``*_view`` function drawing one ``N`` for :func:`blaviz.viz.live_app` (any ``N``
and ``W``, needs a kernel). The numbers come from :mod:`blaviz.ops.bla`, :mod:`blaviz.dirichlet`,
:mod:`blaviz.state_size` and :mod:`blaviz.analysis.weights`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from blaviz.analysis.weights import (resolution_grid, swa_attention_weights, valid_resolution,
                                     weights_by_lag)
from blaviz.dirichlet import check_config, dirichlet_kernel, slot_lags
from blaviz.ops.bla import bla_attention_weights
from blaviz.state_size import state_size

from .figures import compact, slider_figure
from .free import FreeFigure, control, float64_b64

__all__ = [
    "slot_read_traces", "slot_read_layout", "slot_read_figure", "slot_read_view",
    "effective_weights_traces", "effective_weights_layout", "effective_weights_figure",
    "effective_weights_view", "random_qk",
    "state_vs_window_traces", "state_vs_window_figure", "STATE_WINDOW_LAYOUT",
]

SLOT_COLORS = "Turbo"


def _active_index(values: Sequence, active) -> int:
    values = list(values)
    if active is None:
        return 0
    if active not in values:
        raise ValueError(f"active={active!r} is not one of the slider values {values}")
    return values.index(active)


def _slot_colors(n: int) -> list[str]:
    from plotly.colors import sample_colorscale

    return sample_colorscale(SLOT_COLORS, [0.1 + 0.8 * i / max(n - 1, 1) for i in range(n)])


def _empty_scatter(**kw) -> go.Scatter:
    """A placeholder line: every slider step must hold the same number of traces."""
    return go.Scatter(x=[], y=[], mode="lines", showlegend=False, hoverinfo="skip", **kw)


# ----------------------------------------------------------------------------- slots and their read
def slot_read_traces(window: int, resolution: int, *, num_slots: int | None = None,
                     periods: float = 2.0, samples_per_lag: int = 4,
                     pad_to: int | None = None) -> list[go.Scatter]:
    """How each slot reads the (erasure-corrected) window: ``D_N(D - s_j)`` against lag ``D``.

    One curve per slot ``j`` (``periods * W`` lags, sampled ``samples_per_lag`` times per lag),
    then one marker trace at the slot lags ``s_j``. With ``pad_to``, empty curves are added so that
    every resolution of a slider holds ``pad_to`` curves.
    """
    W, N, S = check_config(window, resolution, num_slots)
    lags = slot_lags(W, S)
    x = torch.arange(0, periods * W * samples_per_lag + 1, dtype=torch.float64) / samples_per_lag
    colors = _slot_colors(S)
    traces = []
    for j in range(S):
        y = dirichlet_kernel(x - lags[j], N, W)
        traces.append(go.Scatter(
            x=x.numpy(), y=y.numpy(), mode="lines", line=dict(color=colors[j], width=2),
            name=f"slot {j}", showlegend=False,
            hovertemplate=f"slot {j} (s = {lags[j].item():.3g})<br>lag %{{x:.2f}}: %{{y:.3f}}<extra></extra>",
        ))
    for _ in range(S, pad_to or S):
        traces.append(_empty_scatter())
    peak = float(dirichlet_kernel(torch.zeros(1), N, W)[0])
    traces.append(go.Scatter(
        x=lags.numpy(), y=np.full(S, peak), mode="markers+text", name="slot lags s<sub>j</sub>",
        marker=dict(color=colors, size=9, line=dict(color="black", width=1)),
        text=[str(j) for j in range(S)] if S <= 16 else None, textposition="top center",
        showlegend=False, hovertemplate="slot %{text}: s = %{x:.3g}<extra></extra>",
    ))
    return traces


def slot_read_layout(window: int, *, periods: float = 2.0, height: int = 380) -> dict:
    """Layout for :func:`slot_read_traces`: the window ``[0, W)`` shaded, its alias dashed."""
    return dict(
        xaxis=dict(title="lag <i>D</i> (tokens back from the query)", range=[-0.5, periods * window + 0.5]),
        yaxis=dict(title="read weight <i>D<sub>N</sub></i>(<i>D</i> − <i>s<sub>j</sub></i>)"),
        shapes=[dict(type="rect", xref="x", yref="paper", x0=-0.5, x1=window - 0.5, y0=0, y1=1,
                     fillcolor="rgba(120,120,120,0.12)", line=dict(width=0), layer="below"),
                dict(type="line", xref="x", yref="paper", x0=window - 0.5, x1=window - 0.5, y0=0, y1=1,
                     line=dict(color="gray", dash="dash", width=1))],
        annotations=[dict(x=window / 2, y=1.07, xref="x", yref="paper", showarrow=False,
                          text=f"the window: lags 0..{window - 1}", yanchor="bottom")],
        margin=dict(l=60, r=20, t=60, b=40), height=height,
    )


def slot_read_figure(window: int = 16, resolutions: Sequence[int] | None = None, *,
                     active: int | None = None, periods: float = 2.0) -> go.Figure:
    """The slots' read kernels ``D_N(D - s_j)`` with a static slider over ``N`` (``S = N``)."""
    resolutions = list(resolutions or resolution_grid(window))
    pad = max(resolutions)
    steps = [(str(n), slot_read_traces(window, n, periods=periods, pad_to=pad)) for n in resolutions]
    return slider_figure(steps, slider_label="resolution N (= slots S)", active=_active_index(resolutions, active),
                         layout=slot_read_layout(window, periods=periods))


def slot_read_view(window: int, resolution: int, num_slots: int | None = None) -> go.Figure:
    """One ``(W, N, S)`` of :func:`slot_read_figure`, for :func:`blaviz.viz.live_app`.

    ``resolution`` is moved to the nearest allowed value (odd, or ``W``); ``num_slots=None``
    means ``S = N``.
    """
    N = valid_resolution(window, resolution)
    fig = go.Figure(data=slot_read_traces(window, N, num_slots=num_slots), layout=slot_read_layout(window))
    S = N if num_slots is None else num_slots
    fig.update_layout(title=dict(text=f"W = {window}, N = {N}, S = {S}", font=dict(size=14)))
    return fig


# ----------------------------------------------------------------------------- effective weights
def random_qk(seq_len: int, head_dim: int = 16, *, seed: int = 0, device=None):
    """Random float64 queries and keys ``[1, seq_len, 1, head_dim]`` from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(1, seq_len, 1, head_dim, generator=g, dtype=torch.float64) for _ in range(2))
    return q.to(device), k.to(device)


def _signed_heatmap(a: np.ndarray, lim: float, name: str, xaxis: str, yaxis: str, *,
                    showscale: bool = False) -> go.Heatmap:
    # one colour bar serves both heatmaps (they share zmin/zmax), beside the upper row
    return go.Heatmap(
        z=compact(a, 4), colorscale="RdBu_r", zmid=0.0, zmin=-lim, zmax=lim, showscale=showscale,
        colorbar=dict(title=dict(text="weight", side="right"), thickness=12, len=0.56, y=1,
                      yanchor="top", outlinewidth=0),
        xaxis=xaxis, yaxis=yaxis, name=name,
        hovertemplate="t = %{y}, τ = %{x}: %{z:.4f}<extra>" + name + "</extra>",
    )


def effective_weights_traces(q: torch.Tensor, k: torch.Tensor, window: int, resolution: int, *,
                             query: int = -1, batch: int = 0, head: int = 0,
                             swa: torch.Tensor | None = None) -> list:
    """Four traces: BLA's ``T x T`` weights on raw values, SWA's, and query ``t``'s row by lag for both.

    Heatmaps go on axes ``x/y`` (BLA) and ``x2/y2`` (SWA); the two lag profiles on ``x3/y3``
    (see :func:`effective_weights_layout`). ``swa`` may pass SWA's ``[T, T]`` matrix precomputed.
    """
    W, N, _ = check_config(window, resolution)
    A = bla_attention_weights(q, k, W, N)[batch, head].detach().cpu().to(torch.float64)
    if swa is None:
        swa = swa_attention_weights(q, k, W)[batch, head]
    swa = swa.detach().cpu().to(torch.float64)
    T = A.shape[-1]
    t = query + T if query < 0 else query
    # one colour scale for both, set past the start of the sequence (where weights are largest)
    steady = slice(min(W, T - 1), None)
    lim = float(max(A[steady].abs().max(), swa[steady].abs().max()))
    bla_row, swa_row = weights_by_lag(A, t), weights_by_lag(swa, t)
    lags = np.arange(t + 1)
    return [
        _signed_heatmap(A.numpy(), lim, f"BLA, N = {N}", "x", "y"),
        _signed_heatmap(swa.numpy(), lim, f"SWA, W = {W}", "x2", "y2", showscale=True),
        go.Scatter(x=lags, y=swa_row.numpy(), mode="lines+markers", name=f"SWA, W = {W}",
                   line=dict(color="gray", width=1.5), marker=dict(size=5),
                   xaxis="x3", yaxis="y3", hovertemplate="lag %{x}: %{y:.4f}<extra>SWA</extra>"),
        go.Scatter(x=lags, y=bla_row.numpy(), mode="lines+markers", name=f"BLA, N = {N}",
                   line=dict(color="#d62728", width=2.5), marker=dict(size=5),
                   xaxis="x3", yaxis="y3", hovertemplate="lag %{x}: %{y:.4f}<extra>BLA</extra>"),
    ]


def effective_weights_layout(seq_len: int, window: int, *, query: int = -1, height: int = 720,
                             resolution: int | None = None) -> go.Figure:
    """Two heatmaps (BLA left, SWA right) above one lag-profile panel, for query row ``t``.

    ``resolution`` names ``N`` in the BLA panel's title (left out on a slider over ``N``)."""
    t = query + seq_len if query < 0 else query
    # short subplot titles (the heatmaps are 150 px wide on a phone); the axes say the rest.
    # book/_static/blaviz-free/traces.js rewrites the "BLA, ..." and "SWA, ..." titles.
    fig = make_subplots(
        rows=2, cols=2, specs=[[{}, {}], [{"colspan": 2}, None]], row_heights=[0.58, 0.42],
        vertical_spacing=0.14, horizontal_spacing=0.1,
        subplot_titles=(f"BLA, <i>N</i> = {resolution}" if resolution else "BLA",
                        f"SWA, <i>W</i> = {window}",
                        f"query <i>t</i> = {t}: weight by lag <i>t</i> − <i>τ</i>"),
    )
    fig.update_annotations(font_size=14)
    for col in (1, 2):
        fig.update_yaxes(autorange="reversed", title_text="query <i>t</i>" if col == 1 else None,
                         row=1, col=col)
        fig.update_xaxes(title_text="value position <i>τ</i>", row=1, col=col)
    fig.update_xaxes(title_text="lag <i>t</i> − <i>τ</i>", row=2, col=1)
    fig.update_yaxes(title_text="weight", row=2, col=1)
    fig.add_vrect(x0=-0.5, x1=window - 0.5, row=2, col=1, fillcolor="rgba(120,120,120,0.12)",
                  line_width=0, layer="below", exclude_empty_subplots=False)
    # the legend goes below the plots, where it covers no data and no title
    fig.update_layout(height=height, margin=dict(l=60, r=20, t=70, b=40),
                      title=dict(x=0, xref="paper", font=dict(size=14)),
                      legend=dict(orientation="h", x=0, y=-0.1, yanchor="top"))
    return fig


def effective_weights_figure(q: torch.Tensor, k: torch.Tensor, window: int,
                             resolutions: Sequence[int] | None = None, *, query: int = -1,
                             active: int | None = None, batch: int = 0, head: int = 0) -> go.Figure:
    """BLA's effective weights against SWA's, with a static slider over the resolution ``N``.

    On the website the sliders take any window ``2 .. T`` and any allowed ``N``: the page carries
    query and key rows ``[T, D]`` of ``(batch, head)`` and the browser recomputes both matrices
    (:mod:`blaviz.viz.free`).
    """
    resolutions = list(resolutions or resolution_grid(window))
    swa = swa_attention_weights(q, k, window)[batch, head]
    steps = [(str(n), effective_weights_traces(q, k, window, n, query=query, batch=batch, head=head, swa=swa))
             for n in resolutions]
    T = q.shape[1]
    idx = _active_index(resolutions, active)
    layout = effective_weights_layout(T, window, query=query)
    fig = slider_figure(steps, slider_label="resolution N", layout=layout, active=idx, digits=4)
    # the slider goes below the legend (which is below the plots)
    fig.update_layout(margin_b=140, sliders=[dict(fig.layout.sliders[0].to_plotly_json(),
                                                  pad=dict(t=100))])
    N0 = resolutions[idx]
    site = effective_weights_layout(T, window, query=query, resolution=N0)
    for tr in effective_weights_traces(q, k, window, N0, query=query, batch=batch, head=head, swa=swa):
        site.add_trace(tr)
    site.update_layout(title_text=f"W = {window}, N = {N0}")
    rows = [x[batch, :, head].detach().cpu().to(torch.float64).numpy() for x in (q, k)]
    hi = max(T, int(window))
    spec = dict(
        kind="effective-weights", initial=dict(W=int(window), N=int(N0)),
        controls=[control("W", "window <i>W</i>", min(2, int(window)), hi),
                  control("N", "resolution <i>N</i>", 1, hi)],
        note="N is odd, or N = W. Your browser computes both matrices with the formulas of blaviz.",
        data=dict(T=T, D=int(q.shape[-1]), query=int(query), scale=None,
                  q=float64_b64(rows[0]), k=float64_b64(rows[1])),
    )
    return FreeFigure(fig, site_figure=site, spec=spec)


def effective_weights_view(window: int, resolution: int, *, seq_len: int | None = None,
                           head_dim: int = 16, seed: int = 0, query: int = -1) -> go.Figure:
    """One ``(W, N)`` of :func:`effective_weights_figure` on fresh random ``q, k`` (for live_app).

    ``seq_len`` defaults to ``3 W``; ``resolution`` is moved to the nearest allowed value.
    """
    N = valid_resolution(window, resolution)
    T = 3 * window if seq_len is None else seq_len
    q, k = random_qk(T, head_dim, seed=seed)
    fig = effective_weights_layout(T, window, query=query, resolution=N)
    for tr in effective_weights_traces(q, k, window, N, query=query):
        fig.add_trace(tr)
    fig.update_layout(title=dict(text=f"W = {window}, N = {N}", font=dict(size=14)))
    return fig


# ----------------------------------------------------------------------------- state against window
STATE_WINDOW_LAYOUT = dict(
    xaxis=dict(type="log", title="window W (tokens)"),
    yaxis=dict(type="log", title="state per head (real numbers)"),
    legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"),
    margin=dict(l=60, r=20, t=50, b=40),
    height=460,
)

DEFAULT_WINDOWS = tuple(2 ** p for p in range(0, 13))  # 1 .. 4096


def state_vs_window_traces(resolution: int, *, head_dim: int = 64,
                           windows: Sequence[int] = DEFAULT_WINDOWS) -> list[go.Scatter]:
    """SWA's ``2 W d`` and BLA's ``2 N d`` (for ``W >= N``) against the window, from :func:`state_size`.

    Three traces: SWA, BLA at resolution ``N``, and the point ``W = N`` where the two coincide.
    """
    windows = [int(w) for w in windows]
    swa = [state_size("swa", head_dim=head_dim, window=w) for w in windows]
    ws = [resolution] + [w for w in windows if w > resolution]   # BLA needs N <= W
    bla = [state_size("bla", head_dim=head_dim, resolution=resolution) for _ in ws]
    same = state_size("bla", head_dim=head_dim, resolution=resolution)
    ratio = [f"{s / same:.3g}x less than SWA" for s in (state_size("swa", head_dim=head_dim, window=w) for w in ws)]
    return [
        go.Scatter(x=windows, y=swa, mode="lines+markers", name="SWA: 2 W d", line=dict(color="gray", width=2),
                   hovertemplate="W = %{x}: %{y:,} numbers<extra>SWA</extra>"),
        go.Scatter(x=ws, y=bla, mode="lines+markers", name=f"BLA: 2 N d, N = {resolution}",
                   line=dict(color="#d62728", width=4), customdata=ratio,
                   hovertemplate="W = %{x}: %{y:,} numbers, %{customdata}<extra>BLA</extra>"),
        go.Scatter(x=[resolution], y=[same], mode="markers", name="N = W: BLA is SWA",
                   marker=dict(symbol="star", size=14, color="black"),
                   hovertemplate="W = N = %{x}: %{y:,} numbers<extra></extra>"),
    ]


def state_vs_window_figure(*, head_dim: int = 64, resolutions: Sequence[int] = (1, 3, 7, 15, 31, 63, 127),
                           active: int | None = 15, windows: Sequence[int] = DEFAULT_WINDOWS) -> go.Figure:
    """State per head against the window, with a static slider over BLA's resolution ``N``."""
    resolutions = list(resolutions)
    steps = [(str(n), state_vs_window_traces(n, head_dim=head_dim, windows=windows)) for n in resolutions]
    return slider_figure(steps, slider_label="BLA resolution N", layout=STATE_WINDOW_LAYOUT,
                         active=_active_index(resolutions, active))
