"""CUDA-graph training steps against eager ones (``pytest -m gpu``), for the mixers of the
``zoology_controls`` preset at d_model 64, and a graph run cut and resumed from its checkpoint.

Skipped without CUDA. Two groups of different lengths, batches of 32 from 72 and 40 examples
(partial batches run eagerly), 9 steps with an evaluation in the middle. The graph replays the
same kernels as the eager step except AdamW's capturable variant, so parameters agree to float
rounding; the bound 1e-3 (relative RMS) leaves room for kernels that accumulate atomically.
"""
from dataclasses import replace

import pytest
import torch

from blaviz.data.mqar import MQARData
from blaviz.experiments.registry import get_task
from blaviz.experiments.train import TrainConfig, train
from blaviz.testing import rel_rms

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

TASK = get_task("zoology")
SMALL = MQARData(train_configs=((64, 4), (128, 8)), train_counts=(72, 40),
                 test_slices=((64, 4), (128, 8)), pooled_slices=((64, 4), (128, 8)),
                 n_test=32, n_val=32)
TOL = 1e-3


def _preset(mixer):
    p = TASK.get_preset("zoology_controls")
    grid = tuple(g for g in p.grid if g[0] == mixer)
    return replace(p, data=SMALL, grid=grid, widths=(64,),
                   train=dict(p.train, batch_size=32, epochs=None, max_steps=9, eval_every=4,
                              early_stop=None))


def _run(p, graph, **kw):
    spec = TASK.sweep_specs(p)[0]
    torch.manual_seed(0)
    model = TASK.build_model(p, spec)
    cfg = TrainConfig(lr=3e-3, seed=0, cuda_graph=graph, **p.train)
    out = train(model, TASK.task_data(p), cfg, device="cuda", progress=False, **kw)
    return model, out


def _compare(a, b):
    worst = 0.0
    for (name, u), v in zip(a.state_dict().items(), b.state_dict().values()):
        e = rel_rms(v.double(), u.double())
        worst = max(worst, e)
        assert e < TOL, (name, e)
    return worst


@pytest.mark.parametrize("mixer", ["bla", "swa", "gsa", "gla", "linear"])
def test_graph_steps_equal_eager_steps(mixer):
    p = _preset(mixer)
    ea, ra = _run(p, False)
    gr, rg = _run(p, True)
    assert ra["steps"] == rg["steps"] == 9
    worst = _compare(ea, gr)
    print(f"{mixer}: worst parameter rel RMS {worst:.2e}, final loss eager "
          f"{ra['final_loss']:.5f} graph {rg['final_loss']:.5f}")
    assert abs(ra["final_loss"] - rg["final_loss"]) < 1e-3 * max(1.0, abs(ra["final_loss"]))


def test_graph_run_resumed_from_a_checkpoint(tmp_path):
    """Cut after 5 steps (graphs captured), resumed in a new call (captured again after
    loading): the same parameters as an uninterrupted graph run."""
    p = _preset("bla")
    whole, _ = _run(p, True)
    ck = tmp_path / "run.pt"
    _, part = _run(p, True, checkpoint=ck, step_budget=5)
    assert part["stopped"] == "step_budget" and ck.exists()
    spec = TASK.sweep_specs(p)[0]
    resumed = TASK.build_model(p, spec)
    cfg = TrainConfig(lr=3e-3, seed=0, cuda_graph=True, **p.train)
    out = train(resumed, TASK.task_data(p), cfg, device="cuda", progress=False, checkpoint=ck)
    assert out["steps"] == 9 and not ck.exists()
    _compare(whole, resumed)
