"""Kernel slot attention: the "ABC view" shared by SWA, GSA with constant gates, and BLA.

Every such method builds slot ``j``'s key and value by filtering the past with a fixed causal
kernel ``h_j``, then attends over the slots with a softmax (BLA_SPEC section 5). Only the kernel
changes: a unit impulse at lag ``j`` (SWA as a ring buffer), ``(1 - a_j) a_j^D`` (GSA with
constant gates, see :func:`gsa_constant_gate_kernel`), or a shifted Dirichlet kernel (BLA).
"""
from __future__ import annotations

import torch

from blaviz.ops._baseline_checks import check_positive_int, check_qkv, check_scale, check_tensor, compute_dtype


def kernel_slot_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    h: torch.Tensor,
    *,
    scale: float | None = None,
    slot_start: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Softmax attention over ``S`` slots, each a fixed causal filter of the keys and values.

    .. math::
        \tilde K_j(t) = \sum_{\tau \le t} h_j(t - \tau)\, k_\tau, \qquad
        \tilde V_j(t) = \sum_{\tau \le t} h_j(t - \tau)\, v_\tau, \\
        p_{tj} = \operatorname{softmax}_{j:\ t \ge \mathrm{start}_j}\big(\mathrm{scale}\; q_t \cdot \tilde K_j(t)\big),
        \qquad o_t = \sum_j p_{tj}\, \tilde V_j(t)

    Written with an explicit ``T x T`` lower-triangular Toeplitz matrix per slot
    (``O(S T^2)``): readable, not fast.

    Args:
        q, k: ``[B, T, H, Dk]``; v: ``[B, T, H, Dv]``.
        h: kernels ``[S, L]`` shared by all heads, or ``[H, S, L]`` per head; ``h[..., j, D]`` is
            slot ``j``'s weight at lag ``D``. Needs ``L >= T`` (lags ``0 .. L-1``).
        scale: ``None`` means ``Dk ** -0.5``.
        slot_start: optional integer tensor ``[S]``: slot ``j`` is excluded from the softmax while
            ``t < slot_start[j]`` (e.g. a slot that reads lag ``j`` holds nothing yet). Default all
            zeros; at least one slot must start at 0 so that every softmax has a candidate.

    Returns:
        o: ``[B, T, H, Dv]`` in ``q``'s dtype.
    """
    B, T, H, Dk, Dv = check_qkv(q, k, v)
    check_tensor(h, "h", (2, 3), "[S, L] or [H, S, L]")
    if h.device != q.device:
        raise ValueError(f"h must be on the same device as q ({q.device}); got {h.device}")
    if h.ndim == 3 and h.shape[0] != H:
        raise ValueError(f"h of shape [H, S, L] must have H = {H} heads like q; got {h.shape[0]}")
    S, L = h.shape[-2:]
    if L < T:
        raise ValueError(f"h must hold at least T = {T} lags (h.shape[-1] >= T); got L = {L}")
    slot_start = _check_slot_start(slot_start, S, q.device)
    scale = check_scale(scale, Dk, q.dtype)
    out_dtype, cdt = q.dtype, compute_dtype(q)
    q, k, v, h = (x.to(cdt) for x in (q, k, v, h))
    h = h.expand(H, S, L)

    t = torch.arange(T, device=q.device)
    lag = t[:, None] - t[None, :]
    # toeplitz[head, j, t, tau] = h_j(t - tau) for tau <= t, else 0 (causality).
    toeplitz = torch.where(lag >= 0, h[..., lag.clamp(min=0)], h.new_zeros(()))
    k_slots = torch.einsum("hjts,bshd->bthjd", toeplitz, k)
    v_slots = torch.einsum("hjts,bshd->bthjd", toeplitz, v)

    scores = scale * torch.einsum("bthd,bthjd->bthj", q, k_slots)
    inactive = t[:, None] < slot_start[None, :]  # [T, S]
    scores = scores.masked_fill(inactive[None, :, None, :], float("-inf"))
    o = torch.einsum("bthj,bthjd->bthd", scores.softmax(dim=-1), v_slots)
    return o.to(out_dtype)


def _check_slot_start(slot_start, num_slots: int, device) -> torch.Tensor:
    if slot_start is None:
        return torch.zeros(num_slots, dtype=torch.long, device=device)
    if not isinstance(slot_start, torch.Tensor):
        raise ValueError(f"slot_start must be None or an integer tensor [S]; got {type(slot_start).__name__}")
    if slot_start.is_floating_point() or slot_start.is_complex() or slot_start.dtype == torch.bool:
        raise ValueError(f"slot_start must have an integer dtype; got {slot_start.dtype}")
    if tuple(slot_start.shape) != (num_slots,):
        raise ValueError(f"slot_start must have shape [S] = ({num_slots},); got {tuple(slot_start.shape)}")
    if (slot_start < 0).any():
        raise ValueError("slot_start must be >= 0")
    if not (slot_start == 0).any():
        raise ValueError("slot_start must contain a 0: at t = 0 some slot has to be readable")
    return slot_start.to(device)


def gsa_constant_gate_kernel(alpha: torch.Tensor, length: int) -> torch.Tensor:
    r"""The causal kernel of a GSA slot with constant gates: ``h_j(D) = (1 - a_j) a_j^D``.

    A slot obeying ``K_j(t) = a_j K_j(t-1) + (1 - a_j) k_t`` unrolls to
    ``K_j(t) = \sum_{\tau \le t} (1 - a_j) a_j^{t - \tau} k_\tau``: an exponential moving average.
    Feeding this kernel to :func:`kernel_slot_attention` reproduces
    :func:`blaviz.ops.gsa.gsa_attention` with ``g = log a`` and ``s = 1 - a`` (BLA_SPEC identity 5).

    Args:
        alpha: ``[S]`` or ``[H, S]`` per-slot decays in ``[0, 1]``.
        length: number of lags ``L >= 1``.

    Returns:
        h: ``[S, L]`` or ``[H, S, L]`` in ``alpha``'s dtype (computed in float32 or float64).
    """
    check_tensor(alpha, "alpha", (1, 2), "[S] or [H, S]")
    length = check_positive_int(length, "length")
    if ((alpha < 0) | (alpha > 1)).any():
        raise ValueError("alpha must lie in [0, 1] (a decay per step)")
    out_dtype, alpha = alpha.dtype, alpha.to(compute_dtype(alpha))
    lags = torch.arange(length, dtype=alpha.dtype, device=alpha.device)
    return ((1 - alpha)[..., None] * alpha[..., None] ** lags).to(out_dtype)
