"""What BLA does to the past, in numbers: effective weights, their summaries, and the GSA view.

Chapters 4 and 5 of the book report these; the figure builders in :mod:`blaviz.viz.bla` and
:mod:`blaviz.viz.equivalence` draw them. Everything is float64 and meant for small sizes
(``T`` in the hundreds): these are references for reading, not kernels.

* Effective weights. BLA is linear in the values once the softmax over slots is fixed, so each
  query ``t`` puts a weight ``A[t, tau]`` on every past raw value ``v_tau``
  (:func:`blaviz.ops.bla.bla_attention_weights`). :func:`swa_attention_weights` gives SWA's ``A``
  for comparison; :func:`weights_by_lag` and :func:`lag_summary` read a row, or all rows, by lag.
* Agreement of the implementations: :func:`compare_impls`.
* The GSA view (BLA_SPEC section 5): :func:`slot_space_attention` runs the slot-space
  recurrence ``K~(t) = T K~(t-1) + w k_t^T``; :func:`slot_space_kernels` unrolls it into the fixed
  kernels of the ABC view; :func:`transition_eigenvalues` and :func:`spectral_radius` say how fast
  the slots forget.
"""
from __future__ import annotations

import torch

from blaviz.dirichlet import check_config, slot_lags, slot_space

__all__ = [
    "valid_resolution", "resolution_grid", "swa_attention_weights", "weights_by_lag", "lag_summary",
    "compare_impls", "slot_space_attention", "slot_space_kernels", "transition_eigenvalues",
    "spectral_radius",
]


# ----------------------------------------------------------------------------- resolutions
def valid_resolution(window: int, resolution: int) -> int:
    """The allowed resolution closest to ``resolution`` from below, for window ``W``.

    Clipped to ``1 .. W``; an even ``N < W`` (not a real frequency set) becomes ``N - 1``.
    Used by live sliders, where ``W`` and ``N`` move independently.
    """
    W, _, _ = check_config(window, 1)
    N = int(resolution)
    N = max(1, min(N, W))
    if N % 2 == 0 and N != W:
        N -= 1
    return N


def resolution_grid(window: int, *, max_steps: int | None = None) -> list[int]:
    """The resolutions a slider over ``N`` offers: the odd ``N < W``, then ``N = W``.

    With ``max_steps``, an evenly thinned subset that keeps ``1`` and ``W``.
    """
    W, _, _ = check_config(window, 1)
    grid = [*range(1, W, 2), W] if W > 1 else [1]
    if max_steps is not None and len(grid) > max_steps:
        if max_steps < 2:
            raise ValueError(f"max_steps must be >= 2 (it keeps N = 1 and N = W), got {max_steps}")
        idx = torch.linspace(0, len(grid) - 1, max_steps).round().long().unique()
        grid = [grid[i] for i in idx.tolist()]
    return grid


# ----------------------------------------------------------------------------- effective weights
def swa_attention_weights(q: torch.Tensor, k: torch.Tensor, window: int, *,
                          scale: float | None = None) -> torch.Tensor:
    """SWA's attention matrix ``A [B, H, T, T]``: ``o = A v`` (rows: queries, columns: keys).

    Read out of :func:`blaviz.ops.swa.sliding_window_attention` itself by feeding one-hot values
    ``v_tau = e_tau``, so this is the operator's matrix, not a second implementation of it.
    """
    from blaviz.ops.swa import sliding_window_attention

    B, T, H, _ = q.shape
    onehot = torch.eye(T, dtype=q.dtype, device=q.device).expand(B, H, T, T).permute(0, 2, 1, 3)
    o = sliding_window_attention(q, k, onehot.contiguous(), window, scale=scale)   # [B, T, H, T]
    return o.transpose(1, 2)


def weights_by_lag(A: torch.Tensor, query: int) -> torch.Tensor:
    """Row ``query`` of an attention matrix, re-indexed by lag: ``out[..., D] = A[..., t, t - D]``.

    ``A [..., T, T]``; returns ``[..., t + 1]`` for lags ``D = 0 .. t`` (``t = query``; negative
    values count from the end, as in Python).
    """
    T = A.shape[-1]
    t = query + T if query < 0 else query
    if not 0 <= t < T:
        raise ValueError(f"query must index a row of A (T = {T}), got {query}")
    return A[..., t, :t + 1].flip(-1)


def lag_summary(A: torch.Tensor, window: int, *, start: int | None = None,
                mass: float = 0.9) -> dict[str, float]:
    """How an attention matrix ``A [..., T, T]`` spreads over lags, averaged over query rows.

    Rows ``t >= start`` (default ``window``: past the start of the sequence) of every batch and
    head. Returns floats:

    * ``row_sum``: ``sum_tau A[t, tau]`` (1 for any softmax over tokens);
    * ``beyond_window``: share of ``sum |A[t, .]|`` at lags ``>= window`` (0 for SWA);
    * ``negative``: share of ``sum |A[t, .]|`` carried by negative weights (0 for SWA);
    * ``reach``: the smallest lag ``D`` such that lags ``0 .. D`` hold ``mass`` of ``|A[t, .]|``
      (averaged; at most ``window - 1`` for SWA).
    """
    T = A.shape[-1]
    start = int(window) if start is None else int(start)
    if not 0 <= start < T:
        raise ValueError(f"start must satisfy 0 <= start < T = {T}, got {start}")
    A = A.detach().to(torch.float64)
    rows = A[..., start:, :].reshape(-1, T - start, T)                 # [BH, R, T]
    t = torch.arange(start, T, device=A.device)
    lag = t[:, None] - torch.arange(T, device=A.device)[None, :]       # [R, T]
    absA = rows.abs()
    total = absA.sum(-1).clamp_min(1e-300)
    beyond = (absA * (lag >= window)).sum(-1) / total
    negative = rows.clamp(max=0).abs().sum(-1) / total
    # cumulative |A| by increasing lag: row t read from column t down to column 0
    reach = torch.empty(rows.shape[:2], dtype=torch.float64, device=A.device)
    for i, t_i in enumerate(t.tolist()):
        cum = absA[:, i, :t_i + 1].flip(-1).cumsum(-1) / total[:, i, None]
        reach[:, i] = (cum < mass - 1e-12).sum(-1).to(torch.float64)
    return dict(row_sum=float(rows.sum(-1).mean()), beyond_window=float(beyond.mean()),
                negative=float(negative.mean()), reach=float(reach.mean()))


# ----------------------------------------------------------------------------- implementations
def compare_impls(q, k, v, window: int, resolution: int, *, num_slots: int | None = None,
                  chunk_size: int = 64, impls=("parallel", "chunk"),
                  reference: str = "recurrent") -> dict[str, float]:
    """Run :func:`blaviz.ops.bla.bla_attention` with each ``impl`` and the ``reference`` impl on the
    same inputs; return ``{impl: max |o_impl - o_reference|}``."""
    from blaviz.ops.bla import bla_attention

    kw = dict(num_slots=num_slots, chunk_size=chunk_size)
    want, _ = bla_attention(q, k, v, window, resolution, impl=reference, **kw)
    errors = {}
    for impl in impls:
        o, _ = bla_attention(q, k, v, window, resolution, impl=impl, **kw)
        errors[impl] = float((o - want).abs().max())
    return errors


# ----------------------------------------------------------------------------- the GSA view
def slot_space_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int,
                         resolution: int, *, scale: float | None = None) -> torch.Tensor:
    """BLA computed in slot space, the GSA view (BLA_SPEC section 5), with ``S = N``.

    The slots are the state: ``K~(t) = T K~(t-1) + w k_t^T``, and the same for ``V~``,
    with ``(T, w)`` from :func:`blaviz.dirichlet.slot_space`, read by the softmax over
    slots with the start-of-sequence mask. GSA runs the same loop with
    ``T = diag(alpha_t)`` and ``w = 1 - alpha_t``. Shapes ``[B, T, H, D]`` as in
    :func:`blaviz.ops.bla.bla_attention`; computed in float64, returned in ``q``'s dtype.
    """
    W, N, _ = check_config(window, resolution)
    B, L, H, Dk = q.shape
    scale = Dk ** -0.5 if scale is None else float(scale)
    Tm, w = (x.to(q.device) for x in slot_space(W, N))
    lags = slot_lags(W, N).to(q.device)
    qd, kd, vd = (x.to(torch.float64) for x in (q, k, v))
    K = qd.new_zeros(B, H, N, Dk)
    V = qd.new_zeros(B, H, N, v.shape[-1])
    out = []
    for t in range(L):
        K = Tm @ K + w[:, None] * kd[:, t, :, None, :]   # shift the slots, write the key
        V = Tm @ V + w[:, None] * vd[:, t, :, None, :]
        scores = torch.einsum("bhsd,bhd->bhs", K, qd[:, t]) * scale
        p = torch.softmax(scores.masked_fill(lags > t, float("-inf")), dim=-1)
        out.append(torch.einsum("bhs,bhsd->bhd", p, V))
    return torch.stack(out, dim=1).to(q.dtype)


def slot_space_kernels(window: int, resolution: int, length: int) -> torch.Tensor:
    """The slot-space recurrence unrolled: ``h[:, D] = T^D w``, ``[N, length]`` float64.

    Since ``K~(t) = sum_tau T^(t - tau) w k_tau^T``, slot ``j`` reads key ``tau`` with weight
    ``(T^(t - tau) w)_j``: the same fixed kernels as :func:`blaviz.dirichlet.bla_slot_kernels`.
    """
    W, N, _ = check_config(window, resolution)
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    Tm, w = slot_space(W, N)
    cols = [w]
    for _ in range(length - 1):
        cols.append(Tm @ cols[-1])
    return torch.stack(cols, dim=1)


def transition_eigenvalues(window: int, resolution: int) -> torch.Tensor:
    """Eigenvalues of the slot transition ``T`` (those of ``A``): complex128 ``[N]``.

    For ``N < W`` they lie strictly inside the unit circle: every slot forgets geometrically, with
    no hard edge. At ``N = W``, ``T`` is the shift matrix, nilpotent (``T^W = 0``): all eigenvalues
    are exactly 0 and are returned as such (a floating-point eigensolver would scatter them on a
    circle of radius about ``eps^(1/W)``, a known artefact for nilpotent matrices).
    """
    W, N, _ = check_config(window, resolution)
    if N == W:
        return torch.zeros(N, dtype=torch.complex128)
    ev = torch.linalg.eigvals(slot_space(W, N)[0])
    return ev[torch.argsort(torch.angle(ev))]


def spectral_radius(window: int, resolution: int) -> float:
    """``max |eigenvalue of T|``: the per-step decay of the slowest-forgetting mode (0 at ``N = W``)."""
    return float(transition_eigenvalues(window, resolution).abs().max())
