"""Gated DeltaNet (Yang et al. 2024), fla's naive recurrent ``gated_delta_rule`` semantics."""
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


def gated_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    *,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Gated delta rule, recurrent form: decay the memory, then correct it towards ``v_t`` at ``k_t``.

    .. math::
        S'_t = e^{g_t} S_{t-1}, \quad
        u_t = \beta_t\,(v_t - k_t S'_t), \quad
        S_t = S'_t + k_t^\top u_t, \quad
        o_t = \mathrm{scale}\; q_t S_t

    i.e. ``S_t = e^{g_t} (I - \beta_t k_t^\top k_t) S_{t-1} + \beta_t k_t^\top v_t`` (``S: Dk x Dv``).
    With unit-norm ``k_t`` and ``beta_t = 1`` the memory maps ``k_t`` exactly to ``v_t`` after the
    write. The caller L2-normalises ``q`` and ``k`` if desired (fla's ``use_qk_l2norm_in_kernel``).

    Args:
        q, k: ``[B, T, H, Dk]``; v: ``[B, T, H, Dv]``.
        g: ``[B, T, H]`` log decay (``<= 0``); beta: ``[B, T, H]`` write strength, usually in (0, 1).
        scale: ``None`` means ``Dk ** -0.5``.
        initial_state: optional ``[B, H, Dk, Dv]``.
        output_final_state: also return ``S_{T-1}``.

    Returns:
        ``(o, final_state)``: ``o: [B, T, H, Dv]`` in ``q``'s dtype; ``final_state: [B, H, Dk, Dv]``
        in the compute dtype, or ``None``.
    """
    B, T, H, Dk, Dv = check_qkv(q, k, v)
    check_like(g, "g", (B, T, H), "[B, T, H]", q)
    check_like(beta, "beta", (B, T, H), "[B, T, H]", q)
    scale = check_scale(scale, Dk, q.dtype)
    check_bool(output_final_state, "output_final_state")
    S = check_state(initial_state, "initial_state", (B, H, Dk, Dv), "[B, H, Dk, Dv]", q)
    out_dtype, cdt = q.dtype, compute_dtype(q)
    q, k, v, g, beta = (x.to(cdt) for x in (q, k, v, g, beta))

    if S is None:
        S = q.new_zeros(B, H, Dk, Dv)
    outputs = []
    for t in range(T):
        S = g[:, t, :, None, None].exp() * S
        # What the memory currently returns at k_t; the write replaces a beta fraction of it by v_t.
        u = beta[:, t, :, None] * (v[:, t] - torch.einsum("bhk,bhkv->bhv", k[:, t], S))
        S = S + k[:, t, :, :, None] * u[:, :, None, :]
        outputs.append(scale * torch.einsum("bhk,bhkv->bhv", q[:, t], S))
    o = torch.stack(outputs, dim=1).to(out_dtype)
    return o, (S if output_final_state else None)
