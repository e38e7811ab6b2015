"""Mamba2Mixer: shapes, state size, gradients, fast (parallel) == naive (recurrent), registry."""
import torch

from blaviz.layers import MIXERS, Mamba2Mixer, build_mixer
from blaviz.state_size import state_size
from tests.conftest import assert_close_rms

D_MODEL, HEADS, N = 24, 3, 6
P = D_MODEL // HEADS


def make(dtype=torch.float32, **kw):
    torch.manual_seed(0)
    return build_mixer("mamba2", D_MODEL, num_heads=HEADS, d_state=N, **kw).to(dtype)


def test_registered():
    assert MIXERS["mamba2"] is Mamba2Mixer
    assert make().config() == {"mixer": "mamba2", "num_heads": HEADS, "head_dim": P, "d_state": N}


def test_shape_and_state_size():
    layer = make()
    y = layer(torch.randn(2, 13, D_MODEL))
    assert y.shape == (2, 13, D_MODEL) and torch.isfinite(y).all()
    assert layer.state_size == state_size("mamba2", head_dim=P, num_heads=HEADS, d_state=N) == N * P * HEADS
    assert "state_size=" in repr(layer)


def test_gradient_reaches_every_parameter():
    layer = make()
    x = torch.randn(2, 13, D_MODEL, requires_grad=True)
    layer(x).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    names = {n for n, _ in layer.named_parameters()}
    assert {"in_proj.weight", "A_log", "dt_bias", "D", "norm.weight", "o_proj.weight"} <= names
    assert not any(n.startswith(("q_proj", "k_proj", "v_proj")) for n in names)
    for n, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, n


def test_fast_equals_naive_float64():
    fast, naive = make(torch.float64), make(torch.float64, impl="naive")
    naive.load_state_dict(fast.state_dict())
    x = torch.randn(2, 17, D_MODEL, dtype=torch.float64)
    assert_close_rms(fast(x), naive(x), 1e-12)
