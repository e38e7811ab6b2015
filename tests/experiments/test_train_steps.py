"""The sync-free training step: labelled positions gathered by index (same loss as boolean
masking), and the static-buffer step that CUDA graphs replay, run eagerly on the CPU (same
parameters as the plain step)."""
from __future__ import annotations

import pytest
import torch

import blaviz.experiments.train as train_mod
from blaviz.experiments.registry import get_task, task_names
from blaviz.experiments.train import (IGNORE_INDEX, TaskData, TrainConfig, gathered_loss,
                                      label_positions, train)


def _labels(n, L, k, gen, uneven=False):
    y = torch.full((n, L), IGNORE_INDEX)
    for i in range(n):
        kk = k - (i % 2) if uneven else k
        pos = torch.randperm(L, generator=gen)[:kk]
        y[i, pos] = torch.randint(0, 7, (kk,), generator=gen)
    return y


def test_label_positions_lists_each_rows_labels_in_order():
    gen = torch.Generator().manual_seed(1)
    y = _labels(5, 13, 3, gen)
    pos = label_positions(y)
    assert pos.shape == (5, 3)
    for i in range(5):
        assert pos[i].tolist() == (y[i] != IGNORE_INDEX).nonzero()[:, 0].tolist()
    y = _labels(5, 13, 3, gen, uneven=True)          # rows of 3 and 2 labels
    pos = label_positions(y)
    assert pos.shape == (5, 3)
    for i in range(5):
        kept = [int(j) for j in pos[i] if y[i, j] != IGNORE_INDEX]
        assert kept == (y[i] != IGNORE_INDEX).nonzero()[:, 0].tolist()
    assert label_positions(torch.full((3, 4), IGNORE_INDEX)) is None


CI_PRESETS = [(t, pr) for t in task_names() for pr in get_task(t).presets
              if pr == "ci" or pr.endswith("_ci")]


@pytest.mark.parametrize("name,preset", CI_PRESETS)
def test_gathered_loss_equals_the_masked_loss_on_every_ci_preset(name, preset):
    torch.manual_seed(0)
    task = get_task(name)
    p = task.get_preset(preset)
    spec = task.sweep_specs(p)[0]
    model = task.build_model(p, spec)
    data = task.task_data(p)
    checked = 0
    for x, y in data.train_groups():
        pos = label_positions(y)
        idx = torch.randperm(x.shape[0])[:7]                  # an odd batch
        ref = TaskData.loss(data, model, x[idx], y[idx])
        got = gathered_loss(model, x[idx], y[idx], pos[idx])
        torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-6)
        checked += 1
    assert checked == len(data.train_groups())


def test_gathered_loss_with_uneven_label_counts():
    """RegBench's rows differ in how many tokens they score: padded positions are ignored."""
    torch.manual_seed(0)
    task, p, spec = _tiny("regbench")
    model = task.build_model(p, spec)
    gen = torch.Generator().manual_seed(3)
    x = torch.randint(0, 7, (9, 17), generator=gen)
    y = _labels(9, 17, 4, gen, uneven=True)
    ref = TaskData.loss(None, model, x, y)
    got = gathered_loss(model, x, y, label_positions(y))
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-6)


class _Small(TaskData):
    """A task's data cut to 13 training examples (batches of 4: a partial batch every epoch)
    and 16 examples per evaluation set."""

    def __init__(self, data):
        self.data = data

    def train_groups(self):
        return [(x[:13], y[:13]) for x, y in self.data.train_groups()]

    def validation_sets(self):
        return {k: (x[:16], y[:16]) for k, (x, y) in self.data.validation_sets().items()}

    def test_sets(self):
        return {k: (x[:16], y[:16]) for k, (x, y) in self.data.test_sets().items()}


def _tiny(name):
    task = get_task(name)
    p = task.get_preset("ci")
    spec = task.sweep_specs(p)[0]
    return task, p, spec


def test_static_buffer_step_equals_the_plain_step(monkeypatch):
    """The graph path's code run eagerly (tensor lr filled by the schedule, gradients zeroed in
    place, partial batches included) gives the plain step's parameters after every step."""
    torch.set_num_threads(1)
    task, p, spec = _tiny("mqar")
    data = _Small(task.task_data(p))
    base = dict(p.train, epochs=None, max_steps=11, batch_size=4, eval_every=5, early_stop=None)
    models = []
    for graph in (False, True):
        if graph:
            monkeypatch.setattr(train_mod, "_GRAPH_DEVICES", ("cuda", "cpu"))
        cfg = TrainConfig(**{**base, "lr": 3e-3, "seed": 0, "cuda_graph": graph})
        m = task.build_model(p, spec)
        out = train(m, data, cfg, progress=False)
        models.append((m, out))
    (a, ra), (b, rb) = models
    assert ra["steps"] == rb["steps"] == 11
    for (name, u), v in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(u, v, rtol=1e-6, atol=1e-7, msg=name)
    assert rb["history"][-1]["train_loss"] == pytest.approx(ra["history"][-1]["train_loss"], rel=1e-5)


def test_cuda_graph_on_cpu_is_refused():
    task, p, spec = _tiny("mqar")
    cfg = TrainConfig(**{**p.train, "lr": 1e-3, "cuda_graph": True})
    with pytest.raises(ValueError, match="cuda_graph needs a CUDA device"):
        train(task.build_model(p, spec), _Small(task.task_data(p)), cfg, progress=False)


def test_schedule_fills_the_tensor_lr_in_place():
    w = torch.nn.Parameter(torch.zeros(3))
    lr = torch.tensor(1e-2)
    opt = torch.optim.AdamW([w], lr=lr)
    opt.param_groups[0]["initial_lr"] = 1e-2
    sched = torch.optim.lr_scheduler.LambdaLR(opt, train_mod.lr_lambda(10, 0.3, 0.1))
    f = train_mod.lr_lambda(10, 0.3, 0.1)
    w.grad = torch.zeros(3)
    for step in range(1, 10):
        opt.step()
        sched.step()
        train_mod.keep_lr_tensors(opt, [lr])
        assert opt.param_groups[0]["lr"] is lr
        assert float(lr) == pytest.approx(1e-2 * f(step), rel=1e-6)
    # a group whose lr was replaced (e.g. by load_state_dict) gets the tensor back, value kept
    opt.param_groups[0]["lr"] = 5e-4
    train_mod.keep_lr_tensors(opt, [lr])
    assert opt.param_groups[0]["lr"] is lr and float(lr) == pytest.approx(5e-4)


def test_checkpoint_resumes_across_the_cuda_graph_flag(tmp_path, monkeypatch):
    """A run's checkpoint does not depend on how its steps execute: cut with the static-buffer
    step, resumed with the plain one, it equals an uninterrupted run."""
    torch.set_num_threads(1)
    monkeypatch.setattr(train_mod, "_GRAPH_DEVICES", ("cuda", "cpu"))
    task, p, spec = _tiny("mqar")
    data = _Small(task.task_data(p))
    base = dict(p.train, epochs=None, max_steps=12, batch_size=4, eval_every=4, early_stop=None, lr=3e-3, seed=0)
    whole = task.build_model(p, spec)
    train(whole, data, TrainConfig(**base), progress=False)
    ck = tmp_path / "run.pt"
    part = train(task.build_model(p, spec), data, TrainConfig(**base, cuda_graph=True),
                 progress=False, checkpoint=ck, step_budget=5)
    assert part["stopped"] == "step_budget"
    resumed = task.build_model(p, spec)
    train(resumed, data, TrainConfig(**base), progress=False, checkpoint=ck)
    for (name, u), v in zip(whole.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(u, v, rtol=1e-6, atol=1e-7, msg=name)
