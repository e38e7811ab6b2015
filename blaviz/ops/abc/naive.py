"""ABC: attention with bounded-memory control (Peng et al. 2022), the "vanilla" form.

Each of ``M`` slots stores a softmax-over-time weighted average of the keys (and of the values)
seen so far; the query then attends over the ``M`` slots instead of the ``T`` tokens. BLA is an
ABC method (BLA_SPEC preamble) whose slot weights are fixed Dirichlet kernels instead.
"""
from __future__ import annotations

import torch

from blaviz.ops._baseline_checks import check_like, check_qkv, check_scale, check_tensor, compute_dtype


def abc_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    s: torch.Tensor,
    *,
    scale: float | None = None,
) -> torch.Tensor:
    r"""ABC attention, recurrent form with a running log-sum-exp.

    Slot ``j``'s memories are normalised over time with the slot logits ``s[:, :, :, j]``:

    .. math::
        \tilde K_j(t) = \sum_{\tau \le t} \frac{e^{s_{\tau j}}}{\sum_{\tau' \le t} e^{s_{\tau' j}}}\, k_\tau,
        \qquad \tilde V_j(t) \text{ likewise with } v,
        \qquad o_t = \sum_j \operatorname{softmax}_j(\mathrm{scale}\; q_t \cdot \tilde K_j(t))\, \tilde V_j(t)

    computed without overflow by carrying ``z_t = \log \sum_{\tau \le t} e^{s_\tau}``:

    .. math::
        z_t = \operatorname{logaddexp}(z_{t-1}, s_t), \quad
        \tilde K(t) = e^{z_{t-1} - z_t}\, \tilde K(t-1) + e^{s_t - z_t}\, k_t, \quad z_{-1} = -\infty

    This equals :func:`blaviz.ops.gsa.gsa_attention` with ``g_t = z_{t-1} - z_t`` and write
    weights ``e^{s_t - z_t}`` (how fla's ``naive_recurrent_abc`` runs it).

    Args:
        q, k: ``[B, T, H, Dk]``; v: ``[B, T, H, Dv]``.
        s: ``[B, T, H, M]`` slot logits (any floating dtype).
        scale: ``None`` means ``Dk ** -0.5``.

    Returns:
        o: ``[B, T, H, Dv]`` in ``q``'s dtype. State size per head: ``(Dk + Dv) * M + M``.
    """
    B, T, H, Dk, Dv = check_qkv(q, k, v)
    check_tensor(s, "s", 4, "[B, T, H, M]")
    M = s.shape[-1]
    check_like(s, "s", (B, T, H, M), "[B, T, H, M]", q)
    scale = check_scale(scale, Dk, q.dtype)
    out_dtype, cdt = q.dtype, compute_dtype(q)
    q, k, v, s = (x.to(cdt) for x in (q, k, v, s))

    # An empty memory has log-mass -inf: the first step then keeps weight 0 for the old memory
    # and 1 for the new token, with no special case.
    z = q.new_full((B, H, M), float("-inf"))
    k_mem = q.new_zeros(B, H, M, Dk)
    v_mem = q.new_zeros(B, H, M, Dv)
    outputs = []
    for t in range(T):
        z_new = torch.logaddexp(z, s[:, t])
        keep = (z - z_new).exp()[..., None]
        write = (s[:, t] - z_new).exp()[..., None]
        k_mem = keep * k_mem + write * k[:, t, :, None, :]
        v_mem = keep * v_mem + write * v[:, t, :, None, :]
        z = z_new
        p = (scale * torch.einsum("bhd,bhmd->bhm", q[:, t], k_mem)).softmax(dim=-1)
        outputs.append(torch.einsum("bhm,bhmd->bhd", p, v_mem))
    return torch.stack(outputs, dim=1).to(out_dtype)
