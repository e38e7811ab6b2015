"""The figure builders of chapters 2 and 3: traces, slider steps, sizes, live-slider inputs."""
import numpy as np
import pytest

from blaviz.analysis.weights import resolution_grid
from blaviz.viz import figure_html
from blaviz.viz import kernels as K
from blaviz.viz import window as Wn

MB = 1_000_000


pytestmark = pytest.mark.usefixtures("one_thread")


def slider_steps(fig):
    assert len(fig.layout.sliders) == 1
    return fig.layout.sliders[0].steps


def check_slider(fig, n_steps, per_step):
    steps = slider_steps(fig)
    assert len(steps) == n_steps
    assert len(fig.data) == n_steps * per_step
    active = fig.layout.sliders[0].active
    for i, step in enumerate(steps):
        visible = step.args[0]["visible"]
        assert sum(visible) == per_step
        assert all(visible[i * per_step:(i + 1) * per_step])
    shown = [k for k, tr in enumerate(fig.data) if tr.visible]
    assert shown == list(range(active * per_step, (active + 1) * per_step))


def check_compact(fig):
    for tr in fig.data:
        for key in ("x", "y"):
            v = getattr(tr, key, None)
            if v is not None and len(v) and isinstance(v, np.ndarray) and v.dtype.kind == "f":
                assert v.dtype == np.float32


# ----------------------------------------------------------------------------- chapter 2
def test_dirichlet_traces():
    tr = K.dirichlet_traces(16, 5)
    assert [t.type for t in tr] == ["bar", "bar", "scatter", "scatter", "scatter", "scatter"]
    assert len(tr[1].x) == 5 and len(tr[0].x) == 11                 # kept and dropped frequencies
    assert [t.xaxis for t in tr] == ["x", "x", "x2", "x2", "x3", "x3"]
    assert len(tr[4].x) == 16                                         # one key per lag


def test_dirichlet_slider_figure():
    fig = K.dirichlet_slider_figure()
    n_steps = sum(len(v) for v in K.DEFAULT_RESOLUTIONS.values())
    check_slider(fig, n_steps, 6)
    labels = [s.label for s in slider_steps(fig)]
    assert labels[0] == "W=16, N=1" and labels[-1] == "W=64, N=64"
    assert labels[fig.layout.sliders[0].active] == "W=64, N=9"
    assert all("title.text" in s.args[1] for s in slider_steps(fig))
    check_compact(fig)
    assert len(figure_html(fig)) < 0.5 * MB


def test_dirichlet_figure_reads_on_a_phone():
    fig = K.dirichlet_figure(64, 9)
    # two short title lines, the legend below the plots, short subplot titles beside each other
    assert fig.layout.title.text.count("<br>") == 1
    assert all(len(line) <= 60 for line in fig.layout.title.text.split("<br>"))
    assert fig.layout.legend.y < 0 and fig.layout.legend.yanchor == "top"
    top = [a.text for a in fig.layout.annotations][:2]
    assert all(len(t.replace("<i>", "").replace("</i>", "")) <= 40 for t in top)
    assert not any("_" in a.text for a in fig.layout.annotations)
    blur = K.blur_figure(32)
    assert all(len(a.text.replace("<i>", "").replace("</i>", "")) <= 30 for a in blur.layout.annotations)


def test_dirichlet_figure_snaps_resolution():
    fig = K.dirichlet_figure(64, 10)                  # even N < W is not a frequency set: N = 9
    assert len(fig.data) == 6
    assert fig.layout.title.text.startswith("W = 64, N = 9:")
    assert K.dirichlet_figure(16, 40).layout.title.text.startswith("W = 16, N = 16:")
    assert len(figure_html(fig)) < 0.1 * MB


def test_blur_figure():
    fig = K.blur_figure(32)
    assert len(fig.data) == 4
    n = len(resolution_grid(32))
    assert len(fig.data[0].x) == n and len(fig.data[2].x) == n - 1    # N = 1 has no zero
    assert fig.layout.xaxis2.type == "log"
    assert len(figure_html(fig)) < 0.1 * MB


# ----------------------------------------------------------------------------- chapter 3
def test_spectrum_slider_figure():
    fig = Wn.spectrum_slider_figure(16)
    check_slider(fig, len(resolution_grid(16)), 7)
    labels = [s.label for s in slider_steps(fig)]
    assert labels == [str(n) for n in resolution_grid(16)]
    check_compact(fig)
    assert len(figure_html(Wn.spectrum_slider_figure())) < 0.5 * MB


def test_spectrum_traces_inside_the_circle():
    tr = Wn.spectrum_traces(32, 9)
    assert len(tr) == 7
    moduli = np.hypot(tr[2].x, tr[2].y)
    assert len(moduli) == 9 and moduli.max() < 1
    full = Wn.spectrum_traces(32, 32)
    assert np.abs(full[2].x).max() == 0 and np.abs(full[2].y).max() == 0   # nilpotent
    fig = Wn.spectrum_figure(32, 8)                                        # snapped to 7
    assert fig.layout.title.text.startswith("W = 32, N = 7:")
    assert Wn.spectrum_figure(32, 32).layout.title.text.startswith("W = 32, N = 32: a shift register")


def test_impulse_slider_figure():
    fig = Wn.impulse_slider_figure(16, lag=4)
    check_slider(fig, len(resolution_grid(16)), 6)
    check_compact(fig)
    # at N = W the response is the ideal one
    last = fig.data[-6:]
    assert np.abs(np.asarray(last[0].y) - np.asarray(last[1].y)).max() < 1e-6
    assert len(figure_html(Wn.impulse_slider_figure())) < 0.5 * MB


def test_impulse_figure_live_inputs():
    fig = Wn.impulse_figure(32, 12, 100)               # N snapped to 11, lag clipped to W - 1
    assert len(fig.data) == 6
    assert fig.layout.title.text.startswith("W = 32, N = 11, lag s = 31:")
    assert len(fig.layout.shapes) == 1                 # the region after the window


def test_leaving_slider_figure():
    fig = Wn.leaving_slider_figure()
    check_slider(fig, 6, 4)
    last = fig.data[-4:]                               # N = W: both readings are the true sample
    assert np.abs(np.asarray(last[0].y) - np.asarray(last[2].y)).max() < 1e-5
    assert np.abs(np.asarray(last[0].y) - np.asarray(last[3].y)).max() < 1e-5
    leaving, newest = np.asarray(last[0].y), np.asarray(last[1].y)   # x_{t-W} and x_{t-1}
    assert np.abs(leaving[64:] - newest[1:len(newest) - 63]).max() == 0
    assert len(figure_html(fig)) < 0.2 * MB
