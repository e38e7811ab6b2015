"""Mamba2 SSD references: recurrent == parallel, state continuation, gradients, dtype policy,
validation, and no reads of uninitialised memory."""
import pytest
import torch
import torch.nn.functional as F

from blaviz.ops.mamba2 import ssd_attention, ssd_attention_parallel
from tests.conftest import assert_close_rms

F64 = torch.float64
IMPLS = {"recurrent": ssd_attention, "parallel": ssd_attention_parallel}


def _inputs(Bsz=2, T=37, H=3, P=5, N=4, dtype=F64, state=True):
    """x, dt, A, B, C, D, h0 in Mamba2's ranges: dt = softplus(...) ~ 0.1-1, A = -exp(A_log)."""
    r = lambda *s: torch.randn(*s, dtype=dtype)
    x, B, C = r(Bsz, T, H, P), r(Bsz, T, H, N) / N ** 0.5, r(Bsz, T, H, N) / N ** 0.5
    dt = F.softplus(r(Bsz, T, H) - 1)
    A = -torch.rand(H, dtype=dtype).mul(2).add(0.1)
    D = r(H)
    h0 = r(Bsz, H, N, P) if state else None
    return x, dt, A, B, C, D, h0


@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("with_D", [False, True])
def test_recurrent_equals_parallel(with_state, with_D):
    x, dt, A, B, C, D, h0 = _inputs(state=with_state)
    kw = dict(D=D if with_D else None, initial_state=h0, output_final_state=True)
    y_r, h_r = ssd_attention(x, dt, A, B, C, **kw)
    y_p, h_p = ssd_attention_parallel(x, dt, A, B, C, **kw)
    assert y_r.shape == x.shape and h_r.shape == (2, 3, 4, 5)
    assert_close_rms(y_p, y_r, 1e-12, what="y")
    assert_close_rms(h_p, h_r, 1e-12, what="final state")


def test_is_gated_linear_attention_with_scalar_decay():
    """SSD == GLA with q = C, k = dt B, v = x, gk = dt A (broadcast over the key channels), scale 1."""
    from blaviz.ops.gla import gla_attention
    x, dt, A, B, C, _, h0 = _inputs(T=11)
    y, h = ssd_attention(x, dt, A, B, C, initial_state=h0, output_final_state=True)
    gk = (dt * A)[..., None].expand_as(B)
    o, s = gla_attention(C, dt[..., None] * B, x, gk, scale=1.0, initial_state=h0, output_final_state=True)
    assert_close_rms(y, o, 1e-12)
    assert_close_rms(h, s, 1e-12)


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_state_continuation(impl):
    f = IMPLS[impl]
    x, dt, A, B, C, D, h0 = _inputs()
    y, h = f(x, dt, A, B, C, D=D, initial_state=h0, output_final_state=True)
    cut = 16
    first = lambda t: t[:, :cut]
    rest = lambda t: t[:, cut:]
    y1, h1 = f(first(x), first(dt), A, first(B), first(C), D=D, initial_state=h0, output_final_state=True)
    y2, h2 = f(rest(x), rest(dt), A, rest(B), rest(C), D=D, initial_state=h1, output_final_state=True)
    assert_close_rms(torch.cat([y1, y2], dim=1), y, 1e-12)
    assert_close_rms(h2, h, 1e-12)
    assert f(x, dt, A, B, C)[1] is None


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_gradcheck(impl, one_thread):
    f = IMPLS[impl]
    x, dt, A, B, C, D, h0 = (t.requires_grad_() for t in _inputs(Bsz=1, T=5, H=2, P=3, N=2))
    assert torch.autograd.gradcheck(
        lambda *a: f(*a[:5], D=a[5], initial_state=a[6], output_final_state=True),
        (x, dt, A, B, C, D, h0))


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_low_precision_against_float64(impl, dtype, tol):
    """Same (rounded) inputs: the float32 compute path agrees with float64; outputs keep x's dtype."""
    f = IMPLS[impl]
    x, dt, A, B, C, D, h0 = (t.to(dtype) for t in _inputs())
    y, h = f(x, dt, A, B, C, D=D, initial_state=h0, output_final_state=True)
    y64, h64 = f(*(t.to(F64) for t in (x, dt, A, B, C)), D=D.to(F64), initial_state=h0.to(F64),
                 output_final_state=True)
    assert y.dtype == dtype and h.dtype == torch.float32
    assert_close_rms(y, y64, tol, what="y")
    assert_close_rms(h, h64, 1e-5, what="final state")


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_no_uninitialised_memory(impl, nan_poisoned_empty):
    x, dt, A, B, C, D, h0 = _inputs(Bsz=1, T=9)
    for out in IMPLS[impl](x, dt, A, B, C, D=D, initial_state=h0, output_final_state=True):
        assert torch.isfinite(out).all()


_x, _dt, _A, _B, _C, _D, _h0 = _inputs(Bsz=2, T=5, H=3, P=4, N=2)
BAD = {
    "x": dict(x=_x[..., 0]),
    "B": dict(B=_B[:, :4]),
    "C": dict(C=_C[..., :1]),
    "dt": dict(dt=_dt[..., :2]),
    "A": dict(A=_A.abs()),
    "D": dict(D=_D[:2]),
    "initial_state": dict(initial_state=_h0.transpose(-1, -2)),
    "output_final_state": dict(output_final_state=1),
}
BAD_EXTRA = {
    "x_int": ("x", dict(x=_x.long())),
    "B_dtype": ("B", dict(B=_B.float())),
    "dt_negative": ("dt", dict(dt=-_dt)),
    "dt_nan": ("dt", dict(dt=_dt * float("nan"))),
    "x_empty": ("x", dict(x=_x[:, :0], dt=_dt[:, :0], B=_B[:, :0], C=_C[:, :0])),
}


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("case", sorted(BAD) + sorted(BAD_EXTRA))
def test_bad_inputs_raise_value_error(impl, case):
    name, over = (case, BAD[case]) if case in BAD else BAD_EXTRA[case]
    args = dict(x=_x, dt=_dt, A=_A, B=_B, C=_C, D=_D, initial_state=_h0, output_final_state=True)
    args.update(over)
    with pytest.raises(ValueError, match=rf"^{name} "):
        IMPLS[impl](args.pop("x"), args.pop("dt"), args.pop("A"), args.pop("B"), args.pop("C"), **args)
