"""BLA's Triton kernels on a CUDA GPU (``pytest -m gpu``; skipped without CUDA).

Against the float64 chunked reference (on the GPU), by relative RMS: <= 5e-3 for bf16 and <= 1e-5
for float32, on outputs, final states and all gradients; plus NaN-poisoned buffers, the decode kernel
against ``bla_step`` and under a CUDA graph.
"""
import pytest
import torch

from blaviz.ops.bla import BLAState, bla_chunk
from blaviz.ops.bla import bla_step_reference as bla_step
from tests.conftest import assert_close_rms

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

TOL = {torch.bfloat16: 5e-3, torch.float32: 1e-5}


def _case(B, T, H, D, Dv, N, dtype, with_state, pos=0):
    g = torch.Generator(device="cuda").manual_seed(1234 + T + N)
    q, k, v = (torch.randn(B, T, H, x, device="cuda", generator=g).to(dtype).double() for x in (D, D, Dv))
    st = None
    if with_state:
        st = BLAState(torch.randn(B, H, N, D, device="cuda", dtype=torch.float64, generator=g),
                      torch.randn(B, H, N, Dv, device="cuda", dtype=torch.float64, generator=g), pos)
    seeds = (torch.randn(B, T, H, Dv, device="cuda", dtype=torch.float64, generator=g),
             torch.randn(B, H, N, D, device="cuda", dtype=torch.float64, generator=g),
             torch.randn(B, H, N, Dv, device="cuda", dtype=torch.float64, generator=g))
    return q, k, v, st, seeds


def _run(fn, q, k, v, st, seeds, dtype, W, N, S, C=64):
    xs = [x.to(dtype).requires_grad_() for x in (q, k, v)]
    s = None
    if st is not None:
        sdt = torch.float64 if dtype == torch.float64 else torch.float32
        s = BLAState(st.key_freq.to(sdt).requires_grad_(), st.value_freq.to(sdt).requires_grad_(), st.position)
    o, fin = fn(*xs, W, N, num_slots=S, chunk_size=C, initial_state=s, output_final_state=True)
    do, dF, dG = seeds
    loss = (o.double() * do).sum() + (fin.key_freq.double() * dF).sum() + (fin.value_freq.double() * dG).sum()
    wrt = xs + ([s.key_freq, s.value_freq] if s is not None else [])
    return [o, fin.key_freq, fin.value_freq], list(torch.autograd.grad(loss, wrt))


# (B, T, H, D, Dv, W, N, S, with_state)
SHAPES = [
    (2, 1000, 4, 64, 64, 512, 63, None, False),
    (1, 4096, 2, 64, 64, 128, 15, None, True),
    (1, 1000, 2, 128, 64, 32, 32, None, True),      # N = W (SWA), large head dim
    (2, 333, 2, 48, 80, 256, 31, 40, True),         # S != N, padded head dims, odd T
]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("B,T,H,D,Dv,W,N,S,with_state", SHAPES)
def test_triton_vs_float64_reference(B, T, H, D, Dv, W, N, S, with_state, dtype):
    from blaviz.ops.bla.triton import bla_triton
    q, k, v, st, seeds = _case(B, T, H, D, Dv, N, dtype, with_state, pos=7)
    ref_vals, ref_grads = _run(bla_chunk, q, k, v, st, seeds, torch.float64, W, N, S)
    vals, grads = _run(bla_triton, q, k, v, st, seeds, dtype, W, N, S)
    tol = TOL[dtype]
    for name, a, b in zip(("o", "final F", "final G"), vals, ref_vals):
        assert_close_rms(a, b, tol, name)
    for name, a, b in zip(("dq", "dk", "dv", "dF0", "dG0"), grads, ref_grads):
        assert_close_rms(a, b, tol, name)


def test_nan_poisoned_buffers(nan_poisoned_empty):
    from blaviz.ops.bla.triton import bla_triton
    q, k, v, st, seeds = _case(1, 777, 2, 64, 64, 31, torch.bfloat16, True, pos=3)
    vals, grads = _run(bla_triton, q, k, v, st, seeds, torch.bfloat16, 128, 31, None)
    ref_vals, ref_grads = _run(bla_chunk, q, k, v, st, seeds, torch.float64, 128, 31, None)
    for a, b in zip(vals + grads, ref_vals + ref_grads):
        assert_close_rms(a, b, 5e-3)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_decode_kernel_and_prefill_continuation(dtype):
    from blaviz.ops.bla.triton import bla_step_triton, bla_triton
    W, N, B, H, D, T, extra = 512, 63, 4, 4, 64, 700, 8
    q, k, v, _, _ = _case(B, T + extra, H, D, D, N, dtype, False)
    ref, ref_st = bla_chunk(q, k, v, W, N, output_final_state=True)
    xs = [x.to(dtype) for x in (q, k, v)]
    o, st = bla_triton(*(x[:, :T] for x in xs), W, N, output_final_state=True)
    outs = [o]
    for i in range(T, T + extra):
        oi, st = bla_step_triton(xs[0][:, i], xs[1][:, i], xs[2][:, i], st, W, N)
        outs.append(oi[:, None])
    assert_close_rms(torch.cat(outs, 1), ref, TOL[dtype], "prefill + decode")
    assert_close_rms(st.key_freq, ref_st.key_freq, TOL[dtype], "F")
    # one step against the reference step from the same state
    s64 = BLAState(st.key_freq.double(), st.value_freq.double(), st.position)
    ro, rs = bla_step(q[:, 0], k[:, 0], v[:, 0], s64, W, N)
    o1, s1 = bla_step_triton(xs[0][:, 0], xs[1][:, 0], xs[2][:, 0], st, W, N)
    assert_close_rms(o1, ro, TOL[dtype], "step o")
    assert_close_rms(s1.value_freq, rs.value_freq, TOL[dtype], "step G")


def test_decode_under_cuda_graph():
    from blaviz.ops.bla.triton import bla_step_triton
    W, N, B, H, D = 128, 15, 8, 4, 64
    q, k, v = (torch.randn(B, H, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    st = BLAState(torch.randn(B, H, N, D, device="cuda"), torch.randn(B, H, N, D, device="cuda"), 1000)
    out = BLAState(torch.empty_like(st.key_freq), torch.empty_like(st.value_freq), 0)
    o_eager, s_eager = bla_step_triton(q, k, v, st, W, N)
    bla_step_triton(q, k, v, st, W, N, out_state=out)          # warm-up (compile) outside the capture
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        o_g, _ = bla_step_triton(q, k, v, st, W, N, out_state=out)
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(o_g, o_eager) and torch.equal(out.key_freq, s_eager.key_freq)


@pytest.mark.parametrize("score_dot", ["tf32x3q", "bf16x3q"])
@pytest.mark.parametrize("B,T,H,D,Dv,W,N,S,with_state", SHAPES)
def test_score_side_candidates_vs_float64_reference(B, T, H, D, Dv, W, N, S, with_state, score_dot):
    """The score sides that split one operand of the query products (``score_dot="tf32x3q"``: two
    tf32 products; ``"bf16x3q"``: three bf16 products) pass the same gate with bf16 inputs."""
    from blaviz.ops.bla.triton import LaunchConfig, bla_triton
    q, k, v, st, seeds = _case(B, T, H, D, Dv, N, torch.bfloat16, with_state, pos=7)
    ref_vals, ref_grads = _run(bla_chunk, q, k, v, st, seeds, torch.float64, W, N, S)

    def tri(*a, **kw):
        return bla_triton(*a, launch=LaunchConfig(score_dot=score_dot), **kw)
    vals, grads = _run(tri, q, k, v, st, seeds, torch.bfloat16, W, N, S)
    for name, a, b in zip(("o", "final F", "final G", "dq", "dk", "dv", "dF0", "dG0"), vals + grads,
                          ref_vals + ref_grads):
        assert_close_rms(a, b, TOL[torch.bfloat16], name)


@pytest.mark.parametrize("score_dot", ["tf32x3", "tf32x3q", "bf16x3q"])
@pytest.mark.parametrize("scale", [10, 100])
def test_bf16_large_logits_within_2x_of_pytorch_chunk(scale, score_dot):
    """q and k scaled by 10 and 100 (logits of size ~|q||k|): the Triton path's relative RMS against
    float64 on the same rounded inputs stays within 2x of the PyTorch chunk form's."""
    from blaviz.ops.bla.triton import LaunchConfig, bla_triton
    from blaviz.testing import rel_rms
    g = torch.Generator(device="cuda").manual_seed(77 + scale)
    W, N, T = 512, 63, 1500
    q, k, v = (torch.randn(2, T, 4, 64, device="cuda", generator=g) for _ in range(3))
    q, k, v = (x.bfloat16() for x in (q * scale, k * scale, v))
    ref, _ = bla_chunk(q.double(), k.double(), v.double(), W, N)
    chunk_err = rel_rms(bla_chunk(q, k, v, W, N)[0], ref)
    tri_err = rel_rms(bla_triton(q, k, v, W, N, launch=LaunchConfig(score_dot=score_dot))[0], ref)
    assert tri_err <= 2 * chunk_err, (tri_err, chunk_err)


def test_public_step_captured_loop_equals_eager():
    """A loop of public ``bla_step`` calls, in place with preallocated outputs, captured in one CUDA
    graph after a prefill, gives the eager loop's outputs and state."""
    from blaviz.ops.bla import bla_attention, bla_step
    W, N, B, H, D, T, L = 128, 31, 4, 2, 64, 300, 6
    g = torch.Generator(device="cuda").manual_seed(9)
    q, k, v = (torch.randn(B, T + L, H, D, device="cuda", generator=g).bfloat16() for _ in range(3))
    steps = [tuple(x[:, T + i].contiguous() for x in (q, k, v)) for i in range(L)]

    def prefill():
        return bla_attention(q[:, :T], k[:, :T], v[:, :T], W, N, output_final_state=True)[1]

    eager_st, eager = prefill(), []
    for qi, ki, vi in steps:
        o, eager_st = bla_step(qi, ki, vi, eager_st, W, N)
        eager.append(o)
    st = prefill()
    outs = [torch.empty(B, H, D, device="cuda", dtype=torch.bfloat16) for _ in range(L)]

    def loop():
        s = st
        for i, (qi, ki, vi) in enumerate(steps):
            _, s = bla_step(qi, ki, vi, s, W, N, check_finite=False, out_state=st, out=outs[i])
    loop()                                              # compile outside the capture
    st2 = prefill()
    st.key_freq.copy_(st2.key_freq)
    st.value_freq.copy_(st2.value_freq)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        loop()
    st.key_freq.copy_(st2.key_freq)
    st.value_freq.copy_(st2.value_freq)
    graph.replay()
    torch.cuda.synchronize()
    for a, b in zip(outs, eager):
        assert torch.equal(a, b)
    assert torch.equal(st.key_freq, eager_st.key_freq) and torch.equal(st.value_freq, eager_st.value_freq)
