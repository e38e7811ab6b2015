"""RegBench's summary over seeds: spread per row and the trend's interval, with known answers."""
import pytest

from blaviz.experiments.regbench.analysis import summarize, trend


def run(cfg, state, validity, seed, lr=1e-3):
    return {"key": f"swa{cfg}/s{seed}/lr{lr}", "mixer": "swa", "mixer_kwargs": {"window": cfg},
            "d_model": 64, "lr": lr, "seed": seed, "state_size": state, "validity_accuracy": validity,
            "tv_distance": 1 - validity, "per_slice": {"0-64": validity}, "preset_hash": "h"}


def test_seeded_rows_and_trend_interval():
    runs = ([run(8, 1024, v, s) for s, v in enumerate([0.60, 0.65, 0.70])]
            + [run(64, 8192, v, s) for s, v in enumerate([0.85, 0.90])]
            + [run(256, 32768, 0.93, 0)])
    rows = {r["config"]: r for r in summarize(runs)}
    small = rows["W=8"]
    assert small["validity"] == pytest.approx(0.65) and small["n_seeds"] == 3
    assert small["validity_std"] == pytest.approx(0.05)
    assert (small["validity_min"], small["validity_max"]) == (0.60, 0.70)
    assert [s["seed"] for s in small["seeds"]] == [0, 1, 2]
    t = trend(list(rows.values()), "swa")
    # from W=8 (three seeds) to W=256 (one seed): 0.93 - 0.65 on the means,
    # 0.93 - 0.70 to 0.93 - 0.60 over the seed choices
    assert t["validity_gain"] == pytest.approx(0.28)
    assert t["validity_gain_low"] == pytest.approx(0.23)
    assert t["validity_gain_high"] == pytest.approx(0.33)
    assert t["groups"][0]["n_seeds"] == [3, 1]


def test_repeated_seed_is_an_error():
    with pytest.raises(ValueError, match="repeat"):
        summarize([run(8, 1024, 0.6, 0), dict(run(8, 1024, 0.7, 0), key="other")])
