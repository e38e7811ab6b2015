"""Chapter 8 figure builders (blaviz.viz.mqar): example decoding, SWA's window ceiling, provenance,
accuracy-against-state traces and the per-slice slider."""
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from blaviz.data.mqar import make_mqar
from blaviz.experiments.analysis import best_over_lr, load_runs
from blaviz.data.mqar import MQARData
from blaviz.experiments.mqar import MQARTaskData
from blaviz.state_size import state_size
from blaviz.viz import figure_html
from blaviz.viz.mqar import (ROLE_COLORS, accuracy_state_figure, accuracy_state_traces, example_roles,
                             example_table, per_slice_figure, provenance, query_distances,
                             runs_label,
                             state_formula_rows, training_curve_figure, window_coverage)

STORED = Path(__file__).resolve().parents[2] / "results" / "mqar" / "book" / "runs.jsonl"
MAX_HTML = 1_000_000   # bytes per figure on a page


# ----------------------------------------------------------------------------- one example
def test_example_roles_follow_the_generator():
    x, y = make_mqar(3, 40, 5, vocab_size=64, seed=1)
    for b in range(3):
        roles = example_roles(x[b], y[b], 5)
        assert [r["pos"] for r in roles] == list(range(40))
        assert [r["role"] for r in roles[:10]] == ["key", "value"] * 5
        assert [r["pair"] for r in roles[:10]] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
        value_of = {roles[2 * i]["token"]: roles[2 * i + 1]["token"] for i in range(5)}
        queries = [r for r in roles if r["role"] == "query"]
        assert len(queries) == 5 and sorted(r["pair"] for r in queries) == [1, 2, 3, 4, 5]
        for q in queries:
            assert q["label"] == value_of[q["token"]] == int(y[b, q["pos"]])
            nxt = roles[q["pos"] + 1]
            assert nxt["role"] == "answer" and nxt["pair"] == q["pair"] and nxt["token"] == q["label"]
        assert all(r["label"] is None for r in roles if r["role"] != "query")
        assert sum(r["role"] == "filler" for r in roles) == 40 - 20


def test_example_roles_without_answers_and_bad_input():
    x, y = make_mqar(1, 32, 4, vocab_size=64, seed=2, answers_in_input=False, random_non_queries=False)
    roles = example_roles(x[0], y[0], 4)
    assert not any(r["role"] == "answer" for r in roles)
    assert sum(r["role"] == "query" for r in roles) == 4
    with pytest.raises(ValueError, match="not a context key|queries"):
        example_roles(x[0], y[0], 3)
    with pytest.raises(ValueError, match="length"):
        example_roles(x[0], y[0, :-1], 4)


def test_example_table_html_and_text():
    x, y = make_mqar(1, 24, 3, vocab_size=32, seed=0)
    tab = example_table(x[0], y[0], 3, per_row=10)
    html = tab._repr_html_()
    assert html.count("<table") == 3                      # 24 positions, 10 per block
    for name, color in ROLE_COLORS.items():
        assert color in html and name in html
    assert "k<sub>1</sub>" in html and "q<sub>" in html
    text = repr(tab).splitlines()
    assert len(text) == 24 and "key" in text[0] and "-> label" in "".join(text)


# ----------------------------------------------------------------------------- state sizes
def test_state_formula_rows_use_state_size():
    rows = {r[0]: r for r in state_formula_rows(head_dim=32, num_heads=2, window=64, resolution=7,
                                                 num_slots=8, seq_len=128)}
    assert rows["BLA"][3] == state_size("bla", head_dim=32, num_heads=2, resolution=7) == 2 * 7 * 32 * 2
    assert rows["SWA"][3] == 2 * 64 * 32 * 2
    assert rows["GSA"][3] == 2 * 8 * 32 * 2
    assert rows["GLA"][3] == rows["linear attention"][3] == rows["Gated DeltaNet"][3] == 32 * 32 * 2
    assert rows["full attention"][3] == 2 * 128 * 32 * 2


# ----------------------------------------------------------------------------- SWA's ceiling
def test_query_distances_brute_force():
    x, y = make_mqar(4, 48, 6, vocab_size=128, seed=3)
    want = []
    for b in range(4):
        for i in range(48):
            if y[b, i] != -100:
                j = [p for p in range(1, 12, 2) if x[b, p] == y[b, i]][0]
                want.append(i - j)
    got = query_distances(x, y, 6)
    assert sorted(got.tolist()) == sorted(want)
    assert (got >= 1).all()


def test_window_coverage_matches_the_task_test_sets():
    data = MQARData(train_configs=((64, 4),), train_counts=(8,), test_slices=((64, 4), (64, 8), (128, 16)),
                    pooled_slices=((64, 4), (64, 8)), n_test=40, n_val=8, vocab_size=512)
    windows = [1, 4, 16, 64, 128]
    cov = window_coverage(data, windows)
    assert set(cov) == {"64x4", "64x8", "128x16", "pooled"}
    test = MQARTaskData(data).test_sets()                    # the sets the harness scores
    for name, kv in (("64x4", 4), ("64x8", 8), ("128x16", 16)):
        d = query_distances(*test[name], kv).numpy()
        assert np.allclose(cov[name], [(d < W).mean() for W in windows])
        assert np.all(np.diff(cov[name]) >= 0)
    assert cov["64x4"][0] == 0.0 and cov["64x4"][3] == 1.0 and cov["128x16"][-1] == 1.0
    d = np.concatenate([query_distances(*test[n], kv).numpy() for n, kv in (("64x4", 4), ("64x8", 8))])
    assert np.allclose(cov["pooled"], [(d < W).mean() for W in windows])   # pooled over queries
    assert np.allclose(window_coverage(vars(data) | {}, windows)["pooled"], cov["pooled"])  # a dict works too


# ----------------------------------------------------------------------------- provenance
def _rec(commit, dirty, when, gpu="NVIDIA H200"):
    return {"git_commit": commit, "git_dirty": dirty, "started_at": when, "gpu_name": gpu, "torch_version": "2.11"}


def test_provenance_and_runs_label():
    recs = [_rec("8717e84cfd9c", "true", "2026-11-28T11:49:00+00:00"),
            _rec("260444b", "0", "2026-11-28T12:01:24+00:00"),
            _rec("8717e84cfd9c", True, "2026-11-28T11:50:00+00:00")]
    p = provenance(recs)
    assert p["commits"] == ["8717e84+dirty", "260444b"] and p["dates"] == ["2026-11-28"] and p["n_runs"] == 3
    assert runs_label(recs) == "3 complete runs on NVIDIA H200"


# ----------------------------------------------------------------------------- accuracy vs state
def _row(mixer, config, state, acc, per_slice, lr=1e-3):
    return {"mixer": mixer, "config": config, "d_model": 64, "state_size": state, "accuracy": acc,
            "best_lr": lr, "per_slice": per_slice}


ROWS = [
    _row("swa", "W=16", 2048, 0.05, {"64x4": 0.6, "64x8": 0.4}),
    _row("swa", "W=8", 1024, 0.01, {"64x4": 0.1, "64x8": 0.03}),
    _row("bla", "W=32,N=7", 896, 0.02, {"64x4": 0.2, "64x8": 0.07}),
    _row("bla", "W=32,N=15", 1920, 0.1, {"64x4": 0.7, "64x8": 0.6}),
    _row("bla", "W=64,N=15", 1920, 0.08, {"64x4": 0.4, "64x8": 0.3}),
    _row("softmax", "", 32768, 0.99, {"64x4": 0.97, "64x8": 1.0}),
]


def test_accuracy_state_traces():
    tr = accuracy_state_traces(ROWS, metric="64x8", coverage=([1024, 2048], [0.1, 0.4]))
    assert [t.name for t in tr] == ["SWA ceiling: share of values inside W", "SWA", "BLA, W = 32", "BLA, W = 64",
                                    "full attention"]
    assert list(tr[1].x) == [1024, 2048] and list(tr[1].y) == [0.03, 0.4]   # sorted by state
    assert list(tr[2].x) == [896, 1920] and list(tr[2].y) == [0.07, 0.6]
    assert list(tr[4].y) == [1.0]
    pooled = accuracy_state_traces(ROWS)
    assert len(pooled) == 4 and list(pooled[0].y) == [0.01, 0.05]
    assert "accuracy 0.050" in pooled[0].hovertext[1]
    assert accuracy_state_traces(ROWS, d_model=128) == []


def test_reads_with_more_slots_get_their_own_line_and_variants_their_names():
    rows = ROWS[:5] + [_row("bla", "W=32,N=15,M=30", 1920, 0.2, {}),
                       _row("bla", "W=32,N=7,M=14", 896, 0.03, {}),
                       _row("gated_bla", "W=32,N=15", 1920, 0.12, {})]
    tr = {t.name: t for t in accuracy_state_traces(rows)}
    assert list(tr) == ["SWA", "BLA, W = 32", "BLA, W = 32, more slots (S > N)", "BLA, W = 64",
                        "gated BLA"]
    plain, more = tr["BLA, W = 32"], tr["BLA, W = 32, more slots (S > N)"]
    assert list(plain.y) == [0.02, 0.1] and list(more.y) == [0.03, 0.2]    # no S = N point joins S > N
    assert plain.line.color == more.line.color and more.line.dash == "dash"
    assert tr["BLA, W = 64"].line.color != plain.line.color


def test_per_slice_slider_synthetic():
    fig = per_slice_figure(ROWS, active=1)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["64x4", "64x8"]
    assert len(fig.data) == 2 * 4 and fig.layout.sliders[0].active == 1
    shown = [t for t, v in zip(fig.data, steps[1].args[0]["visible"]) if v]
    assert [t.name for t in shown][0] == "SWA" and np.allclose(shown[1].y, [0.07, 0.6])
    assert "slice 64x8" in steps[1].args[1]["title.text"] and "slice 64x8" in fig.layout.title.text
    assert fig.layout.xaxis.type == "log"


@pytest.mark.skipif(not STORED.exists(), reason="no stored MQAR runs")
def test_figures_from_the_stored_runs():
    records = load_runs(STORED)
    rows = best_over_lr(records)
    fig = accuracy_state_figure(rows, records=records)
    assert fig.data[0].name.startswith("SWA ceiling")
    title = fig.layout.title.text
    assert "complete runs on NVIDIA H200" in title and "commit" not in title   # no hashes in figures
    assert fig.layout.legend.y < 0 and fig.layout.legend.orientation == "h"  # below the plot, off the data
    sl = per_slice_figure(rows, records=records)
    assert sl.layout.legend.y < 0 and "commit" not in sl.layout.sliders[0].steps[0].args[1]["title.text"]
    assert fig.layout.xaxis.type == "log"
    assert len(figure_html(fig)) < MAX_HTML
    sl = per_slice_figure(rows, records=records)
    labels = [s.label for s in sl.layout.sliders[0].steps]
    assert labels == ["64x4", "64x8", "64x16", "128x32", "256x64", "512x128"]
    assert len(sl.data) % len(labels) == 0
    assert len(figure_html(sl)) < MAX_HTML


# ----------------------------------------------------------------------------- a live run
def test_training_curve_figure():
    hist = [{"step": 100, "train_loss": 5.0, "val_pooled": 0.1}, {"step": 200, "loss": 2.0, "val_pooled": 0.6}]
    fig = training_curve_figure(hist, title="t", chance=0.25)
    assert isinstance(fig, go.Figure) and len(fig.data) == 2
    assert list(fig.data[0].y) == [0.1, 0.6] and list(fig.data[1].y) == [5.0, 2.0]
    assert fig.layout.shapes[0].y0 == 0.25


def test_error_bars_span_the_seeds():
    from blaviz.experiments.analysis import best_over_lr
    from blaviz.viz.mqar import accuracy_state_traces

    def r(kw, mixer, acc, seed, state):
        return {"key": f"{mixer}{kw}{seed}", "mixer": mixer, "mixer_kwargs": kw, "d_model": 64,
                "lr": 1e-3, "seed": seed, "accuracy": acc, "state_size": state,
                "per_slice": {"64x4": acc / 2}, "preset_hash": "h"}
    runs = ([r({"window": 32}, "swa", a, s, 4096) for s, a in enumerate([0.2, 0.3, 0.7])]
            + [r({"window": 64, "resolution": 31}, "bla", 0.5, 0, 3968)])
    rows = best_over_lr(runs)
    swa, bla = [t for t in accuracy_state_traces(rows) if t.name in ("SWA", "BLA, W = 64")]
    assert swa.y[0] == pytest.approx(0.4)
    assert swa.error_y.array[0] == pytest.approx(0.3) and swa.error_y.arrayminus[0] == pytest.approx(0.2)
    assert "mean of 3 seeds" in swa.hovertext[0]
    assert bla.error_y.array[0] == 0 and "one seed" in bla.hovertext[0]
    (swa64,) = [t for t in accuracy_state_traces(rows, metric="64x4") if t.name == "SWA"]
    assert swa64.error_y.array[0] == pytest.approx(0.15)
