"""blaviz.viz: the renderer that reaches the static site, static sliders, live apps, helpers."""
import json
import re

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from plotly.subplots import make_subplots

from blaviz.viz import (RENDERER_NAME, BookRenderer, by_device, compact, figure_html, live_app,
                        md_table, setup_plotly, show_source, slider_figure)
from blaviz.viz.memory import STATE_LINES, mixing_matrix, state_size_figure, state_size_traces

URL_RE = re.compile(r"https?://|//cdn|cdn\.|unpkg|jsdelivr|cdnjs", re.IGNORECASE)


@pytest.fixture(autouse=True)
def _not_building_the_site(monkeypatch):
    monkeypatch.delenv("BLAVIZ_BOOK_BUILD", raising=False)


@pytest.fixture
def plotly_defaults():
    renderer, template = pio.renderers.default, pio.templates.default
    yield
    pio.renderers.default, pio.templates.default = renderer, template


def _steps(n_steps=3, n_points=5):
    return [(f"s{i}", [go.Scatter(x=np.arange(n_points), y=np.full(n_points, float(i)), name="a"),
                       go.Bar(x=["u", "v"], y=[i, 2 * i], name="b")])
            for i in range(n_steps)]


# --- renderer ------------------------------------------------------------------------------
def test_setup_plotly_is_idempotent_and_selects_the_book_renderer(plotly_defaults):
    assert setup_plotly() == RENDERER_NAME
    assert setup_plotly() == RENDERER_NAME
    assert pio.renderers.default == RENDERER_NAME
    assert isinstance(pio.renderers[RENDERER_NAME], BookRenderer)
    assert setup_plotly(colab=True) == "colab"
    assert setup_plotly(colab=False) == RENDERER_NAME


def test_renderer_emits_html_with_newplot_and_no_network(plotly_defaults):
    setup_plotly()
    fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2]), layout=dict(title="t"))
    bundle = fig._repr_mimebundle_()
    assert set(bundle) >= {"text/html", "application/vnd.plotly.v1+json"}
    html = bundle["text/html"]
    assert "Plotly.newPlot" in html and 'class="plotly-graph-div"' in html
    assert not URL_RE.search(html), URL_RE.search(html)
    assert "<script src" not in html and "mathjax" not in html.lower()
    assert bundle["application/vnd.plotly.v1+json"]["data"][0]["type"] == "scatter"


def test_figure_html_escapes_script_end_and_sizes_the_div():
    fig = go.Figure(go.Scatter(y=[1, 2], name="</script><b>x"), layout=dict(height=321))
    html = figure_html(fig)
    assert html.count("</script>") == 1  # only the real end tag
    assert "height:321px" in html
    payload = re.search(r"var fig = (.*);\n", html).group(1).replace("<\\/", "</")
    assert json.loads(payload)["data"][0]["name"] == "</script><b>x"
    assert json.loads(payload)["config"]["responsive"] is True


def test_figure_html_ids_are_unique():
    fig = go.Figure(go.Scatter(y=[1]))
    ids = {re.search(r'id="([^"]+)"', figure_html(fig)).group(1) for _ in range(20)}
    assert len(ids) == 20


def test_book_renderer_handles_a_plain_dict():
    bundle = BookRenderer(config={"displayModeBar": False}).to_mimebundle(
        go.Figure(go.Scatter(y=[1])).to_dict())
    assert '"displayModeBar":false' in bundle["text/html"]
    assert bundle["application/vnd.plotly.v1+json"]["config"]["displayModeBar"] is False


# --- compact -------------------------------------------------------------------------------
def test_compact_rounds_to_significant_digits_in_float32():
    x = np.array([1.23456789, -98765.4321, 1e-9 * 3.14159265, 0.0, np.nan, np.inf, 1e9 + 7])
    c = compact(x)
    assert c.dtype == np.float32
    np.testing.assert_allclose(c[:3], [1.2346, -98765.0, 3.1416e-9], rtol=1e-6)
    assert c[3] == 0 and np.isnan(c[4]) and np.isinf(c[5])
    assert abs(c[6] - 1e9) / 1e9 < 1e-6
    assert compact(x, digits=3)[0] == np.float32(1.23)


def test_compact_leaves_ints_strings_and_none_alone():
    ints = np.arange(5)
    assert compact(ints) is ints
    assert compact(["a", "b"]) == ["a", "b"]
    assert compact(None) is None and compact("x") == "x"
    assert compact([1.5, 2.25]).dtype == np.float32


# --- slider_figure -------------------------------------------------------------------------
def test_slider_steps_toggle_exactly_their_own_traces():
    fig = slider_figure(_steps(4), slider_label="i", active=2)
    assert len(fig.data) == 4 * 2
    assert [t.visible for t in fig.data] == [k in (4, 5) for k in range(8)]
    slider = fig.layout.sliders[0]
    assert slider.active == 2 and slider.currentvalue.prefix == "i = "
    for i, step in enumerate(slider.steps):
        assert step.method == "update" and step.label == f"s{i}"
        visible = step.args[0]["visible"]
        assert visible == [2 * i <= k < 2 * i + 2 for k in range(8)]
        # the traces shown by step i carry step i's data
        shown = [fig.data[k] for k in range(8) if visible[k]]
        assert float(shown[0].y[0]) == i and list(shown[1].y) == [i, 2 * i]


def test_slider_figure_keeps_types_names_and_caller_traces():
    steps = _steps(2)
    original = steps[0][1][0]
    fig = slider_figure(steps, slider_label="i")
    assert [t.type for t in fig.data] == ["scatter", "bar"] * 2
    assert [t.name for t in fig.data] == ["a", "b"] * 2
    assert original.visible is None and original.y.dtype == np.float64  # not mutated


def test_slider_figure_stores_float32_rounded_data():
    rng = np.random.default_rng(0)
    steps = [(i, [go.Scatter(x=np.linspace(0, 1, 200), y=rng.normal(size=200))]) for i in range(50)]
    fig = slider_figure(steps, slider_label="i")
    assert all(t.y.dtype == np.float32 and t.x.dtype == np.float32 for t in fig.data)
    np.testing.assert_allclose(fig.data[7].y, steps[7][1][0].y, rtol=1e-4, atol=1e-6)
    html = figure_html(fig)
    assert '"dtype":"f4"' in html and '"f2"' not in html and '"f8"' not in html
    # 50 steps x 2 arrays x 200 float32 = 80 kB raw, ~107 kB in base64: the page stays small
    assert len(html) < 250_000, len(html)


def test_slider_figure_on_subplots():
    base = make_subplots(rows=1, cols=2, subplot_titles=["left", "right"])
    steps = [(i, [go.Scatter(y=[i, i + 1], xaxis="x", yaxis="y"),
                  go.Heatmap(z=[[i, 0], [0, i]], xaxis="x2", yaxis="y2")]) for i in range(3)]
    fig = slider_figure(steps, slider_label="i", layout=base)
    assert [t.xaxis for t in fig.data] == ["x", "x2"] * 3
    assert fig.layout.xaxis2.domain is not None and fig.layout.xaxis.domain[1] < fig.layout.xaxis2.domain[0]
    assert len(fig.layout.annotations) == 2  # subplot titles survive
    assert np.asarray(fig.data[3].z).tolist() == [[1, 0], [0, 1]]  # integer data stays as given


def test_slider_figure_layout_updates_per_step():
    steps = [(i, [go.Scatter(y=[i])], {"title.text": f"step {i}"}) for i in range(3)]
    fig = slider_figure(steps, slider_label="i", active=1)
    assert fig.layout.title.text == "step 1"
    assert fig.layout.sliders[0].steps[2].args[1] == {"title.text": "step 2"}


@pytest.mark.parametrize("steps, message", [
    ([], "at least one step"),
    ([("a", [])], "at least one trace"),
    ([("a", [go.Scatter()]), ("b", [go.Bar()])], "same traces"),
    ([("a", [go.Scatter()]), ("b", [go.Scatter(), go.Scatter()])], "same traces"),
    ([("a",)], "each step"),
])
def test_slider_figure_rejects_inconsistent_steps(steps, message):
    with pytest.raises(ValueError, match=message):
        slider_figure(steps, slider_label="x")


def test_slider_figure_rejects_bad_active():
    with pytest.raises(ValueError, match="active"):
        slider_figure(_steps(2), slider_label="x", active=2)


# --- live_app ------------------------------------------------------------------------------
def test_live_app_builds_sliders_and_redraws_on_change(capsys):
    import ipywidgets as W

    calls = []

    def update(n, x, choice, fixed):
        calls.append((n, x, choice, fixed))
        return [go.Scatter(y=[n, x])]

    app = live_app(update, layout=dict(height=200), n=(1, 63, 2, 9), x=(0.0, 1.0),
                   choice=["a", "b"], fixed=7)
    assert isinstance(app, W.VBox)
    assert isinstance(app.controls["n"], W.IntSlider) and app.controls["n"].value == 9
    assert app.controls["n"].step == 2 and app.controls["n"].max == 63
    assert isinstance(app.controls["x"], W.FloatSlider)
    assert isinstance(app.controls["choice"], W.SelectionSlider)
    assert "fixed" not in app.controls
    assert calls == [(9, 0.0, "a", 7)]
    app.controls["n"].value = 21
    assert calls[-1] == (21, 0.0, "a", 7)
    fig = app.figure()
    assert isinstance(fig, go.Figure) and fig.layout.height == 200 and list(fig.data[0].y) == [21, 0.0]


def test_live_app_accepts_a_figure_and_a_widget():
    import ipywidgets as W

    slider = W.IntSlider(min=0, max=3, value=1)
    app = live_app(lambda k: go.Figure(go.Bar(y=[k])), k=slider)
    assert app.controls["k"] is slider and slider.description == "k"
    assert list(app.figure().data[0].y) == [1]


def test_live_app_fails_loudly_at_construction():
    def broken(n):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        live_app(broken, n=(1, 3))
    with pytest.raises(ValueError, match="outside"):
        live_app(lambda n: [], n=(1, 3, 1, 5))
    with pytest.raises(ValueError, match="range spec"):
        live_app(lambda n: [], n=(1,))


# --- notebook helpers ----------------------------------------------------------------------
def test_show_source_is_fenced_markdown_from_the_library():
    from blaviz.state_size import state_size

    md = show_source(state_size)._repr_markdown_()
    assert md.startswith("From `blaviz/state_size.py` (line ")
    assert "```python\ndef state_size(" in md and md.rstrip().endswith("```")
    assert show_source(state_size)._repr_html_() is None


def test_md_table_and_by_device(monkeypatch):
    md = md_table([["a", 1], ["b|c", 2]], ["name", "n"]).data
    assert md.splitlines() == ["| name | n |", "|:--|--:|", "| a | 1 |", "| b\\|c | 2 |"]
    with pytest.raises(ValueError):
        md_table([["a"]], ["x", "y"])
    monkeypatch.setenv("BLAVIZ_DEVICE", "cpu")
    assert by_device(cpu=1, gpu=2) == 1
    assert by_device(cpu=1, gpu=2, device="cuda") == 2


# --- chapter 1 figures ---------------------------------------------------------------------
def test_state_size_figure_matches_state_size():
    from blaviz.state_size import state_size

    fig = state_size_figure(window=16, active_resolution=5, head_dim=8)
    n = len(STATE_LINES)
    resolutions = [*range(1, 16, 2), 16]
    assert len(fig.data) == n * len(resolutions)
    bla = [i for i, (m, _) in enumerate(STATE_LINES) if m == "bla"][0]
    swa = [i for i, (m, _) in enumerate(STATE_LINES) if m == "swa"][0]
    last = (len(resolutions) - 1) * n  # N = W: BLA keeps SWA's state
    assert float(fig.data[last + bla].y[0]) == float(fig.data[last + swa].y[0])
    assert float(fig.data[bla].y[0]) == state_size("bla", head_dim=8, resolution=1)
    assert fig.layout.sliders[0].active == resolutions.index(5)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_state_size_traces_clip_resolution_to_window():
    traces = state_size_traces(head_dim=4, window=8, resolution=31)
    bla = dict(zip([m for m, _ in STATE_LINES], traces))["bla"]
    assert float(bla.y[0]) == 2 * 8 * 4


def test_mixing_matrix_reads_out_the_operator():
    import torch

    def mean_of_past(q, k, v):  # o_t = mean_{tau <= t} v_tau
        T = v.shape[1]
        w = torch.tril(torch.ones(T, T, dtype=v.dtype)) / torch.arange(1, T + 1, dtype=v.dtype)[:, None]
        return torch.einsum("ts,bshd->bthd", w, v), None

    q = torch.randn(1, 5, 2, 3, dtype=torch.float64)
    a = mixing_matrix(mean_of_past, q, q, head=1)
    expected = torch.tril(torch.ones(5, 5, dtype=torch.float64)) / torch.arange(1, 6)[:, None]
    torch.testing.assert_close(a, expected)


def test_live_app_builds_no_widget_during_the_website_build(monkeypatch):
    from blaviz.viz.widgets import BUILD_ENV, LiveAppPlaceholder

    monkeypatch.setenv(BUILD_ENV, "1")
    calls = []

    def update(n, x, fixed):
        calls.append((n, x, fixed))
        return [go.Scatter(y=[n])]

    app = live_app(update, n=(1, 63, 2, 9), x=[0.5, 1.0], fixed=3)
    assert isinstance(app, LiveAppPlaceholder) and calls == [(9, 0.5, 3)]
    assert app.names == ["n", "x"] and app.controls == {}
    html = app._repr_html_()
    assert "Jupyter or Colab" in html and not URL_RE.search(html)
    assert list(app.figure().data[0].y) == [9]
    with pytest.raises(RuntimeError, match="boom"):
        live_app(lambda n: (_ for _ in ()).throw(RuntimeError("boom")), n=(1, 3))
