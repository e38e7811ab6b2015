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


def test_vendored_plotly_matches_the_python_plotly_major_version():
    blaviz_site.check_plotly_versions()  # raises ConfigError on a mismatch


def test_trace_types_of_a_page_come_from_its_figures_not_the_templates():
    from blaviz.viz.plotly_html import figure_html

    fig = go.Figure([go.Heatmap(z=[[1, 2]]), go.Scatter(y=[1])], layout=dict(template="plotly_white"))
    body = figure_html(fig) + figure_html(go.Figure(go.Scatterpolar(r=[1, 2])))
    assert blaviz_site.figure_trace_types(body) == {"heatmap", "scatter", "scatterpolar"}
    assert blaviz_site.figure_trace_types(figure_html(fig)) <= blaviz_site.CARTESIAN_TRACES


def test_icons_script_holds_exactly_the_icons_the_pages_use(tmp_path):
    import blaviz_icons

    page = tmp_path / "p.html"
    page.write_text('<i class="fa-solid fa-sun fa-lg" data-mode="light"></i>'
                    '<span class="fa-solid fa-bars"></span><i class="fab fa-github"></i>')
    used = blaviz_icons.icons_used([page])
    assert used == {("fas", "sun"), ("fas", "bars"), ("fab", "github")}
    icons = blaviz_icons.fontawesome_icons(blaviz_icons.theme_fontawesome_js())
    js = blaviz_icons.render_icons_js(icons, used)
    assert '"fas sun":[512,512,"M' in js and '"fab github":' in js and '"fas moon"' not in js
    assert len(js) < 20_000  # the theme's full script is 1.5 MB
    from sphinx.errors import ExtensionError

    with pytest.raises(ExtensionError, match="fa-no-such-icon"):
        blaviz_icons.render_icons_js(icons, used | {("fas", "no-such-icon")})


def test_book_templates_light_and_dark_are_registered_and_exported():
    import json

    import plotly.io as pio

    from blaviz.viz import setup_plotly
    from blaviz.viz.figures import templates_js

    setup_plotly(colab=False)
    assert pio.templates.default == "blaviz" and "blaviz_dark" in pio.templates
    js = templates_js()
    body = js[js.index("= {") + 2:].rstrip().rstrip(";")
    light = json.loads(body[body.index("light: ") + 7:body.index(", dark: ")])
    dark = json.loads(body[body.index(", dark: ") + 8:-1])
    assert light["layout"]["paper_bgcolor"] == dark["layout"]["paper_bgcolor"] == "rgba(0,0,0,0)"
    assert light["layout"]["font"]["color"] != dark["layout"]["font"]["color"]
    assert light["data"]["heatmap"][0]["colorbar"]["thickness"] == 12
