r"""Mamba2's state-space duality (SSD) layer (Dao & Gu 2024), recurrent and parallel references.

Layout as in the other baselines, ``[batch, T, heads, dims]``, with Mamba2's names: ``x`` the
input (head dim ``P``), ``dt`` the step size, ``A`` the per-head (scalar) decay rate, ``B, C`` the
input and output projections of the state (``d_state = N``; one group per head), ``D`` the skip.
The state of one head is ``h: [N, P]``:

.. math::
    h_t = e^{\Delta_t A}\, h_{t-1} + \Delta_t\, B_t^\top x_t, \qquad y_t = C_t h_t + D\, x_t

so SSD is gated linear attention with ``q = C``, ``k = \Delta B``, ``v = x`` and one scalar log decay
``\Delta_t A`` per head and token (fla's ``naive_recurrent`` Mamba2 semantics, ``ngroups = H``).
"""
from __future__ import annotations

import torch

from blaviz.ops._baseline_checks import (
    check_bool,
    check_like,
    check_same_device,
    check_state,
    check_tensor,
    compute_dtype,
)


def _check_inputs(x, dt, A, B, C, D, initial_state, output_final_state):
    """Validate; return ``(Bsz, T, H, P, N, h0)`` with ``h0`` in the compute dtype (or ``None``)."""
    check_tensor(x, "x", 4, "[B, T, H, P]")
    Bsz, T, H, P = x.shape
    for y, name in ((B, "B"), (C, "C")):
        check_tensor(y, name, 4, "[B, T, H, N]")
        if y.shape[:3] != x.shape[:3]:
            raise ValueError(f"{name} must have the same (B, T, H) as x, {tuple(x.shape[:3])}; "
                             f"got {tuple(y.shape[:3])}")
        # Like q/k/v elsewhere: mixed precisions would make "the input dtype" ambiguous.
        if y.dtype != x.dtype:
            raise ValueError(f"{name} must have the same dtype as x ({x.dtype}); got {y.dtype}")
        check_same_device(y, name, x)
    N = B.shape[3]
    if C.shape[3] != N:
        raise ValueError(f"C must have the same d_state N as B ({N}); got {C.shape[3]}")
    check_like(dt, "dt", (Bsz, T, H), "[B, T, H]", x)
    check_like(A, "A", (H,), "[H]", x)
    if D is not None:
        check_like(D, "D", (H,), "[H]", x)
    if not bool(torch.isfinite(dt).all()) or bool((dt < 0).any()):
        raise ValueError("dt must be finite and >= 0 (a step size, e.g. softplus of a projection)")
    if not bool(torch.isfinite(A).all()) or bool((A > 0).any()):
        raise ValueError("A must be finite and <= 0 (a decay rate, e.g. -exp(A_log))")
    check_bool(output_final_state, "output_final_state")
    h0 = check_state(initial_state, "initial_state", (Bsz, H, N, P), "[B, H, N, P]", x)
    return Bsz, T, H, P, N, h0


def ssd_attention(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    *,
    D: torch.Tensor | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Mamba2 SSD, recurrent form: one token at a time (the ground truth).

    Args:
        x: ``[B, T, H, P]`` input (``P`` the head dim).
        dt: ``[B, T, H]`` step sizes ``>= 0`` (already ``softplus``'ed; any floating dtype).
        A: ``[H]`` decay rates ``<= 0`` (``-exp(A_log)``; any floating dtype).
        B, C: ``[B, T, H, N]`` state input / output projections (``x``'s dtype).
        D: optional ``[H]`` skip connection ``D x_t``.
        initial_state: optional ``[B, H, N, P]``.
        output_final_state: also return ``h_{T-1}``.

    Returns:
        ``(y, final_state)``: ``y: [B, T, H, P]`` in ``x``'s dtype; ``final_state: [B, H, N, P]`` in
        the compute dtype (float64 for float64 ``x``, else float32), or ``None``.
    """
    Bsz, T, H, P, N, h = _check_inputs(x, dt, A, B, C, D, initial_state, output_final_state)
    out_dtype, cdt = x.dtype, compute_dtype(x)
    x, dt, A, B, C = (t.to(cdt) for t in (x, dt, A, B, C))

    if h is None:
        h = x.new_zeros(Bsz, H, N, P)
    outputs = []
    for t in range(T):
        decay = torch.exp(dt[:, t] * A)                                   # [B, H]
        write = (dt[:, t, :, None] * B[:, t])[..., :, None] * x[:, t, :, None, :]   # [B, H, N, P]
        h = decay[..., None, None] * h + write
        outputs.append(torch.einsum("bhn,bhnp->bhp", C[:, t], h))
    y = torch.stack(outputs, dim=1)
    if D is not None:
        y = y + D.to(cdt)[:, None] * x
    return y.to(out_dtype), (h if output_final_state else None)


def ssd_attention_parallel(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    *,
    D: torch.Tensor | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Mamba2 SSD, parallel (quadratic) form: the same map through its masked-decay matrix.

    With the cumulative log decay :math:`L_t = \sum_{r \le t} \Delta_r A`,

    .. math::
        y_t = \sum_{s \le t} e^{L_t - L_s}\, (C_t \cdot B_s)\, \Delta_s\, x_s
              + e^{L_t} C_t h_{-1} + D x_t

    (the "SSD as masked attention" view; ``O(T^2)`` memory). Same arguments and returns as
    :func:`ssd_attention`, of which it is an independent check.
    """
    Bsz, T, H, P, N, h0 = _check_inputs(x, dt, A, B, C, D, initial_state, output_final_state)
    out_dtype, cdt = x.dtype, compute_dtype(x)
    x, dt, A, B, C = (t.to(cdt) for t in (x, dt, A, B, C))

    L = torch.cumsum(dt * A, dim=1)                                       # [B, T, H]
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()   # [t, s]: s <= t
    seg = L[:, :, None, :] - L[:, None, :, :]                             # [B, t, s, H]
    # Mask before exp: above the diagonal L_t - L_s > 0 may overflow, and where() would then
    # send NaN gradients back through the unused branch.
    decay = torch.where(causal[None, :, :, None], seg, torch.full_like(seg, float("-inf"))).exp()
    scores = torch.einsum("bthn,bshn->btsh", C, B) * decay * dt[:, None, :, :]
    y = torch.einsum("btsh,bshp->bthp", scores, x)
    if h0 is not None:
        y = y + L.exp()[..., None] * torch.einsum("bthn,bhnp->bthp", C, h0)
    if D is not None:
        y = y + D.to(cdt)[:, None] * x

    final = None
    if output_final_state:
        to_end = (L[:, -1:, :] - L).exp() * dt                            # [B, s, H]
        final = torch.einsum("bsh,bshn,bshp->bhnp", to_end, B, x)
        if h0 is not None:
            final = final + L[:, -1].exp()[..., None, None] * h0
    return y.to(out_dtype), final
