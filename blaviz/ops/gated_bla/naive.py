"""Gated BLA, the recurrent definition: the reference every other form is tested against.

BLA's state is a frequency window ``F`` (``N x d``) that rotates one step per token and erases
the blurry copy of the token leaving the window (BLA_SPEC section 2):
``F(t) = A F(t-1) + e k_t^T`` with ``A = P - e r_old^T`` (``P`` the rotation, ``e`` the write
code at lag 0, ``r_old = r(W-1)`` the read code of the leaving token).

Gated BLA adds a data-dependent forget gate ``a_t = exp(g_t)`` in ``(0, 1]``, one per head and
token, shared by the key and the value windows as GSA shares its gates::

    F(t) = a_t A F(t-1) + e k_t^T          G(t) = a_t A G(t-1) + e v_t^T
    K~_j(t) = r(s_j) . F(t),  V~_j(t) = r(s_j) . G(t)
    o_t = sum_j softmax_j(scale q_t . K~_j(t)) V~_j(t)       (slots with s_j > t masked)

The gate scales the whole window (rotated, erased) before the write: a token written at
``tau`` is seen at ``t`` through ``(prod_{tau < s <= t} a_s) A^(t-tau) e``. The gate is a
scalar, so it commutes with ``A``: the state is BLA's state with each past token scaled by a
product of gates in ``(0, 1]``. Bounded: ``|F(t)| <= sum_n |A^n e| max|k|``, the same bound as
BLA (``A``'s eigenvalues lie inside the unit circle for ``N < W``). ``g = 0`` everywhere is
plain BLA. The gate lets a head forget inside its window (a shorter, data-chosen memory) at no
extra state.

Shapes follow flash-linear-attention's scalar-gate ops: ``q, k [B, T, H, Dk]``,
``v [B, T, H, Dv]``, ``g [B, T, H]`` (log forget gate, ``g <= 0``).
"""
from __future__ import annotations

import torch

from blaviz.dirichlet import read_code, rotation_matrix, slot_lags, write_code
from blaviz.ops.bla.state import BLAState, check_inputs, compute_dtype, zero_state


def check_gate(g, q) -> None:
    """``g`` must be a real tensor ``[B, T, H]`` matching ``q [B, T, H, D]`` with ``g <= 0``."""
    if not isinstance(g, torch.Tensor):
        raise ValueError(f"g must be a torch.Tensor [B, T, H], got {type(g).__name__}")
    if tuple(g.shape) != tuple(q.shape[:-1]):
        raise ValueError(f"g must have shape [B, T, H] = {tuple(q.shape[:-1])}, got {tuple(g.shape)}")
    if not g.is_floating_point():
        raise ValueError(f"g must be a floating-point tensor, got {g.dtype}")
    if not bool(torch.isfinite(g).all()) or bool((g > 0).any()):
        # a gate above one would let the window grow: the state would no longer be bounded
        raise ValueError("g (the log forget gate) must be finite and <= 0 everywhere")


def gated_bla_recurrent(q, k, v, g, window: int, resolution: int, *,
                        num_slots: int | None = None, scale: float | None = None,
                        initial_state: BLAState | None = None,
                        output_final_state: bool = False):
    """Gated BLA token by token (the definition; state ``2 N d`` per head).

    Args:
        q, k: ``[B, T, H, Dk]``; v: ``[B, T, H, Dv]``; g: ``[B, T, H]``, ``g <= 0``.
        window, resolution, num_slots, scale: as :func:`blaviz.bla_attention`.
        initial_state: a :class:`~blaviz.BLAState` to continue from.
    Returns:
        ``(o [B, T, H, Dv], final_state or None)``; ``o`` in the input dtype.
    """
    W, N, S, scale, t0 = check_inputs(q, k, v, window, resolution, num_slots, scale,
                                      initial_state)
    check_gate(g, q)
    cd = compute_dtype(q.dtype)
    dev = q.device
    B, T, H, Dk = q.shape
    st = initial_state or zero_state(B, H, N, Dk, v.shape[-1], device=dev, dtype=cd)
    F, G = st.key_freq.to(cd), st.value_freq.to(cd)
    r_old = read_code(W, N, [W - 1])[0].to(dev, cd)
    e = write_code(W, N, [0])[0].to(dev, cd)
    P = rotation_matrix(W, N, 1).to(dev, cd)
    lags = slot_lags(W, S)
    slots = read_code(W, N, lags).to(dev, cd)                          # [S, N]
    qh, kh, vh = (x.transpose(1, 2).to(cd) for x in (q, k, v))      # [B, H, T, D]
    a = g.transpose(1, 2).to(cd).exp()                                # [B, H, T]
    outs = []
    for i in range(T):
        ai = a[:, :, i, None, None]
        F = ai * (P @ F - e[:, None] * (r_old @ F)[..., None, :]) \
            + e[:, None] * kh[:, :, i, None, :]
        G = ai * (P @ G - e[:, None] * (r_old @ G)[..., None, :]) \
            + e[:, None] * vh[:, :, i, None, :]
        scores = torch.einsum("sn,bhnd,bhd->bhs", slots, F, qh[:, :, i]) * scale
        scores = scores.masked_fill(lags.to(dev) > t0 + i, float("-inf"))
        p = torch.softmax(scores, dim=-1)
        outs.append(torch.einsum("bhs,sn,bhnd->bhd", p, slots, G))
    o = torch.stack(outs, dim=1).to(q.dtype)
    return o, (BLAState(F, G, t0 + T) if output_final_state else None)
