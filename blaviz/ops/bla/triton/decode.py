"""Fused recurrent decoding: one token for a batch of sequences (BLA_SPEC
section 2).

One program per (batch, head) reads ``F, G`` once and writes the new state once,
in column tiles::

    k_old = r(W-1) . F        F' = P F + c(0) (k - k_old)^T   (G: with v)
    f     = F' q              z  = scale * Rs^T f             (slot scores)
    p     = softmax(z, slots with s_j > t masked)
    o     = (Rs p)^T G'

Everything is a broadcast and a reduction over ``N x d`` tiles (no tensor cores:
per token the work is a few ``N d`` multiply-adds, and the kernel is bound by
reading and writing the state, ``4 N d`` float32 numbers per head). ``P F`` is
the cos/sin table times ``F`` plus the sine table times ``F`` loaded a second
time with its rows in ``swap`` order.

Decoding loops: the state :func:`bla_triton` returns (float32 ``[B, H, N, D]``,
contiguous) is the state this kernel reads, with no conversion. Given
``out_state=state`` (each program reads its rows before writing them) and
``out=``, a step allocates nothing and never synchronises, so a loop of steps
can be captured in a CUDA graph. The position ``t`` is a launch argument: a
captured graph replays the ``t`` it was captured with, which only matters while
``t < W`` (the start-of-sequence slot mask); capture after the first ``W``
tokens, or capture one graph per early position.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from blaviz.ops.bla.state import BLAState, check_inputs
from blaviz.ops.bla.triton._consts import step_consts


@triton.jit
def _rotate_write(
    x_ptr,
    xo_ptr,
    base,
    x_new,
    cols,
    offs_n,
    swap,
    nmask,
    D,
    r_old,
    e0,
    cos1,
    sin1,
):
    """One column tile of ``X' = P X + c(0) (x - r(W-1) . X)^T``: read ``X[:,
    cols]`` (and its rows in ``swap`` order), write ``X'[:, cols]``, return it.
    Columns are independent, so writing a tile in place never changes what
    another tile reads."""
    m = nmask[:, None] & (cols[None, :] < D)
    X = tl.load(
        x_ptr + base * D + offs_n[:, None] * D + cols[None, :],
        mask=m,
        other=0.0,
    )
    Xs = tl.load(
        x_ptr + base * D + swap[:, None] * D + cols[None, :], mask=m, other=0.0
    )
    x_old = tl.sum(r_old[:, None] * X, axis=0)
    X = (
        cos1[:, None] * X
        + sin1[:, None] * Xs
        + e0[:, None] * (x_new - x_old)[None, :]
    )
    tl.store(xo_ptr + base * D + offs_n[:, None] * D + cols[None, :], X, mask=m)
    return X


@triton.jit
def _decode_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    f_ptr,
    g_ptr,
    fo_ptr,
    go_ptr,
    o_ptr,
    tab_ptr,
    Rs_ptr,
    swap_ptr,
    start_ptr,
    N,
    DK,
    DV,
    t,
    scale,
    NP: tl.constexpr,
    SP: tl.constexpr,
    BD: tl.constexpr,
):
    """Grid ``(B*H,)``. The state is walked in column tiles of ``BD``: keys
    first (accumulating ``f = F' q``), then the softmax over slots, then values
    (each tile's output columns from its updated ``G'`` tile). Small tiles keep
    few registers per thread, so more programs share an SM.
    """
    pid = tl.program_id(0)  # = b * H + h; q/k/v are [B, H, D] contiguous
    offs_n = tl.arange(0, NP)
    offs_s = tl.arange(0, SP)
    offs_d = tl.arange(0, BD)
    nmask = offs_n < N
    r_old = tl.load(tab_ptr + offs_n)
    e0 = tl.load(tab_ptr + NP + offs_n)
    cos1 = tl.load(tab_ptr + 2 * NP + offs_n)
    sin1 = tl.load(tab_ptr + 3 * NP + offs_n)
    swap = tl.load(swap_ptr + offs_n)
    base = pid.to(tl.int64)
    f = tl.zeros([NP], dtype=tl.float32)
    for d0 in range(0, DK, BD):
        cols = d0 + offs_d
        q = tl.load(q_ptr + base * DK + cols, mask=cols < DK, other=0.0).to(
            tl.float32
        )
        k = tl.load(k_ptr + base * DK + cols, mask=cols < DK, other=0.0).to(
            tl.float32
        )
        F = _rotate_write(
            f_ptr,
            fo_ptr,
            base * N,
            k,
            cols,
            offs_n,
            swap,
            nmask,
            DK,
            r_old,
            e0,
            cos1,
            sin1,
        )
        f += tl.sum(F * q[None, :], axis=1)  # [NP]
    Rs = tl.load(Rs_ptr + offs_n[:, None] * SP + offs_s[None, :])
    z = tl.sum(f[:, None] * Rs, axis=0) * scale  # [SP]
    start = tl.load(start_ptr + offs_s)
    z = tl.where(start <= t, z, float("-inf"))
    z = z - tl.max(z, axis=0)
    e = tl.exp(z)
    p = e / tl.sum(e, axis=0)
    wv = tl.sum(Rs * p[None, :], axis=1)  # [NP]
    for d0 in range(0, DV, BD):
        cols = d0 + offs_d
        v = tl.load(v_ptr + base * DV + cols, mask=cols < DV, other=0.0).to(
            tl.float32
        )
        G = _rotate_write(
            g_ptr,
            go_ptr,
            base * N,
            v,
            cols,
            offs_n,
            swap,
            nmask,
            DV,
            r_old,
            e0,
            cos1,
            sin1,
        )
        o = tl.sum(wv[:, None] * G, axis=0)
        tl.store(
            o_ptr + base * DV + cols,
            o.to(o_ptr.dtype.element_ty),
            mask=cols < DV,
        )


#: Column tile of the decode kernel's walk over the state: on the H200, 32 beat
#: 16 and 64 at N = 15, 31 and 63 (the benchmarks' decision table has the
#: numbers).
DECODE_BLOCK_D = 32


def decode_warps(NP: int, DK: int, DV: int) -> int:
    """Warps per decode program: 2 (with 32-column tiles, two warps were as fast
    as four or faster at every N measured; eight were slower). The sizes are
    arguments so that a finer rule can use them.
    """
    return 2


def bla_step_triton(
    q,
    k,
    v,
    state: BLAState | None,
    window: int,
    resolution: int,
    *,
    num_slots: int | None = None,
    scale: float | None = None,
    out_state: BLAState | None = None,
    out: torch.Tensor | None = None,
    num_warps: int | None = None,
    block_d: int | None = None,
):
    """Decode one token per sequence with one fused kernel; same semantics as
    :func:`bla_step`.

    Args:
        q, k: ``[B, H, Dk]``; v: ``[B, H, Dv]`` (float32, bfloat16 or
            float16; float64 falls back to the reference ``bla_step``).
        state: a :class:`BLAState` (float32 frequency windows) or None for an
            empty window.
        out_state: optional preallocated state to write into (may be ``state``
            itself: each program reads its rows before writing them), for
            CUDA-graph decoding loops without allocation.
        out: optional preallocated output ``[B, H, Dv]`` of the input dtype
            (contiguous).
        num_warps: warps per program (1, 2, 4, 8 or 16); default
            :func:`decode_warps`.
        block_d: column tile of the state walk (16, 32, 64 or 128); default
            :data:`DECODE_BLOCK_D`.
    Returns:
        ``(o [B, H, Dv], new_state)``; ``o`` in the input dtype, the state
        float32.
    """
    W, N, S, scale, t = check_inputs(
        q, k, v, window, resolution, num_slots, scale, state, step=True
    )
    if num_warps is not None and num_warps not in (1, 2, 4, 8, 16):
        raise ValueError(
            f"num_warps must be one of 1, 2, 4, 8, 16, got {num_warps!r}"
        )
    if block_d is not None and block_d not in (16, 32, 64, 128):
        raise ValueError(
            f"block_d must be one of 16, 32, 64, 128, got {block_d!r}"
        )
    if q.dtype == torch.float64:
        from blaviz.ops.bla.naive import bla_step

        o, new = bla_step(q, k, v, state, W, N, num_slots=S, scale=scale)
        if out is not None:
            o = out.copy_(o)
        if out_state is not None:
            new = BLAState(
                out_state.key_freq.copy_(new.key_freq),
                out_state.value_freq.copy_(new.value_freq),
                new.position,
            )
        return o, new
    B, H, DK = q.shape
    DV = v.shape[-1]
    dev = q.device
    sc = step_consts(W, N, S, dev)
    if state is None:
        F = torch.zeros(B, H, N, DK, device=dev, dtype=torch.float32)
        G = torch.zeros(B, H, N, DV, device=dev, dtype=torch.float32)
    else:
        F = state.key_freq.to(device=dev, dtype=torch.float32).contiguous()
        G = state.value_freq.to(device=dev, dtype=torch.float32).contiguous()
    if out_state is None:
        Fo, Go = torch.empty_like(F), torch.empty_like(G)
    else:
        Fo, Go = out_state.key_freq, out_state.value_freq
        if (
            Fo.shape != F.shape
            or Go.shape != G.shape
            or Fo.dtype != torch.float32
            or Go.dtype != torch.float32
            or Fo.device != dev
            or Go.device != dev
            or not (Fo.is_contiguous() and Go.is_contiguous())
        ):
            raise ValueError(
                "out_state must hold contiguous float32 tensors shaped like "
                "the state"
            )
    if out is None:
        o = torch.empty(B, H, DV, device=dev, dtype=q.dtype)
    else:
        if (
            not isinstance(out, torch.Tensor)
            or out.shape != (B, H, DV)
            or out.dtype != q.dtype
            or out.device != q.device
            or not out.is_contiguous()
        ):
            raise ValueError(
                f"out must be a contiguous {q.dtype} tensor of shape "
                f"{(B, H, DV)} on {q.device}"
            )
        o = out
    _decode_kernel[(B * H,)](
        q.contiguous(),
        k.contiguous(),
        v.contiguous(),
        F,
        G,
        Fo,
        Go,
        o,
        sc.tab,
        sc.Rs,
        sc.swap,
        sc.start,
        N,
        DK,
        DV,
        t,
        scale,
        NP=sc.NP,
        SP=sc.SP,
        BD=DECODE_BLOCK_D if block_d is None else block_d,
        num_warps=(
            decode_warps(sc.NP, DK, DV) if num_warps is None else num_warps
        ),
    )
    return o, BLAState(Fo, Go, t + 1)
