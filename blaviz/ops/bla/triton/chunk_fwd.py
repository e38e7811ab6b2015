"""Forward kernels of chunked BLA (BLA_SPEC section 4), real cos/sin form.

The chunk equations, with ``F, G`` the key/value frequency windows *entering*
chunk ``c``::

    K' = Minv (K - R F)                          V' = Minv (V - R G)
    X  = rot_{delta+1}(Q F^T) + rot_delta(((Q K'^T) * Mc) Cn)            [C, N]
    p  = softmax(scale * X Rs, start mask)                                [C, S]
    w  = p Rs^T
    O  = rot_{-(delta+1)}(w) G + ((rot_{-delta}(w) Cn^T) * Mc) V'
    F_next = A F + (Y Minv) K                    (A = P^C - Y Minv R, fixed)

``rot_p(x) = c_p * x + s_p * x[swap]`` row by row (``_consts`` explains how the
swapped copies are obtained without permuting registers). Two launches:

1. :func:`_fwd_scan_kernel` -- the state scan. One program per (batch, head,
   {K|V}, d-tile of ``BD`` columns) walks the chunks in order: ``F <- A F + YM
   K_c``, storing the state entering each chunk. Each step is two small
   tensor-core products (``[NP, NP] x [NP, BD]`` and ``[NP, C] x [C, BD]``); the
   chunk's own contribution ``YM K_c`` does not depend on ``F``, so it overlaps
   with the dependent product. The scan reads ``K`` itself (``C d``
   half-precision numbers per chunk) rather than a precomputed ``YM K_c`` (``N
   d`` float32 numbers): fewer bytes.
2. :func:`_fwd_out_kernel` -- the outputs, all chunks in parallel: one program
   per (chunk, batch*head), full head dims in one tile. About 13 products of
   ``64^3`` per chunk.

Precision: every product accumulates in float32. Two operand precisions, one per
side:

* the *score side* (the key scan, the products that make ``X``, and ``X Rs``),
  ``SPREC``. A softmax turns an absolute error of its logits into a relative
  error of its output, and the logits grow with ``|q| |k|``: with ``q, k``
  scaled by 100, tf32's ``2^-11`` relative rounding would move logits of size
  ``10^4`` by units. The score side therefore runs at float32 accuracy
  (``tf32x3``: each operand split into two tf32 parts, three tensor-core
  products) and reads exact float32 tables. The three products with the
  queries as one operand are cheaper at the same accuracy, because bf16
  queries are exact bf16 values: ``bf16x3q`` (the default for bf16) splits the
  other operand into three bf16 parts, three bf16 products (:func:`_dot_q`).
* the *value side* (the value scan, ``K'`` and ``V'``, the reads ``p Rs^T``,
  the outputs and the whole backward), ``PREC``: ``tf32rn`` for bf16/fp16
  inputs (one product of operands rounded to nearest tf32, see
  :func:`_rn_tf32`), ``tf32x3`` for float32 inputs. Its errors stay relative to
  the output.

With ``tf32rn`` the tables come already rounded to tf32 (``_consts.round_tf32``)
and bf16/fp16 inputs are tf32 values already, so only operands computed in the
kernel are rounded (``_dot``'s ``RA``/``RB``).
"""

from __future__ import annotations

import triton
import triton.language as tl

from blaviz.ops.triton_env import interpreting

#: True under ``TRITON_INTERPRET=1``: :func:`_dot_bf16` then multiplies in float32.
_INTERPRET = tl.constexpr(interpreting())


@triton.jit
def _rn_tf32(x):
    """Round float32 to the nearest tf32 value (10-bit mantissa), ties away from
    zero.

    Hopper's tensor cores read a float32 operand in tf32 by *dropping* its low
    13 mantissa bits. Truncation is biased, and in BLA the bias adds up
    coherently (over the 64 terms of each product and over hundreds of chunks in
    the scans). Rounding to nearest first makes the tensor core's truncation
    exact and the error unbiased."""
    xi = x.to(tl.int32, bitcast=True)
    xi = (xi + 0x1000) & -8192  # -8192 == ~0x1FFF
    return xi.to(tl.float32, bitcast=True)


@triton.jit
def _rn_bf16(x):
    """``x`` rounded to the nearest bf16 value (ties away from zero), kept in
    float32: the low 16 bits of the significand become zero."""
    xi = x.to(tl.int32, bitcast=True)
    xi = (xi + 0x8000) & -65536  # -65536 == ~0xFFFF
    return xi.to(tl.float32, bitcast=True)


@triton.jit
def _dot_bf16(a, b):
    """``a @ b`` for float32 tiles that hold bf16 values: one bf16 tensor-core
    product, exact in float32 before accumulation. Triton's interpreter has
    no bf16 products, so there the same values are multiplied in float32
    (equal products)."""
    if _INTERPRET:
        return tl.dot(a, b, input_precision="ieee")
    else:
        return tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16))


@triton.jit
def _dot(
    a, b, PREC: tl.constexpr, RA: tl.constexpr = True, RB: tl.constexpr = True
):
    """``a @ b`` with float32 accumulation. ``PREC``: ``"tf32rn"`` (operands
    rounded to nearest tf32, one tensor-core product) or ``"tf32x3"`` (three
    products, float32-level accuracy; ``"tf32x3q"`` and ``"bf16x3q"`` are the
    same here: they differ only where one operand is the queries, see
    :func:`_dot_q`). ``RA`` / ``RB`` = False: that operand is already a tf32
    value (a rounded table or a bf16/fp16 input), so ``tf32rn`` does not round
    it again."""
    if PREC == "tf32rn":
        if RA:
            a = _rn_tf32(a)
        if RB:
            b = _rn_tf32(b)
        return tl.dot(a, b, input_precision="tf32")
    else:
        return tl.dot(a, b, input_precision="tf32x3")


@triton.jit
def _dot_q(q, b, PREC: tl.constexpr):
    """``q @ b`` where ``q`` holds bf16/fp16 queries, exact in tf32. With
    ``PREC == "tf32x3q"`` it takes two products instead of three: ``b`` splits
    into its nearest tf32 value and the nearest tf32 value of the rest, and
    ``q`` needs no low part (relative error about ``2^-22``, float32 level).
    Every operand is then a tf32 value, so the tensor core drops no bits and
    Triton's interpreter computes what the GPU does. ``PREC == "bf16x3q"``
    (bf16 queries only) splits ``b`` into three bf16 parts instead: three bf16
    products. Otherwise :func:`_dot`."""
    if PREC == "tf32x3q":
        hi = _rn_tf32(b)
        lo = _rn_tf32(b - hi)
        return tl.dot(q, hi, input_precision="tf32") + tl.dot(
            q, lo, input_precision="tf32"
        )
    elif PREC == "bf16x3q":
        # b splits into three parts of 8 significant bits each (float32's 24),
        # each a bf16 value; bf16 queries are bf16 values too, so each of the
        # three products is exact before the float32 accumulation
        hi = _rn_bf16(b)
        r = b - hi
        mid = _rn_bf16(r)
        lo = _rn_bf16(r - mid)
        return _dot_bf16(q, hi) + _dot_bf16(q, mid) + _dot_bf16(q, lo)
    else:
        return _dot(q, b, PREC, False)


@triton.jit
def _scan_fwd_body(
    x_ptr,
    s0_ptr,
    st_ptr,
    fin_ptr,
    A_ptr,
    YM_ptr,
    b,
    h,
    d0,
    T,
    H,
    N,
    D,
    NC,
    C: tl.constexpr,
    NP: tl.constexpr,
    BD: tl.constexpr,
    HAS_INIT: tl.constexpr,
    PREC: tl.constexpr,
):
    offs_n = tl.arange(0, NP)
    offs_c = tl.arange(0, C)
    offs_d = d0 + tl.arange(0, BD)
    dmask = offs_d < D
    nmask = offs_n < N
    bh = b * H + h
    A = tl.load(A_ptr + offs_n[:, None] * NP + offs_n[None, :])
    YM = tl.load(YM_ptr + offs_n[:, None] * C + offs_c[None, :])
    if HAS_INIT:
        F = tl.load(
            s0_ptr
            + bh.to(tl.int64) * N * D
            + offs_n[:, None] * D
            + offs_d[None, :],
            mask=nmask[:, None] & dmask[None, :],
            other=0.0,
        ).to(tl.float32)
    else:
        F = tl.zeros([NP, BD], dtype=tl.float32)
    x_base = x_ptr + b.to(tl.int64) * T * H * D + h * D
    st_base = st_ptr + bh.to(tl.int64) * NC * NP * D
    st_offs = offs_n[:, None] * D + offs_d[None, :]
    x_offs = offs_c[:, None] * (H * D) + offs_d[None, :]
    for c in range(0, NC - 1):
        tl.store(st_base + c * NP * D + st_offs, F, mask=dmask[None, :])
        x = tl.load(
            x_base + c * C * H * D + x_offs, mask=dmask[None, :], other=0.0
        ).to(tl.float32)
        F = _dot(A, F, PREC, False) + _dot(YM, x, PREC, False, False)
    c = NC - 1
    tl.store(st_base + c * NP * D + st_offs, F, mask=dmask[None, :])
    # the last (possibly short) chunk: its own matrices, only for the final
    # state
    A1 = tl.load(A_ptr + NP * NP + offs_n[:, None] * NP + offs_n[None, :])
    YM1 = tl.load(YM_ptr + NP * C + offs_n[:, None] * C + offs_c[None, :])
    tmask = (c * C + offs_c) < T
    x = tl.load(
        x_base + c * C * H * D + x_offs,
        mask=tmask[:, None] & dmask[None, :],
        other=0.0,
    ).to(tl.float32)
    F = _dot(A1, F, PREC, False) + _dot(YM1, x, PREC, False, False)
    tl.store(
        fin_ptr
        + bh.to(tl.int64) * N * D
        + offs_n[:, None] * D
        + offs_d[None, :],
        F,
        mask=nmask[:, None] & dmask[None, :],
    )


@triton.jit
def _fwd_scan_kernel(
    k_ptr,
    v_ptr,
    f0_ptr,
    g0_ptr,
    fst_ptr,
    gst_ptr,
    ffin_ptr,
    gfin_ptr,
    Ak_ptr,
    YMk_ptr,
    Av_ptr,
    YMv_ptr,
    T,
    H,
    N,
    DK,
    DV,
    NC,
    NKT,
    C: tl.constexpr,
    NP: tl.constexpr,
    BD: tl.constexpr,
    HAS_INIT: tl.constexpr,
    SPREC: tl.constexpr,
    PREC: tl.constexpr,
):
    """Grid ``(B*H, cdiv(DK, BD) + cdiv(DV, BD))``: keys' tiles first (score
    side: ``SPREC`` and the tables ``Ak, YMk`` for it), then values' (``PREC``,
    ``Av, YMv``)."""
    bh = tl.program_id(0)
    j = tl.program_id(1)
    b = bh // H
    h = bh % H
    if j < NKT:
        _scan_fwd_body(
            k_ptr,
            f0_ptr,
            fst_ptr,
            ffin_ptr,
            Ak_ptr,
            YMk_ptr,
            b,
            h,
            j * BD,
            T,
            H,
            N,
            DK,
            NC,
            C,
            NP,
            BD,
            HAS_INIT,
            SPREC,
        )
    else:
        _scan_fwd_body(
            v_ptr,
            g0_ptr,
            gst_ptr,
            gfin_ptr,
            Av_ptr,
            YMv_ptr,
            b,
            h,
            (j - NKT) * BD,
            T,
            H,
            N,
            DV,
            NC,
            C,
            NP,
            BD,
            HAS_INIT,
            PREC,
        )


@triton.jit
def _load_rows(base, offs_t, tmask, offs_d, D, row_stride):
    """``[len(offs_t), len(offs_d)]`` float32 tile, zero outside ``tmask`` / ``d
    < D``."""
    return tl.load(
        base + offs_t[:, None] * row_stride + offs_d[None, :],
        mask=tmask[:, None] & (offs_d[None, :] < D),
        other=0.0,
    ).to(tl.float32)


@triton.jit
def _cn_tile(ptr, C: tl.constexpr, NP: tl.constexpr):
    """A ``[C, NP]`` fixed table (row ``delta``, frequency ``n``)."""
    return tl.load(
        ptr + tl.arange(0, C)[:, None] * NP + tl.arange(0, NP)[None, :]
    )


@triton.jit
def _erase(
    x_base,
    s_base,
    xrow_stride,
    D,
    tmask,
    R_ptr,
    Minv_ptr,
    C: tl.constexpr,
    NP: tl.constexpr,
    DP: tl.constexpr,
    PREC: tl.constexpr,
):
    """Erasure-corrected chunk ``Minv (X - R S)`` from the raw rows and the
    state entering the chunk."""
    offs_c = tl.arange(0, C)
    offs_n = tl.arange(0, NP)
    offs_d = tl.arange(0, DP)
    X = _load_rows(x_base, offs_c, tmask, offs_d, D, xrow_stride)
    S = _load_rows(s_base, offs_n, offs_n < NP, offs_d, D, D)
    R = _cn_tile(R_ptr, C, NP)
    Minv = tl.load(Minv_ptr + offs_c[:, None] * C + offs_c[None, :])
    return _dot(Minv, X - _dot(R, S, PREC, False), PREC, False)


@triton.jit
def _slot_weights(
    Q,
    Kp,
    f_base,
    DK,
    swap,
    tpos,
    scale,
    Cn_ptr,
    Cnsw_ptr,
    Rs_ptr,
    c0_ptr,
    s0_ptr,
    c1_ptr,
    s1_ptr,
    start_ptr,
    C: tl.constexpr,
    NP: tl.constexpr,
    SP: tl.constexpr,
    DKP: tl.constexpr,
    PREC: tl.constexpr,
):
    """Slot weights ``p [C, SP]`` of one chunk (softmax over slots,
    start-of-sequence mask)::

        X = rot_{delta+1}(Q F^T) + rot_delta(((Q K'^T) * Mc) Cn)
        p = softmax(scale * X Rs)

    The swapped halves of the rotations come from ``F[swap]`` (a second load)
    and ``Cn[:, swap]``.
    """
    offs_c = tl.arange(0, C)
    offs_n = tl.arange(0, NP)
    offs_s = tl.arange(0, SP)
    offs_k = tl.arange(0, DKP)
    all_n = offs_n < NP
    causal = offs_c[:, None] >= offs_c[None, :]
    Am = tl.where(causal, _dot_q(Q, tl.trans(Kp), PREC), 0.0)
    X = _cn_tile(c0_ptr, C, NP) * _dot(
        Am, _cn_tile(Cn_ptr, C, NP), PREC, True, False
    )
    X += _cn_tile(s0_ptr, C, NP) * _dot(
        Am, _cn_tile(Cnsw_ptr, C, NP), PREC, True, False
    )
    F = _load_rows(f_base, offs_n, all_n, offs_k, DK, DK)
    X += _cn_tile(c1_ptr, C, NP) * _dot_q(Q, tl.trans(F), PREC)
    Fs = _load_rows(f_base, swap, all_n, offs_k, DK, DK)
    X += _cn_tile(s1_ptr, C, NP) * _dot_q(Q, tl.trans(Fs), PREC)
    Rs = tl.load(Rs_ptr + offs_n[:, None] * SP + offs_s[None, :])
    Z = _dot(X, Rs, PREC, True, False) * scale
    start = tl.load(start_ptr + offs_s)
    Z = tl.where(
        start[None, :] <= tpos[:, None], Z, float("-inf")
    )  # slot 0 is always visible
    Z = Z - tl.max(Z, axis=1)[:, None]
    e = tl.exp(Z)
    return e / tl.sum(e, axis=1)[:, None]


@triton.jit
def _read_covectors(
    p,
    Rs_ptr,
    RsTsw_ptr,
    ca_ptr,
    sa_ptr,
    cb_ptr,
    sb_ptr,
    C: tl.constexpr,
    NP: tl.constexpr,
    SP: tl.constexpr,
    PREC: tl.constexpr,
):
    """Two rotations of one read, ``(rot_{-a}(p Rs^T), rot_{-b}(p Rs^T))``, from
    the one pair of products ``w = p Rs^T`` and ``w[swap] = p Rs^T[:, swap]``:
    ``rot_{-a}(w) = c_a * w - s_a * w[swap]``.
    """
    offs_n = tl.arange(0, NP)
    offs_s = tl.arange(0, SP)
    RsT = tl.load(Rs_ptr + offs_s[:, None] + offs_n[None, :] * SP)
    RsTsw = tl.load(RsTsw_ptr + offs_s[:, None] * NP + offs_n[None, :])
    w = _dot(p, RsT, PREC, True, False)
    ws = _dot(p, RsTsw, PREC, True, False)
    return (
        _cn_tile(ca_ptr, C, NP) * w - _cn_tile(sa_ptr, C, NP) * ws,
        _cn_tile(cb_ptr, C, NP) * w - _cn_tile(sb_ptr, C, NP) * ws,
    )


@triton.jit
def _fwd_out_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    fst_ptr,
    gst_ptr,
    o_ptr,
    p_ptr,
    Cnk_ptr,
    Cnswk_ptr,
    Rsk_ptr,
    Rv_ptr,
    Minvv_ptr,
    Cnv_ptr,
    Rsv_ptr,
    RsTswv_ptr,
    c0_ptr,
    s0_ptr,
    c1_ptr,
    s1_ptr,
    swap_ptr,
    start_ptr,
    T,
    H,
    DK,
    DV,
    NC,
    t0,
    scale,
    C: tl.constexpr,
    NP: tl.constexpr,
    SP: tl.constexpr,
    DKP: tl.constexpr,
    DVP: tl.constexpr,
    SPREC: tl.constexpr,
    PREC: tl.constexpr,
    PART: tl.constexpr,
):
    """Grid ``(NC, B*H)``, launched twice: ``PART`` 1, the key side of one
    chunk up to its slot weights ``p [C, SP]`` float32, which it stores (the
    value side and the backward read them); ``PART`` 2, the chunk's outputs
    from the stored weights and the state entering it. Two launches keep fewer
    tiles alive per program than one that does both (half the spilled
    registers, and faster: ``results/bench/DECISIONS.md``).

    Written in the order that keeps the fewest ``[C, *]`` tiles alive (each tile
    is loaded where it is first needed): keys, slot weights, read covectors,
    then values. The ``*k`` tables are the score side's (``SPREC``), the ``*v``
    tables the value side's (``PREC``).
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
    row0 = (
        b.to(tl.int64) * T * H + c * C * H + h
    )  # token (b, c*C, h) of [B, T, H]
    sbase = bh.to(tl.int64) * NC * NP + c * NP  # row (b, h, c, 0) of the states
    p_offs = (
        (bh.to(tl.int64) * NC * C + c * C) * SP
        + offs_c[:, None] * SP
        + offs_s[None, :]
    )
    if PART == 1:
        swap = tl.load(swap_ptr + offs_n)
        Kp = _erase(
            k_ptr + row0 * DK,
            fst_ptr + sbase * DK,
            H * DK,
            DK,
            tmask,
            Rv_ptr,
            Minvv_ptr,
            C,
            NP,
            DKP,
            PREC,
        )
        Q = _load_rows(q_ptr + row0 * DK, offs_c, tmask, offs_k, DK, H * DK)
        p = _slot_weights(
            Q,
            Kp,
            fst_ptr + sbase * DK,
            DK,
            swap,
            t0 + t,
            scale,
            Cnk_ptr,
            Cnswk_ptr,
            Rsk_ptr,
            c0_ptr,
            s0_ptr,
            c1_ptr,
            s1_ptr,
            start_ptr,
            C,
            NP,
            SP,
            DKP,
            SPREC,
        )
        tl.store(p_ptr + p_offs, p)
    else:
        p = tl.load(p_ptr + p_offs)
        causal = offs_c[:, None] >= offs_c[None, :]
        u0, u1 = _read_covectors(
            p,
            Rsv_ptr,
            RsTswv_ptr,
            c0_ptr,
            s0_ptr,
            c1_ptr,
            s1_ptr,
            C,
            NP,
            SP,
            PREC,
        )
        Bm = tl.where(
            causal,
            _dot(u0, tl.trans(_cn_tile(Cnv_ptr, C, NP)), PREC, True, False),
            0.0,
        )
        Vp = _erase(
            v_ptr + row0 * DV,
            gst_ptr + sbase * DV,
            H * DV,
            DV,
            tmask,
            Rv_ptr,
            Minvv_ptr,
            C,
            NP,
            DVP,
            PREC,
        )
        O = _dot(Bm, Vp, PREC)
        G = _load_rows(
            gst_ptr + sbase * DV, offs_n, offs_n < NP, offs_v, DV, DV
        )
        O += _dot(u1, G, PREC)
        tl.store(
            o_ptr + row0 * DV + offs_c[:, None] * (H * DV) + offs_v[None, :],
            O.to(o_ptr.dtype.element_ty),
            mask=tmask[:, None] & (offs_v[None, :] < DV),
        )
