"""Numbers written in the prose of chapters 8 and 9 equal the stored results they describe.

The chapters print and plot the stored files; where their text quotes a number (a score, a gain,
a range), the test here recomputes it from the same file with the same library functions, so a
new results file that changes a quoted number fails the tests instead of leaving stale prose.
Chapters 6 and 7 quote no stored number: their text around stored results is generated from the
files when the page is built.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from blaviz.viz.results import results_file


def _close(x, y, tol=5e-4):
    return abs(x - y) < tol


# ----------------------------------------------------------------------------- chapter 8 (MQAR)
@pytest.fixture(scope="module")
def mqar():
    from blaviz.experiments.analysis import best_over_lr, load_runs
    from blaviz.experiments.sweep import read_records
    path = results_file("mqar/book/runs.jsonl", download=False)
    records = load_runs(path)
    return dict(lines=read_records(path), records=records, rows=best_over_lr(records),
                summary=json.loads((path.parent / "summary.json").read_text()))


def test_mqar_sweep_size_and_summary(mqar):
    records, rows, summary = mqar["records"], mqar["rows"], mqar["summary"]
    assert len(records) == 74                          # "74 complete runs"
    assert [(r["mixer"], r["config"], r["d_model"], r["accuracy"]) for r in rows] == \
           [(r["mixer"], r["config"], r["d_model"], r["accuracy"]) for r in summary["rows"]]


def test_mqar_ratios_and_levels(mqar):
    from blaviz.experiments.analysis import state_efficiency
    rows = mqar["rows"]
    slices = ["64x4", "64x8", "64x16", "128x32", "256x64", "512x128"]
    eff = [state_efficiency(rows, a, d_model=dm, metric=m)
           for dm in (64, 128) for m in [None, *slices] for a in (0.3, 0.5, 0.8, 0.9)]
    defined = [e["ratio"] for e in eff if e["ratio"] is not None]
    assert round(min(defined), 2) == 1.03 and round(max(defined), 2) == 2.13   # "1.03x and 2.13x"
    pooled = {(e["d_model"], e["threshold"]): e for e in eff if e["metric"] in (None, "pooled")}
    assert pooled[64, 0.5]["ratio"] is None and pooled[128, 0.5]["ratio"] is None   # never 0.5
    assert round(pooled[64, 0.3]["ratio"], 2) == round(pooled[128, 0.3]["ratio"], 2) == 2.06
    stored = {(e["d_model"], e["metric"], e["threshold"]): e["ratio"]
              for e in mqar["summary"]["state_efficiency"]}
    by = {(e["d_model"], e["metric"], e["threshold"]): e["ratio"] for e in eff}
    assert all(stored[k] == v for k, v in by.items() if k in stored)
    best = {dm: max(r["accuracy"] for r in rows if r["mixer"] == "bla" and r["d_model"] == dm)
            for dm in (64, 128)}
    assert round(best[64], 3) == 0.308 and round(best[128], 3) == 0.367     # "0.308", "0.367"
    v = {(r["mixer"], r["config"], r["d_model"]): r["accuracy"] for r in rows}
    assert _close(v["gated_deltanet", "", 128], 0.920) and _close(v["gated_deltanet", "", 64], 0.447)
    assert _close(v["bla", "W=64,N=31", 64], 0.308) and _close(v["swa", "W=32", 64], 0.170)
    assert _close(v["swa", "W=64", 64], 0.386)
    assert [round(v["bla", f"W={w},N=31", 64], 3) for w in (32, 64, 128, 256)] == \
           [0.155, 0.308, 0.190, 0.013]


def test_mqar_longer_training(mqar):
    from blaviz.experiments.analysis import config_label, load_runs
    long_runs = load_runs(results_file("mqar/long/runs.jsonl", download=False))
    same = {(r["mixer"], config_label(r)): r for r in mqar["records"]
            if r["d_model"] == 64 and r["lr"] == 3e-3}
    gain = {(r["mixer"], config_label(r)): r["accuracy"] - same[r["mixer"], config_label(r)]["accuracy"]
            for r in long_runs}
    assert len(long_runs) == 12
    assert max(g for (m, _), g in gain.items() if m == "bla") < 0.08 + 5e-3   # "at most 0.08"
    assert gain["gla", ""] > 0.25 and gain["swa", "W=64"] > 0.05          # the two that moved


def test_mqar_temperature_and_gsa_recipes(mqar):
    from blaviz.experiments.analysis import best_over_lr, load_runs
    from blaviz.experiments.sweep import read_records
    temp = best_over_lr(load_runs(results_file("mqar/temperature/runs.jsonl", download=False)))
    plain = {r["config"]: r["accuracy"] for r in mqar["rows"] if r["mixer"] == "bla" and r["d_model"] == 64}
    change = [r["accuracy"] - plain[r["config"].removesuffix(",T=True")] for r in temp]
    assert len(temp) == 6 and all(-0.01 < c < 0.04 for c in change)     # "-0.01 and +0.03"
    assert max(r["accuracy"] for r in temp) < 0.31
    gsa_ci = read_records(results_file("mqar/gsa_ci/runs.jsonl", download=False))
    acc = {(r["mixer_kwargs"].get("recipe", "blaviz"), r["seed"]): r["accuracy"] for r in gsa_ci}
    assert len(gsa_ci) == 4 and all(acc["fla", s] > acc["blaviz", s] + 0.1 for s in (0, 1))
    assert [round(acc[k], 3) for k in (("fla", 0), ("blaviz", 0), ("fla", 1), ("blaviz", 1))] == \
           [0.685, 0.479, 0.192, 0.068]

    def run_id(r):
        return "/".join(r["key"].split("/")[1:5]).replace(",recipe=fla", "")
    fla = {run_id(r): r for r in read_records(results_file("mqar/gsa_fla/runs.jsonl", download=False))}
    ours = {run_id(r): r for r in mqar["lines"] if r["mixer"] == "gsa" and r.get("stopped") != "time_limit"}
    pairs = [(ours[k], r) for k, r in fla.items()]
    accs = [x["accuracy"] for p in pairs for x in p]
    assert len(pairs) == 6 and all(f["stopped"] == "steps" for _, f in pairs)
    assert all(abs(f["accuracy"] - b["accuracy"]) < 0.01 for b, f in pairs)
    assert round(min(accs), 3) >= 0.010 and round(max(accs), 3) <= 0.026    # "between 0.010 and 0.026"


def test_mqar_pooled_seeds_quoted(mqar):
    """Chapter 8 quotes seed means over seeds 0-2 where book_seeds has them, and the ratios' range."""
    from blaviz.experiments.analysis import best_over_lr, load_runs, state_efficiency_range
    seeds = results_file("mqar/book_seeds/runs.jsonl", download=False)
    rows = best_over_lr(load_runs(results_file("mqar/book/runs.jsonl", download=False), seeds))
    r = {(x["mixer"], x["config"], x["d_model"]): x for x in rows}

    def q(key):
        x = r[key]
        return [x["accuracy"], x["accuracy_min"], x["accuracy_max"]]
    assert np.allclose(q(("bla", "W=64,N=31", 64)), [0.311, 0.308, 0.314], atol=5e-4)
    assert np.allclose(q(("swa", "W=32", 64)), [0.165, 0.162, 0.170], atol=5e-4)
    assert np.allclose(q(("swa", "W=64", 64)), [0.385, 0.382, 0.386], atol=5e-4)
    assert np.allclose(q(("swa", "W=32", 128)), [0.182, 0.168, 0.209], atol=5e-4)
    assert np.allclose(q(("swa", "W=64", 128)), [0.393, 0.390, 0.396], atol=5e-4)
    assert np.allclose([r["bla", "W=64,N=31", 128]["accuracy"], r["bla", "W=128,N=31", 128]["accuracy"],
                        r["bla", "W=128,N=31", 128]["accuracy_min"], r["bla", "W=128,N=31", 128]["accuracy_max"]],
                       [0.367, 0.363, 0.355, 0.369], atol=5e-4)
    assert [round(s["accuracy"], 3) for s in r["gated_deltanet", "", 64]["seeds"]] == [0.447, 0.699, 0.806]
    assert np.allclose(q(("softmax", "", 64)), [0.993, 0.990, 0.997], atol=5e-4)  # "reaches 0.993"
    slices = ["64x4", "64x8", "64x16", "128x32", "256x64", "512x128"]
    eff = [state_efficiency_range(rows, a, d_model=dm, metric=m)
           for dm in (64, 128) for m in [None, *slices] for a in (0.3, 0.5, 0.8, 0.9)]
    ends = [x for e in eff if e["ratio_low"] is not None for x in (e["ratio_low"], e["ratio_high"])]
    assert round(min(ends), 2) == 1.03 and round(max(ends), 2) == 2.13    # "1.03x and 2.13x" over seeds


def test_gsa_lr_1e2_book_regime(mqar):
    """Chapters 8 and 10: the book's GSA point at lr 1e-2 stays at the floor (0.009 pooled)."""
    from blaviz.experiments.sweep import read_records
    run, run64 = read_records(results_file("mqar/gsa_lr/runs.jsonl", download=False))
    assert (run["mixer"], run["mixer_kwargs"], run["d_model"], run["lr"], run["seed"]) == \
           ("gsa", {"num_slots": 16}, 64, 1e-2, 0)
    assert (run64["mixer_kwargs"], run64["lr"], run64["stopped"]) == ({"num_slots": 64}, 1e-2, "steps")
    assert run64["preset_hash"] == run["preset_hash"] and _close(run64["accuracy"], 0.007)
    assert run["stopped"] == "steps" and run["steps"] == 2280
    assert run["preset_hash"] == mqar["records"][0]["preset_hash"]     # the book's data and recipe
    assert _close(run["accuracy"], 0.009) and _close(run["per_slice"]["64x4"], 0.165)
    assert round(run["history"][0]["train_loss"], 1) == 8.7 and round(run["final_loss"], 1) == 3.6
    assert max(h["val_pooled"] for h in run["history"]) <= 0.0075
    # the same point with fla's layer recipe: 0.010 pooled ("0.009 and 0.010")
    fla, fla64 = read_records(results_file("mqar/gsa_lr_fla/runs.jsonl", download=False))
    assert fla64["mixer_kwargs"] == {"num_slots": 64, "recipe": "fla"} and fla64["stopped"] == "steps"
    assert _close(fla64["accuracy"], 0.009) and fla64["lr"] == 1e-2        # "0.007 and 0.009"
    assert (fla["mixer_kwargs"], fla["d_model"], fla["lr"], fla["seed"], fla["steps"]) == \
           ({"num_slots": 16, "recipe": "fla"}, 64, 1e-2, 0, 2280)
    assert fla["preset_hash"] == run["preset_hash"]
    assert _close(fla["accuracy"], 0.010) and _close(fla["per_slice"]["64x4"], 0.143)
    assert round(fla["final_loss"], 1) == 3.5 and max(h["val_pooled"] for h in fla["history"]) <= 0.0105


# ----------------------------------------------------------------------------- chapter 9 (RegBench)
@pytest.fixture(scope="module")
def regbench():
    from blaviz.experiments.analysis import load_runs
    from blaviz.experiments.regbench import summarize
    from blaviz.viz.regbench import sweep_series
    path = results_file("regbench/book/runs.jsonl", download=False)
    runs = load_runs(path)
    rows = summarize(runs)
    summary = json.loads((path.parent / "summary.json").read_text())
    return dict(runs=runs, rows=rows, summary=summary, series=sweep_series(rows),
                v={(r["mixer"], r["config"]): r["validity"] for r in rows},
                base=summary["baselines"])


def test_regbench_sweep(regbench):
    from blaviz.experiments.regbench import get_preset, preset_hash
    runs = regbench["runs"]
    assert len(runs) == 24 and {r["steps"] for r in runs} == {1296}          # "24 runs", "1296 steps"
    assert {(r["gpu_name"], r["d_model"], r["n_layers"], r["lr"], r["seed"]) for r in runs} == \
           {("NVIDIA H200", 64, 2, 1e-3, 0)}
    assert {r["preset_hash"] for r in runs} == {preset_hash(get_preset("book"))}
    # the stored summary predates the seed fields (spread, per seed); every field it has agrees
    stored = regbench["summary"]["rows"]
    assert [{k: r[k] for k in s} for r, s in zip(regbench["rows"], stored)] == stored


def test_regbench_quoted_gains(regbench):
    series, v, base = regbench["series"], regbench["v"], regbench["base"]
    val = {k: [r["validity"] for r in series[k]] for k in series}
    sw, b128, b512, gsa = val["SWA"], val["BLA W=128"], val["BLA W=512"], val["GSA"]
    gla, gdn = val["GLA"], val["Gated DeltaNet"]
    assert all(a < b for s in (sw, b128, b512, gsa) for a, b in zip(s, s[1:]))
    assert np.allclose([sw[0], sw[-1], sw[-1] - sw[0], v["softmax", ""]], [0.662, 0.926, 0.265, 0.927],
                       atol=5e-4)
    assert _close(series["SWA"][0]["tv"], 0.578) and _close(series["SWA"][-1]["tv"], 0.238)
    assert np.allclose(b128 + [b128[-1] - b128[0]], [0.596, 0.632, 0.702, 0.810, 0.213], atol=5e-4)
    assert np.allclose(b512 + [b512[-1] - b512[0]], [0.569, 0.581, 0.612, 0.657, 0.088], atol=5e-4)

    def per_doubling(k):
        p = series[k]
        return (p[-1]["validity"] - p[0]["validity"]) / np.log2(p[-1]["state_size"] / p[0]["state_size"])
    assert _close(per_doubling("BLA W=128"), 0.067) and _close(per_doubling("SWA"), 0.053)
    trend = next(t for t in regbench["summary"]["trends"] if t["mixer"] == "bla")
    assert _close(trend["validity_gain"], 0.088)
    assert _close(v["bla", "W=128,N=63"] - v["bla", "W=512,N=7"], 0.241)
    assert np.allclose(gsa + [gsa[-1] - gsa[0], v["swa", "W=128"] - v["swa", "W=8"]],
                       [0.714, 0.763, 0.787, 0.073, 0.257], atol=5e-4)
    assert np.allclose(gla + gdn, [0.820, 0.814, 0.815, 0.830, 0.838, 0.817], atol=5e-4)
    assert _close(gla[-1] - gla[0], -0.005) and _close(gdn[-1] - gdn[0], -0.013)
    three = base["in-context 3-gram"]                  # the one 3-gram score the chapter quotes
    assert _close(three["validity"], 0.935) and _close(three["tv"], 0.204)
    assert _close(next(r["tv"] for r in regbench["rows"] if r["mixer"] == "softmax"), 0.236)
    assert all(r["validity"] < three["validity"] for r in regbench["rows"])


@pytest.fixture(scope="module")
def regbench_pooled():
    from blaviz.experiments.analysis import load_runs
    from blaviz.experiments.regbench import summarize
    from blaviz.viz.regbench import sweep_series
    paths = [results_file(f"regbench/{p}/runs.jsonl", download=False) for p in ("book", "regbench_seeds")]
    rows = summarize(load_runs(*paths))
    summary = json.loads((paths[1].parent / "summary.json").read_text())
    return dict(rows=rows, series=sweep_series(rows), summary=summary)


def test_regbench_pooled_quoted_gains(regbench_pooled):
    """Chapter 9 quotes seed means and ranges over seeds (seed 0 with seeds 1 and 2 of the ends)."""
    series = regbench_pooled["series"]
    val = {k: [r["validity"] for r in series[k]] for k in series}
    trends = {t["mixer"]: t for t in regbench_pooled["summary"]["trends"]}

    def gain(mixer, family=None):
        t = trends[mixer]
        g = next(x for x in t["groups"] if family is None or x["family"] == family)
        return [g["validity_gain"], g["validity_gain_low"], g["validity_gain_high"]]
    assert np.allclose(gain("swa"), [0.268, 0.265, 0.270], atol=5e-4)
    assert np.allclose(gain("bla", "W=128"), [0.218, 0.213, 0.225], atol=5e-4)
    assert np.allclose(gain("bla", "W=512"), [0.087, 0.080, 0.094], atol=5e-4)
    assert np.allclose(gain("gsa"), [0.094, 0.061, 0.119], atol=5e-4)
    assert np.allclose(gain("gla"), [0.004, -0.006, 0.021], atol=5e-4)
    assert np.allclose(gain("gated_deltanet"), [0.010, -0.016, 0.027], atol=5e-4)
    assert np.allclose(val["BLA W=128"], [0.595, 0.632, 0.702, 0.812], atol=5e-4)
    assert np.allclose(val["BLA W=512"], [0.568, 0.581, 0.612, 0.655], atol=5e-4)
    assert np.allclose(val["GSA"], [0.689, 0.763, 0.783], atol=5e-4)
    assert np.allclose(val["GLA"] + val["Gated DeltaNet"], [0.815, 0.814, 0.819, 0.831, 0.838, 0.841],
                       atol=5e-4)
    three = [r for r in regbench_pooled["rows"] if r["n_seeds"] == 3]
    spread = [r["validity_max"] - r["validity_min"] for r in three]
    assert len(three) == 12 and _close(min(spread), 0.001, 1e-3) and _close(max(spread), 0.045)


def test_regbench_equal_state_levels(regbench):
    v, base = regbench["v"], regbench["base"]
    levels = {}
    for r in regbench["rows"]:
        if r["mixer"] != "softmax":
            levels.setdefault(int(round(np.log2(r["state_size"]))), []).append(r["validity"])
    quoted = {10: [0.830, 0.820, 0.714, 0.662, 0.596], 11: [0.838, 0.814, 0.754, 0.632],
              12: [0.834, 0.817, 0.815, 0.763, 0.702], 13: [0.893, 0.810]}
    for b, q in quoted.items():
        assert np.allclose(sorted(levels[b], reverse=True)[:len(q)], q, atol=5e-4), b
    assert v["swa", "W=16"] < v["bla", "W=128,N=63"] < v["swa", "W=32"]
    assert _close(v["swa", "W=32"], 0.834) and _close(base["in-context 2-gram"]["validity"], 0.826)


def test_regbench_convergence(regbench):
    from blaviz.viz.regbench import late_change
    late = [(r, late_change(r), late_change(r, "val_tv"), late_change(r, "train_loss"))
            for r in regbench["runs"]]
    assert all((c["from_step"], c["to_step"]) == (1000, 1296) for _, c, _, _ in late)
    assert max(abs(c["change"]) for r, c, _, _ in late if r["mixer"] != "gsa") < 0.005
    assert max(abs(c["change"]) for r, c, _, _ in late if r["mixer"] in ("swa", "softmax")) < 0.002
    gsa = [c["change"] for r, c, _, _ in sorted(late, key=lambda t: t[0]["state_size"])
           if r["mixer"] == "gsa"]
    assert np.allclose(gsa, [0.008, 0.014, 0.015], atol=5e-4)
    assert all(t["change"] < 0 for _, _, t, _ in late)
    assert all(-0.09 < lo["change"] < -0.019 for _, _, _, lo in late)


# ----------------------------------------------------------------------------- appendix
def test_appendix_provenance_table_matches_the_files():
    """Each row of the appendix's "What made each results file" table names the commit and start
    time that the file itself records."""
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "book" / "appendix_reproducing.md").read_text()
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| `([^`]+)`( \([a-z]+ call\))? \|.*\| `([0-9a-f]{7})`[^|]*\| (\d\d:\d\d)[^|]*\|",
                     line)
        if m:
            rows[(m.group(1), (m.group(2) or "").strip())] = (m.group(3), m.group(4))
    calls = {"(first call)": "provenance.json", "(second call)": "provenance2.json",
             "(third call)": "provenance3.json", "(fourth call)": "provenance4.json",
             "(fifth call)": "provenance5.json", "(sixth call)": "provenance6.json"}
    assert len(rows) == 34
    for (path, call), (commit, start) in rows.items():
        if path.endswith(".log"):           # a log names its commit and start in its header
            head = results_file(path, download=False).read_text().splitlines()[1]
            assert f"commit {commit}" in head and start in head, (path, head)
            continue
        if path.endswith(".json"):
            prov = json.loads(results_file(path, download=False).read_text())["provenance"]
        else:
            prov = json.loads(results_file(path + calls.get(call, "provenance.json"),
                                           download=False).read_text())
        assert str(prov["git_commit"]).startswith(commit), path
        when = prov.get("started_utc") or prov["date"]
        assert when[11:16] == start, (path, call, when)
