"""analysis.py on a synthetic runs file with known answers."""
import json

import pytest

from blaviz.experiments.analysis import (accuracy_vs_state, best_over_lr, load_runs, report,
                                         smallest_state_reaching, state_efficiency)


def rec(mixer, kw, d, lr, acc, state, seed=0, **extra):
    key = f"{mixer}{sorted(kw.items())}/d{d}/lr{lr}/s{seed}"
    return {"key": key, "mixer": mixer, "mixer_kwargs": kw, "d_model": d, "lr": lr, "seed": seed,
            "accuracy": acc, "state_size": state, "per_slice": {"64x4": acc, "256x64": acc / 2},
            "steps": 100, "stopped": "steps", **extra}


@pytest.fixture
def runs_file(tmp_path):
    d = 64
    runs = [
        # SWA: state 2 W d; reaches 0.9 only at W = 128
        rec("swa", {"window": 32}, d, 1e-3, 0.40, 2 * 32 * d), rec("swa", {"window": 32}, d, 3e-3, 0.45, 2 * 32 * d),
        rec("swa", {"window": 64}, d, 1e-3, 0.70, 2 * 64 * d), rec("swa", {"window": 64}, d, 3e-3, 0.60, 2 * 64 * d),
        rec("swa", {"window": 128}, d, 1e-3, 0.95, 2 * 128 * d),
        # BLA: state 2 N d; reaches 0.9 at N = 15 (W = 128), but not at N = 7
        rec("bla", {"window": 128, "resolution": 7}, d, 1e-3, 0.85, 2 * 7 * d),
        rec("bla", {"window": 128, "resolution": 15}, d, 1e-3, 0.50, 2 * 15 * d),
        rec("bla", {"window": 128, "resolution": 15}, d, 3e-3, 0.92, 2 * 15 * d),
        rec("bla", {"window": 64, "resolution": 15}, d, 1e-3, 0.80, 2 * 15 * d),
        # two seeds of one lr are averaged
        rec("bla", {"window": 64, "resolution": 31}, d, 1e-3, 1.00, 2 * 31 * d, seed=0),
        rec("bla", {"window": 64, "resolution": 31}, d, 1e-3, 0.90, 2 * 31 * d, seed=1),
        rec("gla", {}, d, 1e-3, 0.30, d * d),
        # ignored: an error line, a time-limited line, a torn line
        {"key": "bad", "error": "Traceback ..."},
        rec("swa", {"window": 4}, d, 1e-3, 0.99, 2 * 4 * d, stopped="time_limit"),
    ]
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in runs) + "\n{\"key\": \"torn")
    return path


def test_load_filters(runs_file):
    runs = load_runs(runs_file)
    assert len(runs) == 12
    assert all("error" not in r and r["stopped"] != "time_limit" for r in runs)


def test_best_over_lr(runs_file):
    rows = best_over_lr(load_runs(runs_file))
    by = {(r["mixer"], r["config"]): r for r in rows}
    assert by[("swa", "W=64")]["accuracy"] == 0.70 and by[("swa", "W=64")]["best_lr"] == 1e-3
    assert by[("bla", "W=128,N=15")]["accuracy"] == 0.92 and by[("bla", "W=128,N=15")]["best_lr"] == 3e-3
    assert by[("bla", "W=64,N=31")]["accuracy"] == pytest.approx(0.95)
    assert by[("bla", "W=64,N=31")]["n_seeds"] == 2
    assert by[("bla", "W=128,N=15")]["per_slice"]["256x64"] == pytest.approx(0.46)
    assert by[("gla", "")]["state_size"] == 64 * 64


def test_state_efficiency(runs_file):
    rows = best_over_lr(load_runs(runs_file))
    assert smallest_state_reaching(rows, "swa", 0.9) == 2 * 128 * 64
    assert smallest_state_reaching(rows, "bla", 0.9) == 2 * 15 * 64
    e = state_efficiency(rows, 0.9, d_model=64)
    assert e["ratio"] == pytest.approx(128 / 15)
    assert state_efficiency(rows, 0.99)["ratio"] is None            # nobody reaches 0.99
    assert state_efficiency(rows, 0.8)["bla_state"] == 2 * 7 * 64
    pts = accuracy_vs_state(rows, "bla", 64)
    assert [p[0] for p in pts] == sorted(p[0] for p in pts)
    text = report(runs_file)
    assert "SWA/BLA = 8.53x" in text


def test_layer_variants_are_never_merged():
    """Two GSA recipes (or BLA with and without a learned temperature) are different models: their
    labels differ, so the best-over-lr grouping keeps them apart."""
    from blaviz.experiments.analysis import config_label
    runs = [rec("gsa", {"num_slots": 16}, 64, 1e-3, 0.2, 2048), rec("gsa", {"num_slots": 16, "recipe": "fla"}, 64, 1e-3, 0.6, 2048),
            rec("bla", {"window": 64, "resolution": 15}, 64, 1e-3, 0.1, 1920),
            rec("bla", {"window": 64, "resolution": 15, "learn_temperature": True}, 64, 1e-3, 0.3, 1920)]
    assert [config_label(r) for r in runs] == ["M=16", "M=16,recipe=fla", "W=64,N=15", "W=64,N=15,T=True"]
    assert sorted(r["accuracy"] for r in best_over_lr(runs)) == [0.1, 0.2, 0.3, 0.6]
