"""Backward kernels of chunked BLA, derived from the chunk equations (see
``chunk_fwd``).

Write ``S_c`` for the state entering chunk ``c`` and ``S_{c+1} = A S_c + YM
K_c`` (``A`` is the fixed chunk map). Everything a chunk does *except* feeding
the next state depends only on ``S_c`` and the chunk's own ``q, k, v, do``, so
the gradient splits the same way as the forward:

1. :func:`_bwd_local_kernel` (all chunks in parallel, one program per (chunk,
   batch*head)): recompute what the chunk's backward needs from the saved
   ``S_c`` (``K'``, ``V'``, the read covectors; ``[C, C]`` blocks are never
   stored) and the slot weights ``p`` the forward saved, then walk the chunk
   backward (two launches: value side, then key side)::

       dBm = (dO V'^T) * Mc            du1 = dO G^T     du0 = dBm Cn
       dw  = rot_{delta+1}(du1) + rot_delta(du0)       (adjoint of rot_{-p})
       dp  = dw Rs,   dZ = p * (dp - rowsum(p * dp))   (softmax backward)
       dX  = scale dZ Rs^T
       E1  = rot_{-(delta+1)}(dX)   E0 = rot_{-delta}(dX)   (adjoint of rot_p)
       dA  = (E0 Cn^T) * Mc
       dQ  = E1 F + dA K'                                                (final)
       dK_loc = Minv^T (dA^T Q)        dV_loc = Minv^T (Bm^T dO)
       beta_F = E1^T Q - R^T dK_loc    beta_G = u1^T dO - R^T dV_loc

   ``dQ`` is complete here; ``beta`` is the chunk's local gradient with
   respect to ``S_c``.
2. :func:`_bwd_scan_kernel` (the adjoint scan, sequential over chunks, parallel
   over batch, heads, {K|V} and d-tiles), from the final state's gradient
   backwards::

       dK_c = dK_loc_c + YM^T g_{c+1}        g_c = A^T g_{c+1} + beta_c

   ending with ``g_0``, the gradient of the initial state.
"""

from __future__ import annotations

import triton
import triton.language as tl

from blaviz.ops.bla.triton.chunk_fwd import (
    _cn_tile,
    _dot,
    _erase,
    _load_rows,
    _read_covectors,
)


@triton.jit
def _bwd_local_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    do_ptr,
    fst_ptr,
    gst_ptr,
    dq_ptr,
    dkl_ptr,
    dvl_ptr,
    bf_ptr,
    bg_ptr,
    dz_ptr,
    p_ptr,
    R_ptr,
    Minv_ptr,
    Cn_ptr,
    Cnsw_ptr,
    Rs_ptr,
    RsTsw_ptr,
    c0_ptr,
    s0_ptr,
    c1_ptr,
    s1_ptr,
    swap_ptr,
    T,
    H,
    DK,
    DV,
    NC,
    scale,
    C: tl.constexpr,
    NP: tl.constexpr,
    SP: tl.constexpr,
    DKP: tl.constexpr,
    DVP: tl.constexpr,
    PREC: tl.constexpr,
    PART: tl.constexpr,
):
    """Grid ``(NC, B*H)``, launched twice. ``PART`` 1: the value side
    (``dV_loc``, ``beta_G``) and the softmax backward from the slot weights
    ``p`` the forward saved, storing ``scale * dZ`` (``[C, SP]`` float32 per
    chunk). ``PART`` 2: the key side (``dQ``, ``dK_loc``, ``beta_F``) from that
    ``dZ``. Two launches keep about half as many tiles alive per program as one
    would, for one ``[C, S]`` round trip through memory. Both rotations of a
    read (``u0, u1`` and ``E0, E1``) come from one pair of products
    (:func:`_read_covectors`)."""
    c = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    offs_c = tl.arange(0, C)
    offs_n = tl.arange(0, NP)
    offs_s = tl.arange(0, SP)
    offs_k = tl.arange(0, DKP)
    offs_v = tl.arange(0, DVP)
    all_n = offs_n < NP
    t = c * C + offs_c
    tmask = t < T
    kmask = offs_k < DK
    vmask = offs_v < DV
    causal = offs_c[:, None] >= offs_c[None, :]
    row0 = b.to(tl.int64) * T * H + c * C * H + h
    sbase = bh.to(tl.int64) * NC * NP + c * NP
    lbase = bh.to(tl.int64) * NC * C + c * C  # row (b, h, c, 0) of [B, H, NC*C]
    dz_offs = lbase * SP + offs_c[:, None] * SP + offs_s[None, :]
    if PART == 1:
        swap = tl.load(swap_ptr + offs_n)
        p = tl.load(p_ptr + dz_offs)  # saved by the forward
        # ---- value side: O = u1 G + Bm V'
        dO = _load_rows(do_ptr + row0 * DV, offs_c, tmask, offs_v, DV, H * DV)
        u0, u1 = _read_covectors(
            p,
            Rs_ptr,
            RsTsw_ptr,
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
            _dot(u0, tl.trans(_cn_tile(Cn_ptr, C, NP)), PREC, True, False),
            0.0,
        )
        MinvT = tl.load(Minv_ptr + offs_c[None, :] * C + offs_c[:, None])
        dVl = _dot(
            MinvT, _dot(tl.trans(Bm), dO, PREC, True, False), PREC, False
        )
        tl.store(
            dvl_ptr + lbase * DV + offs_c[:, None] * DV + offs_v[None, :],
            dVl,
            mask=vmask[None, :],
        )
        Rtr = tl.load(
            R_ptr + offs_c[None, :] * NP + offs_n[:, None]
        )  # R^T [NP, C]
        bG = _dot(tl.trans(u1), dO, PREC, True, False) - _dot(
            Rtr, dVl, PREC, False
        )
        tl.store(
            bg_ptr + sbase * DV + offs_n[:, None] * DV + offs_v[None, :],
            bG,
            mask=vmask[None, :],
        )
        Vp = _erase(
            v_ptr + row0 * DV,
            gst_ptr + sbase * DV,
            H * DV,
            DV,
            tmask,
            R_ptr,
            Minv_ptr,
            C,
            NP,
            DVP,
            PREC,
        )
        dBm = tl.where(causal, _dot(dO, tl.trans(Vp), PREC, False), 0.0)
        # ---- back through the read covectors: dw = rot_{delta+1}(dO G^T) +
        # rot_delta(dBm Cn)
        dw = _cn_tile(c0_ptr, C, NP) * _dot(
            dBm, _cn_tile(Cn_ptr, C, NP), PREC, True, False
        )
        dw += _cn_tile(s0_ptr, C, NP) * _dot(
            dBm, _cn_tile(Cnsw_ptr, C, NP), PREC, True, False
        )
        G = _load_rows(gst_ptr + sbase * DV, offs_n, all_n, offs_v, DV, DV)
        dw += _cn_tile(c1_ptr, C, NP) * _dot(dO, tl.trans(G), PREC, False)
        Gs = _load_rows(gst_ptr + sbase * DV, swap, all_n, offs_v, DV, DV)
        dw += _cn_tile(s1_ptr, C, NP) * _dot(dO, tl.trans(Gs), PREC, False)
        # ---- softmax over slots
        Rs = tl.load(Rs_ptr + offs_n[:, None] * SP + offs_s[None, :])
        dp = _dot(dw, Rs, PREC, True, False)
        dZ = p * (dp - tl.sum(p * dp, axis=1)[:, None]) * scale
        tl.store(dz_ptr + dz_offs, dZ)
    else:
        Kp = _erase(
            k_ptr + row0 * DK,
            fst_ptr + sbase * DK,
            H * DK,
            DK,
            tmask,
            R_ptr,
            Minv_ptr,
            C,
            NP,
            DKP,
            PREC,
        )
        Q = _load_rows(q_ptr + row0 * DK, offs_c, tmask, offs_k, DK, H * DK)
        dZ = tl.load(dz_ptr + dz_offs)
        # ---- back through X: E1 = rot_{-(delta+1)}(dX), E0 = rot_{-delta}(dX),
        # dX = dZ Rs^T
        E0, E1 = _read_covectors(
            dZ,
            Rs_ptr,
            RsTsw_ptr,
            c0_ptr,
            s0_ptr,
            c1_ptr,
            s1_ptr,
            C,
            NP,
            SP,
            PREC,
        )
        dA = tl.where(
            causal,
            _dot(E0, tl.trans(_cn_tile(Cn_ptr, C, NP)), PREC, True, False),
            0.0,
        )
        F = _load_rows(fst_ptr + sbase * DK, offs_n, all_n, offs_k, DK, DK)
        dQ = _dot(E1, F, PREC) + _dot(dA, Kp, PREC)
        tl.store(
            dq_ptr + row0 * DK + offs_c[:, None] * (H * DK) + offs_k[None, :],
            dQ.to(dq_ptr.dtype.element_ty),
            mask=tmask[:, None] & kmask[None, :],
        )
        MinvT = tl.load(Minv_ptr + offs_c[None, :] * C + offs_c[:, None])
        dKl = _dot(MinvT, _dot(tl.trans(dA), Q, PREC, True, False), PREC, False)
        tl.store(
            dkl_ptr + lbase * DK + offs_c[:, None] * DK + offs_k[None, :],
            dKl,
            mask=kmask[None, :],
        )
        Rtr = tl.load(
            R_ptr + offs_c[None, :] * NP + offs_n[:, None]
        )  # R^T [NP, C]
        bF = _dot(tl.trans(E1), Q, PREC, True, False) - _dot(
            Rtr, dKl, PREC, False
        )
        tl.store(
            bf_ptr + sbase * DK + offs_n[:, None] * DK + offs_k[None, :],
            bF,
            mask=kmask[None, :],
        )


@triton.jit
def _scan_bwd_body(
    dxl_ptr,
    beta_ptr,
    dfin_ptr,
    dx_ptr,
    ds0_ptr,
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
    HAS_DFIN: tl.constexpr,
    HAS_INIT: tl.constexpr,
    PREC: tl.constexpr,
):
    offs_n = tl.arange(0, NP)
    offs_c = tl.arange(0, C)
    offs_d = d0 + tl.arange(0, BD)
    dmask = offs_d < D
    nmask = offs_n < N
    bh = b * H + h
    # transposed loads: A^T [NP, NP], YM^T [C, NP]
    AT = tl.load(A_ptr + offs_n[None, :] * NP + offs_n[:, None])
    YMT = tl.load(YM_ptr + offs_n[None, :] * C + offs_c[:, None])
    AT1 = tl.load(A_ptr + NP * NP + offs_n[None, :] * NP + offs_n[:, None])
    YMT1 = tl.load(YM_ptr + NP * C + offs_n[None, :] * C + offs_c[:, None])
    fin_offs = bh.to(tl.int64) * N * D + offs_n[:, None] * D + offs_d[None, :]
    if HAS_DFIN:
        g = tl.load(
            dfin_ptr + fin_offs, mask=nmask[:, None] & dmask[None, :], other=0.0
        ).to(tl.float32)
    else:
        g = tl.zeros([NP, BD], dtype=tl.float32)
    l_base = dxl_ptr + bh.to(tl.int64) * NC * C * D
    l_offs = offs_c[:, None] * D + offs_d[None, :]
    b_base = beta_ptr + bh.to(tl.int64) * NC * NP * D
    b_offs = offs_n[:, None] * D + offs_d[None, :]
    x_base = dx_ptr + b.to(tl.int64) * T * H * D + h * D
    x_offs = offs_c[:, None] * (H * D) + offs_d[None, :]
    # the last (possibly short) chunk uses its own matrices
    c = NC - 1
    dx = tl.load(
        l_base + c * C * D + l_offs, mask=dmask[None, :], other=0.0
    ) + _dot(YMT1, g, PREC, False)
    tmask = (c * C + offs_c) < T
    tl.store(
        x_base + c * C * H * D + x_offs,
        dx.to(dx_ptr.dtype.element_ty),
        mask=tmask[:, None] & dmask[None, :],
    )
    g = _dot(AT1, g, PREC, False) + tl.load(
        b_base + c * NP * D + b_offs, mask=dmask[None, :], other=0.0
    )
    for i in range(0, NC - 1):
        c = NC - 2 - i
        dx = tl.load(
            l_base + c * C * D + l_offs, mask=dmask[None, :], other=0.0
        ) + _dot(YMT, g, PREC, False)
        tl.store(
            x_base + c * C * H * D + x_offs,
            dx.to(dx_ptr.dtype.element_ty),
            mask=dmask[None, :],
        )
        g = _dot(AT, g, PREC, False) + tl.load(
            b_base + c * NP * D + b_offs, mask=dmask[None, :], other=0.0
        )
    if HAS_INIT:
        tl.store(ds0_ptr + fin_offs, g, mask=nmask[:, None] & dmask[None, :])


@triton.jit
def _bwd_scan_kernel(
    dkl_ptr,
    dvl_ptr,
    bf_ptr,
    bg_ptr,
    dff_ptr,
    dgf_ptr,
    dk_ptr,
    dv_ptr,
    df0_ptr,
    dg0_ptr,
    A_ptr,
    YM_ptr,
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
    HAS_DFIN: tl.constexpr,
    HAS_INIT: tl.constexpr,
    PREC: tl.constexpr,
):
    """Grid ``(B*H, cdiv(DK, BD) + cdiv(DV, BD))``: keys' tiles first, then
    values'."""
    bh = tl.program_id(0)
    j = tl.program_id(1)
    b = bh // H
    h = bh % H
    if j < NKT:
        _scan_bwd_body(
            dkl_ptr,
            bf_ptr,
            dff_ptr,
            dk_ptr,
            df0_ptr,
            A_ptr,
            YM_ptr,
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
            HAS_DFIN,
            HAS_INIT,
            PREC,
        )
    else:
        _scan_bwd_body(
            dvl_ptr,
            bg_ptr,
            dgf_ptr,
            dv_ptr,
            dg0_ptr,
            A_ptr,
            YM_ptr,
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
            HAS_DFIN,
            HAS_INIT,
            PREC,
        )
