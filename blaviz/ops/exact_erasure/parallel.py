"""Exact-erasure BLA in parallel: banded attention scores pushed through frequency codes.

With ``D_N(t - tau - s_j) = r(s_j) . P^t c(-tau)`` (``c`` the write code), the slot scores and
the output of :mod:`blaviz.ops.exact_erasure.naive` are, with ``Band[t, tau] = 1`` for
``0 <= t - tau < W``::

    scores = rot_t( ((Q K^T) * Band) Cneg ) Rslot         Cneg[tau] = c(-tau)      [T, S]
    U = rot_{-t}( softmax(scale * scores) Rslot^T )                                 [T, N]
    O = ((U Cneg^T) * Band) V

BLA's chunked form over one chunk of length ``T``, with the band in place of the causal mask
and no erasure solve. ``O(T^2 (d + N))`` time, ``O(T^2)`` memory: a training form for short
sequences such as MQAR's.
"""
from __future__ import annotations

import torch

from blaviz.dirichlet import read_code, rotate, rotation_tables, slot_lags, swap_index, write_code
from blaviz.ops.bla.state import check_inputs, compute_dtype


def exact_erasure_parallel(q, k, v, window: int, resolution: int, *,
                           num_slots: int | None = None, scale: float | None = None):
    """Same contract as :func:`~blaviz.ops.exact_erasure.exact_erasure_recurrent`."""
    W, N, S, scale, _ = check_inputs(q, k, v, window, resolution, num_slots, scale, None)
    cd = compute_dtype(q.dtype)
    dev = q.device
    T = q.shape[1]
    pos = torch.arange(T, dtype=torch.float64)
    cneg = write_code(W, N, -pos).to(dev, cd)                          # [T, N]
    rslot = read_code(W, N, slot_lags(W, S)).T.to(dev, cd)             # [N, S]
    cos_t, sin_t = (x.to(dev, cd) for x in rotation_tables(W, N, pos))
    swap = swap_index(W, N).to(dev)
    lag = pos[:, None] - pos[None, :]
    band = ((lag >= 0) & (lag < W)).to(dev, cd)
    qh, kh, vh = (x.transpose(1, 2).to(cd) for x in (q, k, v))       # [B, H, T, D]
    x = rotate(((qh @ kh.transpose(-1, -2)) * band) @ cneg, cos_t, sin_t, swap)
    scores = (x @ rslot) * scale
    mask = slot_lags(W, S).to(dev)[None, :] > pos.to(dev)[:, None]
    p = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
    u = rotate(p @ rslot.transpose(0, 1), cos_t, -sin_t, swap)
    o = ((u @ cneg.transpose(0, 1)) * band) @ vh
    return o.transpose(1, 2).to(q.dtype)
