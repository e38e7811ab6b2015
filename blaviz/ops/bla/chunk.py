"""The chunked form of BLA in PyTorch (BLA_SPEC section 4): what the Triton kernel computes.

Per chunk of ``C`` tokens, with ``F, G [N, d]`` the frequency windows before the chunk and
``delta = 0..C-1`` the offset inside it (``rot_delta`` applies ``P^delta`` to each row)::

    K' = Minv (K - Rprev F)                     V' = Minv (V - Rprev G)        erasure-corrected
    X  = rot_delta( Q (P F)^T + ((Q K'^T) * Mc) Cneg )                        [C, N] frequencies
    scores = X Rslot                                                          [C, S] slot scores
    p = softmax(scale * scores, start mask)
    U  = rot_{-delta}( p Rslot^T )                                            [C, N] read covectors
    O  = U (P G) + ((U Cneg^T) * Mc) V'
    F <- P^C F + Y K'                           G <- P^C G + Y V'

Every factor is a fixed rotation of unit modulus: nothing grows or decays across a chunk, and
each step is a matrix product or an elementwise scale. Differentiable by autograd.
"""
from __future__ import annotations

import torch

from blaviz.dirichlet import ChunkMatrices, chunk_matrices, rotate
from blaviz.ops.bla.state import BLAState, as_chunk_size, check_inputs, compute_dtype


def _chunk(q, k, v, F, G, m: ChunkMatrices, t0, scale):
    """One chunk on ``[B, H, C, D]`` tensors; returns ``(o, F_next, G_next)``."""
    C = q.shape[2]
    kp = m.erase_inv @ (k - m.read_prev @ F)
    vp = m.erase_inv @ (v - m.read_prev @ G)
    PF, PG = m.step @ F, m.step @ G
    x = q @ PF.transpose(-1, -2) + ((q @ kp.transpose(-1, -2)) * m.causal) @ m.write_neg
    x = rotate(x, m.rot_cos, m.rot_sin, m.swap)
    scores = (x @ m.slot_read) * scale
    t = t0 + torch.arange(C, device=q.device)
    scores = scores.masked_fill(m.slot_lags[None, :] > t[:, None], float("-inf"))
    p = torch.softmax(scores, dim=-1)
    # the transpose of rot_delta is rot_{-delta}: cos is even, the swapped sine term flips sign
    u = rotate(p @ m.slot_read.transpose(0, 1), m.rot_cos, -m.rot_sin, m.swap)
    o = u @ PG + ((u @ m.write_neg.transpose(0, 1)) * m.causal) @ vp
    Fn = rotate(F.transpose(-1, -2), m.chunk_rot_cos, m.chunk_rot_sin, m.swap).transpose(-1, -2) + m.write_out @ kp
    Gn = rotate(G.transpose(-1, -2), m.chunk_rot_cos, m.chunk_rot_sin, m.swap).transpose(-1, -2) + m.write_out @ vp
    return o, Fn, Gn


def bla_chunk(q, k, v, window: int, resolution: int, *, num_slots: int | None = None,
              scale: float | None = None, chunk_size: int = 64,
              initial_state: BLAState | None = None, output_final_state: bool = False):
    """Chunked BLA: O(T C (d + N) + T N S) work, the training form.

    Args:
        q, k: ``[B, T, H, Dk]``; v: ``[B, T, H, Dv]``; any ``T`` (the last chunk may be shorter).
    Returns:
        ``(o [B, T, H, Dv], final_state or None)``; ``o`` in the input dtype.
    """
    W, N, S, scale, t0 = check_inputs(q, k, v, window, resolution, num_slots, scale, initial_state)
    chunk_size = as_chunk_size(chunk_size)
    cd = compute_dtype(q.dtype)
    B, T, H, Dk = q.shape
    Dv = v.shape[-1]
    dev = q.device
    qh, kh, vh = (x.transpose(1, 2).to(cd) for x in (q, k, v))
    if initial_state is None:
        F = torch.zeros(B, H, N, Dk, device=dev, dtype=cd)
        G = torch.zeros(B, H, N, Dv, device=dev, dtype=cd)
    else:
        F, G = initial_state.key_freq.to(cd), initial_state.value_freq.to(cd)
    full = chunk_matrices(W, N, S, chunk_size, device=dev, dtype=cd)
    outs = []
    for start in range(0, T, chunk_size):
        c = min(chunk_size, T - start)
        m = full if c == chunk_size else chunk_matrices(W, N, S, c, device=dev, dtype=cd)
        sl = slice(start, start + c)
        o, F, G = _chunk(qh[:, :, sl], kh[:, :, sl], vh[:, :, sl], F, G, m, t0 + start, scale)
        outs.append(o)
    o = torch.cat(outs, dim=2).transpose(1, 2).to(q.dtype)
    return o, (BLAState(F, G, t0 + T) if output_final_state else None)
