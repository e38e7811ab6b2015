"""Full softmax attention: the quadratic-cost baseline every bounded-state mixer approximates."""
from __future__ import annotations

import torch

from blaviz.ops._baseline_checks import check_bool, check_qkv, check_scale, compute_dtype


def softmax_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    scale: float | None = None,
    causal: bool = True,
) -> torch.Tensor:
    r"""Softmax (dot-product) attention in fla's ``[B, T, H, D]`` layout.

    .. math::
        o_t = \sum_{\tau \in \mathcal{N}(t)} \frac{\exp(s\, q_t \cdot k_\tau)}
              {\sum_{\tau' \in \mathcal{N}(t)} \exp(s\, q_t \cdot k_{\tau'})}\, v_\tau,
        \qquad \mathcal{N}(t) = \{\tau \le t\} \text{ if causal else } \{0..T-1\}

    Args:
        q: ``[B, T, H, Dk]`` queries.
        k: ``[B, T, H, Dk]`` keys.
        v: ``[B, T, H, Dv]`` values.
        scale: ``s`` above; ``None`` means ``Dk ** -0.5``.
        causal: mask out future keys.

    Returns:
        o: ``[B, T, H, Dv]`` in ``q``'s dtype. State size (per head): ``2 * T * d``, it grows with T.
    """
    _, T, _, Dk, _ = check_qkv(q, k, v)
    scale = check_scale(scale, Dk, q.dtype)
    check_bool(causal, "causal")
    out_dtype, cdt = q.dtype, compute_dtype(q)
    q, k, v = (x.to(cdt) for x in (q, k, v))

    scores = scale * torch.einsum("bthd,bshd->bhts", q, k)
    if causal:
        visible = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
        # -inf, not a large negative number, so masked keys get exactly zero weight in float64 checks.
        scores = scores.masked_fill(~visible, float("-inf"))
    o = torch.einsum("bhts,bshd->bthd", scores.softmax(dim=-1), v)
    return o.to(out_dtype)
