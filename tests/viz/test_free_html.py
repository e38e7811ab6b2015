"""blaviz.viz.free: what the website gets for a free-slider figure, and what Jupyter still gets."""
import base64
import json
import re

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch

from blaviz.analysis.impulse import sample_key_channel
from blaviz.viz import kernels as K
from blaviz.viz.bla import effective_weights_figure, random_qk
from blaviz.viz.free import FreeFigure, control, float64_b64, free_html
from blaviz.viz.plotly_html import PLOTLY_MIME, setup_plotly

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC_RE = re.compile(r'<script type="application/json" class="blaviz-free-spec">(.*?)</script>', re.S)


def decode(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f8")


def site_spec(html: str) -> dict:
    match = SPEC_RE.search(html)
    assert match, "no spec in the HTML"
    return json.loads(match.group(1).replace("<\\/", "</"))


@pytest.fixture
def book_renderer():
    before = pio.renderers.default
    setup_plotly(template=None, colab=False)
    yield
    pio.renderers.default = before


def test_float64_b64_is_exact():
    x = np.array([np.pi, -1e-300, 1 / 3, 2.0 ** 60])
    assert np.array_equal(decode(float64_b64(x)), x)


def test_control_rejects_an_empty_range():
    with pytest.raises(ValueError, match="lo <= hi"):
        control("W", "W", 5, 4)


def test_free_figure_needs_both_parts():
    with pytest.raises(ValueError, match="both"):
        FreeFigure(go.Figure(), spec={"kind": "dirichlet"})
    plain = FreeFigure(go.Figure(go.Scatter(y=[1, 2])))
    assert plain.free_spec is None and len(plain.data) == 1


def test_dirichlet_website_html(book_renderer):
    fig = K.dirichlet_slider_figure(active=(64, 9))
    bundle = fig._repr_mimebundle_()
    # Jupyter keeps the precomputed slider
    n_steps = sum(len(v) for v in K.DEFAULT_RESOLUTIONS.values())
    assert len(bundle[PLOTLY_MIME]["layout"]["sliders"][0]["steps"]) == n_steps
    html = bundle["text/html"]
    assert html.startswith('<div class="blaviz-free" data-blaviz-free="dirichlet">')
    assert "blaviz-free/mount.js" in html and "Plotly.newPlot" in html
    spec = site_spec(html)
    assert spec["initial"] == {"W": 64, "N": 9}
    lo, hi = K.FREE_WINDOWS
    assert [c["name"] for c in spec["controls"]] == ["W", "N"]
    assert (spec["controls"][0]["min"], spec["controls"][0]["max"]) == (lo, hi)
    # the page carries exactly blaviz's sample keys for every window it offers
    assert sorted(map(int, spec["data"]["keys"])) == list(range(lo, hi + 1))
    for W in (lo, 37, 64, hi):
        assert np.array_equal(decode(spec["data"]["keys"][str(W)]), sample_key_channel(W, seed=0).numpy())
    # the website draws one setting (no plotly slider) and is lighter than the slider figure
    drawn = re.search(r"var fig = (\{.*?\});\n", html, re.S).group(1)
    assert '"sliders"' not in drawn and "W = 64, N = 9:" in drawn
    assert len(html) < 0.6 * len(pio.to_json(fig))


def test_effective_weights_website_html(book_renderer):
    q, k = random_qk(40, 8, seed=1)
    fig = effective_weights_figure(q, k, 12, active=5)
    html = fig._repr_mimebundle_()["text/html"]
    spec = site_spec(html)
    assert spec["kind"] == "effective-weights" and spec["initial"] == {"W": 12, "N": 5}
    d = spec["data"]
    assert (d["T"], d["D"], d["query"]) == (40, 8, -1)
    assert np.array_equal(decode(d["q"]).reshape(40, 8), q[0, :, 0].numpy())
    assert np.array_equal(decode(d["k"]).reshape(40, 8), k[0, :, 0].numpy())
    assert spec["controls"][0]["max"] == 40
    drawn = json.loads(re.search(r"var fig = (\{.*?\});\n", html, re.S).group(1).replace("<\\/", "</"))
    titles = [a["text"] for a in drawn["layout"]["annotations"]]
    assert titles[:2] == ["BLA, <i>N</i> = 5", "SWA, <i>W</i> = 12"]   # traces.js rewrites these
    assert drawn["data"][1]["showscale"] and "sliders" not in drawn["layout"]


def test_other_renderers_get_plotly_html():
    before = pio.renderers.default
    try:
        pio.renderers.default = "notebook_connected"
        fig = K.dirichlet_slider_figure(resolutions={16: (1, 5)}, active=(16, 5))
        html = fig._repr_mimebundle_().get("text/html", "")
        assert "blaviz-free" not in html
    finally:
        pio.renderers.default = before


def test_spec_cannot_close_its_script():
    html = free_html(go.Figure(), dict(kind="dirichlet", note="</script><b>", controls=[], initial={}, data={}))
    assert html.count("</script>") == 3   # the figure's, the spec's and the loader's
    assert site_spec(html)["note"] == "</script><b>"


def test_device_tensors_are_accepted():
    q, k = random_qk(20, 4, seed=2)
    fig = effective_weights_figure(q.to(torch.float32), k.to(torch.float32), 8, active=3)
    assert fig.free_spec["data"]["T"] == 20


def test_ipython_display_publishes_the_website_html(book_renderer):
    # IPython calls _ipython_display_ before _repr_mimebundle_: a notebook cell must get our HTML
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    fig = K.dirichlet_slider_figure(resolutions={16: (1, 5)}, active=(16, 5))
    with capture_output() as cap:
        fig._ipython_display_()
    assert len(cap.outputs) == 1
    data = cap.outputs[0].data
    assert 'data-blaviz-free="dirichlet"' in data["text/html"] and PLOTLY_MIME in data
