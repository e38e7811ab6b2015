"""Gated BLA: chunked form = recurrent definition (float64), g = 0 is BLA, gradients, bounds,
bad inputs; and the exact-erasure variant against its ring-buffer definition."""
import pytest
import torch

from blaviz import bla_attention, kernel_slot_attention, sliding_window_attention
from blaviz.dirichlet import slot_start, write_code
from blaviz.ops.gated_bla import gated_bla_attention, gated_bla_chunk, gated_bla_recurrent
from blaviz.ops.exact_erasure import (exact_erasure_attention, exact_erasure_parallel,
                                      exact_erasure_recurrent, truncated_dirichlet_kernels)
from tests.conftest import rel_rms


def rand(B, T, H, D, Dv, dtype=torch.float64):
    q, k = torch.randn(2, B, T, H, D, dtype=dtype)
    v = torch.randn(B, T, H, Dv, dtype=dtype)
    g = torch.nn.functional.logsigmoid(torch.randn(B, T, H, dtype=dtype) + 2.0)
    return q, k, v, g


CONFIGS = [(16, 7, None, 8), (16, 7, 11, 5), (12, 12, None, 7), (11, 11, 4, 4),
           (9, 5, 13, 64), (20, 1, None, 3)]


@pytest.mark.parametrize("W,N,S,C", CONFIGS)
def test_chunk_equals_recurrent(W, N, S, C):
    q, k, v, g = rand(2, 37, 2, 5, 3)
    o1, s1 = gated_bla_recurrent(q, k, v, g, W, N, num_slots=S, output_final_state=True)
    o2, s2 = gated_bla_chunk(q, k, v, g, W, N, num_slots=S, chunk_size=C,
                             output_final_state=True)
    assert rel_rms(o2, o1) < 1e-12
    assert rel_rms(s2.key_freq, s1.key_freq) < 1e-12
    assert rel_rms(s2.value_freq, s1.value_freq) < 1e-12
    assert s1.position == s2.position == 37


@pytest.mark.parametrize("W,N,S,C", CONFIGS[:4])
def test_gate_one_is_plain_bla(W, N, S, C):
    q, k, v, _ = rand(2, 29, 2, 4, 4)
    zero = torch.zeros(q.shape[:-1], dtype=q.dtype)
    ref, _ = bla_attention(q, k, v, W, N, num_slots=S, impl="recurrent")
    for impl in ("recurrent", "chunk"):
        o, _ = gated_bla_attention(q, k, v, zero, W, N, num_slots=S, impl=impl, chunk_size=C)
        assert rel_rms(o, ref) < 1e-12


def test_gate_matters():
    q, k, v, g = rand(1, 40, 1, 4, 4)
    o_g, _ = gated_bla_chunk(q, k, v, g, 16, 7)
    o_0, _ = gated_bla_chunk(q, k, v, torch.zeros_like(g), 16, 7)
    assert rel_rms(o_g, o_0) > 1e-2


@pytest.mark.parametrize("impl", ["recurrent", "chunk"])
def test_prefill_then_continue_equals_one_pass(impl):
    q, k, v, g = rand(2, 31, 2, 4, 3)
    full, _ = gated_bla_attention(q, k, v, g, 12, 5, num_slots=7, impl=impl, chunk_size=6)
    a, st = gated_bla_attention(q[:, :13], k[:, :13], v[:, :13], g[:, :13], 12, 5,
                                num_slots=7, impl=impl, chunk_size=6, output_final_state=True)
    b, _ = gated_bla_attention(q[:, 13:], k[:, 13:], v[:, 13:], g[:, 13:], 12, 5,
                               num_slots=7, impl=impl, chunk_size=6, initial_state=st)
    assert rel_rms(torch.cat([a, b], 1), full) < 1e-12


def test_gradcheck_chunk():
    q, k, v, g = rand(1, 9, 1, 3, 2)
    args = [x.clone().requires_grad_(True) for x in (q, k, v, g)]

    def f(q, k, v, g):
        return gated_bla_chunk(q, k, v, g, 6, 3, num_slots=4, chunk_size=4)[0]
    assert torch.autograd.gradcheck(f, args)


def test_chunk_gradients_match_recurrent():
    q, k, v, g = rand(1, 21, 2, 3, 3)
    grads = []
    cot = torch.randn(1, 21, 2, 3, dtype=torch.float64)
    for fn in (gated_bla_recurrent, gated_bla_chunk):
        xs = [x.clone().requires_grad_(True) for x in (q, k, v, g)]
        (fn(*xs, 10, 5)[0] * cot).sum().backward()
        grads.append([x.grad for x in xs])
    for a, b in zip(*grads):
        assert rel_rms(b, a) < 1e-10


def test_float32_against_float64():
    q, k, v, g = rand(2, 70, 2, 8, 8)
    ref, _ = gated_bla_recurrent(q, k, v, g, 32, 15)
    o, _ = gated_bla_chunk(*(x.float() for x in (q, k, v, g)), 32, 15, chunk_size=16)
    assert o.dtype == torch.float32 and rel_rms(o, ref) < 1e-5


def test_state_stays_bounded_and_strong_forgetting_empties_it():
    T = 600
    q, k, v, _ = rand(1, T, 1, 4, 4)
    g = -torch.rand(1, T, 1, dtype=torch.float64) * 0.1
    _, st = gated_bla_chunk(q, k, v, g, 16, 7, output_final_state=True)
    _, st0 = gated_bla_chunk(q, k, v, torch.zeros_like(g), 16, 7, output_final_state=True)
    assert torch.isfinite(st.key_freq).all()
    # no larger than BLA's window would allow for unit-scale keys (BLA is bounded too)
    assert st.key_freq.abs().max() < 10 * k.abs().max()
    assert st0.key_freq.abs().max() < 10 * k.abs().max()
    # a gate of e^-50 at the last step forgets everything but the last token's write
    g2 = g.clone()
    g2[:, -1] = -50.0
    _, st2 = gated_bla_chunk(q, k, v, g2, 16, 7, output_final_state=True)
    e = write_code(16, 7, [0])[0]                    # the write code at lag 0
    want = e[:, None] * k[0, -1, 0][None, :]
    assert (st2.key_freq[0, 0] - want).abs().max() < 1e-12


@pytest.mark.parametrize("mutate,match", [
    (lambda a: a.__setitem__("g", a["g"].abs() + 0.1), "<= 0"),
    (lambda a: a.__setitem__("g", a["g"][..., :1].squeeze(-1)), r"\[B, T, H\]"),
    (lambda a: a["g"].__setitem__((0, 0, 0), float("nan")), "finite"),
    (lambda a: a.__setitem__("impl", "triton"), "impl must be one of"),
    (lambda a: a.__setitem__("resolution", 6), "resolution"),
    (lambda a: a.__setitem__("chunk_size", 0), "chunk_size"),
])
def test_bad_inputs(mutate, match):
    q, k, v, g = rand(1, 8, 2, 4, 4)
    a = dict(g=g, resolution=5, impl="chunk", chunk_size=4)
    mutate(a)
    with pytest.raises(ValueError, match=match):
        gated_bla_attention(q, k, v, a["g"], 12, a["resolution"], impl=a["impl"],
                            chunk_size=a["chunk_size"])


# ------------------------------------------------------------------ exact erasure
@pytest.mark.parametrize("W,N,S", [(16, 7, None), (16, 7, 11), (9, 5, 13), (12, 12, None)])
def test_exact_erasure_parallel_equals_ring_buffer_definition(W, N, S):
    q, k, v, _ = rand(2, 37, 2, 5, 3)
    o1 = exact_erasure_recurrent(q, k, v, W, N, num_slots=S)
    o2 = exact_erasure_parallel(q, k, v, W, N, num_slots=S)
    h = truncated_dirichlet_kernels(W, N, S, 37)
    o3 = kernel_slot_attention(q, k, v, h, slot_start=slot_start(W, S or N))
    assert rel_rms(o2, o1) < 1e-12 and rel_rms(o3, o1) < 1e-12


def test_exact_erasure_full_resolution_is_swa_and_differs_from_bla():
    q, k, v, _ = rand(1, 30, 2, 4, 4)
    o = exact_erasure_attention(q, k, v, 10, 10)
    assert rel_rms(o, sliding_window_attention(q, k, v, 10)) < 1e-12
    bla, _ = bla_attention(q, k, v, 10, 5, impl="parallel")
    assert rel_rms(exact_erasure_attention(q, k, v, 10, 5), bla) > 1e-3


def test_exact_erasure_kernel_peak_is_n_over_w():
    h = truncated_dirichlet_kernels(64, 31, None, 100)
    # slot 0 reads lag 0 at the full peak N/W; fractional lags fall between tokens
    assert abs(h[0, 0].item() - 31 / 64) < 1e-15
    assert h[:, :64].max() <= 31 / 64 + 1e-15
    assert h[:, 64:].abs().max() == 0


def test_exact_erasure_gradcheck_and_bad_impl():
    q, k, v, _ = rand(1, 9, 1, 3, 2)
    args = [x.clone().requires_grad_(True) for x in (q, k, v)]
    assert torch.autograd.gradcheck(lambda *a: exact_erasure_parallel(*a, 6, 3), args)
    with pytest.raises(ValueError, match="impl must be one of"):
        exact_erasure_attention(q, k, v, 6, 3, impl="chunk")
