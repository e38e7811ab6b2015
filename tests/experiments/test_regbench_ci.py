"""RegBench through the shared harness: the ci preset learns in context on the CPU; metrics, length
groups, n-gram baselines, JSON lines, resuming and the command line."""
import json
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from blaviz.data.regbench import NUM_SYMBOLS, SEP_ID, make_regbench, oracle_logits, tv_distance, validity_accuracy
from blaviz.experiments.__main__ import main
from blaviz.experiments.regbench import (RegBenchSetup, RegBenchTaskData, baselines, build_model, generate, get_preset,
                                         length_groups, ngram_logits, position_scores, run_one, summarize,
                                         sweep_specs)
from blaviz.experiments.sweep import finished_keys, read_records, run_sweep, select


pytestmark = pytest.mark.usefixtures("one_thread")


def micro_preset(**train):
    """Two mixers, a handful of steps on a few short prompts: about a second per run."""
    setup = RegBenchSetup(num_train=24, num_val=4, num_test=6, max_len=48, bucket=16, position_slices=(0, 16, 48))
    ci = get_preset("ci")
    return replace(ci, name="micro", data=setup, widths=(16,), head_dim=8, lrs=(3e-3,),
                   grid=(("swa", {"window": 8}), ("bla", {"window": 8, "resolution": 3})),
                   train=dict(ci.train, batch_size=8, max_steps=4, eval_every=2, **train))


REQUIRED = {"key", "task", "mixer", "mixer_kwargs", "d_model", "state_size", "accuracy", "validity_accuracy",
            "tv_distance", "per_slice", "steps", "history", "wall_time_s", "train_time_s", "gpu_name",
            "torch_version", "triton_version", "git_commit", "seed", "lr", "command", "train_config", "data",
            "n_params", "stopped"}


@pytest.mark.slow   # a real training run: 1-2 minutes on two busy cores
def test_ci_preset_learns_in_context():
    """SWA (W = 32) on the ci preset: validity far above every context-free baseline, in < ~60 s."""
    preset = get_preset("ci")
    spec = next(s for s in sweep_specs(preset) if s["mixer"] == "swa")
    t0 = time.perf_counter()
    rec = run_one(spec, preset, device="cpu", progress=False)
    wall = time.perf_counter() - t0
    base = baselines(preset.data, ngrams=(1,))
    trivial = max(base["uniform guess"]["validity"], base["most frequent symbol"]["validity"])
    assert trivial < 0.15                                   # ~2 legal symbols out of 18
    # measured: validity 0.78, TV 0.50 after 500 steps (12-23 s on one busy core); margins are wide
    assert rec["validity_accuracy"] > trivial + 0.4, rec["history"]
    assert rec["validity_accuracy"] > base["in-context 1-gram"]["validity"] + 0.1
    assert rec["tv_distance"] < base["uniform guess"]["tv"] - 0.2
    assert rec["accuracy"] == rec["validity_accuracy"]
    hist = rec["history"]
    assert [h["step"] for h in hist] == list(range(50, 501, 50))
    assert hist[-1]["val_validity"] > hist[0]["val_validity"] and hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert rec["state_size"] == 2 * 32 * 32                  # SWA: 2 W d per layer (one head)
    print(f"ci run: {wall:.1f}s, validity {rec['validity_accuracy']:.3f}, TV {rec['tv_distance']:.3f}")


def test_metrics_agree_with_the_data_module():
    _, _, test = generate(micro_preset().data)
    logits = torch.randn(*test.inputs.shape, 20, generator=torch.Generator().manual_seed(0))
    ok, tv, scored = position_scores(logits, test)
    assert ok[scored].float().mean().item() == pytest.approx(validity_accuracy(logits, test), abs=1e-12)
    assert tv[scored].mean().item() == pytest.approx(tv_distance(logits, test), abs=1e-12)
    ok, tv, _ = position_scores(oracle_logits(test), test)
    assert ok[scored].all() and tv[scored].abs().max() < 1e-6


def test_evaluate_pools_batches_and_positions():
    """Task.evaluate (batched, trimmed to each batch's longest prompt) equals the metrics on all at once."""
    p = micro_preset()
    task = RegBenchTaskData(p.data)
    model = build_model(p, sweep_specs(p)[0]).eval()
    test = task.test_sets()["test"]
    with torch.no_grad():
        logits = model.logits(model(test.inputs))
    res = task.evaluate(model, task.test_sets(), device="cpu", batch_size=4)
    assert res["pooled"] == pytest.approx(validity_accuracy(logits, test), abs=1e-6)
    assert res["metrics"]["tv"] == pytest.approx(tv_distance(logits, test), abs=1e-6)
    assert res["metrics"]["scored_positions"] == int(test.score_mask.sum())
    assert set(res["per_slice"]) == {"pos 0-15", "pos 16-47"}


def test_length_groups_cover_every_prompt_once():
    train, _, _ = generate(RegBenchSetup(num_train=60, num_val=1, num_test=1, max_len=200, bucket=32))
    groups = length_groups(train, 32)
    assert sum(x.shape[0] for x, _ in groups) == 60
    widths = [x.shape[1] for x, _ in groups]
    assert widths == sorted(widths) and all(w % 32 == 0 or w == 200 for w in widths)
    labelled = sum(int((y != -100).sum()) for _, y in groups)
    assert labelled == int((train.targets != -100).sum())      # no label lost to the cut


def _ngram_reference(toks, i, n):
    """Brute force: the next-symbol counts after ``toks[:i + 1]`` for the longest seen context."""
    for k in range(min(n - 1, i + 1), -1, -1):
        ctx = toks[i + 1 - k:i + 1]
        counts = np.zeros(NUM_SYMBOLS)
        for j in range(k, i + 1):                       # toks[j] followed the context toks[j-k:j]
            if toks[j - k:j] == ctx and toks[j] < NUM_SYMBOLS:
                counts[toks[j]] += 1
        if counts.sum():
            return counts / counts.sum()
    return None


def test_ngram_baseline():
    _, test = make_regbench(0, 4, seed=3, max_len=80)
    for n in (1, 2, 3):
        logits = ngram_logits(test, n)
        for b in range(len(test)):
            toks = test.inputs[b, :int(test.lengths[b])].tolist()
            for i in range(len(toks)):
                want = _ngram_reference(toks, i, n)
                got = logits[b, i, :NUM_SYMBOLS].double()
                if want is None:
                    assert got.eq(0).all()              # nothing seen yet: uniform
                else:
                    assert np.allclose(torch.softmax(got, -1).numpy(), want, atol=1e-6), (n, b, i)
    # a hand-made prompt: "ab|ab|a" -> after the first "a" the 2-gram knows "b" follows
    toks = torch.tensor([[0, 1, SEP_ID, 0, 1, SEP_ID, 0]])
    logits = ngram_logits(replace(test[:1], inputs=toks, lengths=torch.tensor([7])), 2)
    assert logits[0, 3].argmax() == 1 and logits[0, 6].argmax() == 1
    assert logits[0, 0].argmax() == 0                  # "a" never followed yet: back off to the counts so far
    assert logits[0, 5].argmax() == 0                  # after a separator, "a" started both strings
    b = baselines(micro_preset().data, ngrams=(1, 2))
    assert b["oracle"]["validity"] == 1.0 and b["oracle"]["tv"] < 1e-6
    assert b["in-context 2-gram"]["validity"] > b["in-context 1-gram"]["validity"] > b["uniform guess"]["validity"]


def test_specs_presets_and_shards():
    for name in ("ci", "book", "paper"):
        specs = sweep_specs(get_preset(name))
        assert len({s["key"] for s in specs}) == len(specs)
        assert all(s["task"] == "regbench" and s["key"].startswith(f"regbench/{name}/") for s in specs)
    book = get_preset("book")
    specs = sweep_specs(book)
    assert {s["mixer"] for s in specs} == {"bla", "swa", "softmax", "gsa", "gla", "gated_deltanet"}
    parts = [select(specs, (i, 3)) for i in range(3)]
    assert sorted(s["key"] for p in parts for s in p) == sorted(s["key"] for s in specs)
    # several state sizes per mixer (softmax: one)
    states = {}
    for s in specs:
        states.setdefault(s["mixer"], set()).add(build_model(book, s).state_size)
    assert all(len(v) >= 3 for m, v in states.items() if m != "softmax"), states
    assert book.data.max_len == 512 and "200" in book.note


def test_sweep_records_resume_and_cli(tmp_path, capsys):
    p = micro_preset()
    specs = sweep_specs(p)
    s1 = run_sweep(p, specs[:1], tmp_path, progress=False)
    assert s1["finished"] == 1 and s1["failed"] == 0
    s2 = run_sweep(p, specs, tmp_path, progress=False)
    assert s2["already_done"] == 1 and s2["finished"] == 1
    recs = read_records(tmp_path / "runs.jsonl")
    assert len(recs) == 2 and finished_keys(tmp_path / "runs.jsonl") == {s["key"] for s in specs}
    for r in recs:
        assert REQUIRED <= set(r), REQUIRED - set(r)
        assert 0 <= r["validity_accuracy"] <= 1 and 0 <= r["tv_distance"] <= 1
        assert {"val_validity", "val_tv", "val_loss", "train_loss"} <= set(r["history"][-1])
    bla = next(r for r in recs if r["mixer"] == "bla")
    assert bla["state_size"] == 2 * 3 * 8 * 2 and bla["bla_impl"] == "chunk"
    rows = summarize(recs)
    assert {r["config"] for r in rows} == {"W=8", "W=8,N=3"}
    # the command line: list, then analyze (a RegBench file gets the RegBench report and summary)
    capsys.readouterr()
    assert main(["regbench", "--preset", "book", "--list", "--out", str(tmp_path / "x"), "--mixers", "bla"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 8 and all(l.startswith("todo regbench/book/bla(") for l in lines)
    out_json = tmp_path / "summary.json"
    assert main(["analyze", str(tmp_path / "runs.jsonl"), "--json", str(out_json)]) == 0
    assert "| swa | 16 | W=8 |" in capsys.readouterr().out
    summary = json.loads(out_json.read_text())
    assert len(summary["rows"]) == 2 and "baselines" not in summary   # "micro" is not a named preset
    # like every result file, the summary says how it was made
    assert summary["commit"] == sorted({str(r["git_commit"]) for r in recs}) and "analyze" in summary["command"]


def test_cli_trains_the_micro_sweep(tmp_path, monkeypatch):
    """``python -m blaviz.experiments regbench`` end to end (a preset patched to the micro size)."""
    import blaviz.experiments.regbench as rb
    monkeypatch.setitem(rb.PRESETS, "micro", micro_preset())
    assert main(["regbench", "--preset", "micro", "--out", str(tmp_path), "--no-progress", "--mixers", "swa"]) == 0
    recs = read_records(tmp_path / "runs.jsonl")
    assert len(recs) == 1 and recs[0]["preset"] == "micro" and recs[0]["steps"] == 4
    assert np.isfinite(recs[0]["tv_distance"])
    assert SEP_ID == 18


def test_every_book_mixer_trains_a_step():
    """One configuration of each mixer of the book grid, on micro data, through ``run_one``."""
    book = get_preset("book")
    p = replace(book, data=micro_preset().data, widths=(16,), head_dim=8,
                train=dict(book.train, epochs=None, max_steps=1, eval_every=1))
    seen = {}
    for spec in sweep_specs(p):
        if spec["mixer"] in seen:
            continue
        if "num_heads" in spec["mixer_kwargs"]:
            spec = dict(spec, mixer_kwargs=dict(spec["mixer_kwargs"], num_heads=2))
        rec = run_one(spec, p, device="cpu", progress=False)
        seen[spec["mixer"]] = rec
        assert rec["steps"] == 1 and np.isfinite(rec["test_loss"]) and 0 <= rec["tv_distance"] <= 1
    assert set(seen) == {"bla", "swa", "softmax", "gsa", "gla", "gated_deltanet"}


def test_trend_compares_within_a_family():
    """BLA's state is set by N; its window W defines separate families. The trend of a mixer is the
    smallest gain over its families, never a pairing across windows."""
    from blaviz.experiments.regbench import trend

    def row(mixer, config, state, validity):
        return {"mixer": mixer, "config": config, "d_model": 64, "state_size": state, "validity": validity,
                "tv": 1 - validity}
    rows = [row("bla", "W=128,N=7", 896, 0.60), row("bla", "W=128,N=63", 8064, 0.81),
            row("bla", "W=512,N=7", 896, 0.57), row("bla", "W=512,N=63", 8064, 0.66),
            row("swa", "W=8", 1024, 0.66), row("swa", "W=64", 8192, 0.89), row("swa", "W=256", 32768, 0.93),
            row("softmax", "", 65536, 0.93)]
    t = trend(rows, "bla")
    assert [g["family"] for g in t["groups"]] == ["W=128", "W=512"]
    assert abs(t["groups"][0]["validity_gain"] - 0.21) < 1e-12 and abs(t["groups"][1]["validity_gain"] - 0.09) < 1e-12
    assert abs(t["validity_gain"] - 0.09) < 1e-12            # not 0.81 - 0.57 across the windows
    assert t["state_range"] == [896, 8064] and t["points"] == 4
    s = trend(rows, "swa")
    assert len(s["groups"]) == 1 and s["groups"][0]["family"] == "" and abs(s["validity_gain"] - 0.27) < 1e-12
    assert trend(rows, "softmax") == {"mixer": "softmax", "points": 1}
