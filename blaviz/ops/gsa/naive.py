"""Gated Slot Attention (Zhang et al. 2024), fla's ``naive_recurrent_gsa`` semantics.

GSA keeps ``M`` slots, each a decaying running average of keys and of values; a query reads
them with a softmax over slots. It is two gated-linear-attention passes joined by that softmax,
and the machine that BLA specialises (BLA_SPEC section 5): BLA swaps the diagonal decay for a
fixed Dirichlet fractional shift.
"""
from __future__ import annotations

import torch

from blaviz.ops._baseline_checks import (
    check_bool,
    check_like,
    check_qkv,
    check_scale,
    check_state,
    check_tensor,
    compute_dtype,
)


def gsa_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    s: torch.Tensor,
    g: torch.Tensor,
    *,
    scale: float | None = None,
    initial_state: tuple[torch.Tensor, torch.Tensor] | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    r"""Gated slot attention, recurrent form.

    With row vectors ``q_t, k_t`` (``Dk``), ``v_t`` (``Dv``), ``s_t, g_t`` (``M``):

    .. math::
        H^k_t &= H^k_{t-1} \operatorname{diag}(e^{g_t}) + k_t^\top s_t &&(H^k: D_k \times M)\\
        p_t   &= \operatorname{softmax}_M(\,\mathrm{scale}\; q_t H^k_t) \\
        H^v_t &= \operatorname{diag}(e^{g_t})\, H^v_{t-1} + s_t^\top v_t &&(H^v: M \times D_v)\\
        o_t   &= p_t H^v_t

    Column ``j`` of ``H^k`` is slot ``j``'s key, row ``j`` of ``H^v`` its value. The usual choice
    ``s = 1 - e^{g}`` makes each slot an exponential moving average; with constant gates
    ``e^{g_{t,j}} = a_j`` slot ``j`` reads the past through the kernel ``(1 - a_j) a_j^D``.

    Args:
        q, k: ``[B, T, H, Dk]``; v: ``[B, T, H, Dv]``.
        s: ``[B, T, H, M]`` slot write weights.
        g: ``[B, T, H, M]`` log decay per slot (``<= 0`` keeps the slots bounded).
        scale: ``None`` means ``Dk ** -0.5``.
        initial_state: optional pair ``(H^k: [B, H, Dk, M], H^v: [B, H, M, Dv])``.
        output_final_state: also return the final pair.

    Returns:
        ``(o, final_state)``: ``o: [B, T, H, Dv]`` in ``q``'s dtype; ``final_state`` the pair
        ``(H^k, H^v)`` in the compute dtype, or ``None``. State size per head: ``(Dk + Dv) * M``.
    """
    B, T, H, Dk, Dv = check_qkv(q, k, v)
    check_tensor(s, "s", 4, "[B, T, H, M]")
    M = s.shape[-1]
    check_like(s, "s", (B, T, H, M), "[B, T, H, M]", q)
    check_like(g, "g", (B, T, H, M), "[B, T, H, M]", q)
    scale = check_scale(scale, Dk, q.dtype)
    check_bool(output_final_state, "output_final_state")
    if initial_state is None:
        hk = hv = None
    else:
        if not isinstance(initial_state, (tuple, list)) or len(initial_state) != 2:
            raise ValueError(
                "initial_state must be None or a pair (H^k: [B, H, Dk, M], H^v: [B, H, M, Dv]); "
                f"got {type(initial_state).__name__}"
            )
        hk = check_state(initial_state[0], "initial_state[0]", (B, H, Dk, M), "[B, H, Dk, M]", q)
        hv = check_state(initial_state[1], "initial_state[1]", (B, H, M, Dv), "[B, H, M, Dv]", q)
    out_dtype, cdt = q.dtype, compute_dtype(q)
    q, k, v, s, g = (x.to(cdt) for x in (q, k, v, s, g))

    if hk is None:
        hk = q.new_zeros(B, H, Dk, M)
        hv = q.new_zeros(B, H, M, Dv)
    outputs = []
    for t in range(T):
        decay = g[:, t].exp()  # [B, H, M]
        hk = hk * decay[:, :, None, :] + k[:, t, :, :, None] * s[:, t, :, None, :]
        p = (scale * torch.einsum("bhk,bhkm->bhm", q[:, t], hk)).softmax(dim=-1)
        hv = decay[..., None] * hv + s[:, t, :, :, None] * v[:, t, :, None, :]
        outputs.append(torch.einsum("bhm,bhmv->bhv", p, hv))
    o = torch.stack(outputs, dim=1).to(out_dtype)
    return o, ((hk, hv) if output_final_state else None)
