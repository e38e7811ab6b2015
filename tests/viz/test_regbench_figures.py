"""Chapter 9 figures: the automaton drawing (and its slider), prompts, the state sweep, curves."""
import math

import numpy as np
import pytest

from blaviz.data.dfa import DFA, NUM_SYMBOLS
from blaviz.data.regbench import PAD_ID, SEP_ID
from blaviz.viz import figure_html
from blaviz.viz import regbench as R

MB = 1_000_000


def dfa_from_edges(num_states, edges):
    rows = [[-1] * NUM_SYMBOLS for _ in range(num_states)]
    for (q, a), t in edges.items():
        rows[q][a] = t
    return DFA(num_states, tuple(sorted({a for _, a in edges})), tuple(map(tuple, rows)))


# a self-loop (0 -a-> 0), a pair of opposite edges (0 <-> 1), two symbols on one edge (1 -c,e-> 2)
TOY = dfa_from_edges(3, {(0, 0): 0, (0, 1): 1, (1, 4): 0, (1, 2): 2, (1, 3): 2, (2, 0): 0})


def test_symbol_names_and_prompt_text():
    assert [R.symbol_name(a) for a in (0, 17, SEP_ID, PAD_ID)] == ["a", "r", "|", "_"]
    toks = [0, 1, SEP_ID, 2, SEP_ID, 0, 0, PAD_ID, PAD_ID]
    assert R.format_prompt(toks) == "ab | c | aa"
    assert R.format_prompt(toks, max_strings=2) == "ab | c | ... (1 more strings)"


def test_state_positions_on_the_unit_circle():
    pos = R.state_positions(5)
    assert np.allclose(np.linalg.norm(pos, axis=1), 1.0)
    assert np.allclose(pos[0], [0.0, 1.0])            # the start state on top
    assert pos[1][0] > 0                               # then clockwise


def test_automaton_figure_draws_every_edge():
    fig = R.automaton_figure(TOY)
    edges, labels, states = fig.data
    assert [t.type for t in fig.data] == ["scatter"] * 3
    # one arrow per (state, next state) pair, plus the start arrow
    pairs = {(q, r) for q in range(TOY.num_states) for _, r in TOY.out_edges(q)}
    arrows = fig.layout.annotations
    assert len(arrows) == len(pairs) + 1 and arrows[-1].text == "start"
    assert set(labels.text) == {"a", "b", "c,d", "e"}
    assert len(labels.text) == len(pairs)
    # one curve per pair, separated by gaps (NaN once compacted to float32)
    assert int(np.isnan(np.asarray(edges.x, dtype=float)).sum()) == len(pairs)
    assert np.asarray(edges.x).dtype == np.float32
    assert list(states.text) == ["0", "1", "2"]
    assert states.marker.color[0] != states.marker.color[1]          # the start state stands out
    # arrowheads end outside the state discs, and the tails are not on top of the heads
    pos = R.state_positions(3)
    for a in arrows[:-1]:
        head = np.array([a.x, a.y])
        assert np.linalg.norm(pos - head, axis=1).min() > R.NODE_RADIUS * 0.9
        assert math.hypot(a.x - a.ax, a.y - a.ay) >= 0.05
    assert fig.layout.yaxis.scaleanchor == "x"


def test_automaton_slider_swaps_traces_and_arrows():
    seeds = (0, 1, 2)
    fig = R.automaton_slider(seeds, active=1)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["0", "1", "2"]
    assert len(fig.data) == 3 * len(seeds)
    for i, step in enumerate(steps):
        visible = step.args[0]["visible"]
        assert visible == [3 * i <= k < 3 * (i + 1) for k in range(9)]
        update = step.args[1]
        dfa = R.sample_automaton(seeds[i])
        pairs = {(q, r) for q in range(dfa.num_states) for _, r in dfa.out_edges(q)}
        assert len(update["annotations"]) == len(pairs) + 1
        assert update["title"]["text"].startswith(f"seed {seeds[i]}: {dfa.num_states} states")
    assert [k for k, t in enumerate(fig.data) if t.visible] == [3, 4, 5]
    assert len(fig.layout.annotations) == len(steps[1].args[1]["annotations"])   # the active step's arrows
    assert len(figure_html(fig)) < 0.3 * MB


def test_live_automaton_for_seed_respects_max_states():
    for seed in range(5):
        fig = R.automaton_for_seed(seed, max_states=5)
        assert len(fig.data[2].x) <= 5
        assert fig.layout.title.text.startswith(f"seed {seed}:")


ROWS = [
    {"mixer": "swa", "state_size": 1024, "validity": 0.5, "tv": 0.6, "config": "W=8"},
    {"mixer": "swa", "state_size": 4096, "validity": 0.8, "tv": 0.4, "config": "W=32"},
    {"mixer": "bla", "state_size": 896, "validity": 0.6, "tv": 0.5, "config": "W=128,N=7"},
    {"mixer": "gla", "state_size": 2048, "validity": 0.3, "tv": 0.7, "config": "H=2"},
]


def test_state_sweep_figure():
    refs = {"in-context 3-gram": {"validity": 0.9, "tv": 0.3}, "most frequent": {"validity": 0.1, "tv": None}}
    fig = R.state_sweep_figure(ROWS, references=refs, title="t")
    names = [t.name for t in fig.data]
    assert names == ["BLA", "BLA", "SWA", "SWA", "GLA", "GLA"]               # colour order, two panels each
    swa = fig.data[2]
    assert list(swa.x) == [1024.0, 4096.0] and np.allclose(swa.y, [0.5, 0.8])
    assert fig.data[3].yaxis == "y2" and np.allclose(fig.data[3].y, [0.6, 0.4])
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "log"
    assert len(fig.layout.shapes) == 3                     # 3-gram in both panels, "most frequent": validity only
    dashes = [sh.line.dash for sh in fig.layout.shapes]
    assert dashes[0] == dashes[1] != dashes[2]            # one style per reference, distinct references differ
    assert [t.showlegend for t in fig.data] == [True, False] * 3


def test_training_curves_and_positions():
    rec = {"mixer": "swa", "mixer_kwargs": {"window": 32}, "per_slice": {"pos 0-31": 0.7, "pos 32-63": 0.8},
           "history": [{"step": 50, "train_loss": 2.5, "val_validity": 0.4, "val_pooled": 0.4},
                       {"step": 100, "train_loss": 2.0, "val_validity": 0.7, "val_pooled": 0.7}]}
    fig = R.training_curves_figure([rec, dict(rec, history=[])])
    assert len(fig.data) == 2 and fig.data[0].name == "SWA window=32"
    assert list(fig.data[0].x) == [50, 100] and np.allclose(fig.data[1].y, [2.5, 2.0])
    fig = R.position_figure([rec], references={"2-gram": {"pos 0-31": 0.7, "pos 32-63": 0.8},
                                               "3-gram": {"pos 0-31": 0.8, "pos 32-63": 0.9}})
    assert [t.type for t in fig.data] == ["bar", "scatter", "scatter"]
    assert fig.data[1].line.dash != fig.data[2].line.dash                    # the two n-grams differ
    assert list(fig.data[0].x) == ["pos 0-31", "pos 32-63"]


def test_state_sweep_splits_bla_windows():
    rows = ROWS + [{"mixer": "bla", "state_size": 1920, "validity": 0.65, "tv": 0.5, "config": "W=128,N=15"},
                   {"mixer": "bla", "state_size": 896, "validity": 0.55, "tv": 0.6, "config": "W=512,N=7"}]
    series = R.sweep_series(rows)
    assert list(series) == ["BLA W=128", "BLA W=512", "SWA", "GLA"]
    assert [r["config"] for r in series["BLA W=128"]] == ["W=128,N=7", "W=128,N=15"]
    fig = R.state_sweep_figure(rows)
    assert [t.name for t in fig.data[:4]] == ["BLA W=128"] * 2 + ["BLA W=512"] * 2
    assert fig.data[0].line.dash == "solid" and fig.data[2].line.dash == "dash"
    assert list(fig.data[2].x) == [896.0]


def _hist(vals, every=100, last=1296):
    steps = list(range(every, last, every)) + [last]
    return [{"step": s, "val_validity": v, "val_tv": 1 - v, "train_loss": 2.0} for s, v in zip(steps, vals)]


def test_late_change():
    rec = {"mixer": "gsa", "mixer_kwargs": {"num_slots": 8},
           "history": _hist([0.5] * 9 + [0.70, 0.72, 0.69, 0.74])}
    c = R.late_change(rec)                       # 0.8 * 1296 = 1036.8: the reference is step 1000
    assert (c["from_step"], c["to_step"]) == (1000, 1296)
    assert math.isclose(c["change"], 0.04) and math.isclose(c["max_abs"], 0.04)
    assert math.isclose(R.late_change(rec, "val_tv")["change"], -0.04)
    assert R.run_label(rec) == "GSA M=8"
    try:
        R.late_change({"mixer": "swa", "history": _hist([0.5])})
    except ValueError:
        pass
    else:
        raise AssertionError("one history point must be refused")


def test_convergence_figure():
    recs = [{"mixer": "bla", "mixer_kwargs": {"window": w, "resolution": n}, "state_size": 128 * n,
             "history": _hist([0.5, 0.6])} for w in (128, 512) for n in (7, 15)]
    recs.append({"mixer": "swa", "mixer_kwargs": {"window": 8}, "state_size": 1024, "history": _hist([0.6, 0.7])})
    recs.append({"mixer": "gla", "mixer_kwargs": {"num_heads": 4}, "state_size": 1024, "history": []})
    fig = R.convergence_figure(recs)
    assert len(fig.data) == 5                                  # the run without history is left out
    assert [a.text for a in fig.layout.annotations] == ["BLA", "SWA"]
    bla = fig.data[:4]
    assert [t.line.dash for t in bla] == ["solid", "solid", "dash", "dash"]
    assert bla[0].opacity < bla[1].opacity                       # lighter: smaller state
    assert fig.data[4].xaxis == "x2" and list(fig.data[4].x) == [100, 200]


def test_state_sweep_error_bars_span_the_seeds():
    from blaviz.viz.regbench import seed_error_bars, state_sweep_figure

    rows = [{"mixer": "swa", "config": "W=8", "state_size": 1024, "validity": 0.65, "tv": 0.5,
             "seeds": [{"seed": s, "validity": v, "tv": 0.5} for s, v in enumerate([0.6, 0.65, 0.7])]},
            {"mixer": "swa", "config": "W=64", "state_size": 8192, "validity": 0.9, "tv": 0.3}]
    bars = seed_error_bars(rows)
    assert bars["array"] == pytest.approx([0.05, 0.0]) and bars["arrayminus"] == pytest.approx([0.05, 0.0])
    fig = state_sweep_figure(rows)
    assert "mean of 3 seeds" in fig.data[0].text[0] and "one seed" in fig.data[0].text[1]
    assert list(fig.data[0].error_y.array) == pytest.approx([0.05, 0.0])
