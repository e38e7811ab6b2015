"""The Triton kernels of BLA against the float64 references (CPU: Triton's interpreter).

Outputs and gradients (q, k, v, initial state, through the final state) by fla-style relative
RMS error; odd lengths, padded head dims and resolutions, N = W, S != N; decoding continuation;
NaN-poisoned allocations so an unwritten element fails. Shapes are tiny: the interpreter is slow.
"""
import pytest
import torch

pytest.importorskip("triton")

from blaviz.ops.bla import BLAState, bla_attention, bla_chunk, bla_recurrent, bla_step  # noqa: E402
from blaviz.ops.bla.triton import LaunchConfig, bla_step_triton, bla_triton  # noqa: E402
from blaviz.testing import rel_rms  # noqa: E402
from tests.conftest import assert_close_rms  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"


def _inputs(B, T, H, D, Dv=None, N=None, with_state=False, pos=0):
    q, k, v = (torch.randn(B, T, H, x, dtype=torch.float64) for x in (D, D, Dv or D))
    st = None
    if with_state:
        st = BLAState(torch.randn(B, H, N, D, dtype=torch.float64),
                      torch.randn(B, H, N, Dv or D, dtype=torch.float64), pos)
    return q, k, v, st


def _run(fn, q, k, v, st, dtype, W, N, S, C, seeds):
    """Forward + backward through a random loss on o and the final state; returns values and grads."""
    xs = [x.to(DEV, dtype).requires_grad_() for x in (q, k, v)]
    s = None
    if st is not None:
        sdt = torch.float64 if dtype == torch.float64 else torch.float32
        s = BLAState(st.key_freq.to(DEV, sdt).requires_grad_(), st.value_freq.to(DEV, sdt).requires_grad_(),
                     st.position)
    o, fin = fn(*xs, W, N, num_slots=S, chunk_size=C, initial_state=s, output_final_state=True)
    do, dF, dG = seeds
    loss = (o.double() * do.to(DEV)).sum() + (fin.key_freq.double() * dF.to(DEV)).sum() \
        + (fin.value_freq.double() * dG.to(DEV)).sum()
    wrt = xs + ([s.key_freq, s.value_freq] if s is not None else [])
    grads = torch.autograd.grad(loss, wrt)
    return [o, fin.key_freq, fin.value_freq], list(grads)


# (W, N, S, T, D, Dv, C, with_state): odd N < W, N = W, S != N, odd T, padded head dims
CASES = [
    (16, 7, None, 37, 16, 16, 16, False),
    (16, 16, None, 37, 60, 20, 16, True),
    (32, 15, 20, 40, 64, 64, 32, True),
    (24, 9, 6, 33, 16, 16, 16, True),
]


@pytest.mark.slow
@pytest.mark.parametrize("W,N,S,T,D,Dv,C,with_state", CASES)
def test_triton_matches_reference_fp32(W, N, S, T, D, Dv, C, with_state):
    q, k, v, st = _inputs(1, T, 2, D, Dv, N=N, with_state=with_state, pos=3)
    seeds = (torch.randn(1, T, 2, Dv, dtype=torch.float64), torch.randn(1, 2, N, D, dtype=torch.float64),
             torch.randn(1, 2, N, Dv, dtype=torch.float64))
    ref_vals, ref_grads = _run(bla_chunk, q, k, v, st, torch.float64, W, N, S, C, seeds)
    vals, grads = _run(bla_triton, q, k, v, st, torch.float32, W, N, S, C, seeds)
    for name, a, b in zip(("o", "final F", "final G"), vals, ref_vals):
        assert_close_rms(a.cpu(), b.cpu(), 1e-5, name)
    names = ("dq", "dk", "dv", "dF0", "dG0")
    for name, a, b in zip(names, grads, ref_grads):
        assert_close_rms(a.cpu(), b.cpu(), 1e-5, name)


def test_triton_half_precision_and_recurrent_reference():
    W, N, T, D = 16, 7, 37, 16
    q, k, v, _ = _inputs(2, T, 1, D)
    ref, _ = bla_recurrent(q, k, v, W, N)
    for dtype in (torch.bfloat16, torch.float16):
        o, _ = bla_triton(q.to(DEV, dtype), k.to(DEV, dtype), v.to(DEV, dtype), W, N, chunk_size=16)
        assert o.dtype == dtype
        assert_close_rms(o.cpu(), ref, 5e-3, f"o ({dtype})")


def test_forward_without_gradients():
    """Inference (no gradient): the forward stores no slot weights and still writes every output."""
    W, N, T, D = 16, 7, 45, 16
    q, k, v, _ = _inputs(1, T, 2, D)
    ref, _ = bla_recurrent(q, k, v, W, N)
    with torch.no_grad():
        o, _ = bla_triton(*(x.to(DEV, torch.float32) for x in (q, k, v)), W, N, chunk_size=16)
    assert_close_rms(o.cpu(), ref, 1e-5, "o (no grad)")


def test_round_tf32_and_rounded_tables():
    from blaviz.ops.bla.triton import DOT_TABLES, chunk_consts, round_tf32
    x = torch.randn(10000, dtype=torch.float32) * 10.0 ** torch.randint(-20, 20, (10000,)).float()
    r = round_tf32(x)
    assert torch.equal(round_tf32(r), r)                                    # idempotent
    assert torch.equal(r.view(torch.int32) & 0x1FFF, torch.zeros_like(r, dtype=torch.int32))
    assert ((r - x).abs() <= x.abs() * 2.0 ** -11).all()                    # nearest: half a tf32 ulp
    assert torch.equal(round_tf32(-x), -r)                                  # symmetric (ties away from 0)
    ties = torch.tensor([1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11], dtype=torch.float32)
    assert round_tf32(ties).tolist() == [1 + 2.0 ** -10, 1 + 2 * 2.0 ** -10]
    bf = torch.randn(1000).bfloat16().float()
    assert torch.equal(round_tf32(bf), bf)                                  # bf16 values are tf32 values
    with pytest.raises(ValueError, match="float32"):
        round_tf32(x.double())
    exact = chunk_consts(64, 15, 15, 16, 100, "cpu")
    rnd = chunk_consts(64, 15, 15, 16, 100, "cpu", rounded=True)
    assert rnd.rounded and not exact.rounded
    for name in DOT_TABLES:
        assert torch.equal(getattr(rnd, name), round_tf32(getattr(exact, name))), name
    assert torch.equal(rnd.c0, exact.c0) and torch.equal(rnd.s1, exact.s1)    # element-wise tables stay exact


def test_launch_config_and_plan():
    """Launch settings are a frozen value, checked by name; the plan gives each side its precision
    and the tables that precision needs (rounded for tf32rn, exact for tf32x3)."""
    import dataclasses

    from blaviz.ops.bla.triton import DEFAULT_LAUNCH, LaunchConfig, chunk_plan
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_LAUNCH.out_warps = 8
    for bad, name in ((dict(out_warps=3), "out_warps"), (dict(scan_bd=24), "scan_bd"),
                      (dict(score_dot="tf32"), "score_dot"), (dict(scan_stages=0), "scan_stages")):
        with pytest.raises(ValueError, match=name):
            LaunchConfig(**bad)
    q = torch.randn(1, 20, 1, 16)
    with pytest.raises(ValueError, match="launch"):
        bla_triton(q, q, q, 16, 5, chunk_size=16, launch={"out_warps": 8})
    half = chunk_plan(64, 15, 15, 16, 100, torch.bfloat16, "cpu")
    assert (half.sprec, half.prec) == ("bf16x3q", "tf32rn")
    assert not half.score.rounded and half.value.rounded
    q2 = chunk_plan(64, 15, 15, 16, 100, torch.bfloat16, "cpu", LaunchConfig(score_dot="tf32x3q"))
    assert (q2.sprec, q2.prec) == ("tf32x3q", "tf32rn") and not q2.score.rounded   # exact tables
    b3 = chunk_plan(64, 15, 15, 16, 100, torch.bfloat16, "cpu", LaunchConfig(score_dot="bf16x3q"))
    assert (b3.sprec, b3.prec) == ("bf16x3q", "tf32rn") and not b3.score.rounded
    h3 = chunk_plan(64, 15, 15, 16, 100, torch.float16, "cpu", LaunchConfig(score_dot="bf16x3q"))
    assert h3.sprec == "tf32x3q"           # fp16 queries are not bf16 values
    fast = chunk_plan(64, 15, 15, 16, 100, torch.float16, "cpu", LaunchConfig(score_dot="tf32rn"))
    assert (fast.sprec, fast.prec) == ("tf32rn", "tf32rn") and fast.score is fast.value
    full = chunk_plan(64, 15, 15, 16, 100, torch.float32, "cpu")
    assert (full.sprec, full.prec) == ("tf32x3", "tf32x3") and not full.value.rounded


@pytest.mark.slow
@pytest.mark.parametrize("score_dot", ["tf32x3", "tf32x3q", "bf16x3q"])
def test_half_precision_logits_stay_accurate_at_large_scale(score_dot):
    """q and k scaled by 10 and 100: the logits grow with |q| |k|, and tf32 products on the score side
    would move them by ``2^-11`` of their size (at x100 the error was 8x the x1 error). With the score
    side at float32 accuracy the error does not grow with the scale. (Compared with the x1 error of
    the same kernels: the interpreter casts float32 to bf16 by truncation, which doubles the error of
    every bf16 output against the PyTorch form; the GPU test compares with the PyTorch form.)"""
    W, N, T, D = 128, 31, 200, 32
    g = torch.Generator().manual_seed(5)
    errs = {}
    for s in (1, 10, 100):
        q, k, v = (torch.randn(1, T, 2, D, generator=g) for _ in range(3))
        q, k, v = (x.bfloat16() for x in (q * s, k * s, v))
        ref, _ = bla_chunk(q.double(), k.double(), v.double(), W, N, chunk_size=32)
        o, _ = bla_triton(q.to(DEV), k.to(DEV), v.to(DEV), W, N, chunk_size=32,
                          launch=LaunchConfig(score_dot=score_dot))
        errs[s] = rel_rms(o.cpu(), ref)
    assert errs[1] < 5e-3
    assert errs[10] <= 1.25 * errs[1] and errs[100] <= 1.25 * errs[1], errs


def test_prefill_then_decode_equals_one_pass():
    W, N, S, D, T, extra = 16, 9, 12, 20, 21, 5
    q, k, v, _ = _inputs(1, T + extra, 2, D)
    ref, ref_state = bla_recurrent(q, k, v, W, N, num_slots=S, output_final_state=True)
    dq, dk, dv = (x.to(DEV, torch.float32) for x in (q, k, v))
    o, st = bla_triton(dq[:, :T], dk[:, :T], dv[:, :T], W, N, num_slots=S, chunk_size=16, output_final_state=True)
    outs = [o]
    for i in range(T, T + extra):
        oi, st = bla_step_triton(dq[:, i], dk[:, i], dv[:, i], st, W, N, num_slots=S)
        outs.append(oi[:, None])
    assert st.position == T + extra
    assert_close_rms(torch.cat(outs, 1).cpu(), ref, 1e-5, "prefill + decode")
    assert_close_rms(st.key_freq.cpu(), ref_state.key_freq, 1e-5, "decoded F")
    assert_close_rms(st.value_freq.cpu(), ref_state.value_freq, 1e-5, "decoded G")


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 5e-3)])
def test_decode_kernel_matches_bla_step(dtype, tol):
    W, N, D = 16, 16, 60                      # N = W, padded head dim
    q, k, v, st = _inputs(3, 1, 2, D, N=N, with_state=True, pos=4)
    q, k, v = (x[:, 0] for x in (q, k, v))
    ref_o, ref_st = bla_step(q, k, v, st, W, N)
    sd = BLAState(st.key_freq.to(DEV, torch.float32), st.value_freq.to(DEV, torch.float32), st.position)
    o, new = bla_step_triton(q.to(DEV, dtype), k.to(DEV, dtype), v.to(DEV, dtype), sd, W, N)
    assert o.dtype == dtype and new.position == 5
    assert_close_rms(o.cpu(), ref_o, tol, "o")
    assert_close_rms(new.key_freq.cpu(), ref_st.key_freq, 1e-5 if dtype == torch.float32 else 5e-3, "F")
    # in place: writing into the state it reads gives the same result
    o2, new2 = bla_step_triton(q.to(DEV, dtype), k.to(DEV, dtype), v.to(DEV, dtype), sd, W, N, out_state=sd)
    assert new2.key_freq.data_ptr() == sd.key_freq.data_ptr()
    assert torch.equal(o2, o) and torch.equal(new2.value_freq, new.value_freq)
    # in place with a preallocated output: the step writes into the caller's tensors and allocates none
    buf = BLAState(st.key_freq.to(DEV, torch.float32), st.value_freq.to(DEV, torch.float32), st.position)
    out = torch.empty_like(o)
    o4, new4 = bla_step_triton(q.to(DEV, dtype), k.to(DEV, dtype), v.to(DEV, dtype), buf, W, N, out_state=buf, out=out)
    assert o4.data_ptr() == out.data_ptr() and new4.key_freq.data_ptr() == buf.key_freq.data_ptr()
    assert torch.equal(o4, o) and torch.equal(buf.key_freq, new.key_freq) and torch.equal(buf.value_freq, new.value_freq)
    with pytest.raises(ValueError, match="out must be"):
        bla_step_triton(q.to(DEV, dtype), k.to(DEV, dtype), v.to(DEV, dtype), sd, W, N, out=out[:, :1])
    # the launch width is a tuning knob, not a semantic one; bad values are named
    s0 = BLAState(st.key_freq.to(DEV, torch.float32), st.value_freq.to(DEV, torch.float32), st.position)
    o3, new3 = bla_step_triton(q.to(DEV, dtype), k.to(DEV, dtype), v.to(DEV, dtype), s0, W, N, num_warps=8)
    assert_close_rms(o3.cpu(), ref_o, tol, "o, 8 warps")
    assert_close_rms(new3.key_freq.cpu(), ref_st.key_freq, 1e-5 if dtype == torch.float32 else 5e-3, "F, 8 warps")
    with pytest.raises(ValueError, match="num_warps"):
        bla_step_triton(q.to(DEV, dtype), k.to(DEV, dtype), v.to(DEV, dtype), new, W, N, num_warps=3)


def test_outputs_fully_written_nan_poisoned(nan_poisoned_empty):
    """Every buffer the kernels allocate with torch.empty is NaN-filled first."""
    W, N, S, T, D = 16, 7, 5, 37, 16
    q, k, v, st = _inputs(1, T, 2, D, N=N, with_state=True, pos=1)
    seeds = (torch.randn(1, T, 2, D, dtype=torch.float64), torch.randn(1, 2, N, D, dtype=torch.float64),
             torch.randn(1, 2, N, D, dtype=torch.float64))
    vals, grads = _run(bla_triton, q, k, v, st, torch.float32, W, N, S, 16, seeds)
    ref_vals, ref_grads = _run(bla_chunk, q, k, v, st, torch.float64, W, N, S, 16, seeds)
    for a, b in zip(vals + grads, ref_vals + ref_grads):
        assert_close_rms(a.cpu(), b.cpu(), 1e-5)
    o, new = bla_step_triton(q[:, 0].float().to(DEV), k[:, 0].float().to(DEV), v[:, 0].float().to(DEV), None, W, N)
    assert torch.isfinite(o).all() and torch.isfinite(new.key_freq).all()


def test_dispatch_and_validation():
    q, k, v, _ = _inputs(1, 19, 1, 16)
    x = [t.float().to(DEV) for t in (q, k, v)]
    o, _ = bla_attention(*x, 16, 5, impl="triton", chunk_size=16)
    ref, _ = bla_chunk(q, k, v, 16, 5)
    assert_close_rms(o.cpu(), ref, 1e-5)
    with pytest.raises(ValueError, match="power of two"):
        bla_triton(*x, 16, 5, chunk_size=24)
    with pytest.raises(ValueError, match="resolution"):
        bla_triton(*x, 16, 6)
    with pytest.raises(ValueError):
        bla_triton(x[0], x[1], x[2][..., :3].contiguous().transpose(1, 2), 16, 5)
    # float64 is delegated to the PyTorch chunked form
    o64, _ = bla_triton(q, k, v, 16, 5, chunk_size=16)
    assert o64.dtype == torch.float64 and torch.allclose(o64, ref)


def test_public_step_dispatch_matches_reference():
    """``bla_step(impl="triton")`` (interpreter on CPU) equals the reference step; bad impl rejected."""
    from blaviz.ops.bla import bla_step
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 1, 16, generator=g) for _ in range(3))
    st_ref = st_tri = None
    for _ in range(3):
        o_ref, st_ref = bla_step(q, k, v, st_ref, 16, 7, impl="recurrent")
        o_tri, st_tri = bla_step(q, k, v, st_tri, 16, 7, impl="triton")
        assert_close_rms(o_tri, o_ref, 1e-5)
    assert st_tri.position == st_ref.position == 3
    with pytest.raises(ValueError, match="impl must be one of"):
        bla_step(q, k, v, None, 16, 7, impl="fused")


def test_public_step_in_place_after_prefill():
    """The state the prefill returns is the state the public step updates: no conversion (the same
    storage), in place with a preallocated output, equal to the reference step and, continued, to
    one full pass."""
    from blaviz.ops.bla import bla_step
    W, N, D, T, extra = 16, 7, 16, 20, 4
    q, k, v, _ = _inputs(2, T + extra, 2, D)
    full, _ = bla_recurrent(q, k, v, W, N)
    x = [t.to(DEV, torch.float32) for t in (q, k, v)]
    _, st = bla_attention(*(t[:, :T] for t in x), W, N, impl="triton", chunk_size=16, output_final_state=True)
    ptrs = (st.key_freq.data_ptr(), st.value_freq.data_ptr())
    out = torch.empty(2, 2, D, device=DEV)
    outs = []
    for i in range(T, T + extra):
        ref_o, ref_st = bla_step(q[:, i], k[:, i], v[:, i],
                                 BLAState(st.key_freq.double().cpu(), st.value_freq.double().cpu(), st.position),
                                 W, N, impl="recurrent")
        o, st = bla_step(x[0][:, i], x[1][:, i], x[2][:, i], st, W, N, impl="triton", out_state=st, out=out)
        assert o.data_ptr() == out.data_ptr() and (st.key_freq.data_ptr(), st.value_freq.data_ptr()) == ptrs
        assert_close_rms(o.cpu(), ref_o, 1e-5, "step o")
        assert_close_rms(st.value_freq.cpu(), ref_st.value_freq, 1e-5, "step G")
        outs.append(o.cpu().clone())
    assert st.position == T + extra
    assert_close_rms(torch.stack(outs, 1), full[:, T:], 1e-5, "prefill + in-place steps")


@pytest.mark.slow
@pytest.mark.parametrize("score_dot", ["tf32x3", "tf32x3q", "bf16x3q", "tf32rn"])
def test_half_precision_gradients(score_dot):
    """bf16 inputs, forward and backward with an initial state, every score-side precision. 1e-2
    here (the GPU tests hold 5e-3): the interpreter converts float32 to bf16 by truncation, which
    doubles the rounding error of every bf16 output (o, dq, dk, dv)."""
    from blaviz.ops.bla.triton import LaunchConfig
    W, N, S, T, D = 32, 15, 20, 45, 16
    q, k, v, st = _inputs(1, T, 2, D, N=N, with_state=True, pos=3)
    q, k, v = (x.bfloat16().double() for x in (q, k, v))
    seeds = (torch.randn(1, T, 2, D, dtype=torch.float64), torch.randn(1, 2, N, D, dtype=torch.float64),
             torch.randn(1, 2, N, D, dtype=torch.float64))
    ref_vals, ref_grads = _run(bla_chunk, q, k, v, st, torch.float64, W, N, S, 16, seeds)

    def tri(*a, **kw):
        return bla_triton(*a, launch=LaunchConfig(score_dot=score_dot), **kw)
    vals, grads = _run(tri, q, k, v, st, torch.bfloat16, W, N, S, 16, seeds)
    for name, a, b in zip(("o", "final F", "final G", "dq", "dk", "dv", "dF0", "dG0"), vals + grads,
                          ref_vals + ref_grads):
        assert_close_rms(a.cpu(), b.cpu(), 1e-2, f"{name} (score_dot={score_dot})")


def test_reference_step_in_place_matches():
    """``bla_step(impl="recurrent", out_state=state, out=...)`` writes into the caller's tensors and
    gives what the allocating step gives."""
    from blaviz.ops.bla import bla_step
    q, k, v, st = _inputs(2, 1, 3, 8, N=5, with_state=True, pos=7)
    q, k, v = (x[:, 0] for x in (q, k, v))
    ref_o, ref_st = bla_step(q, k, v, st, 16, 5, impl="recurrent")
    buf = BLAState(st.key_freq.clone(), st.value_freq.clone(), st.position)
    out = torch.empty_like(ref_o)
    o, new = bla_step(q, k, v, buf, 16, 5, impl="recurrent", out_state=buf, out=out)
    assert o.data_ptr() == out.data_ptr() and new.key_freq.data_ptr() == buf.key_freq.data_ptr()
    assert torch.equal(o, ref_o) and torch.equal(new.key_freq, ref_st.key_freq)
    assert torch.equal(new.value_freq, ref_st.value_freq) and new.position == ref_st.position


