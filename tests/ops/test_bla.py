"""BLA_SPEC section 6, identities 2, 3, 4, 6, 7 (and 5's BLA half), plus bad inputs."""
import math
import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from blaviz import dirichlet as d
from blaviz.ops.bla import (BLAState, bla_attention, bla_attention_weights, bla_chunk, bla_parallel,
                            bla_recurrent, bla_step)
from blaviz.testing import assert_close_rms, assert_close_to_reference, rel_rms


def rand(B, T, H, D, Dv=None, dtype=torch.float64, scale=1.0):
    q = torch.randn(B, T, H, D, dtype=dtype) * scale
    k = torch.randn(B, T, H, D, dtype=dtype) * scale
    v = torch.randn(B, T, H, Dv or D, dtype=dtype)
    return q, k, v


def complex_reference(q, k, v, W, N, S=None, scale=None):
    """BLA_SPEC section 2 written literally with complex128 frequencies (independent of the real form)."""
    S = S or N
    B, T, H, D = q.shape
    scale = D ** -0.5 if scale is None else scale
    m = d.frequencies(W, N).to(torch.float64)
    z = torch.exp(2j * math.pi * m / W)
    lags = torch.arange(S, dtype=torch.float64) * W / S
    Zslot = torch.exp(-2j * math.pi * lags[:, None] * m[None, :] / W)      # z_m^{-s_j}
    zold = z ** (-(W - 1))
    F = torch.zeros(B, H, N, D, dtype=torch.complex128)
    G = torch.zeros(B, H, N, v.shape[-1], dtype=torch.complex128)
    out = []
    for t in range(T):
        kt, vt, qt = k[:, t].to(torch.complex128), v[:, t].to(torch.complex128), q[:, t]
        k_old = (torch.einsum("n,bhnd->bhd", zold, F)).real / W
        v_old = (torch.einsum("n,bhnd->bhd", zold, G)).real / W
        F = z[:, None] * F + (kt - k_old)[..., None, :]
        G = z[:, None] * G + (vt - v_old)[..., None, :]
        K = (Zslot @ F).real / W
        V = (Zslot @ G).real / W
        sc = torch.einsum("bhsd,bhd->bhs", K, qt) * scale
        sc = sc.masked_fill(lags > t, float("-inf"))
        out.append(torch.einsum("bhs,bhsd->bhd", torch.softmax(sc, -1), V))
    return torch.stack(out, 1)


# (W, N, S): odd N < W, N = W even and odd, S > N, S < N, S not dividing W
CONFIGS = [(16, 5, None), (8, 8, None), (9, 9, None), (12, 7, 9), (16, 7, 5), (10, 3, 10), (6, 1, None)]


@pytest.mark.parametrize("W,N,S", CONFIGS)
def test_real_recurrent_matches_complex_definition(W, N, S):
    q, k, v = rand(2, 31, 2, 5)
    o, _ = bla_recurrent(q, k, v, W, N, num_slots=S)
    assert_close_rms(o, complex_reference(q, k, v, W, N, S), 1e-12)


@pytest.mark.parametrize("W,N,S", CONFIGS)
@pytest.mark.parametrize("C", [1, 8, 16, 64])
def test_recurrent_parallel_chunk_agree(W, N, S, C):
    q, k, v = rand(2, 63, 2, 5, Dv=3)
    o_rec, s_rec = bla_recurrent(q, k, v, W, N, num_slots=S, output_final_state=True)
    o_par, s_par = bla_parallel(q, k, v, W, N, num_slots=S, output_final_state=True)
    o_chk, s_chk = bla_chunk(q, k, v, W, N, num_slots=S, chunk_size=C, output_final_state=True)
    assert_close_rms(o_par, o_rec, 1e-12, "parallel")
    assert_close_rms(o_chk, o_rec, 1e-12, "chunk")
    for s in (s_par, s_chk):
        assert_close_rms(s.key_freq, s_rec.key_freq, 1e-11, "key state")
        assert_close_rms(s.value_freq, s_rec.value_freq, 1e-11, "value state")
        assert s.position == 63


@pytest.mark.parametrize("W", [8, 9, 16])
def test_full_resolution_is_sliding_window_attention(W):
    from blaviz import sliding_window_attention
    q, k, v = rand(2, 45, 3, 7)
    want = sliding_window_attention(q, k, v, W)
    for impl in ("recurrent", "parallel", "chunk"):
        o, _ = bla_attention(q, k, v, W, W, impl=impl, chunk_size=16)
        assert (o - want).abs().max() < 1e-12, impl


def test_full_resolution_weights_are_swa_probabilities():
    W, T = 8, 30
    q, k, _ = rand(1, T, 2, 4)
    A = bla_attention_weights(q, k, W, W)
    qh, kh = q.transpose(1, 2), k.transpose(1, 2)
    sc = (qh @ kh.transpose(-1, -2)) * 4 ** -0.5
    t = torch.arange(T)
    allowed = (t[:, None] >= t[None, :]) & (t[:, None] - t[None, :] < W)
    want = torch.softmax(sc.masked_fill(~allowed, float("-inf")), -1)
    assert (A - want).abs().max() < 1e-12


def test_attention_weights_reproduce_output():
    q, k, v = rand(1, 40, 2, 4)
    A = bla_attention_weights(q, k, 16, 5)
    o, _ = bla_parallel(q, k, v, 16, 5)
    assert_close_rms((A @ v.transpose(1, 2)).transpose(1, 2), o, 1e-12)


@pytest.mark.parametrize("W,N", [(16, 5), (8, 8), (9, 3)])
def test_slot_space_form_matches_recurrent(W, N):
    """K~(t) = T K~(t-1) + w k_t^T with S = N (the GSA view), read by the same softmax."""
    Tm, w = d.slot_space(W, N)
    q, k, v = rand(2, 37, 2, 4)
    lags = d.slot_lags(W, N)
    Ks = torch.zeros(2, 2, N, 4, dtype=torch.float64)
    Vs = torch.zeros_like(Ks)
    out = []
    for t in range(37):
        Ks = Tm @ Ks + w[:, None] * k[:, t, :, None, :]
        Vs = Tm @ Vs + w[:, None] * v[:, t, :, None, :]
        sc = torch.einsum("bhsd,bhd->bhs", Ks, q[:, t]) * 0.5
        p = torch.softmax(sc.masked_fill(lags > t, float("-inf")), -1)
        out.append(torch.einsum("bhs,bhsd->bhd", p, Vs))
    o, _ = bla_recurrent(q, k, v, W, N)
    assert_close_rms(torch.stack(out, 1), o, 1e-11)


@pytest.mark.parametrize("W,N,S", [(16, 5, None), (12, 12, None), (10, 3, 4)])
def test_kernel_slot_view_matches_bla(W, N, S):
    """The ABC view: every slot reads raw keys through a fixed kernel h_j (BLA_SPEC section 5)."""
    from blaviz import kernel_slot_attention
    T = 33
    q, k, v = rand(1, T, 2, 4)
    h = d.bla_slot_kernels(W, N, S, T)
    o = kernel_slot_attention(q, k, v, h, slot_start=d.slot_start(W, S or N))
    want, _ = bla_parallel(q, k, v, W, N, num_slots=S)
    assert_close_rms(o, want, 1e-11)


@pytest.mark.parametrize("impl", ["recurrent", "parallel", "chunk"])
@pytest.mark.parametrize("W,N,S", [(16, 5, None), (8, 8, None), (12, 7, 9)])
def test_prefill_then_decode_equals_one_pass(impl, W, N, S):
    q, k, v = rand(2, 41, 2, 5, Dv=3)
    full, _ = bla_recurrent(q, k, v, W, N, num_slots=S)
    split = 23
    o1, st = bla_attention(q[:, :split], k[:, :split], v[:, :split], W, N, num_slots=S, impl=impl,
                           chunk_size=8, output_final_state=True)
    outs = [o1]
    # a few tokens with the one-step decoder, then the rest with the same impl from the state
    for t in range(split, split + 5):
        o, st = bla_step(q[:, t], k[:, t], v[:, t], st, W, N, num_slots=S)
        outs.append(o[:, None])
    o2, st = bla_attention(q[:, split + 5:], k[:, split + 5:], v[:, split + 5:], W, N, num_slots=S,
                           impl=impl, chunk_size=8, initial_state=st, output_final_state=True)
    outs.append(o2)
    assert st.position == 41
    assert_close_rms(torch.cat(outs, 1), full, 1e-11)


@pytest.mark.parametrize("impl", ["parallel", "chunk"])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_low_precision_against_float64(impl, dtype, tol):
    q, k, v = rand(2, 63, 2, 33)
    want, _ = bla_recurrent(q, k, v, 32, 9, num_slots=11)
    o, st = bla_attention(q.to(dtype), k.to(dtype), v.to(dtype), 32, 9, num_slots=11, impl=impl,
                          chunk_size=16, output_final_state=True)
    assert o.dtype == dtype
    assert st.key_freq.dtype == torch.float32
    assert_close_rms(o, want, tol)


@pytest.mark.parametrize("impl", ["parallel", "chunk"])
def test_float32_forward_and_backward_against_float64_recurrent(impl):
    """Outputs, final state and the gradients of q, k, v and the initial state, float32 against
    the float64 definition; odd T, odd head dims, a short last chunk."""
    q, k, v = rand(1, 37, 2, 9, Dv=11)
    F0, G0 = 0.3 * torch.randn(1, 2, 5, 9, dtype=torch.float64), 0.3 * torch.randn(1, 2, 5, 11, dtype=torch.float64)

    def run(impl):
        def f(q, k, v, F0, G0):
            o, st = bla_attention(q, k, v, 16, 5, num_slots=7, impl=impl, chunk_size=8,
                                  initial_state=BLAState(F0, G0, 2), output_final_state=True)
            return o, st
        return f

    errs = assert_close_to_reference(run(impl), [x.float() for x in (q, k, v, F0, G0)], run("recurrent"),
                                     tol=1e-5, names=["q", "k", "v", "F0", "G0"])
    assert len(errs) == 8                      # o, F, G and five gradients


@pytest.mark.parametrize("impl,W,N,S", [
    ("parallel", 6, 3, None), ("parallel", 4, 4, None), ("parallel", 6, 3, 5),
    ("chunk", 6, 3, None), ("chunk", 4, 4, None), ("chunk", 6, 3, 5),
    ("recurrent", 6, 3, 5),   # the definition; slow under gradcheck, so one config
])
def test_gradcheck(impl, W, N, S):
    q, k, v = (x.requires_grad_() for x in rand(1, 7, 1, 3))
    F0 = (0.3 * torch.randn(1, 1, N, 3, dtype=torch.float64)).requires_grad_()
    G0 = (0.3 * torch.randn(1, 1, N, 3, dtype=torch.float64)).requires_grad_()

    def f(q, k, v, F0, G0):
        o, st = bla_attention(q, k, v, W, N, num_slots=S, impl=impl, chunk_size=3,
                              initial_state=BLAState(F0, G0, 2), output_final_state=True)
        return o, st.key_freq, st.value_freq

    assert torch.autograd.gradcheck(f, (q, k, v, F0, G0))


def test_chunk_writes_every_output(nan_poisoned_empty):
    q, k, v = rand(1, 37, 2, 5)
    o, _ = bla_chunk(q, k, v, 16, 5, chunk_size=8)
    assert torch.isfinite(o).all()
    want, _ = bla_recurrent(q, k, v, 16, 5)
    assert_close_rms(o, want, 1e-12)


@pytest.mark.parametrize("impl", ["recurrent", "parallel", "chunk"])
def test_no_nan_from_large_finite_inputs(impl):
    q, k, v = rand(1, 50, 1, 8, scale=1e3)
    for dtype in (torch.float64, torch.float32, torch.bfloat16):
        o, _ = bla_attention(q.to(dtype), k.to(dtype), v.to(dtype), 16, 5, impl=impl)
        assert torch.isfinite(o).all(), (impl, dtype)


def test_default_slots_and_scale():
    q, k, v = rand(1, 20, 1, 4)
    a, _ = bla_attention(q, k, v, 12, 5, impl="chunk")
    b, _ = bla_attention(q, k, v, 12, 5, impl="chunk", num_slots=5, scale=0.5)
    assert (a - b).abs().max() < 1e-14
    c, _ = bla_attention(q, k, v, 12, 5, impl="chunk", scale=0.1)
    assert rel_rms(c, a) > 1e-3


def test_auto_is_chunk_on_cpu():
    q, k, v = rand(1, 20, 1, 4)
    a, _ = bla_attention(q, k, v, 12, 5, impl="auto")
    b, _ = bla_attention(q, k, v, 12, 5, impl="chunk")
    assert torch.equal(a, b)


def good():
    return rand(1, 10, 2, 4)


@pytest.mark.parametrize("mutate,match", [
    (lambda a: a.update(impl="fast"), "impl must be one of"),
    (lambda a: a.update(resolution=4), "resolution must be odd"),
    (lambda a: a.update(resolution=17), "resolution must satisfy"),
    (lambda a: a.update(window=0), "window must be >= 1"),
    (lambda a: a.update(num_slots=0), "num_slots must be >= 1"),
    (lambda a: a.update(chunk_size=0), "chunk_size must be an integer >= 1"),
    (lambda a: a.update(scale=float("nan")), "scale must be a finite number"),
    (lambda a: a.update(q=a["q"][0]), r"q must have shape \[B, T, H, D\]"),
    (lambda a: a.update(k=a["k"][:, :5]), "q and k must have the same shape"),
    (lambda a: a.update(v=a["v"][:, :5]), "v must match q"),
    (lambda a: a.update(v=a["v"].float()), "q, k, v must share a dtype"),
    (lambda a: a.update(q=a["q"].long(), k=a["k"].long()), "q must be float64, float32"),
    (lambda a: a.update(q=a["q"][:, :0], k=a["k"][:, :0], v=a["v"][:, :0]), "sequence length"),
    (lambda a: a.update(initial_state=(1, 2, 3)), "initial_state must be a BLAState"),
    (lambda a: a.update(initial_state=BLAState(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 5, 4), 0)),
     r"initial_state.key_freq must have shape \(1, 2, 5, 4\)"),
    (lambda a: a.update(initial_state=BLAState(torch.zeros(1, 2, 5, 4), torch.zeros(1, 2, 5, 4), -1)),
     "initial_state.position must be an int >= 0"),
])
@pytest.mark.parametrize("impl", ["recurrent", "parallel", "chunk"])
def test_bad_inputs(mutate, match, impl):
    q, k, v = good()
    args = dict(q=q, k=k, v=v, window=16, resolution=5, impl=impl, chunk_size=8)
    mutate(args)
    with pytest.raises(ValueError, match=match):
        bla_attention(args.pop("q"), args.pop("k"), args.pop("v"), args.pop("window"),
                      args.pop("resolution"), **args)


def test_bad_step_inputs():
    q, k, v = (x[:, 0] for x in good())
    with pytest.raises(ValueError, match=r"q must have shape \[B, H, D\]"):
        bla_step(q[None], k, v, None, 16, 5)
    with pytest.raises(ValueError, match="resolution must be odd"):
        bla_step(q, k, v, None, 16, 6)


class PeakLiveBytes(TorchDispatchMode):
    """The largest number of bytes held at once by tensors that torch ops created (storages of at
    least ``min_bytes``; views share their base's storage and count once). Autograd's saved tensors
    are not Python objects, so use it under ``torch.no_grad()``."""

    def __init__(self, min_bytes):
        super().__init__()
        self.min_bytes, self.alive, self.peak = min_bytes, weakref.WeakSet(), 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.untyped_storage().nbytes() >= self.min_bytes:
                self.alive.add(t)
        held = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in list(self.alive)}
        self.peak = max(self.peak, sum(held.values()))
        return out


def test_parallel_form_memory_does_not_grow_with_slots():
    """O(T^2) memory (BLA_SPEC section 3), not S matrices of T x T: the peak of T x T buffers
    is the same handful for 2 slots and for 64."""
    T = 48
    q, k, v = rand(1, T, 1, 4)
    peaks = {}
    for S in (2, 64):
        with torch.no_grad(), PeakLiveBytes(T * T * 4) as mem:
            bla_parallel(q, k, v, 64, 7, num_slots=S)
        peaks[S] = mem.peak / (T * T * 8)            # in float64 T x T matrices
    assert peaks[2] >= 1                             # the counter sees the T x T buffers
    assert peaks[64] <= 12 and peaks[64] < 1.5 * peaks[2], peaks


def test_peak_counter_sees_a_list_of_matrices():
    """The counter itself: S live T x T matrices count S times."""
    with PeakLiveBytes(1000) as mem:
        held = [torch.zeros(20, 20, dtype=torch.float64) + i for i in range(10)]
    assert mem.peak >= 10 * 20 * 20 * 8
    del held
