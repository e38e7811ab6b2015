"""The fixed tables the BLA kernels read, padded for tensor cores and cached per
device.

Everything is built in float64 from :mod:`blaviz.dirichlet` (the single source
of the math), then padded with zeros to ``NP = max(32, next_pow2(N))`` frequency
rows and ``SP = max(32, next_pow2(S))`` slots (``tl.dot`` needs every dimension
>= 16, see :func:`pow2_at_least_32` for 32; zero rows and columns keep padded
coordinates at exactly zero through every product) and cast to float32 once.

Rotations: ``P^p x = cos_t * x + sin_t * x[swap]``
(:func:`blaviz.dirichlet.rotation_tables`). A kernel cannot permute a register
tile, so instead of permuting ``x`` it permutes whatever ``x`` was *made from*:
a state tile is simply loaded a second time with its rows in ``swap`` order, and
a fixed matrix is stored a second time with its columns swapped (``Cn_sw``,
``RsT_sw``). The sine table has the useful symmetry ``sin_t[swap] = -sin_t``, so
the adjoint rotation is ``cos_t * x - sin_t * x[swap]``: backward needs no
further tables.

Names follow BLA_SPEC section 4 and :class:`blaviz.dirichlet.ChunkMatrices`:

* ``R [C, NP]``: ``Re Zpos1``; row ``delta`` reads the incoming state,
  ``r(-(delta+1))``.
* ``Minv [C, C]``: ``(I + L_C)^{-1}``, the chunk-local erasure correction.
* ``Cn [C, NP]``: ``Zneg``; row ``i`` is ``c(-i)``. ``Cn_sw``: its columns
  swapped.
* ``Rs [NP, SP]``: ``Zslot``; column ``j`` is ``r(s_j)``.
  ``RsT_sw = Rs^T[:, swap]``.
* ``c0, s0 [C, NP]``: rotation tables for ``P^delta``; ``c1, s1`` for
  ``P^(delta+1)``.
* ``YM [2, NP, C]``: ``Y Minv``, what a chunk adds to the state (``[1]``: the
  last, short chunk).
* ``A [2, NP, NP]``: ``P^C - Y Minv R``, the fixed chunk-to-chunk map of the
  state.
* ``swap [NP]``: int32 row permutation (identity on padding).
* ``start [SP]``: int32 first visible position ``ceil(s_j)`` per slot (huge on
  padding).

``A`` follows from ``K' = Minv K - (Minv R) F``: ``F_next = P^C F + Y K' = A F +
(Y Minv) K``, so the state crosses a chunk by a fixed linear map plus the
chunk's own contribution. That is what lets the kernels split the work into a
light scan over chunks and heavy per-chunk work in parallel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from blaviz.dirichlet import (
    chunk_matrices,
    read_code,
    rotation_tables,
    slot_start,
    swap_index,
    write_code,
)


def pow2_at_least_16(n: int) -> int:
    """Smallest power of two ``>= max(n, 16)``: the padded size of a ``tl.dot``
    dimension."""
    p = 16
    while p < n:
        p *= 2
    return p


def pow2_at_least_32(n: int) -> int:
    """Padded size of the frequency and slot dimensions: a power of two ``>=
    max(n, 32)``.

    16 would satisfy ``tl.dot``, but on the H200 (Triton 3.6) the chunk kernels
    with ``NP = SP = 16`` hit an illegal memory access (not isolated further),
    while 32 and 64 pass every check; ``N = 15`` therefore pays for 32 frequency
    rows."""
    p = 32
    while p < n:
        p *= 2
    return p


def _pad(x: torch.Tensor, rows: int, cols: int | None = None) -> torch.Tensor:
    out = torch.zeros(
        (rows,) + ((cols,) if cols is not None else x.shape[1:]), dtype=x.dtype
    )
    if x.ndim == 1:
        out[: x.shape[0]] = x
    else:
        out[: x.shape[0], : x.shape[1]] = x
    return out


def _rot_matrix(
    cos_t: torch.Tensor, sin_t: torch.Tensor, swap: torch.Tensor
) -> torch.Tensor:
    """``P^p`` as a matrix from its tables: ``(P^p x)_n = cos_n x_n + sin_n
    x_swap(n)``."""
    N = cos_t.shape[0]
    return (
        torch.diag(cos_t)
        + torch.diag(sin_t) @ torch.eye(N, dtype=cos_t.dtype)[swap]
    )


@dataclass(frozen=True)
class ChunkConsts:
    """Device-resident fixed tables of the chunked kernels (see the module
    docstring)."""

    R: torch.Tensor
    Minv: torch.Tensor
    Cn: torch.Tensor
    Cn_sw: torch.Tensor
    Rs: torch.Tensor
    RsT_sw: torch.Tensor
    c0: torch.Tensor
    s0: torch.Tensor
    c1: torch.Tensor
    s1: torch.Tensor
    YM: torch.Tensor
    A: torch.Tensor
    swap: torch.Tensor
    start: torch.Tensor
    NP: int
    SP: int
    rounded: bool = False


#: The tables that enter ``tl.dot`` as operands (the cos/sin tables only
#: multiply element-wise).
DOT_TABLES = ("R", "Minv", "Cn", "Cn_sw", "Rs", "RsT_sw", "YM", "A")


def round_tf32(x: torch.Tensor) -> torch.Tensor:
    """float32 rounded to the nearest tf32 value, ties away from zero: the host
    twin of the kernels' ``_rn_tf32`` (same bit operation), so a table rounded
    here is exactly what the kernel would make.
    """
    if x.dtype != torch.float32:
        raise ValueError(f"round_tf32 needs float32, got {x.dtype}")
    xi = x.contiguous().view(torch.int32)
    return ((xi + 0x1000) & -8192).view(torch.float32)


@lru_cache(maxsize=32)
def _chunk_consts_cpu(W: int, N: int, S: int, C: int, tail: int) -> dict:
    NP, SP = pow2_at_least_32(N), pow2_at_least_32(S)
    m = chunk_matrices(W, N, S, C)
    sw = swap_index(W, N)
    c0, s0 = rotation_tables(W, N, torch.arange(C))
    c1, s1 = rotation_tables(W, N, torch.arange(C) + 1)
    assert torch.allclose(s0[:, sw], -s0) and torch.allclose(s1[:, sw], -s1)

    def ym_and_a(c: int):
        mc = m if c == C else chunk_matrices(W, N, S, c)
        ct, st = rotation_tables(W, N, [c])
        ym = mc.write_out @ mc.erase_inv  # [N, c]
        a = _rot_matrix(ct[0], st[0], sw) - ym @ mc.read_prev  # [N, N]
        return _pad(ym, NP, C), _pad(a, NP, NP)

    ym_full, a_full = ym_and_a(C)
    ym_last, a_last = ym_and_a(tail)
    swap_p = torch.arange(NP, dtype=torch.int32)
    swap_p[:N] = sw.to(torch.int32)
    start = torch.full((SP,), 2**30, dtype=torch.int32)
    start[:S] = slot_start(W, S).to(torch.int32)
    Rs = _pad(m.slot_read, NP, SP)
    Cn = _pad(m.write_neg, C, NP)
    return dict(
        R=_pad(m.read_prev, C, NP),
        Minv=m.erase_inv.contiguous().clone(),
        Cn=Cn,
        Cn_sw=_pad(m.write_neg[:, sw], C, NP),
        Rs=Rs,
        RsT_sw=_pad(m.slot_read.T[:, sw], SP, NP),
        c0=_pad(c0, C, NP),
        s0=_pad(s0, C, NP),
        c1=_pad(c1, C, NP),
        s1=_pad(s1, C, NP),
        YM=torch.stack([ym_full, ym_last]),
        A=torch.stack([a_full, a_last]),
        swap=swap_p,
        start=start,
        NP=NP,
        SP=SP,
    )


_DEVICE_CACHE: dict = {}


def chunk_consts(
    W: int, N: int, S: int, C: int, T: int, device, rounded: bool = False
) -> ChunkConsts:
    """Tables for ``(W, N, S, C)`` and a sequence of ``T`` tokens (the last
    chunk has ``T - (NC-1) C``).

    ``rounded``: the :data:`DOT_TABLES` rounded to nearest tf32
    (:func:`round_tf32`), for the ``tf32rn`` products, which then need not round
    them in the kernel; ``tf32x3`` products read the exact float32 tables.
    """
    tail = T - ((T - 1) // C) * C
    key = (W, N, S, C, tail, str(device), bool(rounded))
    hit = _DEVICE_CACHE.get(key)
    if hit is None:
        cpu = dict(_chunk_consts_cpu(W, N, S, C, tail))
        for name, v in cpu.items():
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                v = v.to(dtype=torch.float32)
                cpu[name] = (
                    round_tf32(v) if rounded and name in DOT_TABLES else v
                )
        hit = ChunkConsts(
            **{
                k: (
                    v.to(device=device).contiguous()
                    if isinstance(v, torch.Tensor)
                    else v
                )
                for k, v in cpu.items()
            },
            rounded=bool(rounded),
        )
        _DEVICE_CACHE[key] = hit
    return hit


@dataclass(frozen=True)
class StepConsts:
    """Fixed vectors of one decoding step (BLA_SPEC section 2), padded to ``NP``
    / ``SP``.

    ``tab [4, NP]``: rows ``r(W-1)`` (reads the leaving token), ``c(0)`` (writes
    at lag 0), and the cos/sin tables of one rotation step ``P``. ``Rs [NP,
    SP]``: slot reads. ``swap``, ``start``: as above.
    """

    tab: torch.Tensor
    Rs: torch.Tensor
    swap: torch.Tensor
    start: torch.Tensor
    NP: int
    SP: int


def step_consts(W: int, N: int, S: int, device) -> StepConsts:
    key = ("step", W, N, S, str(device))
    hit = _DEVICE_CACHE.get(key)
    if hit is None:
        cc = _chunk_consts_cpu(W, N, S, 16, 16)
        NP, SP = cc["NP"], cc["SP"]
        cos1, sin1 = rotation_tables(W, N, [1])
        tab = torch.stack(
            [
                _pad(read_code(W, N, [W - 1])[0], NP),
                _pad(write_code(W, N, [0])[0], NP),
                _pad(cos1[0], NP),
                _pad(sin1[0], NP),
            ]
        )
        hit = StepConsts(
            tab=tab.to(device=device, dtype=torch.float32),
            Rs=cc["Rs"].to(device=device, dtype=torch.float32),
            swap=cc["swap"].to(device),
            start=cc["start"].to(device),
            NP=NP,
            SP=SP,
        )
        _DEVICE_CACHE[key] = hit
    return hit
