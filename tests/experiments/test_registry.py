"""One Preset type and the task registry: stored runs keep their keys, presets are checked when
made, tasks and presets are found by name with clear errors."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from blaviz.data import MQARData
from blaviz.experiments.preset import Preset
from blaviz.experiments.records import read_records
from blaviz.experiments.registry import get_preset, get_task, register_task, task_names
from blaviz.experiments.task import Task

RESULTS = Path(__file__).resolve().parents[2] / "results"
STORED = sorted(RESULTS.glob("*/*/runs.jsonl"))


def test_builtin_tasks_are_registered():
    assert {"mqar", "regbench"} <= set(task_names())
    assert get_task("mqar").name == "mqar" and get_preset("regbench:book").task == "regbench"
    with pytest.raises(ValueError, match="unknown task 'nope'; choose one of"):
        get_task("nope")
    with pytest.raises(ValueError, match="unknown mqar preset 'nope'"):
        get_task("mqar").get_preset("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_task(get_task("mqar"))
    with pytest.raises(TypeError):
        register_task("mqar")


@pytest.mark.parametrize("path", STORED, ids=[str(p.relative_to(RESULTS)) for p in STORED])
def test_stored_runs_keep_their_keys(path):
    """Every stored run names a preset whose hash and run key are still what the code computes, so
    resuming a stored sweep skips its finished runs (and chapters 8-9 find their rows). The record
    is JSON: a tuple-valued mixer argument comes back as a list and must print the same."""
    recs = read_records(path, strict=True)
    assert recs
    for rec in recs:
        task = get_task(rec["task"])
        preset = task.get_preset(rec["preset"])
        assert rec["preset_hash"] == task.preset_hash(preset), rec["key"]
        spec = {k: rec[k] for k in ("preset", "preset_hash", "task", "mixer", "mixer_kwargs", "d_model", "lr", "seed")}
        assert task.run_key(spec) == rec["key"]


def test_presets_are_checked_when_made():
    ok = dict(name="x", task="mqar", data=MQARData(), widths=(64,), lrs=(1e-3,), grid=(("swa", {"window": 8}),),
              train={"epochs": 1})
    Preset(**ok)
    for bad, match in [(dict(lrs=(-1.0,)), "lrs"), (dict(lrs=(float("nan"),)), "lrs"), (dict(widths=(0,)), "widths"),
                       (dict(seeds=(1.5,)), "seeds"), (dict(train={"epochs": 1, "bacth_size": 8}), "bacth_size"),
                       (dict(train={}), "epochs or max_steps"), (dict(head_dim=0), "head_dim"),
                       (dict(grid=(("swa", 8),)), "grid entries")]:
        with pytest.raises(ValueError, match=match):
            Preset(**{**ok, **bad})


def test_adding_a_preset_and_a_task():
    mqar = get_task("mqar")
    p = replace(mqar.get_preset("ci"), name="test_extra", head_dim=None, seeds=(0, 1))
    try:
        mqar.add_preset(p)
        specs = mqar.sweep_specs(mqar.get_preset("test_extra"))
        assert len(specs) == 4 and all(s["key"].startswith("test_extra/") for s in specs)
        assert mqar.build_model(p, specs[0]).mixers[0].num_heads == 1       # head_dim=None: one head
        with pytest.raises(ValueError, match="already has a preset"):
            mqar.add_preset(p)
        with pytest.raises(ValueError, match="is for task 'mqar', not 'regbench'"):
            get_task("regbench").add_preset(replace(p, name="other"))
        with pytest.raises(ValueError, match="--mixers"):
            mqar.sweep_specs(p, mixers=("nope",))
    finally:
        mqar.presets.pop("test_extra", None)

    class Mine(Task):
        name = "mine"
    t = Mine([replace(p, task="mine", name="a")])
    spec = t.sweep_specs(t.get_preset("a"))[0]
    assert spec["key"].startswith("mine/a/") and spec["task"] == "mine"
    assert t.preset_hash(t.get_preset("a")) != mqar.preset_hash(p)      # a new task's hash names it
    json.dumps(t.get_preset("a").describe())
