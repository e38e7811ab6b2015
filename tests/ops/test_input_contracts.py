"""Input contracts of the public ops (issue 11, items 5 and 6).

What callers may pass (numpy integers, any finite scale the compute dtype holds), what they get
for bad input (an error naming the argument, before any work), and the finiteness contract:
BLA refuses non-finite inputs, because the chunked and parallel forms would spread a NaN at
position p to earlier outputs of its chunk. Devices are mismatched with ``meta`` tensors, which
need no GPU.
"""
import numpy as np
import pytest
import torch

from blaviz.ops.bla import BLAState, bla_attention, bla_step, choose_impl, triton_supports
from blaviz.ops.bla import state as bla_state
from blaviz.ops.gla import gla_attention
from blaviz.ops.gsa import gsa_attention
from blaviz.ops.linear import linear_attention
from blaviz.ops.softmax import softmax_attention
from blaviz.ops.swa import sliding_window_attention
from blaviz.testing import assert_close_rms

F64 = torch.float64
B, T, H, D, W, N = 1, 11, 2, 4, 8, 5
FORMS = ["recurrent", "parallel", "chunk"]
# the checks run before any kernel, so impl="triton" costs nothing here (no interpreter run)
ALL_IMPLS = FORMS + ["triton", "auto"]


def qkv(dtype=F64, T=T, D=D):
    return [torch.randn(B, T, H, D, dtype=dtype) for _ in range(3)]


def state(N=N, dtype=F64, device="cpu"):
    return BLAState(torch.randn(B, H, N, D, dtype=dtype, device=device),
                    torch.randn(B, H, N, D, dtype=dtype, device=device), 3)


# ------------------------------------------------------------------------- what is accepted
@pytest.mark.parametrize("impl", FORMS)
def test_numpy_integers_are_integers(impl):
    q, k, v = qkv()
    want, _ = bla_attention(q, k, v, W, N, num_slots=7, impl=impl, chunk_size=4)
    got, _ = bla_attention(q, k, v, np.int64(W), np.int32(N), num_slots=np.int64(7), impl=impl,
                           chunk_size=np.int64(4))
    assert torch.equal(got, want)


def test_numpy_integers_in_bla_step():
    q, k, v = (x[:, 0] for x in qkv())
    want, _ = bla_step(q, k, v, None, W, N)
    got, _ = bla_step(q, k, v, None, np.int64(W), np.int64(N), num_slots=np.int16(N))
    assert torch.equal(got, want)


@pytest.mark.parametrize("impl", FORMS)
def test_a_huge_finite_scale_is_finite_in_float64(impl):
    # 1e39 overflows float32 but not float64: a float64 call takes it (softmax becomes a max)
    q, k, v = qkv()
    o, _ = bla_attention(q, k, v, W, N, scale=1e39, impl=impl, chunk_size=4)
    assert torch.isfinite(o).all()
    o2, _ = bla_attention(q, k, v, W, N, scale=np.float64(1e39), impl=impl, chunk_size=4)
    assert torch.equal(o, o2)


@pytest.mark.parametrize("impl", ALL_IMPLS)
def test_a_scale_beyond_the_compute_dtype_is_refused(impl):
    q, k, v = qkv(torch.float32)
    with pytest.raises(ValueError, match=r"scale=1e\+39 overflows torch.float32"):
        bla_attention(q, k, v, W, N, scale=1e39, impl=impl, chunk_size=16)


# ------------------------------------------------------------------- bad input, named errors
@pytest.mark.parametrize("impl", ALL_IMPLS)
@pytest.mark.parametrize("which", ["q", "k", "v"])
def test_an_empty_head_dim_is_a_value_error(impl, which):
    q, k, v = qkv()
    if which in ("q", "k"):
        q, k = q[..., :0], k[..., :0]          # Dk = 0 (q and k must agree)
    else:
        v = v[..., :0]
    name = "q" if which in ("q", "k") else "v"
    with pytest.raises(ValueError, match=f"{name} must have every dimension >= 1"):
        bla_attention(q, k, v, W, N, impl=impl, chunk_size=16)


def test_an_empty_head_dim_in_bla_step():
    q, k, v = (x[:, 0] for x in qkv())
    with pytest.raises(ValueError, match="q must have every dimension >= 1"):
        bla_step(q[..., :0], k[..., :0], v, None, W, N)


@pytest.mark.parametrize("impl", ALL_IMPLS)
@pytest.mark.parametrize("arg", ["window", "resolution", "num_slots", "chunk_size"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 2.5, "8"])
def test_non_integer_sizes_name_the_argument(impl, arg, bad):
    q, k, v = qkv()
    kw = dict(window=W, resolution=N, num_slots=None, chunk_size=16)
    kw[arg] = bad
    with pytest.raises(ValueError, match=f"{arg} must be an integer"):
        bla_attention(q, k, v, kw.pop("window"), kw.pop("resolution"), impl=impl, **kw)


@pytest.mark.parametrize("impl", ALL_IMPLS)
@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64, torch.int64])
def test_a_non_real_initial_state_is_a_type_error(impl, dtype):
    q, k, v = qkv()
    st = state()
    st = BLAState(st.key_freq.to(dtype), st.value_freq, st.position)
    with pytest.raises(TypeError, match="initial_state.key_freq must be a real floating tensor"):
        bla_attention(q, k, v, W, N, impl=impl, chunk_size=16, initial_state=st)


def test_a_complex_state_in_bla_step_is_a_type_error():
    q, k, v = (x[:, 0] for x in qkv())
    st = state()
    st = BLAState(st.key_freq, st.value_freq.to(torch.complex128), st.position)
    with pytest.raises(TypeError, match="initial_state.value_freq must be a real floating tensor"):
        bla_step(q, k, v, st, W, N)


@pytest.mark.parametrize("impl", ALL_IMPLS)
@pytest.mark.parametrize("which", ["k", "v"])
def test_mismatched_devices_name_the_tensors(impl, which):
    q, k, v = qkv()
    if which == "k":
        k = k.to("meta")
    else:
        v = v.to("meta")
    with pytest.raises(ValueError, match="q, k, v must be on one device"):
        bla_attention(q, k, v, W, N, impl=impl, chunk_size=16)


@pytest.mark.parametrize("impl", ALL_IMPLS)
def test_a_state_on_another_device_is_named(impl):
    q, k, v = qkv()
    with pytest.raises(ValueError, match=r"initial_state.key_freq must be on q's device \(cpu\), got meta"):
        bla_attention(q, k, v, W, N, impl=impl, chunk_size=16, initial_state=state(device="meta"))


def test_mismatched_devices_in_bla_step():
    q, k, v = (x[:, 0] for x in qkv())
    with pytest.raises(ValueError, match="q, k, v must be on one device"):
        bla_step(q, k.to("meta"), v, None, W, N)


# --------------------------------------------------------------------- Triton's size limits
@pytest.mark.parametrize("window,resolution,num_slots,chunk_size,head_dim,match", [
    (2048, 1025, None, 64, 64, r"NP x NP tile of 4194304"),            # N >= 1025: NP = 2048
    (64, 7, 100_000, 64, 64, r"C x SP tile"),                          # huge S
    (64, 7, None, 48, 64, "power of two >= 16"),
    (64, 7, None, 8, 64, "power of two >= 16"),
    (64, 7, None, 64, 160, "head dims up to 128"),
])
def test_triton_refuses_what_the_kernels_cannot_take_up_front(window, resolution, num_slots,
                                                              chunk_size, head_dim, match):
    ok, why = triton_supports(window, resolution, num_slots, head_dim=head_dim, chunk_size=chunk_size)
    assert not ok and why
    q, k, v = qkv(torch.float32, T=3, D=head_dim)
    with pytest.raises(ValueError, match="impl='triton' cannot run this configuration.*" + match):
        bla_attention(q, k, v, window, resolution, num_slots=num_slots, impl="triton",
                      chunk_size=chunk_size)


def test_auto_takes_the_pytorch_form_beyond_the_kernels():
    ok = (True, "")
    too_big = triton_supports(2048, 1025, head_dim=64)
    assert choose_impl("auto", True, ok, "chunk") == "triton"
    assert choose_impl("auto", True, too_big, "chunk") == "chunk"
    assert choose_impl("auto", True, too_big, "recurrent") == "recurrent"
    assert choose_impl("auto", False, ok, "chunk") == "chunk"
    assert choose_impl("triton", False, ok, "chunk") == "triton"      # the interpreter
    with pytest.raises(ValueError, match="impl='triton' cannot run.*NP x NP"):
        choose_impl("triton", True, too_big, "chunk")
    q, k, v = qkv(T=3)                  # and through the entry point (CPU: chunk)
    o, _ = bla_attention(q, k, v, 2048, 1025, impl="auto", chunk_size=48)
    want, _ = bla_attention(q, k, v, 2048, 1025, impl="chunk", chunk_size=48)
    assert torch.equal(o, want)


def test_triton_supports_accepts_the_largest_tiles():
    assert triton_supports(2048, 1023, head_dim=128, chunk_size=64) == (True, "")   # NP = 1024
    # N = 31, S = 32768: NP x SP = 2^20 fits the decoding kernel, C x SP = 2^21 not the chunk ones
    assert triton_supports(64, 31, num_slots=32768, head_dim=64, chunk_size=None) == (True, "")
    assert "C x SP" in triton_supports(64, 31, num_slots=32768, head_dim=64, chunk_size=64)[1]
    assert "NP x SP" in triton_supports(64, 31, num_slots=32769, head_dim=64, chunk_size=None)[1]
    assert triton_supports(64, 7, head_dim=64, batch_heads=65535)[0]
    assert "grid" in triton_supports(64, 7, head_dim=64, batch_heads=65536)[1]
    # the decoding kernel launches one program per (b, h) on the first grid axis: no such limit
    assert triton_supports(64, 7, head_dim=64, chunk_size=None, batch_heads=10**6)[0]


def test_triton_step_refuses_what_the_kernel_cannot_take():
    q, k, v = (x[:, 0].float() for x in qkv())
    with pytest.raises(ValueError, match="impl='triton' cannot run this configuration"):
        bla_step(q, k, v, None, 2048, 1025, impl="triton")


def test_the_predicate_follows_the_kernels():
    """The limits above are the kernels' own: Triton's tile limit and the padding rules."""
    pytest.importorskip("triton")
    from triton._utils import TRITON_MAX_TENSOR_NUMEL

    from blaviz.ops.bla.triton import pow2_at_least_16, pow2_at_least_32
    assert bla_state._TRITON_MAX_TILE == TRITON_MAX_TENSOR_NUMEL
    for n in range(1, 2100):
        assert bla_state._pow2_at_least(n, 32) == pow2_at_least_32(n)
        assert bla_state._pow2_at_least(n, 16) == pow2_at_least_16(n)


# ------------------------------------------------------------------ finiteness (item 6)
def _poison(x, value):
    x = x.clone()
    x[0, 6, 1, 2] = value
    return x


@pytest.mark.parametrize("impl", ALL_IMPLS)
@pytest.mark.parametrize("which", ["q", "k", "v"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_inputs_are_refused(impl, which, value):
    x = dict(zip("qkv", qkv(torch.float32)))
    x[which] = _poison(x[which], value)
    with pytest.raises(ValueError, match=rf"{which} has a non-finite value .* at index \(0, 6, 1, 2\)"):
        bla_attention(x["q"], x["k"], x["v"], W, N, impl=impl, chunk_size=16)


@pytest.mark.parametrize("impl", ALL_IMPLS)
def test_a_non_finite_initial_state_is_refused(impl):
    q, k, v = qkv()
    st = state()
    st.value_freq[0, 1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match=r"initial_state.value_freq has a non-finite value"):
        bla_attention(q, k, v, W, N, impl=impl, chunk_size=16, initial_state=st)


def test_non_finite_inputs_in_bla_step():
    q, k, v = (x[:, 0] for x in qkv())
    with pytest.raises(ValueError, match="k has a non-finite value"):
        bla_step(q, k / 0.0, v, None, W, N)
    st = state()
    st.key_freq[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="initial_state.key_freq has a non-finite value"):
        bla_step(q, k, v, st, W, N)


@pytest.mark.parametrize("impl", FORMS)
def test_check_finite_false_skips_the_check(impl):
    """The opt-out runs the form unchecked; on finite inputs the answer is the checked one."""
    q, k, v = qkv()
    want, _ = bla_attention(q, k, v, W, N, impl=impl, chunk_size=4)
    got, _ = bla_attention(q, k, v, W, N, impl=impl, chunk_size=4, check_finite=False)
    assert torch.equal(got, want)
    o, _ = bla_attention(q, _poison(k, float("nan")), v, W, N, impl=impl, chunk_size=4, check_finite=False)
    assert not torch.isfinite(o[0, 6:, 1]).any()       # the NaN reaches its own and later outputs
    assert torch.isfinite(o[:, :, 0]).all()             # of its head only
    if impl == "recurrent":                             # the definition keeps the past clean
        assert torch.isfinite(o[0, :6, 1]).all()


# ------------------------------------------------------------- the baselines' shared checks
BASELINES = {
    "softmax": lambda q, k, v, **kw: softmax_attention(q, k, v, **kw),
    "swa": lambda q, k, v, **kw: sliding_window_attention(q, k, v, np.int64(3), **kw),
    "linear": lambda q, k, v, **kw: linear_attention(q, k, v, **kw)[0],
    "gla": lambda q, k, v, **kw: gla_attention(q, k, v, torch.full_like(k, -0.1), **kw)[0],
    "gsa": lambda q, k, v, **kw: gsa_attention(q, k, v, torch.rand(*q.shape[:3], 3, dtype=q.dtype),
                                               torch.full((*q.shape[:3], 3), -0.1, dtype=q.dtype), **kw)[0],
}


@pytest.mark.parametrize("name", list(BASELINES))
def test_baselines_take_a_huge_finite_scale_in_float64(name):
    q, k, v = qkv()
    assert torch.isfinite(BASELINES[name](q, k, v, scale=1e39)).all()


@pytest.mark.parametrize("name", list(BASELINES))
def test_baselines_name_mismatched_devices_and_empty_dims(name):
    q, k, v = qkv()
    with pytest.raises(ValueError, match="k must be on the same device as q"):
        BASELINES[name](q, k.to("meta"), v)
    with pytest.raises(ValueError, match="q must have every dimension >= 1"):
        BASELINES[name](q[..., :0], k[..., :0], v)


@pytest.mark.parametrize("name", list(BASELINES))
def test_baselines_refuse_a_scale_beyond_float32(name):
    # float32 inputs compute in float32, where 1e39 is inf and the scores would turn to NaN
    q, k, v = (x.float() for x in qkv())
    with pytest.raises(ValueError, match="overflows torch.float32"):
        BASELINES[name](q, k, v, scale=1e39)


def test_baseline_complex_state_is_refused():
    q, k, v = qkv()
    with pytest.raises(ValueError, match="initial_state must have a floating dtype"):
        linear_attention(q, k, v, initial_state=torch.zeros(B, H, D, D, dtype=torch.complex128))


def test_baseline_scale_check_knows_the_compute_dtype():
    from blaviz.ops._baseline_checks import check_scale
    assert check_scale(1e39, 4, torch.float64) == 1e39
    with pytest.raises(ValueError, match="overflows torch.float32"):
        check_scale(1e39, 4, torch.bfloat16)
    assert check_scale(None, 4, torch.float32) == 0.5


def test_finite_outputs_agree_with_the_reference_after_the_checks():
    """The checks changed no numbers: chunk against recurrent, float64, with a state."""
    q, k, v = qkv()
    st = state()
    want, _ = bla_attention(q, k, v, W, N, impl="recurrent", initial_state=st)
    got, _ = bla_attention(q, k, v, np.int64(W), N, impl="chunk", chunk_size=np.int64(4), initial_state=st)
    assert_close_rms(got, want, 1e-12)
