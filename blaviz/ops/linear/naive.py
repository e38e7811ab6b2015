"""Linear attention (Katharopoulos et al. 2020) without feature map or normaliser, as fla's reference."""
from __future__ import annotations

import torch

from blaviz.ops._baseline_checks import check_bool, check_qkv, check_scale, check_state, compute_dtype


def linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Causal linear attention, recurrent form.

    .. math::
        h_t = h_{t-1} + k_t^\top v_t, \qquad o_t = s\, q_t h_t, \qquad h_{-1} = h_0^{\text{init}}

    with row vectors ``q_t, k_t`` (length ``Dk``) and ``v_t`` (length ``Dv``), so ``h_t`` is
    ``Dk x Dv``. Equivalently (parallel form) ``o = s (Q K^T * causal_mask) V`` for a zero start.

    Args:
        q, k: ``[B, T, H, Dk]``; v: ``[B, T, H, Dv]``.
        scale: ``s``; ``None`` means ``Dk ** -0.5``.
        initial_state: optional ``[B, H, Dk, Dv]`` state ``h`` before the first token.
        output_final_state: also return ``h_{T-1}``.

    Returns:
        ``(o, final_state)``: ``o: [B, T, H, Dv]`` in ``q``'s dtype; ``final_state: [B, H, Dk, Dv]``
        in the compute dtype (float64 for float64 inputs, else float32), or ``None``.
    """
    B, T, H, Dk, Dv = check_qkv(q, k, v)
    scale = check_scale(scale, Dk, q.dtype)
    check_bool(output_final_state, "output_final_state")
    h = check_state(initial_state, "initial_state", (B, H, Dk, Dv), "[B, H, Dk, Dv]", q)
    out_dtype, cdt = q.dtype, compute_dtype(q)
    q, k, v = (x.to(cdt) for x in (q, k, v))

    if h is None:
        h = q.new_zeros(B, H, Dk, Dv)
    outputs = []
    for t in range(T):
        h = h + k[:, t, :, :, None] * v[:, t, :, None, :]
        outputs.append(scale * torch.einsum("bhk,bhkv->bhv", q[:, t], h))
    o = torch.stack(outputs, dim=1).to(out_dtype)
    return o, (h if output_final_state else None)
