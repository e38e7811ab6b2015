"""BLA with exact erasure: the truncated (non-periodic) Dirichlet window, as a diagnostic.

BLA erases the token leaving its window through that token's *blurry copy*
``R_{W-1}(F)``: the erasure is itself blurred, and the slot kernels become periodic Dirichlet
kernels over erasure-corrected keys (BLA_SPEC section 3), whose peaks sit lower than ``N/W``.
Exact erasure subtracts the leaving token itself::

    F(t) = P F(t-1) + e (k_t - k_{t-W})      (P^W = I: the old token has come full circle)

so ``F(t)`` is exactly the ``N``-coefficient DFT of the last ``W`` keys, and slot ``j`` reads
them through the truncated kernel ``h_j(D) = D_N(D - s_j)`` for ``0 <= D < W``, 0 beyond::

    K~_j(t) = sum_{0 <= D < W} D_N(D - s_j) k_{t-D}

Bounded, but not at BLA's state: to subtract ``k_{t-W}`` the recurrence keeps the last ``W``
raw keys and values besides the window, ``2 (N + W) d`` numbers per head (more than SWA's
``2 W d``). A bounded ``O(N d)`` state cannot do this for every input: the leaving token is not
determined by ``N < W`` coefficients. So this form is a measuring stick, not a competitor:
it shows what BLA's blurry erasure costs. At ``N = W`` it is SWA.
"""
from __future__ import annotations

import torch

from blaviz.dirichlet import read_code, rotation_matrix, slot_lags, write_code
from blaviz.ops.bla.state import check_inputs, compute_dtype


def exact_erasure_recurrent(q, k, v, window: int, resolution: int, *,
                            num_slots: int | None = None, scale: float | None = None):
    """Token by token with a ring buffer of the last ``W`` keys and values (the definition).

    Args:
        q, k: ``[B, T, H, Dk]``; v: ``[B, T, H, Dv]``; the rest as :func:`blaviz.bla_attention`.
    Returns:
        ``o [B, T, H, Dv]`` in the input dtype.
    """
    W, N, S, scale, _ = check_inputs(q, k, v, window, resolution, num_slots, scale, None)
    cd = compute_dtype(q.dtype)
    dev = q.device
    B, T, H, Dk = q.shape
    e = write_code(W, N, [0])[0].to(dev, cd)
    P = rotation_matrix(W, N, 1).to(dev, cd)
    lags = slot_lags(W, S).to(dev)
    slots = read_code(W, N, slot_lags(W, S)).to(dev, cd)               # [S, N]
    qh, kh, vh = (x.transpose(1, 2).to(cd) for x in (q, k, v))       # [B, H, T, D]
    F = qh.new_zeros(B, H, N, Dk)
    G = qh.new_zeros(B, H, N, v.shape[-1])
    outs = []
    for t in range(T):
        k_old = kh[:, :, t - W] if t >= W else torch.zeros_like(kh[:, :, t])
        v_old = vh[:, :, t - W] if t >= W else torch.zeros_like(vh[:, :, t])
        F = P @ F + e[:, None] * (kh[:, :, t] - k_old)[..., None, :]
        G = P @ G + e[:, None] * (vh[:, :, t] - v_old)[..., None, :]
        scores = torch.einsum("sn,bhnd,bhd->bhs", slots, F, qh[:, :, t]) * scale
        p = torch.softmax(scores.masked_fill(lags > t, float("-inf")), dim=-1)
        outs.append(torch.einsum("bhs,sn,bhnd->bhd", p, slots, G))
    return torch.stack(outs, dim=1).to(q.dtype)


def truncated_dirichlet_kernels(window: int, resolution: int, num_slots: int | None,
                                length: int) -> torch.Tensor:
    """``h_j(D) = D_N(D - s_j)`` for ``0 <= D < W``, 0 beyond: ``[S, length]`` float64
    (the kernels of :func:`blaviz.kernel_slot_attention` that exact erasure computes)."""
    from blaviz.dirichlet import check_config, dirichlet_kernel
    W, N, S = check_config(window, resolution, num_slots)
    D = torch.arange(length, dtype=torch.float64)
    h = dirichlet_kernel(D[None, :] - slot_lags(W, S)[:, None], N, W)
    return torch.where(D[None, :] < W, h, torch.zeros((), dtype=torch.float64))
