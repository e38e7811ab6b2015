"""Chapter 1 figures: how much state each token mixer keeps, and what its mixing matrix looks like."""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from blaviz.state_size import state_size

from .figures import compact, slider_figure

#: (mixer key for :func:`blaviz.state_size.state_size`, legend name), in legend order
STATE_LINES = (
    ("softmax", "full attention (KV cache)"),
    ("swa", "SWA, window W"),
    ("bla", "BLA, resolution N"),
    ("gsa", "GSA / ABC, S slots"),
    ("linear", "linear attention / GLA / GDN"),
    ("mamba2", "Mamba2, <i>d</i><sub>state</sub>"),
)

STATE_LAYOUT = dict(
    xaxis=dict(type="log", title="sequence length T (tokens)"),
    yaxis=dict(type="log", title="state per head (real numbers)"),
    legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"),
    margin=dict(l=60, r=20, t=90, b=40),
    height=540,
)

#: line style per mixer: equal states (e.g. GSA with S = 64 and Mamba2 with d_state = 128 at
#: d = 64) overlap, so each line gets its own dash pattern
LINE_STYLES = {"softmax": ("solid", 2), "swa": ("dash", 2), "bla": ("solid", 5),
               "gsa": ("dashdot", 2), "linear": ("longdash", 2), "mamba2": ("dot", 3)}

DEFAULT_SEQ_LENS = tuple(2 ** p for p in range(4, 21))  # 16 .. 1M tokens


def state_size_traces(*, head_dim: int = 64, window: int = 128, resolution: int = 17,
                      num_slots: int = 64, d_state: int = 128, num_heads: int = 1,
                      seq_lens=DEFAULT_SEQ_LENS) -> list[go.Scatter]:
    """One line per mixer of :data:`STATE_LINES`: state (from :func:`state_size`) against T.

    BLA's resolution is clipped to the window (``N <= W``; at ``N = W`` BLA is SWA).
    """
    seq_lens = np.asarray(seq_lens, dtype=np.int64)
    common = dict(head_dim=head_dim, num_heads=num_heads)
    params = dict(window=window, resolution=min(resolution, window), num_slots=num_slots,
                  d_state=d_state)
    traces = []
    for mixer, name in STATE_LINES:
        if mixer == "softmax":
            y = [state_size(mixer, seq_len=int(t), **common) for t in seq_lens]
        else:
            y = [state_size(mixer, **common, **params)] * len(seq_lens)
        label = {"swa": f"SWA, W={window}", "bla": f"BLA, N={params['resolution']} (W={window})",
                 "gsa": f"GSA / ABC, S={num_slots}", "mamba2": f"Mamba2, <i>d</i><sub>state</sub>={d_state}"}.get(mixer, name)
        traces.append(go.Scatter(
            x=seq_lens.astype(np.float64), y=np.asarray(y, dtype=np.float64), mode="lines",
            name=label, line=dict(dash=LINE_STYLES[mixer][0], width=LINE_STYLES[mixer][1]),
            hovertemplate="%{y:,.0f} numbers at T=%{x:,.0f}<extra>" + label + "</extra>",
        ))
    return traces


def state_size_figure(*, resolutions=None, window: int = 128, active_resolution: int = 17,
                      **kwargs) -> go.Figure:
    """State against sequence length, with a static slider over BLA's resolution ``N``.

    ``resolutions`` defaults to the odd ``N < W`` and ``N = W``; other keywords go to
    :func:`state_size_traces`.
    """
    if resolutions is None:
        resolutions = [*range(1, window, 2), window]
    steps = [(str(n), state_size_traces(window=window, resolution=n, **kwargs)) for n in resolutions]
    active = list(resolutions).index(active_resolution) if active_resolution in resolutions else 0
    return slider_figure(steps, slider_label="BLA resolution N", layout=STATE_LAYOUT, active=active)


def mixing_matrix(mixer: Callable, q, k, *args, batch: int = 0, head: int = 0, **kwargs):
    """The ``T x T`` matrix a mixer applies to its values, read out with one-hot values.

    Every mixer of chapter 1 is linear in ``v``: ``o_t = sum_tau A[t, tau] v_tau``. Feeding the
    identity as values (``v_tau = e_tau``) returns ``A`` itself as the output. ``mixer`` is called
    as ``mixer(q, k, v, *args, **kwargs)``; a tuple result (``(o, state)``) keeps ``o``.
    """
    import torch

    B, T, H, _ = q.shape
    v = torch.eye(T, dtype=q.dtype, device=q.device).expand(B, H, T, T).permute(0, 2, 1, 3)
    out = mixer(q, k, v.contiguous(), *args, **kwargs)
    o = out[0] if isinstance(out, tuple) else out
    return o[batch, :, head, :]


def mixing_figure(matrices: Mapping[str, object], *, height: int = 400) -> go.Figure:
    """One heatmap per mixing matrix (rows: query t, columns: key τ), side by side.

    Each panel has its own color scale (a softmax row sums to 1, linear attention's entries are
    raw dot products) and its own colorbar, horizontal under the panel; signed panels are blue
    and red around 0.
    """
    import torch

    names = list(matrices)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.04)
    for i, name in enumerate(names, start=1):
        a = matrices[name].detach().to("cpu", torch.float64).numpy()
        signed = bool((a < -1e-12).any())
        lim = float(np.abs(a).max()) or 1.0
        fig.add_trace(go.Heatmap(
            z=compact(a, 4), coloraxis=f"coloraxis{i if i > 1 else ''}",
            hovertemplate="t=%{y}, τ=%{x}: %{z:.3f}<extra>" + name + "</extra>",
        ), row=1, col=i)
        fig.update_yaxes(autorange="reversed", showticklabels=i == 1, row=1, col=i)
        fig.update_xaxes(title_text="key τ", row=1, col=i)
        x0, x1 = fig.layout[f"xaxis{i if i > 1 else ''}"].domain
        fig.update_layout({f"coloraxis{i if i > 1 else ''}": dict(
            colorscale="RdBu" if signed else "Viridis", cmin=-lim if signed else 0.0, cmax=lim,
            colorbar=dict(orientation="h", x=(x0 + x1) / 2, xanchor="center", len=x1 - x0,
                          y=-0.28, yanchor="top", thickness=8, tickfont=dict(size=10)))})
    fig.update_yaxes(title_text="query t", row=1, col=1)
    fig.update_layout(height=height, margin=dict(l=50, r=10, t=40, b=100))
    return fig
