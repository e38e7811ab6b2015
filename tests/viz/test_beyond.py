"""Chapter 10's figure helpers: trained points, the read-out table, the variant labels."""
from blaviz.viz.beyond import (readout_figure, readout_table, trained_bla_points,
                               variant_label)

SUMMARY = [
    {"mixer": "bla", "config": "W=64,N=15", "d_model": 64, "per_slice": {"64x16": 0.2}},
    {"mixer": "bla", "config": "W=32,N=15", "d_model": 64, "per_slice": {"64x16": 0.9}},
    {"mixer": "swa", "config": "W=64", "d_model": 64, "per_slice": {"64x16": 1.0}},
]
GRID = [{"window": 64, "resolution": n, "w_over_n": 64 / n, "slots": s, "head_dim": 64,
         "erasure": "periodic", "recall": r} for n, r in ((31, 1.0), (15, 0.5))
        for s in ("N", "2N")]


def test_trained_points_keep_bla_with_the_window_covering_the_slice():
    pts = trained_bla_points(SUMMARY)
    assert [(p["window"], p["resolution"], p["accuracy"]) for p in pts] == [(64, 15, 0.2)]


def test_readout_table_and_figure():
    rows, headers = readout_table(GRID, resolutions=(31, 15), widths=(64,))
    assert headers == ["d", "slots", "W/N = 2.1", "W/N = 4.3"]
    assert rows == [[64, "S = N", "1.00", "0.50"], [64, "S = 2N", "1.00", "0.50"]]
    fig = readout_figure(GRID, trained_bla_points(SUMMARY), widths=(64,))
    assert len(fig.data) == 3


def rec(mixer, kw, lr, seed, acc, state=100):
    return {"mixer": mixer, "mixer_kwargs": kw, "lr": lr, "seed": seed, "accuracy": acc,
            "d_model": 64, "state_size": state, "steps": 10}


def test_variant_labels():
    assert variant_label(rec("bla_multires", {"heads": ((16, 16), (128, 47))}, 1, 0, 0)) == \
        "multi-res (16, 16) + (128, 47)"
    assert variant_label(rec("bla", {"window": 64, "resolution": 15, "num_slots": 30},
                             1, 0, 0)) == "BLA (64, 15) S=30"


def test_run_cost_and_controls_figure():
    from blaviz.viz.beyond import controls_figure, run_cost
    r = rec("swa", {"window": 8}, 1e-2, 0, 0.5)
    r.update(train_time_s=60.0, steps=600, planned_steps=6000,
             history=[{"step": 300, "val_pooled": 0.1}, {"step": 600, "val_pooled": 0.4}])
    (c,) = run_cost([r], concurrency=10)
    assert abs(c["s_per_step"] - 0.1) < 1e-12 and abs(c["gpu_minutes"] - 1.0) < 1e-12
    assert len(controls_figure([r]).data) == 1


def test_erasure_kernels_figure():
    from blaviz.viz.beyond import erasure_kernels_figure
    fig = erasure_kernels_figure(16, 5, slots=(0, 1))
    assert len(fig.data) == 4 and len(fig.data[0].x) == 32
