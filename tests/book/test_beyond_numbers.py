"""Numbers written in the prose of chapter 10 equal the stored results they describe
(``results/beyond/readout.json``, ``results/mqar/book/summary.json``)."""
from __future__ import annotations

import json

import pytest

from blaviz.viz.beyond import trained_bla_points
from blaviz.viz.results import results_file


@pytest.fixture(scope="module")
def grid():
    rows = json.loads(results_file("beyond/readout.json", download=False).read_text())["rows"]
    return {(r["erasure"], r["head_dim"], r["slots"], r["resolution"]): r["recall"] for r in rows}


@pytest.fixture(scope="module")
def trained():
    s = json.loads(results_file("mqar/book/summary.json", download=False).read_text())
    return trained_bla_points(s["rows"])


def test_readout_numbers(grid):
    assert f"{grid['periodic', 64, 'N', 15]:.2f}" == "0.57"      # W/N ~ 4, S = N, d = 64
    assert f"{grid['periodic', 64, '2N', 15]:.2f}" == "0.78"     # S = 2N
    assert f"{grid['exact', 64, 'N', 15]:.2f}" == "0.63"         # exact erasure
    assert all(grid['periodic', d, s, 31] == 1.0 for d in (64, 128, 256) for s in ("N", "2N", "W"))
    # W/N ~ 9: at most 0.41 at d = 256, below 0.5 at every width
    assert f"{max(grid['periodic', 256, s, 7] for s in ('N', '2N', 'W')):.2f}" == "0.41"
    assert max(v for (e, d, s, n), v in grid.items() if n == 7) < 0.5


def test_trained_numbers(trained):
    near4 = [p for p in trained if 4 <= p["w_over_n"] < 4.5]
    d64 = sorted(p["accuracy"] for p in near4 if p["d_model"] == 64)
    d128 = sorted(p["accuracy"] for p in near4 if p["d_model"] == 128)
    assert [f"{d64[0]:.2f}", f"{d64[-1]:.2f}"] == ["0.21", "0.37"]
    assert [f"{x:.2f}" for x in d128] == ["0.37", "0.54"]


def test_cost_numbers():
    from blaviz.experiments.registry import get_task
    from blaviz.viz.beyond import run_cost

    path = results_file("zoology/zoology_controls/runs.jsonl", download=False)
    recs = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    assert {r["planned_steps"] for r in recs} == {22624}                  # "22.6k steps"
    mean = sum(c["gpu_minutes"] for c in run_cost(recs, 10)) / 5
    zoo = get_task("zoology")
    n64 = len(zoo.sweep_specs(zoo.get_preset("zoology"), widths=(64,)))
    assert n64 == 68 and abs(n64 * mean - 170) < 10                       # "about 170"
    assert len(zoo.sweep_specs(zoo.get_preset("beyond"))) == 144
