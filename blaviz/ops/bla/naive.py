"""Readable BLA references: the recurrent form (token by token, bounded state) and the
parallel form (erasure-corrected keys and values, O(T^2)). BLA_SPEC sections 2 and 3.

Both compute in float64 for float64 inputs and in float32 otherwise, and return the input dtype.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from blaviz.dirichlet import (dirichlet_kernel, erasure_matrix, read_code, rotation_matrix,
                              slot_lags, write_code)
from blaviz.ops.bla.state import BLAState, check_inputs, compute_dtype, zero_state


def _heads_first(*xs, dtype):
    """``[B, T, H, D] -> [B, H, T, D]`` in the compute dtype."""
    return [x.transpose(1, 2).to(dtype) for x in xs]


class _StepConstants:
    """The fixed vectors of the recurrence (cached per configuration, device and dtype: see below)."""

    def __init__(self, W, N, S, device, dtype):
        self.r_old = read_code(W, N, [W - 1])[0].to(device, dtype)      # reads the leaving token
        self.e = write_code(W, N, [0])[0].to(device, dtype)             # writes at lag 0
        self.P = rotation_matrix(W, N, 1).to(device, dtype)             # one step of time
        self.slots = read_code(W, N, slot_lags(W, S)).to(device, dtype)  # [S, N] slot reads
        self.lags = slot_lags(W, S).to(device)


@lru_cache(maxsize=64)
def _step_constants(W, N, S, device, dtype) -> _StepConstants:
    # decoding calls bla_step once per token: build the trig tables once, not every step
    return _StepConstants(W, N, S, device, dtype)


def _step(q, k, v, F, G, t, c, scale):
    """One recurrence step on ``[B, H, D]`` tensors; ``t`` is the token's absolute time."""
    k_old = torch.einsum("n,bhnd->bhd", c.r_old, F)
    v_old = torch.einsum("n,bhnd->bhd", c.r_old, G)
    F = c.P @ F + c.e[:, None] * (k - k_old)[..., None, :]
    G = c.P @ G + c.e[:, None] * (v - v_old)[..., None, :]
    keys = c.slots @ F                                                   # [B, H, S, Dk]
    scores = torch.einsum("bhsd,bhd->bhs", keys, q) * scale
    # slots whose lag reaches before the first token read nothing real: mask them
    scores = scores.masked_fill(c.lags > t, float("-inf"))
    p = torch.softmax(scores, dim=-1)
    o = torch.einsum("bhs,bhsd->bhd", p, c.slots @ G)
    return o, F, G


def bla_step(q, k, v, state: BLAState | None, window: int, resolution: int, *,
             num_slots: int | None = None, scale: float | None = None):
    """Decode one token with the bounded state (BLA_SPEC section 2).

    Args:
        q, k: ``[B, H, Dk]``; v: ``[B, H, Dv]``; ``state``: a :class:`BLAState` or None (empty).
    Returns:
        ``(o [B, H, Dv], new_state)``; ``o`` in the input dtype.
    """
    W, N, S, scale, t = check_inputs(q, k, v, window, resolution, num_slots, scale, state, step=True)
    cd = compute_dtype(q.dtype)
    B, H, Dk = q.shape
    if state is None:
        state = zero_state(B, H, N, Dk, v.shape[-1], device=q.device, dtype=cd)
    c = _step_constants(W, N, S, q.device, cd)
    o, F, G = _step(q.to(cd), k.to(cd), v.to(cd), state.key_freq.to(cd), state.value_freq.to(cd), t, c, scale)
    return o.to(q.dtype), BLAState(F, G, t + 1)


def bla_recurrent(q, k, v, window: int, resolution: int, *, num_slots: int | None = None,
                  scale: float | None = None, initial_state: BLAState | None = None,
                  output_final_state: bool = False):
    """BLA token by token with a state of ``2 N d`` numbers per head.

    Args:
        q, k: ``[B, T, H, Dk]``; v: ``[B, T, H, Dv]``.
    Returns:
        ``(o [B, T, H, Dv], final_state or None)``.
    """
    W, N, S, scale, t0 = check_inputs(q, k, v, window, resolution, num_slots, scale, initial_state)
    cd = compute_dtype(q.dtype)
    B, T, H, Dk = q.shape
    st = initial_state or zero_state(B, H, N, Dk, v.shape[-1], device=q.device, dtype=cd)
    F, G = st.key_freq.to(cd), st.value_freq.to(cd)
    c = _step_constants(W, N, S, q.device, cd)
    qh, kh, vh = _heads_first(q, k, v, dtype=cd)
    outs = []
    for i in range(T):
        o, F, G = _step(qh[:, :, i], kh[:, :, i], vh[:, :, i], F, G, t0 + i, c, scale)
        outs.append(o)
    o = torch.stack(outs, dim=1).to(q.dtype)
    return o, (BLAState(F, G, t0 + T) if output_final_state else None)


def lag_index(T: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(idx, causal)``, both ``[T, T]``: ``idx[t, x] = t - x`` where ``x <= t`` (``causal``), else 0.

    ``X.gather(-1, idx)`` turns a causal ``[.., T, T]`` matrix indexed by key position ``tau`` into
    one indexed by lag ``t - tau``, and back: the same index does both, since ``t - (t - x) = x``.
    """
    t = torch.arange(T, device=device)
    diff = t[:, None] - t[None, :]
    causal = diff >= 0
    return diff.clamp_min(0), causal


def _by_lag(x, idx, causal):
    """Re-index the last dim of a causal ``[B, H, T, T]`` matrix between position and lag (``lag_index``)."""
    return x.gather(-1, idx.expand(x.shape)).masked_fill(~causal, 0.0)


def _parallel_core(q, k, v, W, N, S, scale, t0, F0, G0):
    """Shared body of the parallel form on ``[B, H, T, D]`` compute-dtype tensors.

    Returns ``(o, weights, k', v', Minv)`` where ``weights[b, h, t, tau]`` is what query ``t`` puts
    on the *corrected* value ``v'_tau`` (the state's contribution aside).

    The slot kernel ``D_N(t - tau - s_j)`` depends on ``t`` and ``tau`` only through the lag
    ``t - tau``, so it is one ``[T, S]`` table ``Klag[lag, j]``. Scores and weights are then
    matrix products against that table on lag-indexed copies of ``q k'^T`` and of the weights:
    a few ``T x T`` matrices per head, never ``S`` of them (O(T^2) memory, O(S T^2) time).
    """
    T = q.shape[2]
    dev, cd = q.device, q.dtype
    Minv = erasure_matrix(W, N, T).to(dev, cd)                           # (I + L)^{-1}
    lags = slot_lags(W, S)
    kp, vp = k, v
    if F0 is not None:
        # the incoming state's blurry copies leave the window too: erase them from the writes
        read_prev = read_code(W, N, -(torch.arange(T) + 1.0)).to(dev, cd)   # [T, N]
        kp, vp = k - read_prev @ F0, v - read_prev @ G0
    kp, vp = Minv @ kp, Minv @ vp                                         # erasure-corrected
    t = torch.arange(T, dtype=torch.float64)
    # periodic Dirichlet kernel centred at lag s_j, no truncation (BLA_SPEC eq. in sec. 3)
    klag = dirichlet_kernel(t[:, None] - lags[None, :], N, W).to(dev, cd)   # [T lags, S]
    idx, causal = lag_index(T, dev)
    qk = q @ kp.transpose(-1, -2)                                         # [B, H, T, T]
    scores = _by_lag(qk, idx, causal) @ klag                              # [B, H, T, S]
    if F0 is not None:
        # state part of slot j at t: r(s_j - t - 1) . F0
        rs = read_code(W, N, (lags[None, :] - t[:, None] - 1).reshape(-1)).reshape(T, S, N).to(dev, cd)
        fq = q @ F0.transpose(-1, -2)                                     # [B, H, T, N]
        scores = scores + torch.einsum("tsn,bhtn->bhts", rs, fq)
    scores = scores * scale
    mask = lags.to(dev)[None, :] > (t0 + t).to(dev)[:, None]              # [T, S]
    p = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
    weights = _by_lag(p @ klag.transpose(0, 1), idx, causal)              # [B, H, T, T]
    o = weights @ vp
    if F0 is not None:
        o = o + torch.einsum("bhts,tsn,bhnd->bhtd", p, rs, G0)
    return o, weights, kp, vp, Minv


def bla_parallel(q, k, v, window: int, resolution: int, *, num_slots: int | None = None,
                 scale: float | None = None, initial_state: BLAState | None = None,
                 output_final_state: bool = False):
    """The parallel form: periodic Dirichlet-kernel slot attention over erasure-corrected keys.

    ``k' = (I + L)^{-1} k``, ``K~_j(t) = sum_{tau <= t} D_N(t - tau - s_j) k'_tau`` (BLA_SPEC
    section 3); O(S T^2) time, O(T^2) memory per head. Shapes as :func:`bla_recurrent`.
    """
    W, N, S, scale, t0 = check_inputs(q, k, v, window, resolution, num_slots, scale, initial_state)
    cd = compute_dtype(q.dtype)
    qh, kh, vh = _heads_first(q, k, v, dtype=cd)
    F0 = G0 = None
    if initial_state is not None:
        F0, G0 = initial_state.key_freq.to(cd), initial_state.value_freq.to(cd)
    o, _, kp, vp, _ = _parallel_core(qh, kh, vh, W, N, S, scale, t0, F0, G0)
    state = None
    if output_final_state:
        T = q.shape[1]
        dev = q.device
        to_end = write_code(W, N, T - 1 - torch.arange(T)).T.to(dev, cd)   # [N, T]: c(T-1-tau)
        F, G = to_end @ kp, to_end @ vp
        if F0 is not None:
            PT = rotation_matrix(W, N, T).to(dev, cd)
            F, G = F + PT @ F0, G + PT @ G0
        state = BLAState(F, G, t0 + T)
    return o.transpose(1, 2).to(q.dtype), state


def bla_attention_weights(q, k, window: int, resolution: int, *, num_slots: int | None = None,
                          scale: float | None = None) -> torch.Tensor:
    """The weight each query puts on each past *raw* value, from an empty state.

    ``o = A v`` with ``A = (sum_j p_tj D_N(t - tau - s_j)) (I + L)^{-1}``: BLA is linear in ``v``
    once the softmax over slots is fixed. Returns ``A [B, H, T, T]`` (float64 for float64 inputs).
    At ``N = W`` this is exactly SWA's attention matrix.
    """
    v = torch.zeros_like(q[..., :1])
    W, N, S, scale, _ = check_inputs(q, k, v, window, resolution, num_slots, scale, None)
    cd = compute_dtype(q.dtype)
    qh, kh, vh = _heads_first(q, k, v, dtype=cd)
    _, weights, _, _, Minv = _parallel_core(qh, kh, vh, W, N, S, scale, 0, None, None)
    return weights @ Minv
