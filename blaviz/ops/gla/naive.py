"""Gated Linear Attention (Yang et al. 2023), fla's ``naive_recurrent_gla`` semantics."""
from __future__ import annotations

import torch

from blaviz.ops._baseline_checks import (
    check_bool,
    check_like,
    check_qkv,
    check_scale,
    check_state,
    compute_dtype,
)


def gla_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    gk: torch.Tensor,
    *,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Gated linear attention, recurrent form: a per-key-channel decaying outer-product memory.

    .. math::
        h_t = \operatorname{diag}(e^{g_t})\, h_{t-1} + k_t^\top v_t, \qquad o_t = s\, q_t h_t

    ``g_t = gk[:, t]`` is a log decay: ``g <= 0`` keeps the memory bounded (typically
    ``logsigmoid`` of a projection). Positive values are not rejected; they simply make it grow.
    ``gk = 0`` gives :func:`blaviz.ops.linear.linear_attention`.

    Args:
        q, k: ``[B, T, H, Dk]``; v: ``[B, T, H, Dv]``.
        gk: ``[B, T, H, Dk]`` log decay per key channel (any floating dtype).
        scale: ``s``; ``None`` means ``Dk ** -0.5``.
        initial_state: optional ``[B, H, Dk, Dv]``.
        output_final_state: also return ``h_{T-1}``.

    Returns:
        ``(o, final_state)``: ``o: [B, T, H, Dv]`` in ``q``'s dtype; ``final_state: [B, H, Dk, Dv]``
        in the compute dtype, or ``None``.
    """
    B, T, H, Dk, Dv = check_qkv(q, k, v)
    check_like(gk, "gk", (B, T, H, Dk), "[B, T, H, Dk]", q)
    scale = check_scale(scale, Dk, q.dtype)
    check_bool(output_final_state, "output_final_state")
    h = check_state(initial_state, "initial_state", (B, H, Dk, Dv), "[B, H, Dk, Dv]", q)
    out_dtype, cdt = q.dtype, compute_dtype(q)
    q, k, v, gk = (x.to(cdt) for x in (q, k, v, gk))

    if h is None:
        h = q.new_zeros(B, H, Dk, Dv)
    outputs = []
    for t in range(T):
        h = gk[:, t, :, :, None].exp() * h + k[:, t, :, :, None] * v[:, t, :, None, :]
        outputs.append(scale * torch.einsum("bhk,bhkv->bhv", q[:, t], h))
    o = torch.stack(outputs, dim=1).to(out_dtype)
    return o, (h if output_final_state else None)
