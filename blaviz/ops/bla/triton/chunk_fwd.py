"""Forward kernels of chunked BLA (BLA_SPEC section 4), real cos/sin form.

The chunk equations, with ``F, G`` the key/value frequency windows *entering* chunk ``c``::

    K' = Minv (K - R F)                          V' = Minv (V - R G)
    X  = rot_{delta+1}(Q F^T) + rot_delta(((Q K'^T) * Mc) Cn)            [C, N]
    p  = softmax(scale * X Rs, start mask)                                [C, S]
    w  = p Rs^T
    O  = rot_{-(delta+1)}(w) G + ((rot_{-delta}(w) Cn^T) * Mc) V'
    F_next = A F + (Y Minv) K                    (A = P^C - Y Minv R, fixed)

``rot_p(x) = c_p * x + s_p * x[swap]`` row by row (``_consts`` explains how the swapped copies are
obtained without permuting registers). Two launches:

1. :func:`_fwd_scan_kernel` -- the state scan. One program per (batch, head, {K|V}, d-tile of
   ``BD`` columns) walks the chunks in order: ``F <- A F + YM K_c``, storing the state entering
   each chunk. Each step is two small tensor-core products (``[NP, NP] x [NP, BD]`` and
   ``[NP, C] x [C, BD]``); the chunk's own contribution ``YM K_c`` does not depend on ``F``, so
   it overlaps with the dependent product. Fusing "pass 1" (``b_c = YM K_c``) into the scan
   means the scan reads ``K`` (``C d`` half-precision numbers per chunk) instead of a
   precomputed ``b_c`` (``N d`` float32 numbers) and nothing extra is written: fewer bytes.
2. :func:`_fwd_out_kernel` -- the outputs, all chunks in parallel: one program per (chunk,
   batch*head), full head dims in one tile. About 15 products of ``64^3`` per chunk.

Precision: every product accumulates in float32; operands are float32 (``tf32`` tensor cores for
bf16/fp16 inputs, ``tf32x3`` -- float32-level accuracy on tensor cores -- for float32 inputs).
"""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _rn_tf32(x):
    """Round float32 to the nearest tf32 value (10-bit mantissa), ties away from zero.

    Hopper's tensor cores read a float32 operand in tf32 by *dropping* its low 13 mantissa bits.
    Truncation is biased, and in BLA the bias adds up coherently (over the 64 terms of each product
    and over hundreds of chunks in the scans): measured on the H200, dq and the initial-state gradient
    missed the 5e-3 bar (6.4e-3, 9.6e-3). Rounding to nearest first makes the tensor core's truncation
    exact and the error unbiased (about 1e-3 in the same test, emulated in float64)."""
    xi = x.to(tl.int32, bitcast=True)
    xi = (xi + 0x1000) & -8192                      # -8192 == ~0x1FFF
    return xi.to(tl.float32, bitcast=True)


@triton.jit
def _dot(a, b, PREC: tl.constexpr, RA: tl.constexpr = True, RB: tl.constexpr = True):
    """``a @ b`` with float32 accumulation. ``PREC``: ``"tf32rn"`` (operands rounded to nearest tf32,
    one tensor-core product), ``"tf32x3"`` (three products, float32-level accuracy), or any
    ``input_precision`` Triton knows. ``RA`` / ``RB`` = False: that operand is already a tf32 value
    (a table rounded on the host, or a bf16/fp16 input, whose values tf32 holds exactly), so
    ``tf32rn`` skips rounding it: the same product for less element-wise work."""
    if PREC == "tf32rn":
        if RA:
            a = _rn_tf32(a)
        if RB:
            b = _rn_tf32(b)
        return tl.dot(a, b, input_precision="tf32")
    else:
        return tl.dot(a, b, input_precision=PREC)


@triton.jit
def _scan_fwd_body(x_ptr, s0_ptr, st_ptr, fin_ptr, A_ptr, YM_ptr, b, h, d0, T, H, N, D, NC,
                   C: tl.constexpr, NP: tl.constexpr, BD: tl.constexpr,
                   HAS_INIT: tl.constexpr, PREC: tl.constexpr, RT: tl.constexpr):
    offs_n = tl.arange(0, NP)
    offs_c = tl.arange(0, C)
    offs_d = d0 + tl.arange(0, BD)
    dmask = offs_d < D
    nmask = offs_n < N
    bh = b * H + h
    A = tl.load(A_ptr + offs_n[:, None] * NP + offs_n[None, :])
    YM = tl.load(YM_ptr + offs_n[:, None] * C + offs_c[None, :])
    if HAS_INIT:
        F = tl.load(s0_ptr + bh.to(tl.int64) * N * D + offs_n[:, None] * D + offs_d[None, :],
                    mask=nmask[:, None] & dmask[None, :], other=0.0).to(tl.float32)
    else:
        F = tl.zeros([NP, BD], dtype=tl.float32)
    x_base = x_ptr + b.to(tl.int64) * T * H * D + h * D
    st_base = st_ptr + bh.to(tl.int64) * NC * NP * D
    st_offs = offs_n[:, None] * D + offs_d[None, :]
    x_offs = offs_c[:, None] * (H * D) + offs_d[None, :]
    for c in range(0, NC - 1):
        tl.store(st_base + c * NP * D + st_offs, F, mask=dmask[None, :])
        x = tl.load(x_base + c * C * H * D + x_offs, mask=dmask[None, :], other=0.0).to(tl.float32)
        F = _dot(A, F, PREC, RT) + _dot(YM, x, PREC, RT, RT)
    c = NC - 1
    tl.store(st_base + c * NP * D + st_offs, F, mask=dmask[None, :])
    # the last (possibly short) chunk: its own matrices, only for the final state
    A1 = tl.load(A_ptr + NP * NP + offs_n[:, None] * NP + offs_n[None, :])
    YM1 = tl.load(YM_ptr + NP * C + offs_n[:, None] * C + offs_c[None, :])
    tmask = (c * C + offs_c) < T
    x = tl.load(x_base + c * C * H * D + x_offs, mask=tmask[:, None] & dmask[None, :], other=0.0).to(tl.float32)
    F = _dot(A1, F, PREC, RT) + _dot(YM1, x, PREC, RT, RT)
    tl.store(fin_ptr + bh.to(tl.int64) * N * D + offs_n[:, None] * D + offs_d[None, :], F,
             mask=nmask[:, None] & dmask[None, :])


@triton.jit
def _fwd_scan_kernel(k_ptr, v_ptr, f0_ptr, g0_ptr, fst_ptr, gst_ptr, ffin_ptr, gfin_ptr, A_ptr, YM_ptr,
                     T, H, N, DK, DV, NC, NKT,
                     C: tl.constexpr, NP: tl.constexpr, BD: tl.constexpr,
                     HAS_INIT: tl.constexpr, PREC: tl.constexpr, RT: tl.constexpr = True):
    """Grid ``(B*H, cdiv(DK, BD) + cdiv(DV, BD))``: keys' tiles first, then values'. ``RT``: round the
    fixed tables and the raw inputs in the kernel (False: the tables come rounded, see ``_dot``)."""
    bh = tl.program_id(0)
    j = tl.program_id(1)
    b = bh // H
    h = bh % H
    if j < NKT:
        _scan_fwd_body(k_ptr, f0_ptr, fst_ptr, ffin_ptr, A_ptr, YM_ptr, b, h, j * BD, T, H, N, DK, NC,
                       C, NP, BD, HAS_INIT, PREC, RT)
    else:
        _scan_fwd_body(v_ptr, g0_ptr, gst_ptr, gfin_ptr, A_ptr, YM_ptr, b, h, (j - NKT) * BD, T, H, N, DV, NC,
                       C, NP, BD, HAS_INIT, PREC, RT)


@triton.jit
def _load_rows(base, offs_t, tmask, offs_d, D, row_stride):
    """``[len(offs_t), len(offs_d)]`` float32 tile, zero outside ``tmask`` / ``d < D``."""
    return tl.load(base + offs_t[:, None] * row_stride + offs_d[None, :],
                   mask=tmask[:, None] & (offs_d[None, :] < D), other=0.0).to(tl.float32)


@triton.jit
def _cn_tile(ptr, C: tl.constexpr, NP: tl.constexpr):
    """A ``[C, NP]`` fixed table (row ``delta``, frequency ``n``)."""
    return tl.load(ptr + tl.arange(0, C)[:, None] * NP + tl.arange(0, NP)[None, :])


@triton.jit
def _erase(x_base, s_base, xrow_stride, D, tmask, R_ptr, Minv_ptr,
           C: tl.constexpr, NP: tl.constexpr, DP: tl.constexpr, PREC: tl.constexpr, RT: tl.constexpr):
    """Erasure-corrected chunk ``Minv (X - R S)`` from the raw rows and the state entering the chunk."""
    offs_c = tl.arange(0, C)
    offs_n = tl.arange(0, NP)
    offs_d = tl.arange(0, DP)
    X = _load_rows(x_base, offs_c, tmask, offs_d, D, xrow_stride)
    S = _load_rows(s_base, offs_n, offs_n < NP, offs_d, D, D)
    R = _cn_tile(R_ptr, C, NP)
    Minv = tl.load(Minv_ptr + offs_c[:, None] * C + offs_c[None, :])
    return _dot(Minv, X - _dot(R, S, PREC, RT), PREC, RT)


@triton.jit
def _slot_weights(Q, Kp, f_base, DK, swap, tpos, scale, Cn_ptr, Cnsw_ptr, Rs_ptr,
                  c0_ptr, s0_ptr, c1_ptr, s1_ptr, start_ptr,
                  C: tl.constexpr, NP: tl.constexpr, SP: tl.constexpr, DKP: tl.constexpr, PREC: tl.constexpr,
                  RT: tl.constexpr):
    """Slot weights ``p [C, SP]`` of one chunk (softmax over slots, start-of-sequence mask)::

        X = rot_{delta+1}(Q F^T) + rot_delta(((Q K'^T) * Mc) Cn),   p = softmax(scale * X Rs)

    The swapped halves of the rotations come from ``F[swap]`` (a second load) and ``Cn[:, swap]``.
    """
    offs_c = tl.arange(0, C)
    offs_n = tl.arange(0, NP)
    offs_s = tl.arange(0, SP)
    offs_k = tl.arange(0, DKP)
    all_n = offs_n < NP
    causal = offs_c[:, None] >= offs_c[None, :]
    Am = tl.where(causal, _dot(Q, tl.trans(Kp), PREC, RT), 0.0)
    X = _cn_tile(c0_ptr, C, NP) * _dot(Am, _cn_tile(Cn_ptr, C, NP), PREC, True, RT)
    X += _cn_tile(s0_ptr, C, NP) * _dot(Am, _cn_tile(Cnsw_ptr, C, NP), PREC, True, RT)
    F = _load_rows(f_base, offs_n, all_n, offs_k, DK, DK)
    X += _cn_tile(c1_ptr, C, NP) * _dot(Q, tl.trans(F), PREC, RT)
    Fs = _load_rows(f_base, swap, all_n, offs_k, DK, DK)
    X += _cn_tile(s1_ptr, C, NP) * _dot(Q, tl.trans(Fs), PREC, RT)
    Rs = tl.load(Rs_ptr + offs_n[:, None] * SP + offs_s[None, :])
    Z = _dot(X, Rs, PREC, True, RT) * scale
    start = tl.load(start_ptr + offs_s)
    Z = tl.where(start[None, :] <= tpos[:, None], Z, float("-inf"))     # slot 0 is always visible
    Z = Z - tl.max(Z, axis=1)[:, None]
    e = tl.exp(Z)
    return e / tl.sum(e, axis=1)[:, None]


@triton.jit
def _read_products(p, Rs_ptr, RsTsw_ptr, NP: tl.constexpr, SP: tl.constexpr, PREC: tl.constexpr,
                   RT: tl.constexpr):
    """``(w, w[swap]) = (p Rs^T, p Rs^T[:, swap])``: the two products every read covector is made of."""
    offs_n = tl.arange(0, NP)
    offs_s = tl.arange(0, SP)
    RsT = tl.load(Rs_ptr + offs_s[:, None] + offs_n[None, :] * SP)
    RsTsw = tl.load(RsTsw_ptr + offs_s[:, None] * NP + offs_n[None, :])
    return _dot(p, RsT, PREC, True, RT), _dot(p, RsTsw, PREC, True, RT)


@triton.jit
def _read_covectors(p, Rs_ptr, RsTsw_ptr, c_ptr, s_ptr, C: tl.constexpr, NP: tl.constexpr, SP: tl.constexpr,
                    PREC: tl.constexpr, RT: tl.constexpr):
    """``rot_{-p}(p Rs^T) = c * w - s * w[swap]`` with ``w[swap] = p Rs^T[:, swap]``: ``[C, NP]``."""
    w, ws = _read_products(p, Rs_ptr, RsTsw_ptr, NP, SP, PREC, RT)
    return _cn_tile(c_ptr, C, NP) * w - _cn_tile(s_ptr, C, NP) * ws


@triton.jit
def _read_covector_pair(p, Rs_ptr, RsTsw_ptr, ca_ptr, sa_ptr, cb_ptr, sb_ptr,
                        C: tl.constexpr, NP: tl.constexpr, SP: tl.constexpr, PREC: tl.constexpr,
                        RT: tl.constexpr):
    """Two rotations of one read, ``(rot_{-a}(p Rs^T), rot_{-b}(p Rs^T))``, from one pair of products
    (:func:`_read_covectors` twice would compute ``p Rs^T`` and ``p Rs^T[:, swap]`` twice)."""
    w, ws = _read_products(p, Rs_ptr, RsTsw_ptr, NP, SP, PREC, RT)
    return (_cn_tile(ca_ptr, C, NP) * w - _cn_tile(sa_ptr, C, NP) * ws,
            _cn_tile(cb_ptr, C, NP) * w - _cn_tile(sb_ptr, C, NP) * ws)


@triton.jit
def _fwd_out_kernel(q_ptr, k_ptr, v_ptr, fst_ptr, gst_ptr, o_ptr, p_ptr,
                    R_ptr, Minv_ptr, Cn_ptr, Cnsw_ptr, Rs_ptr, RsTsw_ptr, c0_ptr, s0_ptr, c1_ptr, s1_ptr,
                    swap_ptr, start_ptr, T, H, DK, DV, NC, t0, scale,
                    C: tl.constexpr, NP: tl.constexpr, SP: tl.constexpr,
                    DKP: tl.constexpr, DVP: tl.constexpr, PREC: tl.constexpr, STORE_P: tl.constexpr,
                    REUSE: tl.constexpr = False, PART: tl.constexpr = 0, RT: tl.constexpr = True):
    """Grid ``(NC, B*H)``: the outputs of one chunk from the state entering it (and, with
    ``STORE_P``, its slot weights ``p [C, SP]`` float32 for the backward).

    Written in the order that keeps the fewest ``[C, *]`` tiles alive (each tile is loaded where it
    is first needed): keys, slot weights, read covectors, then values. ``REUSE``: compute both read
    covectors from one pair of products (two products fewer, one more ``[C, NP]`` tile alive);
    otherwise the second is recomputed where it is needed. ``PART`` 0: all of it in one program;
    1: only the key side, up to the slot weights, which it stores (``STORE_P`` must be set); 2: only
    the value side, from the stored slot weights (the split forward: each program keeps fewer tiles
    alive, for one ``[C, SP]`` float32 round trip per chunk, which training stores anyway).
    ``RT``: as in ``_fwd_scan_kernel``.
    """
    c = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    offs_c = tl.arange(0, C)
    offs_n = tl.arange(0, NP)
    offs_s = tl.arange(0, SP)
    offs_k = tl.arange(0, DKP)
    offs_v = tl.arange(0, DVP)
    t = c * C + offs_c
    tmask = t < T
    row0 = b.to(tl.int64) * T * H + c * C * H + h            # token (b, c*C, h) of [B, T, H]
    sbase = bh.to(tl.int64) * NC * NP + c * NP               # row (b, h, c, 0) of the states
    p_offs = (bh.to(tl.int64) * NC * C + c * C) * SP + offs_c[:, None] * SP + offs_s[None, :]
    if PART != 2:
        swap = tl.load(swap_ptr + offs_n)
        Kp = _erase(k_ptr + row0 * DK, fst_ptr + sbase * DK, H * DK, DK, tmask, R_ptr, Minv_ptr, C, NP, DKP,
                    PREC, RT)
        Q = _load_rows(q_ptr + row0 * DK, offs_c, tmask, offs_k, DK, H * DK)
        p = _slot_weights(Q, Kp, fst_ptr + sbase * DK, DK, swap, t0 + t, scale, Cn_ptr, Cnsw_ptr, Rs_ptr,
                          c0_ptr, s0_ptr, c1_ptr, s1_ptr, start_ptr, C, NP, SP, DKP, PREC, RT)
        if STORE_P:
            tl.store(p_ptr + p_offs, p)
    else:
        p = tl.load(p_ptr + p_offs)
    if PART != 1:
        causal = offs_c[:, None] >= offs_c[None, :]
        if REUSE:
            u0, u1 = _read_covector_pair(p, Rs_ptr, RsTsw_ptr, c0_ptr, s0_ptr, c1_ptr, s1_ptr, C, NP, SP, PREC, RT)
        else:
            u0 = _read_covectors(p, Rs_ptr, RsTsw_ptr, c0_ptr, s0_ptr, C, NP, SP, PREC, RT)
        Bm = tl.where(causal, _dot(u0, tl.trans(_cn_tile(Cn_ptr, C, NP)), PREC, True, RT), 0.0)
        Vp = _erase(v_ptr + row0 * DV, gst_ptr + sbase * DV, H * DV, DV, tmask, R_ptr, Minv_ptr, C, NP, DVP,
                    PREC, RT)
        O = _dot(Bm, Vp, PREC)
        if not REUSE:
            u1 = _read_covectors(p, Rs_ptr, RsTsw_ptr, c1_ptr, s1_ptr, C, NP, SP, PREC, RT)
        G = _load_rows(gst_ptr + sbase * DV, offs_n, offs_n < NP, offs_v, DV, DV)
        O += _dot(u1, G, PREC)
        tl.store(o_ptr + row0 * DV + offs_c[:, None] * (H * DV) + offs_v[None, :],
                 O.to(o_ptr.dtype.element_ty), mask=tmask[:, None] & (offs_v[None, :] < DV))
