"""BLA variant mixers: each builds by name, runs forward and backward, reports its state, and
its fast form equals its reference form."""
import pytest
import torch

from blaviz.layers import MIXERS, BlurryWindowAttention, build_mixer
from blaviz.models import MixerLM
from tests.conftest import rel_rms

D = 32
VARIANTS = {
    "bla_multires": (dict(heads=((8, 7), (32, 7))), 2 * 7 * 16 * 2),
    "gated_bla": (dict(window=16, resolution=7, num_heads=2), 2 * 7 * 16 * 2),
    "bla_exact_erasure": (dict(window=16, resolution=7, num_heads=2), 2 * (7 + 16) * 16 * 2),
    "swa_bla_hybrid": (dict(swa_window=4, window=16, resolution=7, num_heads=2),
                       2 * (4 + 7) * 16 * 2),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_builds_runs_and_reports_state(name):
    kw, want_state = VARIANTS[name]
    assert name in MIXERS
    layer = build_mixer(name, D, **kw)
    x = torch.randn(2, 37, D, requires_grad=True)
    y = layer(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in layer.parameters())
    assert layer.state_size == want_state
    assert layer.config()["mixer"] == name


@pytest.mark.parametrize("name", list(VARIANTS))
def test_fast_equals_naive(name):
    kw, _ = VARIANTS[name]
    torch.manual_seed(1)
    fast = build_mixer(name, D, **kw).double()
    torch.manual_seed(1)
    naive = build_mixer(name, D, impl="naive", **kw).double()
    naive.load_state_dict(fast.state_dict())
    x = torch.randn(2, 29, D, dtype=torch.float64)
    assert rel_rms(fast(x), naive(x)) < 1e-10


def test_multires_with_one_config_is_bla():
    torch.manual_seed(0)
    m = build_mixer("bla_multires", D, heads=((16, 7), (16, 7)))
    b = BlurryWindowAttention(D, 2, window=16, resolution=7)
    b.load_state_dict(m.state_dict(), strict=False)
    x = torch.randn(1, 21, D)
    assert rel_rms(m(x), b(x)) < 1e-6


def test_gated_bla_with_open_gates_is_bla():
    torch.manual_seed(0)
    g = build_mixer("gated_bla", D, window=16, resolution=7, num_heads=2, gate_bias=80.0).double()
    b = BlurryWindowAttention(D, 2, window=16, resolution=7).double()
    b.load_state_dict(g.state_dict(), strict=False)
    with torch.no_grad():
        g.g_proj.weight.zero_()
    x = torch.randn(1, 25, D, dtype=torch.float64)
    assert rel_rms(g(x), b(x)) < 1e-12


def test_gate_bias_survives_the_model_initialiser():
    m = MixerLM(64, D, "gated_bla", dict(window=16, resolution=7, num_heads=2), n_layers=1)
    assert torch.allclose(m.mixers[0].g_bias, torch.full((2,), 3.0))


@pytest.mark.parametrize("kw,match", [
    (dict(heads=()), "at least one"), (dict(heads=((16, 6),)), "resolution"),
    (dict(heads=((16, 7),), num_heads=2), "len\\(heads\\)"),
])
def test_multires_bad_inputs(kw, match):
    with pytest.raises(ValueError, match=match):
        build_mixer("bla_multires", D, **kw)


def test_gated_bad_inputs():
    with pytest.raises(ValueError, match="gate_logit_normalizer"):
        build_mixer("gated_bla", D, window=16, resolution=7, gate_logit_normalizer=0)
    with pytest.raises(ValueError, match="resolution"):
        build_mixer("gated_bla", D, window=16, resolution=8)
