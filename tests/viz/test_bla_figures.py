"""Figure builders of chapters 4 and 5 (blaviz.viz.bla, blaviz.viz.equivalence): data and sliders."""
import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from blaviz import dirichlet as d
from blaviz.analysis.weights import swa_attention_weights
from blaviz.ops.bla import bla_attention_weights
from blaviz.ops.kernel_slot import gsa_constant_gate_kernel
from blaviz.state_size import state_size
from blaviz.viz import figure_html, live_app
from blaviz.viz.bla import (effective_weights_figure, effective_weights_view, random_qk, slot_read_figure,
                            slot_read_view, state_vs_window_figure, state_vs_window_traces)
from blaviz.viz.equivalence import (matched_gsa_decays, slot_kernels_figure, slot_kernels_view,
                                    transition_figure, transition_view)

MAX_HTML = 1_000_000   # bytes per figure on a page


def visible_traces(fig: go.Figure, step: int):
    """The traces a slider step shows."""
    vis = fig.layout.sliders[0].steps[step].args[0]["visible"]
    return [tr for tr, v in zip(fig.data, vis) if v]


def check_slider(fig, labels, per_step, active):
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == [str(x) for x in labels]
    assert len(fig.data) == len(labels) * per_step
    assert fig.layout.sliders[0].active == active
    shown = [tr.visible for tr in fig.data]
    assert shown == [active * per_step <= i < (active + 1) * per_step for i in range(len(fig.data))]
    assert len(figure_html(fig)) < MAX_HTML


# ----------------------------------------------------------------------------- chapter 4
def test_slot_read_figure():
    fig = slot_read_figure(8, active=7)
    check_slider(fig, [1, 3, 5, 7, 8], 9, 3)   # 8 padded curves + the slot markers per step
    curves = visible_traces(fig, 2)            # N = 5
    assert sum(len(tr.x) > 0 for tr in curves[:-1]) == 5
    x = np.asarray(curves[1].x, dtype=np.float64)
    want = d.dirichlet_kernel(torch.tensor(x) - 8 / 5, 5, 8).numpy()
    assert np.allclose(curves[1].y, want, atol=1e-4)       # slot 1 read kernel, centred at s_1 = 8/5
    assert np.allclose(curves[-1].x, d.slot_lags(8, 5).numpy())
    with pytest.raises(ValueError, match="active"):
        slot_read_figure(8, active=4)


def test_slot_read_view_moves_resolution():
    fig = slot_read_view(10, 6)
    assert "N = 5" in fig.layout.title.text and "S = 5" in fig.layout.title.text
    assert len(fig.data) == 6
    fig = slot_read_view(10, 5, num_slots=7)
    assert len(fig.data) == 8 and "S = 7" in fig.layout.title.text


def test_effective_weights_figure():
    T, W = 30, 8
    q, k = random_qk(T, 4, seed=1)
    fig = effective_weights_figure(q, k, W, [3, 5, 8], active=5, query=20)
    check_slider(fig, [3, 5, 8], 4, 1)
    bla_map, swa_map, swa_line, bla_line = visible_traces(fig, 1)
    A = bla_attention_weights(q, k, W, 5)[0, 0].numpy()
    S = swa_attention_weights(q, k, W)[0, 0].numpy()
    assert np.allclose(np.asarray(bla_map.z, dtype=np.float64), A, rtol=1e-3, atol=1e-7)
    assert np.allclose(np.asarray(swa_map.z, dtype=np.float64), S, rtol=1e-3, atol=1e-7)
    assert np.allclose(bla_line.y, A[20, :21][::-1], rtol=1e-3, atol=1e-7)
    assert np.abs(np.asarray(swa_line.y)[W:]).max() == 0   # SWA sees nothing beyond the window
    # at N = W the two lines coincide
    _, _, swa_line, bla_line = visible_traces(fig, 2)
    assert np.allclose(swa_line.y, bla_line.y, atol=1e-6)


def test_effective_weights_figure_reads_on_a_phone():
    q, k = random_qk(30, 4, seed=1)
    fig = effective_weights_figure(q, k, 8, [3, 5], active=5)
    bla_map, swa_map, _, _ = visible_traces(fig, 1)
    # one colour bar for the two heatmaps, which share their colour range
    assert not bla_map.showscale and swa_map.showscale and swa_map.colorbar.title.text == "weight"
    assert (bla_map.zmin, bla_map.zmax) == (swa_map.zmin, swa_map.zmax) and swa_map.zmin == -swa_map.zmax
    # the legend sits below the plots (covers no data, no title), the slider below the legend
    assert fig.layout.legend.y < 0 and fig.layout.legend.yanchor == "top"
    assert fig.layout.sliders[0].pad.t > 50
    # short subplot titles (150 px per heatmap on a phone); math set in HTML, no pseudo-TeX
    titles = [a.text for a in fig.layout.annotations]
    assert max(len(t) for t in titles[:2]) <= 20
    assert not any("_" in t or "tau" in t for t in titles)
    assert "τ" in fig.layout.xaxis.title.text


def test_effective_weights_view():
    fig = effective_weights_view(6, 4, head_dim=4)
    assert "N = 3" in fig.layout.title.text
    assert len(fig.data) == 4 and fig.data[0].z.shape == (18, 18)


def test_state_vs_window():
    swa, bla, same = state_vs_window_traces(15, head_dim=32, windows=(8, 16, 64))
    assert list(swa.y) == [state_size("swa", head_dim=32, window=w) for w in (8, 16, 64)]
    assert list(bla.x) == [15, 16, 64]                   # BLA needs N <= W
    assert set(bla.y) == {state_size("bla", head_dim=32, resolution=15)} == {2 * 15 * 32}
    assert list(same.x) == [15] and list(same.y) == [state_size("swa", head_dim=32, window=15)]
    fig = state_vs_window_figure(head_dim=32, resolutions=(1, 15), active=15)
    check_slider(fig, [1, 15], 3, 1)


# ----------------------------------------------------------------------------- chapter 5
def test_matched_gsa_decays_have_the_slot_mean_lags():
    a = matched_gsa_decays(16, 5)
    h = gsa_constant_gate_kernel(a, 4000)
    mean_lag = (h * torch.arange(4000, dtype=torch.float64)).sum(-1) / h.sum(-1)
    assert torch.allclose(mean_lag, d.slot_lags(16, 5), atol=1e-6)


def test_slot_kernels_figure():
    W = 8
    fig = slot_kernels_figure(W, active=5)
    check_slider(fig, [1, 3, 5, 7, 8], 16, 2)      # 8 BLA + 8 GSA curves (padded) per step
    tr = visible_traces(fig, 2)                      # N = 5
    h = d.bla_slot_kernels(W, 5, None, 3 * W).numpy()
    g = gsa_constant_gate_kernel(matched_gsa_decays(W, 5), 3 * W).numpy()
    for j in range(5):
        assert np.allclose(tr[j].y, h[j], rtol=1e-3, atol=1e-7) and tr[j].xaxis == "x"
        assert np.allclose(tr[8 + j].y, g[j], rtol=1e-3, atol=1e-7) and tr[8 + j].xaxis == "x2"
    assert all(len(t.x) == 0 for t in tr[5:8] + tr[13:])
    full = visible_traces(fig, 4)                    # N = W: slot j is the token at lag j
    for j in range(W):
        y = np.asarray(full[j].y)
        assert np.argmax(y) == j and abs(y[j] - 1) < 1e-4 and np.abs(np.delete(y, j)).max() < 1e-5


def test_slot_kernels_view():
    fig = slot_kernels_view(10, 12)
    assert "N = 10" in fig.layout.title.text and len(fig.data) == 20


def test_transition_figure():
    W = 8
    fig = transition_figure(W, active=8)
    check_slider(fig, [1, 3, 5, 7, 8], 5, 4)
    Tmap, wmap, _, eig, label = visible_traces(fig, 4)        # N = W
    shift = np.eye(W, k=-1)
    assert np.allclose(np.asarray(Tmap.z, dtype=np.float64), shift, atol=1e-6)
    assert np.allclose(np.asarray(wmap.z, dtype=np.float64)[:, 0], np.eye(W)[0], atol=1e-6)
    assert np.allclose(eig.x, 0) and np.allclose(eig.y, 0) and "nilpotent" in label.text[0]
    Tmap, _, _, eig, label = visible_traces(fig, 2)           # N = 5
    Tm, _ = d.slot_space(W, 5)
    assert np.allclose(np.asarray(Tmap.z, dtype=np.float64), Tm.numpy(), rtol=1e-3, atol=1e-6)
    assert np.all(np.hypot(eig.x, eig.y) < 1) and "spectral radius" in label.text[0]
    assert fig.layout.sliders[0].steps[2].args[1]["xaxis.dtick"] == 1


def test_transition_view():
    fig = transition_view(24, 23)
    assert "N = 23" in fig.layout.title.text and fig.layout.xaxis.dtick == 3


@pytest.mark.parametrize("view,kw", [
    (effective_weights_view, dict(window=(4, 32, 1, 8), resolution=(1, 31, 2, 5), head_dim=4)),
    (slot_read_view, dict(window=(4, 32, 1, 8), resolution=(1, 31, 2, 5))),
    (slot_kernels_view, dict(window=(4, 32, 1, 8), resolution=(1, 31, 2, 5))),
    (transition_view, dict(window=(4, 32, 1, 8), resolution=(1, 31, 2, 5))),
])
def test_live_apps_accept_any_slider_values(view, kw):
    app = live_app(view, **kw)
    app.controls["resolution"].value = 31            # N > W: clipped to W
    app.controls["window"].value = 5
    assert "N = 5" in app.figure().layout.title.text
    app.controls["window"].value = 12                # N = 31 > 12 -> 12; then an odd N < W
    app.controls["resolution"].value = 7
    assert "N = 7" in app.figure().layout.title.text
