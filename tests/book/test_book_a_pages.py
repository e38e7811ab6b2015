"""The introduction, "Results at a glance" and chapters 1-5: what their prose claims, and their shape.

The introduction quotes a few findings in words; these tests hold them to the stored results, so
a new results file that changes a finding fails here instead of leaving the prose wrong.
"""
import json
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
INTRO = (BOOK / "intro.md").read_text(encoding="utf-8")
CHAPTERS = ["01_attention_memory", "02_dirichlet", "03_sliding_window", "04_bla",
            "05_equivalences", "results"]
COLAB = ('import sys\n'
         'REPO = "https://github.com/blaviz/blurry-window-attention"  # as in _config.yml\n'
         'if "google.colab" in sys.modules:  # on Colab: install the book\'s library\n'
         '    %pip install -q "blaviz @ git+{REPO}"')


def _json(rel):
    return json.loads((ROOT / "results" / rel).read_text())


def _nb(name):
    return nbformat.read(BOOK / f"{name}.ipynb", as_version=4)


def _tags(cell):
    return set(cell.metadata.get("tags", []))


# ----------------------------------------------------------------------------- the introduction
def test_intro_embeds_the_overview_diagram():
    m = re.search(r"```\{raw\} html\n:file: (figures/\S+\.svg)\n```", INTRO)
    assert m and (BOOK / m.group(1)).exists()
    assert m.group(1) == "figures/bla_overview.svg"


def test_intro_mqar_range_matches_the_stored_state_efficiency():
    eff = _json("mqar/book/summary.json")["state_efficiency"]
    ratios = [e["ratio"] for e in eff if e["ratio"] is not None]
    quoted = f"{min(ratios):.2f} to {max(ratios):.2f} times"
    assert quoted in INTRO.replace("\n", " "), quoted
    assert max(ratios) < 8 and "not the 8 times" in INTRO.replace("\n", " ")
    # "on the longest sequences (256 and 512 tokens) BLA never reaches the thresholds"
    for e in eff:
        if e["metric"].split("x")[0] in ("256", "512"):
            assert e["bla_state"] is None, e


def test_intro_regbench_claims_hold():
    reg = _json("regbench/book/summary.json")
    text = INTRO.replace("\n", " ")
    assert "at every state size BLA scores lowest of all the models we trained" in text
    bla = [r for r in reg["rows"] if r["mixer"] == "bla"]
    others = [r for r in reg["rows"] if r["mixer"] != "bla"]
    for size in {r["state_size"] for r in bla}:
        best = max(r["validity"] for r in bla if r["state_size"] == size)
        near = [r for r in others if 0.8 <= r["state_size"] / size <= 1.25]
        assert near and best < min(r["validity"] for r in near), size
    trends = {t["mixer"]: t for t in reg["trends"]}
    assert all(g["validity_gain"] > 0 for g in trends["bla"]["groups"])
    assert trends["swa"]["validity_gain"] > 0
    assert trends["gla"]["validity_gain"] <= 0 and trends["gated_deltanet"]["validity_gain"] <= 0
    assert 0 < trends["gsa"]["validity_gain"] < trends["swa"]["validity_gain"]


def test_intro_speed_sentence_holds():
    from blaviz.viz.bench import bench_rows, load_bench

    bench = load_bench(ROOT / "results" / "bench" / "h200.json")
    swa = bench_rows(bench, "flex_swa", T=8192, W=512)
    bla = bench_rows(bench, "bla", T=8192, W=512)
    assert swa and bla and all(r["fwd_ms"] > swa[0]["fwd_ms"] for r in bla)
    assert "slower than flex-attention's SWA at the same window" in INTRO.replace("\n", " ")


def test_intro_has_no_unbreakable_long_inline_code():
    inline = re.findall(r"(?<!`)`([^`\n]+)`(?!`)", INTRO)
    assert not [c for c in inline if len(c) > 40], "long inline code: use a code block"
    for block in re.findall(r"```(?:bash|python)\n(.*?)```", INTRO, flags=re.S):
        assert all(len(line) <= 80 for line in block.splitlines())


def test_what_is_ours_is_said_once():
    assert INTRO.count("(about-the-paper)=") == 1
    for name in CHAPTERS:
        text = "\n".join(c.source for c in _nb(name).cells if c.cell_type == "markdown")
        assert "our own derivation" not in text and "our derivation" not in text, name


# ----------------------------------------------------------------------------- the notebooks
@pytest.mark.parametrize("name", CHAPTERS)
def test_notebook_shape(name):
    nb = _nb(name)
    cells = nb.cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    assert cells[1].source == COLAB and _tags(cells[1]) == {"hide-input"}
    assert cells[2].cell_type == "code" and "hide-input" in _tags(cells[2])
    for i, c in enumerate(cells):
        if c.cell_type != "code":
            continue
        assert not c.outputs, f"{name} cell {i}: commit without outputs"
        for line in c.source.splitlines():
            assert len(line) <= 80 or "%pip install" in line, (name, i, line)
        if re.search(r"^\s*assert ", c.source, flags=re.M):
            assert _tags(c) & {"hide-input", "hide-cell", "remove-cell"}, (
                f"{name} cell {i}: fold checks")
        if "live_app(" in c.source and i > 2:
            assert "remove-cell" in _tags(c), f"{name} cell {i}: live apps stay off the site"
        assert "../results" not in c.source
    prose = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert not re.search(r"\brun \d|the issue|the guide", prose, flags=re.I), name


@pytest.mark.parametrize("path", sorted(BOOK.glob("*.ipynb")), ids=lambda p: p.stem)
def test_code_fits_the_page(path):
    """Every notebook, not only the chapters above: a code line over 80 characters scrolls
    sideways on the site (the Colab cell's install line is the one exception)."""
    nb = nbformat.read(path, as_version=4)
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code":
            for line in c.source.splitlines():
                assert len(line) <= 80 or "%pip install" in line, (path.stem, i, line)


@pytest.mark.parametrize("name", CHAPTERS[:5])
def test_every_exercise_has_a_solution(name):
    cells = _nb(name).cells
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    exercises = text[text.index("## Exercises"):]
    asked = len(re.findall(r"^\d+\. ", exercises, flags=re.M))
    solved = len(re.findall(r"^:::\{admonition\} Solution \d+\n:class: dropdown", exercises,
                            flags=re.M))
    assert asked >= 3 and solved == asked, (name, asked, solved)
    # a solution computed by code keeps its output folded too: it is the answer
    after = cells[[i for i, c in enumerate(cells) if "## Exercises" in c.source][0]:]
    for c in after:
        if c.cell_type == "code":
            assert _tags(c) == {"hide-cell"}, (name, c.source[:60])


def test_chapter_4_fixes():
    nb = _nb("04_bla")
    src = "\n".join(c.source for c in nb.cells)
    assert "the factor the BLA paper reports" not in src
    assert "ratio of *states*" in src
    assert any(c.cell_type == "code" and c.source.strip() == "layer_diagram()"
               for c in nb.cells)


def test_chapter_5_points_to_gated_bla():
    src = "\n".join(c.source for c in _nb("05_equivalences").cells)
    assert "later chapters label as ours" not in src
    assert "*gated BLA*" in src and "{doc}`10_beyond`" in src
