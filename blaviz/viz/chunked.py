"""Figures of chapter 6 (the chunked algorithm): fixed chunk matrices and arithmetic per token."""
from __future__ import annotations

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from blaviz.cost import bla_chunk_flops, full_attention_flops, gsa_flops, swa_flops
from blaviz.dirichlet import chunk_matrices, dirichlet_kernel

from .figures import compact, slider_figure

CHUNK_SIZES = (8, 16, 32, 64, 128, 256)
_HOVER = "δ = %{y}, i = %{x}: %{z:.3g}<extra></extra>"


def chunk_matrix_traces(window: int, resolution: int, chunk_size: int) -> list:
    """Two heatmaps: ``(I + L_C)^{-1}`` and the intra-chunk Dirichlet factor ``D_N(delta - i)``."""
    m = chunk_matrices(window, resolution, None, chunk_size)
    C = chunk_size
    idx = torch.arange(C, dtype=torch.float64)
    dfac = torch.tril(dirichlet_kernel(idx[:, None] - idx[None, :], resolution, window))
    common = dict(colorscale="RdBu", zmid=0, showscale=True)
    bar = dict(thickness=12, len=0.9, y=0.5, yanchor="middle")     # one colorbar per panel
    return [
        go.Heatmap(z=compact(m.erase_inv.numpy()), xaxis="x", yaxis="y", name="Minv",
                   colorbar=dict(bar, x=0.41, title=dict(text="entry")), hovertemplate=_HOVER,
                   **common),
        go.Heatmap(z=compact(dfac.numpy()), xaxis="x2", yaxis="y2", name="D_N(delta - i)",
                   colorbar=dict(bar, x=1.0, title=dict(text="<i>D</i><sub>N</sub>")),
                   hovertemplate=_HOVER, **common),
    ]


def chunk_matrix_layout(chunk_size: int) -> go.Figure:
    # short math titles (the chapter's text says what each matrix is), so they fit a phone
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.2, subplot_titles=(
        "(<i>I</i> + <i>L</i><sub>C</sub>)<sup>−1</sup>", "<i>D</i><sub>N</sub>(δ − <i>i</i>)"))
    fig.update_yaxes(autorange="reversed", title_text="query offset δ", row=1, col=1)
    fig.update_yaxes(autorange="reversed", showticklabels=False, row=1, col=2)
    fig.update_xaxes(title_text="key offset <i>i</i>")
    fig.update_layout(height=400, margin=dict(t=60, b=50, l=60, r=20))
    return fig


def chunk_matrix_figure(window: int = 64, resolutions=(1, 3, 7, 15, 31, 63, 64), chunk_size: int = 32,
                        active: int = 3) -> go.Figure:
    """Slider over ``N``: the two fixed ``C x C`` matrices every chunk applies."""
    steps = [(str(n), chunk_matrix_traces(window, n, chunk_size)) for n in resolutions]
    return slider_figure(steps, slider_label="N", layout=chunk_matrix_layout(chunk_size), active=active)


def cost_traces(resolution: int, head_dim: int = 64, window: int = 512, seq_len: int = 8192,
                num_slots: int | None = None, chunk_sizes=CHUNK_SIZES) -> list:
    """FLOPs per token and head against chunk size, with SWA, GSA and full attention as references."""
    S = resolution if num_slots is None else num_slots
    xs = list(chunk_sizes)
    bla = [bla_chunk_flops(resolution, S, c, head_dim) for c in xs]
    flat = {
        f"SWA, W = {window}": swa_flops(window, head_dim),
        f"GSA, S = {S} (recurrent form)": gsa_flops(S, head_dim),
        f"full attention, T = {seq_len}": full_attention_flops(seq_len, head_dim),
    }
    traces = [go.Scatter(x=xs, y=compact(bla), mode="lines+markers", name=f"BLA chunked, N = {resolution}")]
    for name, value in flat.items():
        traces.append(go.Scatter(x=[xs[0], xs[-1]], y=[value, value], mode="lines", name=name,
                                 line=dict(dash="dash")))
    return traces


# the legend to the right of the plot (the slider is below it; the site moves legends below the
# plot on narrow screens)
COST_LAYOUT = dict(height=420, xaxis=dict(type="log", title="chunk size <i>C</i>"),
                   yaxis=dict(type="log", title="matmul FLOPs per token and head"),
                   margin=dict(t=30, b=50, l=70, r=20), legend=dict(x=1.02, y=1, xanchor="left"))


def cost_figure(resolutions=(15, 31, 63, 127), active: int = 2, **kwargs) -> go.Figure:
    """Slider over ``N``: where the chunked form's arithmetic is smallest, against the references."""
    steps = [(str(n), cost_traces(n, **kwargs)) for n in resolutions]
    return slider_figure(steps, slider_label="N", layout=COST_LAYOUT, active=active)
