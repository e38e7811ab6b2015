"""The book's SVG diagrams: generated from code, committed, well-formed, sized for a phone."""
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from blaviz.viz import diagrams

FIGURES = Path(__file__).resolve().parents[2] / "book" / "figures"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("name", sorted(diagrams.DIAGRAMS))
def test_committed_svg_equals_generated(name):
    path = FIGURES / f"{name}.svg"
    assert path.exists(), f"run: python -m blaviz.viz.diagrams book/figures ({path} is missing)"
    assert path.read_text(encoding="utf-8") == diagrams.DIAGRAMS[name]().svg, (
        f"{path} is stale: run python -m blaviz.viz.diagrams book/figures")


@pytest.mark.parametrize("name", sorted(diagrams.DIAGRAMS))
def test_svg_is_well_formed_and_legible(name):
    root = ET.fromstring(diagrams.DIAGRAMS[name]().svg)
    assert root.tag == f"{SVG}svg"
    x0, y0, w, h = (float(v) for v in root.get("viewBox").split())
    assert (x0, y0) == (0, 0) and w <= 720 and h > 0
    assert root.find(f"{SVG}title").text and root.find(f"{SVG}desc").text
    # no ids: two diagrams inlined in one page cannot clash
    assert not [e for e in root.iter() if e.get("id")]
    texts = list(root.iter(f"{SVG}text"))
    assert texts
    for t in texts:
        size = float(t.get("font-size"))
        # shown 390 px wide on a phone, a 14-unit font in a 540-unit picture is ~10 px
        assert size * 390 / w >= 9.5, (name, "".join(t.itertext()), size)
        assert 0 <= float(t.get("x")) <= w and 0 <= float(t.get("y")) <= h
    # colours come from CSS variables, one palette for light and one for dark
    style = root.find(f"{SVG}style").text
    assert "prefers-color-scheme: dark" in style and "html[data-theme=dark]" in style
    assert "var(--bv-fg)" in style


def test_diagram_shows_inline_in_jupyter():
    d = diagrams.overview()
    assert d._repr_html_().startswith("<svg")


def test_write_all(tmp_path):
    paths = diagrams.write_all(tmp_path)
    assert sorted(p.stem for p in paths) == sorted(diagrams.DIAGRAMS)
