"""book/_ext/blaviz_site.py: the local Sphinx extension that keeps the pages offline."""
import sys
from pathlib import Path
from types import SimpleNamespace

import plotly.graph_objects as go
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "book" / "_ext"))
import blaviz_site  # noqa: E402


def test_plotly_json_mime_is_rendered_as_the_book_html():
    from myst_nb.core.render import MimeData

    seen = {}

    class FakeRenderer:
        def render_text_html(self, data):
            seen["block"] = data
            return ["block"]

        def render_text_html_inline(self, data):
            seen["inline"] = data
            return ["inline"]

    fig_json = go.Figure(go.Scatter(y=[1, 2])).to_plotly_json()
    data = MimeData("application/vnd.plotly.v1+json", fig_json, cell_index=3, line=7)
    plugin = blaviz_site.PlotlyJsonMimeRenderer
    assert plugin.handle_mime(FakeRenderer(), data, False) == ["block"]
    assert seen["block"].mime_type == "text/html" and "Plotly.newPlot" in seen["block"].content
    assert seen["block"].cell_index == 3 and seen["block"].line == 7
    assert plugin.handle_mime(FakeRenderer(), data, True) == ["inline"]
    assert plugin.handle_mime(FakeRenderer(), MimeData("text/plain", "x"), False) is None


def test_plugin_is_registered_with_myst_nb_and_ranked_after_html():
    from myst_nb.core import render

    blaviz_site._register_plotly_mime_plugin()
    blaviz_site._register_plotly_mime_plugin()  # idempotent
    plugins = render.load_mime_renders()
    assert plugins.count(blaviz_site.PlotlyJsonMimeRenderer) == 1
    order = render.get_mime_priority("html", [])
    assert order.index("text/html") < order.index("application/vnd.plotly.v1+json") < order.index("text/plain")


@pytest.mark.parametrize("config, ok", [
    (dict(mathjax_path="mathjax/tex-chtml.js", nb_ipywidgets_js={}), True),
    (dict(mathjax_path="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js", nb_ipywidgets_js={}), False),
    (dict(mathjax_path="mathjax/tex-chtml.js", nb_ipywidgets_js={"https://cdnjs.x/require.js": {}}), False),
])
def test_config_guard_refuses_remote_assets(config, ok):
    from sphinx.errors import ConfigError

    if ok:
        blaviz_site._check_config(None, SimpleNamespace(**config))
    else:
        with pytest.raises(ConfigError):
            blaviz_site._check_config(None, SimpleNamespace(**config))


def test_duplicate_scripts_are_dropped():
    from sphinx.builders.html._assets import _JavaScript

    scripts = [_JavaScript(None, body="const A = 1"), _JavaScript("x.js"), _JavaScript("", body="const A = 1")]
    context = {"script_files": scripts}
    blaviz_site._dedupe_scripts(None, "p", "page.html", context, None)
    assert [str(s) for s in context["script_files"]] == [str(scripts[0]), str(scripts[1])]
