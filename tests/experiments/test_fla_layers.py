"""The lab's fla wrappers on a CPU: registration, errors, and the recipe around the kernels.

fla's kernels need CUDA (tests/gpu/test_fla_gsa.py checks them). Here a stand-in ``fla.ops.gsa``
calls blaviz's float64 GSA reference, so the wrapper's recipe (gates, SiLUs, scale, norm, the
64-token switch between fla's two kernels) is checked against blaviz's ``recipe="fla"`` layer.
"""
import sys
import types

import pytest
import torch

import blaviz.experiments  # noqa: F401
from blaviz.experiments import fla_layers
from blaviz.layers import MIXERS, GatedSlotAttention, build_mixer, register_mixer
from blaviz.ops.gsa import gsa_attention
from blaviz.testing import assert_close_rms

REQUIRE_CUDA = fla_layers.require_cuda


def _fla_installed():
    try:
        import fla.ops.gsa  # noqa: F401
    except ImportError:
        return False
    return True


def test_fla_gsa_is_registered_by_the_lab_only():
    assert MIXERS["fla_gsa"] is fla_layers.FlaGatedSlotAttention
    assert "fla" not in sys.modules or _fla_installed()


@pytest.mark.skipif(_fla_installed(), reason="fla is installed here")
def test_missing_fla_is_a_clear_error():
    with pytest.raises(ImportError, match="fla_gsa.*fla-core"):
        build_mixer("fla_gsa", 32, num_slots=8)


def test_register_mixer_rejects_bad_input():
    with pytest.raises(ValueError, match="already registered"):
        register_mixer("gsa", lambda d, **kw: None)
    with pytest.raises(TypeError, match="callable"):
        register_mixer("x_mixer", 3)
    with pytest.raises(ValueError, match="non-empty"):
        register_mixer("", lambda d, **kw: None)
    register_mixer("fla_gsa", fla_layers.FlaGatedSlotAttention)  # the same factory: a no-op


@pytest.fixture
def fake_fla(monkeypatch):
    """A stand-in for ``fla.ops.gsa`` that runs blaviz's reference and records the mode used."""
    calls = []

    def make(name):
        def fn(*, q, k, v, s, g, scale, output_final_state):
            calls.append((name, scale, q.shape[1]))
            return gsa_attention(q, k, v, s, g, scale=scale,
                                 output_final_state=output_final_state)
        return fn

    mod = types.ModuleType("fla.ops.gsa")
    mod.chunk_gsa, mod.fused_recurrent_gsa = make("chunk"), make("fused_recurrent")
    for name, m in (("fla", types.ModuleType("fla")), ("fla.ops", types.ModuleType("fla.ops")),
                    ("fla.ops.gsa", mod)):
        monkeypatch.setitem(sys.modules, name, m)
    monkeypatch.setattr(fla_layers, "require_cuda", lambda x: None)
    return calls


@pytest.mark.parametrize("T", [23, 65])
def test_recipe_matches_blaviz_fla_recipe(fake_fla, T):
    torch.manual_seed(T)
    ours = GatedSlotAttention(32, num_heads=2, num_slots=8, recipe="fla", impl="naive").double()
    theirs = fla_layers.FlaGatedSlotAttention(32, num_heads=2, num_slots=8).double()
    theirs.load_state_dict(ours.state_dict())
    with torch.no_grad():
        ours.norm.weight.uniform_(0.5, 1.5)
        theirs.norm.weight.copy_(ours.norm.weight)
    x = torch.randn(2, T, 32, dtype=torch.float64)
    assert_close_rms(theirs(x), ours(x), 1e-12, f"fla_gsa vs gsa(recipe=fla), T={T}")
    mode = "fused_recurrent" if T <= 64 else "chunk"
    assert fake_fla == [(mode, 1.0, T)]
    assert theirs.state_size == ours.state_size == 2 * 8 * 16 * 2


def test_cpu_inputs_are_a_clear_error(fake_fla, monkeypatch):
    monkeypatch.setattr(fla_layers, "require_cuda", REQUIRE_CUDA)
    layer = fla_layers.FlaGatedSlotAttention(32, num_slots=8)
    with pytest.raises(RuntimeError, match="fla_gsa.*CUDA device; got inputs on cpu"):
        layer(torch.randn(1, 5, 32))
    assert fake_fla == []


@pytest.mark.parametrize("kw,match", [({"mode": "fast"}, "mode must be one of"),
                                      ({"num_slots": 0}, "num_slots must be")])
def test_bad_arguments(fake_fla, kw, match):
    with pytest.raises(ValueError, match=match):
        fla_layers.FlaGatedSlotAttention(32, **kw)


def test_first_calls_build_each_fla_model_once_at_every_length(monkeypatch):
    """``first_calls`` runs each distinct ``fla_gsa`` model of a preset once (not once per learning
    rate or seed), forward and backward, at every training and test length,
    with the preset's batch size: the shapes the runs will call fla's kernels at."""
    from blaviz.experiments import fla_layers
    from blaviz.experiments.registry import get_task
    task = get_task("zoology")
    calls, built = [], []

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, ids):
            calls.append(tuple(ids.shape))
            return self.w * ids[..., :1].float()

    def build(p, spec, **kw):
        built.append((spec["d_model"], spec["mixer"], spec["lr"]))
        return Recorder()

    monkeypatch.setattr(task, "build_model", build)
    done = fla_layers.first_calls(task, task.get_preset("gsa_check"), device="cpu")
    assert fla_layers.first_calls(task, task.get_preset("gsa_check"), specs=[], device="cpu") == []
    assert len(built) == 1 and built[0][:2] == (64, "fla_gsa")      # two learning rates, one model
    assert calls == [(256, 64), (256, 128), (256, 256), (256, 512)]
    assert done == ["d64 {'num_slots': 64}: lengths [64, 128, 256, 512]"]


def test_the_sweep_makes_fla_first_calls_only_for_fla_runs_side_by_side_on_a_gpu():
    from blaviz.experiments.sweep import needs_first_calls
    fla, ours = {"mixer": "fla_gsa"}, {"mixer": "gsa"}
    assert needs_first_calls([ours, fla], "cuda", 2)
    assert needs_first_calls([fla], "cuda:0", 4)
    assert not needs_first_calls([fla], "cuda", 1)         # one process tunes once anyway
    assert not needs_first_calls([ours], "cuda", 4)
    assert not needs_first_calls([fla], "cpu", 4)
