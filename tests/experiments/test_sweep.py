"""The sweep runner: JSON lines, resuming, sharding, time budget, process pool; the CLI."""
import json
from dataclasses import replace

import pytest
import torch

from blaviz.experiments.__main__ import main
from blaviz.data.mqar import MQARData
from blaviz.experiments.mqar import get_preset, run_key, sweep_specs
from blaviz.experiments.sweep import finished_keys, parse_shard, read_records, run_sweep, select


def micro_preset(**train):
    """Two mixers x two learning rates, a handful of steps on tiny data: seconds per run."""
    data = MQARData(train_configs=((32, 4), (64, 4)), train_counts=(64, 32), test_slices=((32, 4), (64, 8)),
                    pooled_slices=((32, 4),), n_test=16, n_val=16, vocab_size=64)
    return replace(get_preset("ci"), name="micro", data=data, widths=(16,), head_dim=8, lrs=(1e-3, 3e-3),
                   grid=(("swa", {"window": 8}), ("bla", {"window": 8, "resolution": 3})),
                   train=dict(get_preset("ci").train, batch_size=16, epochs=None, max_steps=4,
                              eval_every=2, **train))


REQUIRED = {"key", "mixer", "mixer_kwargs", "d_model", "state_size", "accuracy", "per_slice", "steps",
            "wall_time_s", "train_time_s", "gpu_name", "torch_version", "triton_version", "git_commit",
            "seed", "lr", "command", "train_config", "data", "n_params", "stopped"}


def test_specs_keys_are_unique_and_stable():
    p = micro_preset()
    specs = sweep_specs(p)
    assert len(specs) == 4
    assert len({s["key"] for s in specs}) == 4
    assert [s["key"] for s in sweep_specs(p)] == [s["key"] for s in specs]
    assert run_key(specs[0]) == specs[0]["key"]
    # a different training configuration is a different run
    other = sweep_specs(replace(p, train=dict(p.train, max_steps=5)))
    assert not {s["key"] for s in specs} & {s["key"] for s in other}


def test_shards_partition_the_sweep():
    specs = sweep_specs(get_preset("book"))
    parts = [select(specs, (i, 3)) for i in range(3)]
    keys = [s["key"] for part in parts for s in part]
    assert sorted(keys) == sorted(s["key"] for s in specs)
    assert parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "x", "1/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_run_resume_and_records(tmp_path):
    torch.set_num_threads(1)
    p = micro_preset()
    specs = sweep_specs(p)
    s1 = run_sweep(p, specs[::2], tmp_path, progress=False)          # swa and bla at the first lr
    assert s1["finished"] == 2 and s1["failed"] == 0
    recs = read_records(tmp_path / "runs.jsonl")
    assert len(recs) == 2
    for r in recs:
        assert REQUIRED <= set(r), REQUIRED - set(r)
        assert 0.0 <= r["accuracy"] <= 1.0
        assert set(r["per_slice"]) == {"32x4", "64x8"}
    bla = next(r for r in recs if r["mixer"] == "bla")
    assert bla["state_size"] == 2 * 3 * 8 * 2 and bla["bla_impl"] == "chunk"
    # resume: the two finished runs are skipped, the other two run
    s2 = run_sweep(p, specs, tmp_path, progress=False)
    assert s2["already_done"] == 2 and s2["finished"] == 2
    assert finished_keys(tmp_path / "runs.jsonl") == {s["key"] for s in specs}
    s3 = run_sweep(p, specs, tmp_path, progress=False)
    assert s3["todo"] == 0 and len(read_records(tmp_path / "runs.jsonl")) == 4


def test_time_budget_stops_and_is_not_finished(tmp_path):
    torch.set_num_threads(1)
    p = micro_preset()
    p = replace(p, train=dict(p.train, max_steps=10_000_000, early_stop=None, eval_every=10_000))
    specs = sweep_specs(p)
    s = run_sweep(p, specs, tmp_path, progress=False, time_budget_s=1.0)
    assert s["time_limited"] == 1 and s["not_started"] == 3
    assert finished_keys(tmp_path / "runs.jsonl") == set()          # a cut run will be retrained
    rec = read_records(tmp_path / "runs.jsonl")[0]
    assert rec["stopped"] == "time_limit"


@pytest.mark.slow   # two spawned workers import torch: ~30-50 s on two busy cores
def test_process_pool(tmp_path):
    p = micro_preset()
    specs = sweep_specs(p)
    s = run_sweep(p, specs[:2], tmp_path, concurrency=2, progress=False)
    assert s["finished"] == 2, s
    assert {r["concurrency"] for r in read_records(tmp_path / "runs.jsonl")} == {2}


def test_cli_list_and_analyze(tmp_path, capsys):
    assert main(["mqar", "--preset", "book", "--list", "--out", str(tmp_path), "--mixers", "swa"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    # d_model 64: 6 windows x 2 lrs; d_model 128: 4 windows x 2 lrs
    assert len(lines) == 20 and all(l.startswith("todo book/swa(") for l in lines)
    assert sum("/d128/" in l for l in lines) == 8
    run = {"key": "k", "mixer": "swa", "mixer_kwargs": {"window": 8}, "d_model": 16, "lr": 1e-3, "seed": 0,
           "state_size": 256, "accuracy": 0.5, "per_slice": {"64x4": 0.5}, "steps": 3, "stopped": "steps"}
    (tmp_path / "runs.jsonl").write_text(json.dumps(run) + "\n")
    assert main(["analyze", str(tmp_path / "runs.jsonl"), "--json", str(tmp_path / "s.json")]) == 0
    assert "| swa | 16 | W=8 | 256 | 0.500 |" in capsys.readouterr().out
    assert json.loads((tmp_path / "s.json").read_text())["rows"][0]["accuracy"] == 0.5


@pytest.mark.slow   # builds both tasks' data and times real steps: ~7 s
def test_steptime_serves_every_task():
    """Step times come from the task's own data and model (MQAR's and RegBench's alike)."""
    from blaviz.experiments.registry import get_task
    from blaviz.experiments.timing import steptime
    from tests.experiments.test_regbench_ci import micro_preset as regbench_micro

    for task, p in ((get_task("mqar"), micro_preset()), (get_task("regbench"), regbench_micro())):
        rows = steptime(task, p, task.sweep_specs(p)[:1], device="cpu", steps=1)
        assert len(rows) == 1 and rows[0]["est_train_s"] > 0 and rows[0]["ms_per_step"]
