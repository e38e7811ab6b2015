"""The fast forms in blaviz.layers.fast_ops against the token-loop references, in float64.

Outputs, final states and gradients; odd lengths and chunk sizes that do not divide T, so the
padding path is exercised; a non-zero initial state where the reference takes one.
"""
import pytest
import torch
import torch.nn.functional as F

from blaviz.layers import fast_ops
from blaviz.ops.deltanet import gated_delta_rule
from blaviz.ops.gla import gla_attention
from blaviz.ops.gsa import gsa_attention
from blaviz.ops.linear import linear_attention
from blaviz.ops.softmax import softmax_attention
from blaviz.ops.swa import sliding_window_attention
from tests.conftest import assert_close_rms

F64 = torch.float64
TOL = 1e-12
B, T, H, DK, DV, M = 2, 37, 3, 5, 7, 6


def randn(*shape):
    return torch.randn(*shape, dtype=F64)


def leaves(*xs):
    return [x.clone().requires_grad_(True) for x in xs]


def check(fn_ref, fn_fast, inputs, n_out=1):
    """Compare outputs (the first n_out entries of each result) and the gradients of a random
    linear functional of them, w.r.t. every input."""
    a, b = leaves(*inputs), leaves(*inputs)
    ra, rb = fn_ref(*a), fn_fast(*b)
    ra = ra if isinstance(ra, (tuple, list)) else (ra,)
    rb = rb if isinstance(rb, (tuple, list)) else (rb,)
    loss_a = loss_b = 0.0
    for i, (x, y) in enumerate(zip(ra[:n_out], rb[:n_out])):
        assert_close_rms(y, x, TOL, what=f"output {i}")
        w = torch.randn_like(x)
        loss_a, loss_b = loss_a + (x * w).sum(), loss_b + (y * w).sum()
    ga = torch.autograd.grad(loss_a, a)
    gb = torch.autograd.grad(loss_b, b)
    for i, (x, y) in enumerate(zip(ga, gb)):
        assert_close_rms(y, x, TOL, what=f"gradient of input {i}")


def test_causal_softmax():
    check(softmax_attention, fast_ops.causal_softmax, [randn(B, T, H, DK), randn(B, T, H, DK), randn(B, T, H, DV)])


@pytest.mark.parametrize("window", [1, 4, 16, 64])
def test_sliding_window(window):
    check(lambda q, k, v: sliding_window_attention(q, k, v, window),
          lambda q, k, v: fast_ops.sliding_window(q, k, v, window),
          [randn(B, T, H, DK), randn(B, T, H, DK), randn(B, T, H, DV)])


def test_masked_linear():
    check(lambda q, k, v: linear_attention(q, k, v)[0], fast_ops.masked_linear,
          [randn(B, T, H, DK), randn(B, T, H, DK), randn(B, T, H, DV)])


@pytest.mark.parametrize("chunk", [1, 8, 16, 64])
def test_chunk_gla(chunk):
    gk = F.logsigmoid(randn(B, T, H, DK) + 2.0)
    h0 = randn(B, H, DK, DV)

    def ref(q, k, v, g, h):
        return gla_attention(q, k, v, g, initial_state=h, output_final_state=True)

    def fast(q, k, v, g, h):
        return fast_ops.chunk_gated_linear(q, k, v, gk=g, initial_state=h, output_final_state=True,
                                           chunk_size=chunk)

    check(ref, fast, [randn(B, T, H, DK), randn(B, T, H, DK), randn(B, T, H, DV), gk, h0], n_out=2)


@pytest.mark.parametrize("chunk", [5, 16])
def test_chunk_gsa(chunk):
    g = F.logsigmoid(randn(B, T, H, M) + 2.0)
    s = 1 - g.exp()
    hk, hv = randn(B, H, DK, M), randn(B, H, M, DV)

    def ref(q, k, v, s, g, hk, hv):
        o, (a, b) = gsa_attention(q, k, v, s, g, initial_state=(hk, hv), output_final_state=True)
        return o, a, b

    def fast(q, k, v, s, g, hk, hv):
        o, (a, b) = fast_ops.chunk_gsa(q, k, v, s, g, initial_state=(hk, hv), output_final_state=True,
                                       chunk_size=chunk)
        return o, a, b

    check(ref, fast, [randn(B, T, H, DK), randn(B, T, H, DK), randn(B, T, H, DV), s, g, hk, hv], n_out=3)


@pytest.mark.parametrize("chunk", [1, 8, 32, 64])
def test_chunk_gated_delta(chunk):
    k = F.normalize(randn(B, T, H, DK), dim=-1)
    beta = torch.rand(B, T, H, dtype=F64)
    g = F.logsigmoid(randn(B, T, H) + 2.0)
    S0 = randn(B, H, DK, DV)

    def ref(q, k, v, g, beta, S0):
        return gated_delta_rule(q, k, v, g, beta, initial_state=S0, output_final_state=True)

    def fast(q, k, v, g, beta, S0):
        return fast_ops.chunk_gated_delta(q, k, v, g, beta, initial_state=S0, output_final_state=True,
                                          chunk_size=chunk)

    check(ref, fast, [randn(B, T, H, DK), k, randn(B, T, H, DV), g, beta, S0], n_out=2)


def test_chunk_gated_linear_needs_one_gate():
    q = randn(1, 4, 1, 2)
    with pytest.raises(ValueError, match="exactly one"):
        fast_ops.chunk_gated_linear(q, q, q)
