"""Baseline token mixers against independent, differently written references (float64).

Each test pins one identity from BLA_SPEC or from the operator's definition; the reference side is
written in another form (parallel vs recurrent, matrix vs vector, O(T^2) vs running), so a wrong
implementation cannot agree with it by sharing the same mistake. Odd T and odd head sizes on purpose.
"""
import math

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
from tests.conftest import assert_close_rms

F64 = torch.float64
TOL64 = 1e-12
B, T, H, DK, DV, M = 2, 63, 3, 5, 33, 7


def randn(*shape):
    return torch.randn(*shape, dtype=F64)


def qkv(T=T, Dk=DK, Dv=DV):
    return randn(B, T, H, Dk), randn(B, T, H, Dk), randn(B, T, H, Dv)


def log_decay(*shape):
    # logsigmoid(x + 2): decays around 0.88, spread over (0, 1), like trained gates.
    return F.logsigmoid(randn(*shape) + 2.0)


# ----------------------------------------------------------------------------- 1. SWA
@pytest.mark.parametrize("window", [1, 2, 7, 16, 62, 63, 100])
def test_baseline_swa_masked_equals_ring_buffer(window):
    q, k, v = qkv()
    o_masked = sliding_window_attention(q, k, v, window)
    o_ring = sliding_window_attention_recurrent(q, k, v, window)
    assert_close_rms(o_ring, o_masked, TOL64, "ring buffer vs masked")


@pytest.mark.parametrize("window", [63, 64, 1000])
def test_baseline_swa_full_window_is_causal_softmax(window):
    q, k, v = qkv()
    ref = softmax_attention(q, k, v, causal=True)
    assert_close_rms(sliding_window_attention(q, k, v, window), ref, TOL64, "masked")
    assert_close_rms(sliding_window_attention_recurrent(q, k, v, window), ref, TOL64, "ring buffer")


def test_baseline_swa_window_one_returns_v():
    q, k, v = qkv()
    assert_close_rms(sliding_window_attention(q, k, v, 1), v, TOL64)


def test_baseline_swa_window_boundary_by_slicing():
    """o_t equals plain softmax attention of q_t over the slice k[t-W+1 .. t] (explicit per-t reference)."""
    q, k, v = qkv(T=23)
    W = 5
    o = sliding_window_attention(q, k, v, W)
    for t in range(23):
        lo = max(0, t - W + 1)
        ref = softmax_attention(q[:, t : t + 1].expand(-1, t + 1 - lo, -1, -1), k[:, lo : t + 1], v[:, lo : t + 1],
                                causal=False)[:, :1]
        assert_close_rms(o[:, t : t + 1], ref, TOL64, f"t={t}")


def test_baseline_softmax_causal_ignores_future_and_noncausal_sees_it():
    q, k, v = qkv(T=9)
    k2, v2 = k.clone(), v.clone()
    k2[:, 5:], v2[:, 5:] = randn(B, 4, H, DK), randn(B, 4, H, DV)
    o1, o2 = softmax_attention(q, k, v), softmax_attention(q, k2, v2)
    assert_close_rms(o2[:, :5], o1[:, :5], 0.0)
    assert (o2[:, 5:] - o1[:, 5:]).abs().max() > 1e-3
    full = softmax_attention(q, k, v, causal=False)
    ref = torch.einsum("bthd,bshd->bhts", q, k).mul(DK ** -0.5).softmax(-1)
    assert_close_rms(full, torch.einsum("bhts,bshd->bthd", ref, v), TOL64)


# ----------------------------------------------------------------------------- 2. linear, GLA
def test_baseline_linear_recurrent_equals_parallel():
    q, k, v = qkv()
    scale = 0.37
    o, _ = linear_attention(q, k, v, scale=scale)
    A = torch.einsum("bthd,bshd->bhts", q, k).tril()
    ref = scale * torch.einsum("bhts,bshd->bthd", A, v)
    assert_close_rms(o, ref, TOL64)


def test_baseline_gla_zero_gate_is_linear_attention():
    q, k, v = qkv()
    h0 = randn(B, H, DK, DV)
    o, hT = gla_attention(q, k, v, torch.zeros(B, T, H, DK, dtype=F64), initial_state=h0, output_final_state=True)
    o_ref, hT_ref = linear_attention(q, k, v, initial_state=h0, output_final_state=True)
    assert_close_rms(o, o_ref, TOL64, "o")
    assert_close_rms(hT, hT_ref, TOL64, "final state")


def test_baseline_gla_equals_parallel_cumulative_decay_form():
    """o_t = s * sum_{tau<=t} sum_d q_td k_tau,d exp(G_td - G_tau,d) v_tau, with G = cumsum(gk) over time."""
    q, k, v = qkv()
    gk = log_decay(B, T, H, DK)
    h0 = randn(B, H, DK, DV)
    o, _ = gla_attention(q, k, v, gk, initial_state=h0)

    G = gk.cumsum(dim=1)  # [B, T, H, Dk]
    diff = G[:, :, None] - G[:, None, :]  # [B, t, tau, H, Dk]
    causal = torch.ones(T, T, dtype=torch.bool).tril()[None, :, :, None, None]
    decay = torch.where(causal, diff, torch.tensor(-math.inf, dtype=F64)).exp()
    A = torch.einsum("btHd,bsHd,btsHd->bHts", q, k, decay)
    # The initial state is seen through the decay accumulated since the start: exp(G_t).
    ref = torch.einsum("bHts,bsHv->btHv", A, v) + torch.einsum("btHd,bHdv->btHv", q * G.exp(), h0)
    assert_close_rms(o, DK ** -0.5 * ref, TOL64)


# ----------------------------------------------------------------------------- 3. GSA, kernel slots
def gsa_two_pass_from_gla(q, k, v, s, g, scale):
    """fla's construction: scores by a GLA whose 'value' is the slot weight (one GLA head per slot),
    a softmax over slots, then a GLA with queries p, keys s and values v."""
    B_, T_, H_, Dk = q.shape
    M_ = s.shape[-1]
    per_slot = lambda x: x[:, :, :, None].expand(B_, T_, H_, M_, x.shape[-1]).reshape(B_, T_, H_ * M_, -1)
    scores, _ = gla_attention(
        per_slot(q), per_slot(k), s.reshape(B_, T_, H_ * M_, 1),
        g.reshape(B_, T_, H_ * M_, 1).expand(-1, -1, -1, Dk), scale=scale,
    )
    p = scores.reshape(B_, T_, H_, M_).softmax(-1)
    o, _ = gla_attention(p, s, v, g, scale=1.0)
    return o


def test_baseline_gsa_equals_two_gla_passes():
    q, k, v = qkv()
    g = log_decay(B, T, H, M)
    s = randn(B, T, H, M)  # arbitrary write weights, not tied to g, so s and g cannot be confused
    o, _ = gsa_attention(q, k, v, s, g)
    assert_close_rms(o, gsa_two_pass_from_gla(q, k, v, s, g, DK ** -0.5), TOL64)


@pytest.mark.parametrize("per_head", [False, True])
def test_baseline_gsa_constant_gates_equal_kernel_slots(per_head):
    """BLA_SPEC identity 5: GSA with g = log a_j, s = 1 - a_j is kernel slot attention with (1-a) a^D."""
    q, k, v = qkv()
    alpha = torch.rand(H, M, dtype=F64) * 0.98 if per_head else torch.rand(M, dtype=F64) * 0.98
    alpha_bthm = alpha.expand(B, T, H, M)
    o_gsa, _ = gsa_attention(q, k, v, 1 - alpha_bthm, alpha_bthm.log())
    o_ks = kernel_slot_attention(q, k, v, gsa_constant_gate_kernel(alpha, T))
    assert_close_rms(o_ks, o_gsa, TOL64)


def test_baseline_kernel_slot_impulse_kernels_are_swa():
    """The ABC view of the ring buffer: slot j holds the token at lag j, readable once t >= j."""
    q, k, v = qkv()
    W = 9
    h = torch.zeros(W, T, dtype=F64)
    h[torch.arange(W), torch.arange(W)] = 1.0
    o = kernel_slot_attention(q, k, v, h, slot_start=torch.arange(W))
    assert_close_rms(o, sliding_window_attention(q, k, v, W), TOL64)


def test_baseline_kernel_slot_per_head_kernels_and_long_kernels():
    q, k, v = qkv(T=17)
    h = randn(H, 4, 30)  # L > T: lags beyond T-1 must be ignored
    o = kernel_slot_attention(q, k, v, h, slot_start=torch.tensor([0, 3, 0, 16]))
    for i in range(H):
        o_i = kernel_slot_attention(q[:, :, i : i + 1], k[:, :, i : i + 1], v[:, :, i : i + 1], h[i, :, :17],
                                    slot_start=torch.tensor([0, 3, 0, 16]))
        assert_close_rms(o[:, :, i : i + 1], o_i, TOL64, f"head {i}")


def test_baseline_kernel_slot_direct_sum():
    """Independent loop over t, tau, j of the defining sums, with the slot_start mask."""
    Tn, S = 6, 3
    q, k, v = qkv(T=Tn, Dk=3, Dv=2)
    h = randn(S, Tn)
    start = torch.tensor([2, 0, 4])
    o = kernel_slot_attention(q, k, v, h, scale=0.7, slot_start=start)
    ref = torch.zeros_like(o)
    for t in range(Tn):
        Kt = torch.stack([sum(h[j, t - tau] * k[:, tau] for tau in range(t + 1)) for j in range(S)], 2)
        Vt = torch.stack([sum(h[j, t - tau] * v[:, tau] for tau in range(t + 1)) for j in range(S)], 2)
        sc = 0.7 * (q[:, t, :, None, :] * Kt).sum(-1)
        sc = torch.where(t >= start, sc, torch.tensor(-math.inf, dtype=F64))
        ref[:, t] = (sc.softmax(-1)[..., None] * Vt).sum(-2)
    assert_close_rms(o, ref, TOL64)


def test_baseline_gsa_constant_gate_kernel_values():
    alpha = torch.tensor([0.0, 0.5, 0.9], dtype=F64)
    h = gsa_constant_gate_kernel(alpha, 4)
    expected = torch.tensor([[1, 0, 0, 0], [0.5, 0.25, 0.125, 0.0625], [0.1, 0.09, 0.081, 0.0729]], dtype=F64)
    assert_close_rms(h, expected, TOL64)


# ----------------------------------------------------------------------------- 4. ABC
def abc_direct(q, k, v, s, scale):
    """Softmax over time tau <= t of the slot logits, materialised as a [T, T] weight per slot."""
    T_ = q.shape[1]
    future = ~torch.ones(T_, T_, dtype=torch.bool).tril()
    logits = s.permute(0, 2, 3, 1)[:, :, :, None, :].expand(-1, -1, -1, T_, -1)  # [B, H, M, t, tau]
    w = logits.masked_fill(future, -math.inf).softmax(-1)
    K = torch.einsum("bhmts,bshd->bthmd", w, k)
    V = torch.einsum("bhmts,bshd->bthmd", w, v)
    p = (scale * torch.einsum("bthd,bthmd->bthm", q, K)).softmax(-1)
    return torch.einsum("bthm,bthmd->bthd", p, V)


def test_baseline_abc_running_lse_equals_direct_softmax_over_time():
    q, k, v = qkv()
    s = 3.0 * randn(B, T, H, M)
    assert_close_rms(abc_attention(q, k, v, s), abc_direct(q, k, v, s, DK ** -0.5), TOL64)


def test_baseline_abc_huge_logits_stay_finite():
    q, k, v = qkv(T=20)
    s = 800.0 + 50.0 * randn(B, 20, H, M)  # exp(800) overflows float64: only the running LSE survives
    o = abc_attention(q, k, v, s)
    assert torch.isfinite(o).all()
    assert_close_rms(o, abc_direct(q, k, v, s, DK ** -0.5), TOL64)


def test_baseline_abc_is_gsa_with_lse_gates():
    """fla's reduction: g_t = z_{t-1} - z_t, write weight exp(s_t - z_t), z = logcumsumexp(s)."""
    q, k, v = qkv()
    s = randn(B, T, H, M)
    z = s.logcumsumexp(dim=1)
    g = torch.cat([z[:, :1], z[:, :-1]], dim=1) - z
    o_gsa, _ = gsa_attention(q, k, v, (s - z).exp(), g)
    assert_close_rms(abc_attention(q, k, v, s), o_gsa, TOL64)


# ----------------------------------------------------------------------------- 5. Gated DeltaNet
def test_baseline_gdn_zero_beta_zero_output():
    q, k, v = qkv()
    o, S = gated_delta_rule(q, k, v, log_decay(B, T, H), torch.zeros(B, T, H, dtype=F64), output_final_state=True)
    assert torch.count_nonzero(o) == 0 and torch.count_nonzero(S) == 0


def test_baseline_gdn_orthonormal_keys_retrieve_values_exactly():
    Dk = 8
    basis = torch.linalg.qr(randn(Dk, Dk))[0]  # rows: orthonormal keys
    k = basis[None, :, None, :].expand(B, Dk, H, Dk).contiguous()
    v = randn(B, Dk, H, DV)
    ones, zeros = torch.ones(B, Dk, H, dtype=F64), torch.zeros(B, Dk, H, dtype=F64)
    # A stale initial memory must be overwritten, not added to: that is the delta rule.
    S0 = randn(B, H, Dk, DV)
    o, S = gated_delta_rule(k, k, v, zeros, ones, scale=1.0, initial_state=S0, output_final_state=True)
    assert_close_rms(o, v, TOL64, "read right after write")
    assert_close_rms(torch.einsum("btHk,bHkv->btHv", k, S), v, TOL64, "read of every key from the final memory")


def test_baseline_gdn_rewrite_replaces_value():
    k = F.normalize(randn(B, 1, H, DK), dim=-1).expand(B, 2, H, DK)
    v = randn(B, 2, H, DV)
    o, _ = gated_delta_rule(k, k, v, torch.zeros(B, 2, H, dtype=F64), torch.ones(B, 2, H, dtype=F64), scale=1.0)
    assert_close_rms(o[:, 1], v[:, 1], TOL64)


def test_baseline_gdn_equals_explicit_transition_matrices():
    """S_t = exp(g_t) (I - beta_t k_t^T k_t) S_{t-1} + beta_t k_t^T v_t, as dense matrix products."""
    q, k, v = qkv()
    k = F.normalize(k, dim=-1)
    g, beta = log_decay(B, T, H), torch.rand(B, T, H, dtype=F64)
    S0 = randn(B, H, DK, DV)
    o, S_final = gated_delta_rule(q, k, v, g, beta, scale=0.3, initial_state=S0, output_final_state=True)
    eye = torch.eye(DK, dtype=F64)
    S = S0
    for t in range(T):
        kt, bt = k[:, t, :, :, None], beta[:, t, :, None, None]  # column vectors k_t^T
        A = g[:, t, :, None, None].exp() * (eye - bt * kt @ kt.transpose(-1, -2))
        S = A @ S + bt * kt @ v[:, t, :, None, :]
        assert_close_rms(o[:, t], 0.3 * (q[:, t, :, None, :] @ S)[:, :, 0], TOL64, f"o at t={t}")
    assert_close_rms(S_final, S, TOL64, "final state")


# ----------------------------------------------------------------------------- 6. state chaining
def _stateful_cases():
    q, k, v = qkv()
    gk, g_slot, g_head = log_decay(B, T, H, DK), log_decay(B, T, H, M), log_decay(B, T, H)
    s, beta = torch.rand(B, T, H, M, dtype=F64), torch.rand(B, T, H, dtype=F64)
    kn = F.normalize(k, dim=-1)
    return {
        "linear": (linear_attention, (q, k, v), randn(B, H, DK, DV)),
        "gla": (gla_attention, (q, k, v, gk), randn(B, H, DK, DV)),
        "gsa": (gsa_attention, (q, k, v, s, g_slot), (randn(B, H, DK, M), randn(B, H, M, DV))),
        "gated_delta_rule": (gated_delta_rule, (q, kn, v, g_head, beta), randn(B, H, DK, DV)),
    }


@pytest.mark.parametrize("name", ["linear", "gla", "gsa", "gated_delta_rule"])
@pytest.mark.parametrize("split", [1, 30, 62])
def test_baseline_state_chaining_equals_one_pass(name, split):
    fn, args, h0 = _stateful_cases()[name]
    o_full, h_full = fn(*args, initial_state=h0, output_final_state=True)
    o1, h1 = fn(*(x[:, :split] for x in args), initial_state=h0, output_final_state=True)
    o2, h2 = fn(*(x[:, split:] for x in args), initial_state=h1, output_final_state=True)
    assert_close_rms(torch.cat([o1, o2], dim=1), o_full, TOL64, "outputs")
    for a, b in zip(h2 if isinstance(h2, tuple) else (h2,), h_full if isinstance(h_full, tuple) else (h_full,)):
        assert_close_rms(a, b, TOL64, "final state")
    assert fn(*args)[1] is None  # no state unless asked, like fla
