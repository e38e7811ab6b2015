"""Contracts every baseline reference keeps: gradients (gradcheck, float64), the dtype policy
(float32 / bf16 against float64 on the same rounded inputs), and ValueError on malformed input."""
import functools

import pytest
import torch
import torch.nn.functional as F

from blaviz.ops.abc import abc_attention
from blaviz.ops.deltanet import gated_delta_rule
from blaviz.ops.gla import gla_attention
from blaviz.ops.gsa import gsa_attention
from blaviz.ops.kernel_slot import gsa_constant_gate_kernel, kernel_slot_attention
from blaviz.ops.linear import linear_attention
from blaviz.ops.softmax import softmax_attention
from blaviz.ops.swa import sliding_window_attention, sliding_window_attention_recurrent
from blaviz.testing import assert_close_rms

F64 = torch.float64


def _inputs(B, T, H, Dk, Dv, M):
    """Every tensor any case needs, float64, with realistic value ranges (gates in their domains)."""
    r = lambda *s: torch.randn(*s, dtype=F64)
    return dict(
        q=r(B, T, H, Dk), k=r(B, T, H, Dk), v=r(B, T, H, Dv), kn=F.normalize(r(B, T, H, Dk), dim=-1),
        gk=F.logsigmoid(r(B, T, H, Dk) + 2), g_slot=F.logsigmoid(r(B, T, H, M) + 2),
        g_head=F.logsigmoid(r(B, T, H) + 2), s_w=torch.rand(B, T, H, M, dtype=F64), s_logit=r(B, T, H, M),
        beta=torch.rand(B, T, H, dtype=F64), h_kv=r(B, H, Dk, Dv), h_km=r(B, H, Dk, M), h_mv=r(B, H, M, Dv),
        kernel=r(M, T + 2).abs(), alpha=torch.rand(H, M, dtype=F64) * 0.95,
    )


# name -> (tensor names fed in order, call(*tensors) -> tensor or tuple of tensors)
CASES = {
    "softmax": (("q", "k", "v"), softmax_attention),
    "softmax_noncausal": (("q", "k", "v"), functools.partial(softmax_attention, causal=False)),
    "swa": (("q", "k", "v"), lambda q, k, v: sliding_window_attention(q, k, v, 3)),
    "swa_recurrent": (("q", "k", "v"), lambda q, k, v: sliding_window_attention_recurrent(q, k, v, 3)),
    "linear": (("q", "k", "v", "h_kv"),
               lambda q, k, v, h: linear_attention(q, k, v, initial_state=h, output_final_state=True)),
    "gla": (("q", "k", "v", "gk", "h_kv"),
            lambda q, k, v, gk, h: gla_attention(q, k, v, gk, initial_state=h, output_final_state=True)),
    "gsa": (("q", "k", "v", "s_w", "g_slot", "h_km", "h_mv"),
            lambda q, k, v, s, g, hk, hv: gsa_attention(q, k, v, s, g, initial_state=(hk, hv),
                                                        output_final_state=True)),
    "abc": (("q", "k", "v", "s_logit"), abc_attention),
    "gated_delta_rule": (("q", "kn", "v", "g_head", "beta", "h_kv"),
                         lambda q, k, v, g, b, h: gated_delta_rule(q, k, v, g, b, initial_state=h,
                                                                   output_final_state=True)),
    "kernel_slot": (("q", "k", "v", "kernel"),
                    lambda q, k, v, h: kernel_slot_attention(q, k, v, h, slot_start=torch.tensor([0, 2, 1]))),
    "gsa_constant_gate_kernel": (("alpha",), lambda a: gsa_constant_gate_kernel(a, 6)),
}


def _flat(out):
    """Outputs as a tuple of tensors (fla-style (o, state) and GSA's nested state pair included)."""
    if isinstance(out, torch.Tensor):
        return (out,)
    return tuple(t for x in out for t in _flat(x))


def _case_tensors(name, sizes):
    names, call = CASES[name]
    pool = _inputs(*sizes)
    return [pool[n] for n in names], call


@pytest.mark.parametrize("name", list(CASES))
def test_baseline_gradcheck(name):
    tensors, call = _case_tensors(name, (1, 6, 2, 3, 4, 3))
    tensors = [x.clone().requires_grad_() for x in tensors]
    assert torch.autograd.gradcheck(lambda *xs: _flat(call(*xs)), tensors, eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
def test_baseline_low_precision_matches_float64(name, dtype, tol):
    """The same (rounded) inputs in float64 give the reference: only compute + output rounding differ."""
    tensors, call = _case_tensors(name, (2, 33, 3, 5, 7, 3))
    low = [x.to(dtype) for x in tensors]
    out_low, out_ref = _flat(call(*low)), _flat(call(*[x.to(F64) for x in low]))
    o_low, o_ref = out_low[0], out_ref[0]
    assert o_low.dtype == dtype, f"output dtype {o_low.dtype} != input dtype {dtype}"
    assert_close_rms(o_low, o_ref, tol, f"{name} {dtype}")
    for st_low, st_ref in zip(out_low[1:], out_ref[1:]):
        assert st_low.dtype == torch.float32, "recurrent states stay in the float32 compute dtype"
        assert_close_rms(st_low, st_ref, 1e-5, f"{name} state")


@pytest.mark.parametrize("name", list(CASES))
def test_baseline_float64_stays_float64(name):
    tensors, call = _case_tensors(name, (1, 5, 2, 3, 4, 3))
    assert all(t.dtype == F64 for t in _flat(call(*tensors)))


@pytest.mark.parametrize("name", list(CASES))
def test_baseline_no_uninitialised_memory(name, nan_poisoned_empty):
    tensors, call = _case_tensors(name, (1, 9, 2, 3, 5, 3))
    assert all(torch.isfinite(t).all() for t in _flat(call(*tensors)))


# ----------------------------------------------------------------------------- 9. validation
B, T, H, DK, DV, M = 2, 5, 3, 4, 6, 3
_x = _inputs(B, T, H, DK, DV, M)
q, k, v = _x["q"], _x["k"], _x["v"]
gk, g_slot, g_head, s, beta = _x["gk"], _x["g_slot"], _x["g_head"], _x["s_w"], _x["beta"]
h_kv, h_km, h_mv, kernel = _x["h_kv"], _x["h_km"], _x["h_mv"], _x["kernel"]

BAD_INPUTS = {
    # shared q/k/v checks, exercised through several ops
    "q_not_tensor": (lambda: softmax_attention(q.tolist(), k, v), r"q must be a torch\.Tensor"),
    "q_3d": (lambda: softmax_attention(q[0], k, v), r"q must be a 4-D tensor"),
    "q_int": (lambda: linear_attention(q.long(), k.long(), v.long()), r"q must have a floating dtype"),
    "q_complex": (lambda: gla_attention(q.cfloat(), k, v, gk), r"q must have a floating dtype"),
    "q_empty_T": (lambda: gla_attention(q[:, :0], k[:, :0], v[:, :0], gk[:, :0]), r"q must have every dimension"),
    "k_wrong_T": (lambda: sliding_window_attention(q, k[:, :-1], v, 2), r"k must have the same \(B, T, H\)"),
    "v_wrong_H": (lambda: gsa_attention(q, k, v[:, :, :-1], s, g_slot), r"v must have the same \(B, T, H\)"),
    "k_wrong_B": (lambda: abc_attention(q, k[:1], v, s), r"k must have the same \(B, T, H\)"),
    "k_wrong_Dk": (lambda: gated_delta_rule(q, k[..., :-1], v, g_head, beta), r"k must have the same head dim"),
    "k_dtype": (lambda: softmax_attention(q, k.float(), v), r"k must have the same dtype as q"),
    "v_int": (lambda: sliding_window_attention_recurrent(q, k, v.int(), 2), r"v must have a floating dtype"),
    "scale_str": (lambda: linear_attention(q, k, v, scale="0.5"), r"scale must be None or a finite real"),
    "scale_nan": (lambda: softmax_attention(q, k, v, scale=float("nan")), r"scale must be None or a finite"),
    "causal_int": (lambda: softmax_attention(q, k, v, causal=1), r"causal must be True or False"),
    # window
    "window_0": (lambda: sliding_window_attention(q, k, v, 0), r"window must be an integer >= 1"),
    "window_neg_recurrent": (lambda: sliding_window_attention_recurrent(q, k, v, -3), r"window must be an integer"),
    "window_float": (lambda: sliding_window_attention(q, k, v, 2.5), r"window must be an integer"),
    "window_bool": (lambda: sliding_window_attention(q, k, v, True), r"window must be an integer"),
    # gates and states
    "gk_shape": (lambda: gla_attention(q, k, v, gk[..., :-1]), r"gk must have shape \[B, T, H, Dk\]"),
    "gk_int": (lambda: gla_attention(q, k, v, gk.long()), r"gk must have a floating dtype"),
    "linear_state_shape": (lambda: linear_attention(q, k, v, initial_state=h_kv[0]), r"initial_state must be a 4-D"),
    "gla_state_shape": (lambda: gla_attention(q, k, v, gk, initial_state=h_kv.transpose(-1, -2)),
                        r"initial_state must have shape \[B, H, Dk, Dv\]"),
    "final_flag": (lambda: gla_attention(q, k, v, gk, output_final_state="yes"), r"output_final_state must be True"),
    "gsa_s_3d": (lambda: gsa_attention(q, k, v, s[..., 0], g_slot), r"s must be a 4-D tensor"),
    "gsa_g_slots": (lambda: gsa_attention(q, k, v, s, g_slot[..., :-1]), r"g must have shape \[B, T, H, M\]"),
    "gsa_state_not_pair": (lambda: gsa_attention(q, k, v, s, g_slot, initial_state=h_km),
                           r"initial_state must be None or a pair"),
    "gsa_state_value_shape": (lambda: gsa_attention(q, k, v, s, g_slot, initial_state=(h_km, h_kv)),
                              r"initial_state\[1\] must have shape"),
    "abc_s_batch": (lambda: abc_attention(q, k, v, s[:1]), r"s must have shape \[B, T, H, M\]"),
    "gdn_g_4d": (lambda: gated_delta_rule(q, k, v, gk, beta), r"g must be a 3-D tensor"),
    "gdn_beta_int": (lambda: gated_delta_rule(q, k, v, g_head, beta.long()), r"beta must have a floating dtype"),
    "gdn_beta_T": (lambda: gated_delta_rule(q, k, v, g_head, beta[:, 1:]), r"beta must have shape \[B, T, H\]"),
    "gdn_state_shape": (lambda: gated_delta_rule(q, k, v, g_head, beta, initial_state=h_km),
                        r"initial_state must have shape"),
    # kernel slots
    "kernel_1d": (lambda: kernel_slot_attention(q, k, v, kernel[0]), r"h must be a 2-D or 3-D tensor"),
    "kernel_short": (lambda: kernel_slot_attention(q, k, v, kernel[:, : T - 1]), r"h must hold at least T"),
    "kernel_heads": (lambda: kernel_slot_attention(q, k, v, kernel.expand(H + 1, -1, -1)), r"h of shape \[H, S, L\]"),
    "kernel_int": (lambda: kernel_slot_attention(q, k, v, kernel.long()), r"h must have a floating dtype"),
    "slot_start_float": (lambda: kernel_slot_attention(q, k, v, kernel, slot_start=torch.zeros(M)),
                         r"slot_start must have an integer dtype"),
    "slot_start_list": (lambda: kernel_slot_attention(q, k, v, kernel, slot_start=[0, 0, 0]),
                        r"slot_start must be None or an integer tensor"),
    "slot_start_len": (lambda: kernel_slot_attention(q, k, v, kernel, slot_start=torch.zeros(M + 1, dtype=int)),
                       r"slot_start must have shape \[S\]"),
    "slot_start_negative": (lambda: kernel_slot_attention(q, k, v, kernel, slot_start=torch.tensor([0, -1, 2])),
                            r"slot_start must be >= 0"),
    "slot_start_no_zero": (lambda: kernel_slot_attention(q, k, v, kernel, slot_start=torch.tensor([1, 1, 2])),
                           r"slot_start must contain a 0"),
    "alpha_range": (lambda: gsa_constant_gate_kernel(torch.tensor([0.5, 1.5]), 4), r"alpha must lie in \[0, 1\]"),
    "alpha_int": (lambda: gsa_constant_gate_kernel(torch.tensor([0, 1]), 4), r"alpha must have a floating dtype"),
    "alpha_3d": (lambda: gsa_constant_gate_kernel(torch.rand(1, 2, 3), 4), r"alpha must be a 1-D or 2-D"),
    "length_0": (lambda: gsa_constant_gate_kernel(torch.rand(3), 0), r"length must be an integer >= 1"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_baseline_rejects_bad_input(case):
    call, message = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=message):
        call()
