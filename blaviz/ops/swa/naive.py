"""Sliding-window attention (SWA): softmax attention over the last ``window`` tokens.

Two forms of one function, written differently on purpose so each checks the other:
the masked O(T^2) form (what training kernels compute) and the ring-buffer recurrent form
(what decoding stores: exactly ``window`` keys and values, state ``2 * W * d`` per head).
BLA at full resolution ``N = W`` reduces to this operator (BLA_SPEC section 6, identity 3).
"""
from __future__ import annotations

import torch

from blaviz.ops._baseline_checks import check_positive_int, check_qkv, check_scale, compute_dtype


def sliding_window_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: int,
    *,
    scale: float | None = None,
) -> torch.Tensor:
    r"""Causal sliding-window softmax attention, masked O(T^2) form.

    Query ``t`` sees exactly the ``window`` keys ``t - window < tau <= t`` (itself included;
    fewer at the start of the sequence):

    .. math::
        o_t = \sum_{\tau = \max(0, t-W+1)}^{t} \operatorname{softmax}_\tau(s\, q_t \cdot k_\tau)\, v_\tau

    Args:
        q: ``[B, T, H, Dk]``; k: ``[B, T, H, Dk]``; v: ``[B, T, H, Dv]``.
        window: ``W >= 1``. ``W = 1`` returns ``v``; ``W >= T`` is causal softmax attention.
        scale: ``s``; ``None`` means ``Dk ** -0.5``.

    Returns:
        o: ``[B, T, H, Dv]`` in ``q``'s dtype.
    """
    _, T, _, Dk, _ = check_qkv(q, k, v)
    window = check_positive_int(window, "window")
    scale = check_scale(scale, Dk, q.dtype)
    out_dtype, cdt = q.dtype, compute_dtype(q)
    q, k, v = (x.to(cdt) for x in (q, k, v))

    t = torch.arange(T, device=q.device)
    lag = t[:, None] - t[None, :]
    visible = (lag >= 0) & (lag < window)
    scores = scale * torch.einsum("bthd,bshd->bhts", q, k)
    scores = scores.masked_fill(~visible, float("-inf"))
    o = torch.einsum("bhts,bshd->bthd", scores.softmax(dim=-1), v)
    return o.to(out_dtype)


def sliding_window_attention_recurrent(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    window: int,
    *,
    scale: float | None = None,
) -> torch.Tensor:
    r"""Sliding-window attention computed token by token with a ring buffer of ``window`` slots.

    State: key and value buffers ``K, V: [B, H, W, D]``. At step ``t`` the token is written into
    slot ``t mod W`` (overwriting the token ``t - W`` that just left the window), then the query
    attends over the filled slots:

    .. math::
        K[t \bmod W] \leftarrow k_t,\quad V[t \bmod W] \leftarrow v_t,\quad
        o_t = \sum_{j < \min(t+1, W)} \operatorname{softmax}_j(s\, q_t \cdot K[j])\, V[j]

    The slot order is scrambled relative to time, which is harmless because softmax attention
    is invariant to permuting its keys together with their values. Same arguments and result as
    :func:`sliding_window_attention`.
    """
    B, T, H, Dk, Dv = check_qkv(q, k, v)
    window = check_positive_int(window, "window")
    scale = check_scale(scale, Dk, q.dtype)
    out_dtype, cdt = q.dtype, compute_dtype(q)
    q, k, v = (x.to(cdt) for x in (q, k, v))

    # A window longer than the sequence never evicts, so T slots hold the same state as W.
    capacity = min(window, T)
    slots = torch.arange(capacity, device=q.device)
    k_buf = q.new_zeros(B, H, capacity, Dk)
    v_buf = q.new_zeros(B, H, capacity, Dv)
    outputs = []
    for t in range(T):
        # torch.where instead of an indexed write: autograd needs every buffer version intact.
        write = (slots == t % capacity)[:, None]
        k_buf = torch.where(write, k[:, t, :, None, :], k_buf)
        v_buf = torch.where(write, v[:, t, :, None, :], v_buf)
        scores = scale * torch.einsum("bhd,bhjd->bhj", q[:, t], k_buf)
        scores = scores.masked_fill(slots > t, float("-inf"))  # slots not yet written
        outputs.append(torch.einsum("bhj,bhjd->bhd", scores.softmax(dim=-1), v_buf))
    return torch.stack(outputs, dim=1).to(out_dtype)
