"""The seed presets add seeds to the book sweeps: same preset hash, the planned points at the
seed-0 best learning rate, the ratio points first."""
import json
from pathlib import Path

from blaviz.experiments import mqar
from blaviz.experiments.analysis import config_label
from blaviz.experiments.regbench.presets import TASK as REGBENCH

RESULTS = Path(__file__).resolve().parents[2] / "results"


def test_book_seeds_same_hash_and_best_lr():
    book, seeds = mqar.get_preset("book"), mqar.get_preset("book_seeds")
    assert mqar.preset_hash(book) == mqar.preset_hash(seeds)
    rows = json.loads((RESULTS / "mqar/book/summary.json").read_text())["rows"]
    best = {(r["d_model"], r["mixer"], r["config"]): r["best_lr"] for r in rows}
    specs = mqar.sweep_specs(seeds)
    assert len(specs) == 2 * len(mqar.RUN_PLANS["book_seeds"])
    assert {s["seed"] for s in specs} == {1, 2}
    for s in specs:
        assert s["lr"] == best[s["d_model"], s["mixer"], config_label(s)], s["key"]
    # every book grid point is a book point: the plan adds no new configuration
    book_keys = {(s["d_model"], s["mixer"], config_label(s)) for s in mqar.sweep_specs(book)}
    assert {(s["d_model"], s["mixer"], config_label(s)) for s in specs} <= book_keys
    # the first ten runs are d_model 64 BLA and SWA (the ratio's points)
    assert all(s["d_model"] == 64 and s["mixer"] in ("bla", "swa") for s in specs[:10])


def test_regbench_seeds_same_hash_endpoints():
    book, seeds = REGBENCH.presets["book"], REGBENCH.presets["regbench_seeds"]
    assert REGBENCH.preset_hash(book) == REGBENCH.preset_hash(seeds)
    assert set(map(repr, seeds.grid)) <= set(map(repr, book.grid))
    assert seeds.seeds == (1, 2) and seeds.lrs == book.lrs
