"""Gated BLA in chunks: exact, and made of matrix products like BLA's chunked form.

Derivation. Inside a chunk starting at ``c`` (offset ``delta = t - c``, incoming windows
``F, G``), let ``b_t = prod_{c <= s <= t} a_s`` (``log b`` is the cumulative sum of ``g``) and
write ``k'_t = k_t - a_t r_old . F(t-1)`` (the key minus the gated erasure), so that
``F(t) = a_t P F(t-1) + e k'_t``. Unrolled::

    F(t) = b_t P^(delta+1) F + sum_{c <= tau <= t} (b_t / b_tau) P^(t-tau) e k'_tau

Put this into the definition of ``k'_t``; with ``r_old^T P^p = r(W-1-p)^T`` and
``r(W-1-p) . e = D_N(p+1)`` the corrected keys solve one unit lower-triangular system::

    (I + L * Gamma) K' = K - b * (Rprev F),     Gamma[i, j] = b_i / b_j  (j <= i)

where ``L[i, j] = D_N(i - j)`` (``j < i``) is BLA's chunk-local erasure and ``Rprev`` reads the
incoming window at lags ``-(delta+1)``. The reads and the carried state then follow BLA's chunk
form with ``Gamma`` on every intra-chunk term and ``b`` on every state term::

    X = rot_delta( b * (Q (P F)^T) + ((Q K'^T) * Gamma) Cneg ),  scores = X Rslot
    U = rot_{-delta}( softmax(scale * scores) Rslot^T )
    O = b * (U (P G)) + ((U Cneg^T) * Gamma) V'
    F <- b_C P^C F + Y ((b_C / b) * K')

``Gamma`` and ``b_C / b`` are exponentials of differences of the cumulative log gate, never
above one: nothing overflows. With ``g = 0``, ``Gamma`` is the causal mask and ``b = 1``:
BLA's chunked form (BLA_SPEC section 4). Unlike BLA the erasure matrix depends on the data,
so each chunk solves its own ``C x C`` triangular system.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from blaviz.dirichlet import chunk_matrices, dirichlet_kernel, rotate
from blaviz.ops.bla.state import BLAState, check_inputs, compute_dtype
from blaviz.ops.gated_bla.naive import check_gate


@lru_cache(maxsize=64)
def _erasure_lower(W: int, N: int, C: int) -> torch.Tensor:
    """``L[i, j] = D_N(i - j)`` for ``j < i``, else 0: ``[C, C]`` float64."""
    i = torch.arange(C)
    lag = i[:, None] - i[None, :]
    return torch.where(lag > 0, dirichlet_kernel(lag, N, W), torch.zeros((), dtype=torch.float64))


def chunk_step(q, k, v, g, F, G, m, L, t0, scale):
    """One chunk: ``q, k, v [B, H, C, D]``, ``g [B, H, C]`` -> ``(o, F, G)``."""
    C = q.shape[2]
    cg = g.cumsum(-1)                                   # log b
    b = cg.exp()[..., None]                             # [B, H, C, 1]
    causal = m.causal.bool()
    diff = cg[..., :, None] - cg[..., None, :]
    gam = diff.masked_fill(~causal, float("-inf")).exp()   # b_i / b_j, j <= i
    eye = torch.eye(C, device=q.device, dtype=q.dtype)
    E = eye + L * gam                                   # unit lower triangular

    def solve(rhs):
        return torch.linalg.solve_triangular(E, rhs, upper=False,
                                             unitriangular=True)
    kp = solve(k - b * (m.read_prev @ F))
    vp = solve(v - b * (m.read_prev @ G))
    PF, PG = m.step @ F, m.step @ G
    qk = (q @ kp.transpose(-1, -2)) * gam
    x = b * (q @ PF.transpose(-1, -2)) + qk @ m.write_neg
    x = rotate(x, m.rot_cos, m.rot_sin, m.swap)
    scores = (x @ m.slot_read) * scale
    t = t0 + torch.arange(C, device=q.device)
    masked = m.slot_lags[None, :] > t[:, None]
    p = torch.softmax(scores.masked_fill(masked, float("-inf")), dim=-1)
    u = rotate(p @ m.slot_read.transpose(0, 1), m.rot_cos, -m.rot_sin, m.swap)
    o = b * (u @ PG) + ((u @ m.write_neg.transpose(0, 1)) * gam) @ vp
    bC = b[..., -1:, :]                                 # [B, H, 1, 1]
    to_end = (cg[..., -1:] - cg).exp()[..., None]       # b_C / b_tau <= 1

    def carry(S, xp):
        rot = rotate(S.transpose(-1, -2), m.chunk_rot_cos, m.chunk_rot_sin,
                     m.swap)
        return bC * rot.transpose(-1, -2) + m.write_out @ (to_end * xp)
    return o, carry(F, kp), carry(G, vp)


def gated_bla_chunk(q, k, v, g, window: int, resolution: int, *,
                    num_slots: int | None = None, scale: float | None = None,
                    chunk_size: int = 64, initial_state: BLAState | None = None,
                    output_final_state: bool = False):
    """Chunked gated BLA (exact; differentiable by autograd). Shapes as
    :func:`~blaviz.ops.gated_bla.gated_bla_recurrent`; any ``T`` (a last chunk may be shorter).
    """
    W, N, S, scale, t0 = check_inputs(q, k, v, window, resolution, num_slots, scale,
                                      initial_state)
    check_gate(g, q)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    cd = compute_dtype(q.dtype)
    B, T, H, Dk = q.shape
    dev = q.device
    qh, kh, vh = (x.transpose(1, 2).to(cd) for x in (q, k, v))
    gh = g.transpose(1, 2).to(cd)
    if initial_state is None:
        F = torch.zeros(B, H, N, Dk, device=dev, dtype=cd)
        G = torch.zeros(B, H, N, v.shape[-1], device=dev, dtype=cd)
    else:
        F, G = initial_state.key_freq.to(cd), initial_state.value_freq.to(cd)
    outs = []
    for start in range(0, T, chunk_size):
        c = min(chunk_size, T - start)
        m = chunk_matrices(W, N, S, c, device=dev, dtype=cd)
        L = _erasure_lower(W, N, c).to(dev, cd)
        sl = slice(start, start + c)
        o, F, G = chunk_step(qh[:, :, sl], kh[:, :, sl], vh[:, :, sl], gh[:, :, sl],
                             F, G, m, L, t0 + start, scale)
        outs.append(o)
    o = torch.cat(outs, dim=2).transpose(1, 2).to(q.dtype)
    return o, (BLAState(F, G, t0 + T) if output_final_state else None)
