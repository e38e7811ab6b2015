"""Chapter 2 figures: a window of keys, its truncated spectrum, the Dirichlet kernel, the blur.

* :func:`dirichlet_traces` / :func:`dirichlet_figure`: for one ``(W, N)``, the spectrum of a
  sample key window with the kept frequencies highlighted, the kernel ``D_N`` at real and integer
  lags, and the window's keys against their reconstruction ``R_s`` at real lags.
* :func:`dirichlet_slider_figure`: the same with a static slider over ``(W, N)`` pairs; on the
  website its sliders take any ``W`` in :data:`FREE_WINDOWS` and any allowed ``N``, computed in
  the browser (:mod:`blaviz.viz.free`).
* :func:`blur_figure`: reconstruction error and main-lobe half-width against ``N``.

The numbers come from :mod:`blaviz.analysis.impulse` and :mod:`blaviz.dirichlet`.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from blaviz.analysis.impulse import (complex_coefficients, main_lobe_halfwidth, reconstruct_window,
                                     reconstruction_error, sample_key_channel, window_coefficients)
from blaviz.analysis.weights import resolution_grid, valid_resolution
from blaviz.dirichlet import dirichlet_kernel, frequencies

from .figures import compact, slider_figure
from .free import FreeFigure, control, float64_b64

__all__ = ["KEPT", "DROPPED", "dirichlet_layout", "dirichlet_traces", "dirichlet_figure",
           "dirichlet_slider_figure", "DEFAULT_RESOLUTIONS", "FREE_WINDOWS", "blur_figure"]

KEPT, DROPPED = "#1f77b4", "#c7c7c7"

#: the ``(W, N)`` steps of :func:`dirichlet_slider_figure`: every N for W = 16, a selection for 64
DEFAULT_RESOLUTIONS: Mapping[int, Sequence[int]] = {
    16: tuple(resolution_grid(16)),
    64: (1, 3, 5, 9, 15, 21, 31, 41, 51, 63, 64),
}

#: the windows the website's free slider offers (the page carries the sample keys of each)
FREE_WINDOWS = (4, 128)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float64).numpy()


def dirichlet_layout(*, height: int = 640) -> go.Figure:
    """The empty 3-panel figure the chapter 2 traces are drawn on (axes ``x/y``, ``x2/y2``, ``x3/y3``)."""
    fig = make_subplots(
        rows=2, cols=2, specs=[[{}, {}], [{"colspan": 2}, None]], vertical_spacing=0.18,
        horizontal_spacing=0.09,
        # short titles: two panels share a row, 170 px each on a phone
        subplot_titles=("spectrum |F<sub><i>m</i></sub>|",
                        "kernel <i>D<sub>N</sub></i>(<i>x</i>)",
                        "keys <i>x<sub>p</sub></i> and their reconstruction "
                        "<i>R<sub>s</sub></i>"))
    fig.update_annotations(font_size=14)
    fig.update_xaxes(title_text="frequency <i>m</i>", row=1, col=1)
    fig.update_xaxes(title_text="lag <i>x</i>", row=1, col=2)
    fig.update_xaxes(title_text="lag <i>p</i> or <i>s</i> (steps ago)", row=2, col=1)
    # the title takes two lines; the legend goes below the plots, where it covers nothing
    fig.update_layout(height=height, margin=dict(l=50, r=20, t=80, b=40), bargap=0.15,
                      title=dict(x=0, xref="paper", y=0.985, yanchor="top", font=dict(size=14)),
                      legend=dict(orientation="h", x=0, y=-0.1, yanchor="top"))
    return fig


def _title(W: int, N: int, err: float) -> str:
    lobe = main_lobe_halfwidth(W, N)
    lobe_txt = "none (constant)" if lobe == float("inf") else f"±{lobe:.3g} lags"
    # book/_static/blaviz-free/traces.js (dirichletTitle) writes the same title in the browser
    return (f"W = {W}, N = {N}: {N} of {W} numbers kept,<br>main lobe {lobe_txt}, "
            f"reconstruction error {err:.2g}")


def dirichlet_traces(window: int, resolution: int, *, seed: int = 0, oversample: int = 8) -> list:
    """The six traces of chapter 2's figure for one ``(W, N)`` (``N`` must be valid for ``W``).

    ``[dropped |F_m|, kept |F_m|, D_N at real lags, D_N at integer lags, keys, R_s at real lags]``
    on the axes of :func:`dirichlet_layout`; the keys are :func:`sample_key_channel` ``(W, seed)``.
    ``oversample`` real lags are drawn per integer lag.
    """
    W, N = int(window), int(resolution)
    x = sample_key_channel(W, seed=seed)
    # the whole spectrum: all W coefficients, then mark the N kept ones
    m_all = frequencies(W, W)
    F_all = complex_coefficients(window_coefficients(x, W, W), W, W).abs()
    kept = torch.isin(m_all, frequencies(W, N))
    lag_fine = torch.linspace(-W / 2, W / 2, oversample * W + 1, dtype=torch.float64)
    lag_int = torch.arange(-(W // 2), W // 2 + 1)
    s_fine = torch.linspace(0, W - 1, oversample * (W - 1) + 1, dtype=torch.float64)
    recon = reconstruct_window(x, W, N, s_fine)
    return [
        go.Bar(x=_np(m_all[~kept]), y=_np(F_all[~kept]), marker_color=DROPPED, name="dropped |F<sub><i>m</i></sub>|",
               xaxis="x", yaxis="y", hovertemplate="m=%{x}: |F|=%{y:.3g}<extra>dropped</extra>"),
        go.Bar(x=_np(m_all[kept]), y=_np(F_all[kept]), marker_color=KEPT, name=f"kept |F<sub><i>m</i></sub>| ({N})",
               xaxis="x", yaxis="y", hovertemplate="m=%{x}: |F|=%{y:.3g}<extra>kept</extra>"),
        go.Scatter(x=_np(lag_fine), y=_np(dirichlet_kernel(lag_fine, N, W)), mode="lines",
                   line=dict(color=KEPT), name="<i>D<sub>N</sub></i>(<i>x</i>), real <i>x</i>", xaxis="x2", yaxis="y2"),
        go.Scatter(x=_np(lag_int.to(torch.float64)), y=_np(dirichlet_kernel(lag_int, N, W)), mode="markers",
                   marker=dict(color="#d62728", size=5), name="<i>D<sub>N</sub></i>(<i>x</i>), integer <i>x</i>",
                   xaxis="x2", yaxis="y2"),
        go.Scatter(x=np.arange(W, dtype=np.float64), y=_np(x), mode="markers",
                   marker=dict(color="black", size=5), name="keys <i>x<sub>p</sub></i>", xaxis="x3", yaxis="y3"),
        go.Scatter(x=_np(s_fine), y=_np(recon), mode="lines", line=dict(color=KEPT),
                   name="<i>R<sub>s</sub></i>, real <i>s</i>", xaxis="x3", yaxis="y3"),
    ]


def dirichlet_figure(window: int = 64, resolution: int = 9, *, seed: int = 0) -> go.Figure:
    """Chapter 2's figure for one ``(W, N)``; an invalid ``N`` is snapped with
    :func:`blaviz.analysis.weights.valid_resolution` (what the live sliders need)."""
    W = int(window)
    N = valid_resolution(W, resolution)
    fig = dirichlet_layout()
    for trace in dirichlet_traces(W, N, seed=seed):
        props = trace.to_plotly_json()
        for key in ("x", "y"):
            props[key] = compact(props[key])
        fig.add_trace(trace.__class__(props))
    err = float(reconstruction_error(sample_key_channel(W, seed=seed), W, [N])[0])
    fig.update_layout(title_text=_title(W, N, err))
    return fig


def dirichlet_slider_figure(resolutions: Mapping[int, Sequence[int]] | None = None, *,
                            seed: int = 0, active: tuple[int, int] = (64, 9)) -> go.Figure:
    """Chapter 2's figure with a static slider over ``(W, N)`` steps, grouped by window.

    ``resolutions`` maps each window ``W`` to its resolutions (default
    :data:`DEFAULT_RESOLUTIONS`); ``active`` is the ``(W, N)`` shown first.
    """
    resolutions = DEFAULT_RESOLUTIONS if resolutions is None else resolutions
    steps, keys = [], []
    for W, Ns in resolutions.items():
        x = sample_key_channel(int(W), seed=seed)
        errs = reconstruction_error(x, W, list(Ns))
        for N, err in zip(Ns, errs.tolist()):
            steps.append((f"W={W}, N={N}", dirichlet_traces(W, N, seed=seed),
                          {"title.text": _title(W, N, err)}))
            keys.append((int(W), int(N)))
    idx = keys.index(tuple(active)) if tuple(active) in keys else 0
    fig = slider_figure(steps, slider_label="window and resolution", layout=dirichlet_layout(),
                        active=idx)
    # the slider goes below the legend (which is below the plots)
    fig.update_layout(margin_b=150, sliders=[dict(fig.layout.sliders[0].to_plotly_json(),
                                                  pad=dict(t=110))])
    W0, N0 = keys[idx]
    lo, hi = min(FREE_WINDOWS[0], *resolutions), max(FREE_WINDOWS[1], *resolutions)
    spec = dict(
        kind="dirichlet", initial=dict(W=W0, N=N0),
        controls=[control("W", "window <i>W</i>", lo, hi),
                  control("N", "resolution <i>N</i>", 1, hi)],
        note="N is odd, or N = W. Your browser computes the figure with the formulas of blaviz.",
        # the sample keys of every window offered: the module computes everything else
        data=dict(seed=int(seed), oversample=8, keys={str(W): float64_b64(sample_key_channel(W, seed=seed).numpy())
                                      for W in range(lo, hi + 1)}),
    )
    return FreeFigure(fig, site_figure=dirichlet_figure(W0, N0, seed=seed), spec=spec)


def blur_figure(window: int = 64, *, seed: int = 0, resolutions: Sequence[int] | None = None) -> go.Figure:
    """The blur against the resolution, for one window ``W``.

    Left: relative reconstruction error of the sample key window (:func:`sample_key_channel`),
    with and without its spikes. Right: the kernel's main-lobe half-width (first zero of ``D_N``,
    found numerically) against ``W / N``, on log axes.
    """
    W = int(window)
    Ns = list(resolution_grid(W)) if resolutions is None else [int(n) for n in resolutions]
    x = sample_key_channel(W, seed=seed)
    smooth = sample_key_channel(W, seed=seed, num_spikes=0)
    # short titles: the two panels are 150 px wide each on a phone
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14, subplot_titles=(
        f"reconstruction error, <i>W</i> = {W}", "main-lobe half-width"))
    fig.update_annotations(font_size=13)
    n = np.asarray(Ns, dtype=np.float64)
    for sig, name, dash in ((x, "smooth + spikes", "solid"), (smooth, "smooth part only", "dot")):
        fig.add_trace(go.Scatter(x=n, y=compact(reconstruction_error(sig, W, Ns).numpy()), mode="lines+markers",
                                 name=name, line=dict(dash=dash)), row=1, col=1)
    lobe_n = [N for N in Ns if N > 1]
    lobes = np.array([main_lobe_halfwidth(W, N) for N in lobe_n])
    fig.add_trace(go.Scatter(x=np.asarray(lobe_n, dtype=np.float64), y=compact(lobes), mode="markers",
                             name="first zero of <i>D<sub>N</sub></i> (measured)", marker=dict(size=7)), row=1, col=2)
    fig.add_trace(go.Scatter(x=np.asarray(lobe_n, dtype=np.float64), y=compact(W / np.asarray(lobe_n, dtype=np.float64)),
                             mode="lines", name="<i>W</i> / <i>N</i>", line=dict(dash="dash", color="black")), row=1, col=2)
    fig.update_xaxes(title_text="resolution <i>N</i>", row=1, col=1)
    fig.update_yaxes(title_text="‖<i>R</i>(<i>x</i>) − <i>x</i>‖ / ‖<i>x</i>‖", row=1, col=1)
    fig.update_xaxes(title_text="resolution <i>N</i>", type="log", row=1, col=2)
    fig.update_yaxes(title_text="lags", type="log", row=1, col=2)
    fig.update_layout(height=380, margin=dict(l=60, r=20, t=50, b=40), legend=dict(orientation="h", y=-0.2))
    return fig
