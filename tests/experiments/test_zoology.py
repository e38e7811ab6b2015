"""The zoology task: presets, records with the slice-equal mean, and resumable runs (a run cut
and resumed from its checkpoint equals an uninterrupted one, bit for bit on the CPU)."""
from dataclasses import replace

import pytest
import torch

from blaviz.data.mqar import MQARData
from blaviz.experiments.checkpoint import load_checkpoint, save_checkpoint
from blaviz.experiments.registry import get_task
from blaviz.experiments.train import TrainConfig, train
from blaviz.experiments.zoology import checkpoint_path, slice_mean

TASK = get_task("zoology")
TINY = MQARData(train_configs=((32, 2),), train_counts=(400,), test_slices=((32, 2), (32, 4)),
                pooled_slices=((32, 2), (32, 4)), n_test=16, n_val=16)


def tiny_preset(mixer="bla"):
    p = TASK.get_preset("zoology_ci")
    grid = {"bla": ("bla", {"window": 16, "resolution": 7}),
            "gated_bla": ("gated_bla", {"window": 16, "resolution": 7})}[mixer]
    return replace(p, data=TINY, grid=(grid,), widths=(16,),
                   train=dict(p.train, batch_size=32, max_steps=None, epochs=2, eval_every=5,
                              early_stop=None))


def test_presets_follow_the_literature_regime():
    p = TASK.get_preset("zoology")
    assert p.lrs == (1e-3, 3.2e-3, 1e-2, 3.2e-2) and p.widths == (64, 128, 256)
    assert p.head_dim is None and p.n_layers == 1 and p.mlp_ratio == 0.0
    assert p.train["batch_size"] == 256 and p.data.train_counts == (100_000,) + (20_000,) * 4
    assert {"linear", "gla", "gsa", "swa", "bla"} <= set(p.mixers())
    for name in ("zoology_ci", "beyond", "beyond_ci"):
        assert TASK.get_preset(name).task == "zoology"


def test_beyond_variants_sit_at_swa_w32_state():
    p = TASK.get_preset("beyond")
    target = 2 * 32 * 64
    for spec in TASK.sweep_specs(p, widths=(64,), lrs=(1e-2,), seeds=(0,)):
        model = TASK.build_model(p, spec)
        s = model.state_size
        if spec["mixer"] == "bla_exact_erasure":       # a diagnostic: a ring buffer on top
            assert s == target - 2 * 64 + 2 * 128 * 64
        elif spec["mixer"] != "swa":
            assert abs(s - target) <= 0.05 * target, (spec["key"], s)


def test_slice_mean_weights_slices_equally():
    per = {"32x2": 1.0, "32x4": 0.0}
    assert slice_mean(per, ((32, 2), (32, 4))) == 0.5


@pytest.mark.parametrize("mixer", ["bla", "gated_bla"])
def test_interrupted_and_resumed_equals_uninterrupted(mixer, tmp_path):
    torch.set_num_threads(1)
    p = tiny_preset(mixer)
    spec = TASK.sweep_specs(p)[0]
    cfg = TrainConfig(lr=1e-2, seed=0, **p.train)
    data = TASK.task_data(p)
    whole = TASK.build_model(p, spec)
    ref = train(whole, data, cfg, progress=False)
    ck = tmp_path / "run.pt"
    for _ in range(2):        # two calls cut after 9 steps each (mid-epoch), then one to the end
        part = train(TASK.build_model(p, spec), data, cfg, progress=False, checkpoint=ck,
                     step_budget=9)
        assert part["stopped"] == "step_budget" and ck.exists()
    resumed = TASK.build_model(p, spec)
    out = train(resumed, data, cfg, progress=False, checkpoint=ck)
    assert out["steps"] == ref["steps"] == 26 and not ck.exists()
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name

    def strip(h):
        return [{k: v for k, v in r.items() if k != "time_s"} for r in h]
    assert strip(out["history"]) == strip(ref["history"])
    assert out["accuracy"] == ref["accuracy"] and out["per_slice"] == ref["per_slice"]


def test_run_one_checkpoints_under_the_env_dir(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv("BLAVIZ_CHECKPOINT_DIR", str(tmp_path))
    p = tiny_preset()
    spec = TASK.sweep_specs(p)[0]
    rec = TASK.run_one(spec, p, progress=False, step_budget=4)
    assert rec["stopped"] == "step_budget" and checkpoint_path(spec["key"]).parent == tmp_path
    assert checkpoint_path(spec["key"]).exists()
    rec = TASK.run_one(spec, p, progress=False)
    assert rec["steps"] == 26 and rec["stopped"] == "steps"
    assert not checkpoint_path(spec["key"]).exists()
    assert rec["task"] == "zoology" and rec["key"].startswith("zoology/")
    assert rec["slice_mean"] == sum(rec["per_slice"].values()) / 2


def test_checkpoint_of_another_config_is_refused(tmp_path):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    save_checkpoint(tmp_path / "c.pt", model=model, opt=opt, sched=sched,
                    gen_epoch_state=torch.Generator().get_state(), batches_done=0, step=0,
                    history=[], best_val=0.0, loss_sum=0.0, loss_n=0, elapsed_s=0.0,
                    cfg={"lr": 1.0})
    with pytest.raises(ValueError, match="another training configuration"):
        load_checkpoint(tmp_path / "c.pt", model=model, opt=opt, sched=sched, cfg={"lr": 2.0})
    assert load_checkpoint(tmp_path / "none.pt", model=model, opt=opt, sched=sched, cfg={}) is None


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["zoology_ci", "beyond_ci"])
def test_ci_presets_run_end_to_end(preset, tmp_path, monkeypatch):
    from blaviz.experiments.sweep import run_sweep

    torch.set_num_threads(1)
    monkeypatch.setenv("BLAVIZ_CHECKPOINT_DIR", str(tmp_path / "ck"))
    p = TASK.get_preset(preset)
    specs = TASK.sweep_specs(p)
    summary = run_sweep(p, specs, tmp_path, progress=False)
    assert summary["finished"] == len(specs) and summary["failed"] == 0
    import json
    recs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert {r["mixer"] for r in recs} == set(p.mixers())
    assert all(0.0 <= r["slice_mean"] <= 1.0 and r["state_size"] > 0 for r in recs)
