"""``bla_triton``: the chunked Triton kernels behind a ``torch.autograd.Function``.

Forward: state scan (``_fwd_scan_kernel``) then outputs (``_fwd_out_kernel``); the states entering
every chunk (``[B, H, NC, NP, D]`` float32, as many numbers as ``k`` when ``N ~ C``) and, when a
gradient will be needed, the slot weights (``[B, H, T, SP]`` float32) are kept for backward.
Backward: per-chunk local gradients (``_bwd_local_kernel``, two launches: value side from the saved
slot weights, then key side; or one launch that recomputes them, ``CONFIG["bwd_split"] = False``),
then the adjoint scan (``_bwd_scan_kernel``). See the two kernel modules for the algebra.
"""
from __future__ import annotations

import json
import os

import torch
import triton

from blaviz.ops.bla.state import BLAState, check_inputs
from blaviz.ops.bla.triton._consts import ChunkConsts, chunk_consts, pow2_at_least_16
from blaviz.ops.bla.triton.chunk_bwd import _bwd_local_kernel, _bwd_scan_kernel
from blaviz.ops.bla.triton.chunk_fwd import _fwd_out_kernel, _fwd_scan_kernel

#: Launch settings (the benchmark may try others). ``scan_bd``: d-tile of the scans, whose
#: programs are (batch, head, K|V, d-tile): smaller tiles, more programs in flight for long T.
#: ``half_precision_dot``: operand precision of the products for bf16/fp16 inputs. Plain ``tf32``
#: missed the 5e-3 relative-RMS bar on dq and the initial-state gradient at W=512, N=63 (6.4e-3 and
#: 9.6e-3 on the H200): the tensor cores truncate float32 operands to tf32, and the bias adds up over
#: the scans. ``tf32x3`` passes (2.4e-3) but is slow: 7.6 ms forward end to end at T=8192, N=63
#: (results/bench/h200_run2.json). ``tf32rn`` rounds each operand to nearest tf32 in the kernel first
#: (an add and a mask per element): unbiased, 5-10x smaller error in a float64 emulation, one product
#: per dot. With it and the split backward, run 4 (results/bench/h200_run4.json) measured 2.61 ms forward
#: and 6.67 ms forward+backward at the same size, relative RMS error 2.5e-3.
#: ``bwd_split``: run the per-chunk backward as two launches (value side + softmax from the saved
#: slot weights, then key side), see ``_bwd_local_kernel``: ptxas reports about half the spills, and
#: the per-chunk backward went from 5.31 ms (one launch, plain tf32) to 3.31 ms.
#: ``out_warps``/``bwd_warps`` = 4: measured on the H200 (N=63, T=8192, C=64, run 4): 4 warps
#: 2.61 / 6.72 ms (forward / forward+backward), 8 warps 4.09 / 9.64 ms; C=32 was slower with either.
#: ``reuse_covectors``: the two rotations of each read (``rot_{-delta}`` and ``rot_{-(delta+1)}`` of
#: ``p Rs^T``, and the same for ``dZ`` in the backward) from one pair of products instead of two
#: (two ``C x SP x NP`` products fewer per chunk in the forward and in each backward launch), at
#: the price of one more ``[C, NP]`` tile alive.
#: ``preround``: with ``tf32rn``/``tf32`` products, read tables already rounded to tf32 on the host
#: (``_consts.round_tf32``) and skip rounding the bf16/fp16 inputs (tf32 holds them exactly): the
#: same products bit for bit, less element-wise work per product.
#: ``fwd_split``: the per-chunk forward as two launches (key side up to the slot weights, which it
#: stores; then the value side from them), as ``bwd_split`` does for the backward.
#: ``local_dot``: operand precision of the per-chunk kernels for bf16/fp16 inputs when it should
#: differ from the scans' (None: the same, ``half_precision_dot``). The scans carry a state over
#: hundreds of chunks, where a biased product error adds up; the per-chunk kernels do not.
#: The last four were compared on the H200 in one run (results/bench/h200_variants_run6.json, N=63, W=512,
#: T=8192, forward / forward+backward ms): before 2.61 / 6.76; ``preround`` 2.20 / 6.91; ``preround``
#: and ``reuse_covectors`` 2.22 / 6.65 (the defaults now); with ``fwd_split`` too 2.31 / 6.61;
#: ``local_dot="tf32"`` 2.28 / 6.80 and it failed one GPU test at 5e-3, so it stays off. Every
#: per-chunk kernel uses all 255 registers a thread may have and most spill (56-134 spilled
#: registers): register pressure, not arithmetic, bounds them.
CONFIG = {"scan_bd": 16, "scan_warps": 4, "scan_stages": 2, "out_warps": 4, "bwd_warps": 4,
          "half_precision_dot": "tf32rn", "bwd_split": True, "reuse_covectors": True,
          "preround": True, "fwd_split": False, "local_dot": None}



def update_config(overrides: dict) -> None:
    """Set kernel settings by name (unknown names are an error, not a silent no-op). At import, the
    environment variable ``BLAVIZ_TRITON_CONFIG`` (a JSON object) is applied through this: a test
    suite or a notebook can then run under other settings without editing code."""
    unknown = sorted(set(overrides) - set(CONFIG))
    if unknown:
        raise ValueError(f"unknown kernel setting(s) {unknown}; allowed: {sorted(CONFIG)}")
    CONFIG.update(overrides)


if os.environ.get("BLAVIZ_TRITON_CONFIG"):
    _env = json.loads(os.environ["BLAVIZ_TRITON_CONFIG"])
    if not isinstance(_env, dict):
        raise ValueError(f"BLAVIZ_TRITON_CONFIG must be a JSON object, got {_env!r}")
    update_config(_env)

#: The last compiled kernel of each launch site (GPU only): ``kernel_stats()`` reads its registers
#: and spills, which the benchmark records next to each timing.
_LAUNCHED: dict = {}

MAX_HEAD_DIM = 128


def _precision(dtype: torch.dtype) -> str:
    """Operand precision of every ``tl.dot`` in the scans (accumulation is always float32). float32
    inputs: ``tf32x3`` (each operand split in two tf32 parts, three products: float32-level accuracy on
    tensor cores; plain ``ieee`` products compile 5x slower and run on FMA units). bf16/fp16 inputs:
    ``CONFIG["half_precision_dot"]`` (``tf32rn``, see there)."""
    return "tf32x3" if dtype == torch.float32 else CONFIG["half_precision_dot"]


def _local_precision(dtype: torch.dtype) -> str:
    """Operand precision of the per-chunk kernels: as the scans', unless ``CONFIG["local_dot"]`` says
    otherwise for bf16/fp16 inputs."""
    if dtype == torch.float32 or CONFIG["local_dot"] is None:
        return _precision(dtype)
    return CONFIG["local_dot"]


def consts_for(W, N, S, C, T, device, prec) -> ChunkConsts:
    """The tables for kernels whose products use ``prec``: rounded to tf32 on the host when
    ``CONFIG["preround"]`` and the products read tf32 operands anyway, else exact float32."""
    return chunk_consts(W, N, S, C, T, device, rounded=bool(CONFIG["preround"]) and prec in ("tf32rn", "tf32"))


def _round_in_kernel(cc, prec) -> bool:
    """The kernels' ``RT`` flag: round the tables (and raw inputs) in the kernel unless ``cc`` holds
    rounded tables. Rounded tables with a product that needs exact ones is a caller's mistake."""
    if cc.rounded and prec not in ("tf32rn", "tf32"):
        raise ValueError(f"tf32-rounded tables need tf32rn or tf32 products, got {prec!r}")
    return not cc.rounded


def _record(name, handle):
    if handle is not None and hasattr(handle, "n_spills"):
        _LAUNCHED[name] = handle


def kernel_stats() -> dict:
    """Registers per thread, spilled registers and shared memory of the kernels launched last
    (GPU only; empty under the interpreter)."""
    return {name: dict(n_regs=int(k.n_regs), n_spills=int(k.n_spills), shared_bytes=int(getattr(k, "shared", 0)))
            for name, k in _LAUNCHED.items()}


def _const_args(cc):
    return (cc.R, cc.Minv, cc.Cn, cc.Cn_sw, cc.Rs, cc.RsT_sw, cc.c0, cc.s0, cc.c1, cc.s1, cc.swap, cc.start)


def fwd_scan(k, v, F0, G0, cc, N, C, prec):
    """Launch the forward state scan; returns ``(fst, gst, ffin, gfin)``."""
    B, T, H, DK = k.shape
    DV = v.shape[-1]
    dev, NP, NC = k.device, cc.NP, triton.cdiv(T, C)
    has_init = F0 is not None
    fst = torch.empty(B, H, NC, NP, DK, device=dev, dtype=torch.float32)
    gst = torch.empty(B, H, NC, NP, DV, device=dev, dtype=torch.float32)
    ffin = torch.empty(B, H, N, DK, device=dev, dtype=torch.float32)
    gfin = torch.empty(B, H, N, DV, device=dev, dtype=torch.float32)
    bd = CONFIG["scan_bd"]
    nkt, nvt = triton.cdiv(DK, bd), triton.cdiv(DV, bd)
    _record("fwd_scan", _fwd_scan_kernel[(B * H, nkt + nvt)](
        k, v, F0 if has_init else ffin, G0 if has_init else gfin, fst, gst, ffin, gfin, cc.A, cc.YM,
        T, H, N, DK, DV, NC, nkt, C=C, NP=NP, BD=bd, HAS_INIT=has_init, PREC=prec, RT=_round_in_kernel(cc, prec),
        num_warps=CONFIG["scan_warps"], num_stages=CONFIG["scan_stages"]))
    return fst, gst, ffin, gfin


def fwd_out(q, k, v, fst, gst, cc, C, t0, scale, prec, store_p=False):
    """Launch the per-chunk output kernel (two launches when ``CONFIG["fwd_split"]``); returns
    ``(o, p)``: ``o`` in the input dtype, ``p`` the slot weights ``[B, H, NC*C, SP]`` float32 when
    ``store_p`` (for the split backward), else None."""
    B, T, H, DK = q.shape
    DV = v.shape[-1]
    NC = triton.cdiv(T, C)
    split = bool(CONFIG["fwd_split"])
    o = torch.empty(B, T, H, DV, device=q.device, dtype=q.dtype)
    p = torch.empty(B, H, NC * C, cc.SP, device=q.device, dtype=torch.float32) if store_p or split else None
    for part in ((1, 2) if split else (0,)):
        _record(f"fwd_out_{part}" + ("_store_p" if part == 0 and p is not None else ""), _fwd_out_kernel[(NC, B * H)](
            q, k, v, fst, gst, o, o if p is None else p, *_const_args(cc), T, H, DK, DV, NC, t0, scale,
            C=C, NP=cc.NP, SP=cc.SP, DKP=pow2_at_least_16(DK), DVP=pow2_at_least_16(DV), PREC=prec,
            STORE_P=p is not None, REUSE=CONFIG["reuse_covectors"], PART=part, RT=_round_in_kernel(cc, prec),
            num_warps=CONFIG["out_warps"], num_stages=1))
    return o, (p if store_p else None)


def bwd_local(q, k, v, do, fst, gst, cc, C, t0, scale, prec, p=None):
    """Launch the per-chunk backward; returns ``(dq, dk_local, dv_local, beta_F, beta_G)``."""
    B, T, H, DK = q.shape
    DV = v.shape[-1]
    dev, NP, NC = q.device, cc.NP, triton.cdiv(T, C)
    dq = torch.empty_like(q)
    dkl = torch.empty(B, H, NC * C, DK, device=dev, dtype=torch.float32)
    dvl = torch.empty(B, H, NC * C, DV, device=dev, dtype=torch.float32)
    bf = torch.empty(B, H, NC, NP, DK, device=dev, dtype=torch.float32)
    bg = torch.empty(B, H, NC, NP, DV, device=dev, dtype=torch.float32)
    split = p is not None                    # the split backward reads the forward's slot weights
    dz = torch.empty(B, H, NC * C, cc.SP, device=dev, dtype=torch.float32) if split else bg
    for part in ((1, 2) if split else (0,)):
        _record(f"bwd_local_{part}", _bwd_local_kernel[(NC, B * H)](
            q, k, v, do, fst, gst, dq, dkl, dvl, bf, bg, dz, p if split else bg, *_const_args(cc),
            T, H, DK, DV, NC, t0, scale,
            C=C, NP=NP, SP=cc.SP, DKP=pow2_at_least_16(DK), DVP=pow2_at_least_16(DV), PREC=prec, PART=part,
            REUSE=CONFIG["reuse_covectors"], RT=_round_in_kernel(cc, prec),
            num_warps=CONFIG["bwd_warps"], num_stages=1))
    return dq, dkl, dvl, bf, bg


def bwd_scan(k, v, dkl, dvl, bf, bg, dff, dgf, cc, N, C, has_init, prec):
    """Launch the adjoint scan; returns ``(dk, dv, dF0 or None, dG0 or None)``."""
    B, T, H, DK = k.shape
    DV = v.shape[-1]
    dev, NC = k.device, triton.cdiv(T, C)
    dk = torch.empty_like(k)
    dv = torch.empty_like(v)
    has_dfin = dff is not None or dgf is not None
    if has_dfin:
        dff = torch.zeros(B, H, N, DK, device=dev) if dff is None else dff.float().contiguous()
        dgf = torch.zeros(B, H, N, DV, device=dev) if dgf is None else dgf.float().contiguous()
    df0 = torch.empty(B, H, N, DK, device=dev, dtype=torch.float32) if has_init else None
    dg0 = torch.empty(B, H, N, DV, device=dev, dtype=torch.float32) if has_init else None
    bd = CONFIG["scan_bd"]
    nkt, nvt = triton.cdiv(DK, bd), triton.cdiv(DV, bd)
    _record("bwd_scan", _bwd_scan_kernel[(B * H, nkt + nvt)](
        dkl, dvl, bf, bg, dff if has_dfin else bf, dgf if has_dfin else bg, dk, dv,
        df0 if has_init else bf, dg0 if has_init else bg, cc.A, cc.YM,
        T, H, N, DK, DV, NC, nkt, C=C, NP=cc.NP, BD=bd, HAS_DFIN=has_dfin, HAS_INIT=has_init, PREC=prec,
        RT=_round_in_kernel(cc, prec), num_warps=CONFIG["scan_warps"], num_stages=CONFIG["scan_stages"]))
    return dk, dv, df0, dg0


class _BLATriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, F0, G0, W, N, S, scale, t0, C, need_grad):
        T, prec, lprec = q.shape[1], _precision(q.dtype), _local_precision(q.dtype)
        fst, gst, ffin, gfin = fwd_scan(k, v, F0, G0, consts_for(W, N, S, C, T, q.device, prec), N, C, prec)
        o, p = fwd_out(q, k, v, fst, gst, consts_for(W, N, S, C, T, q.device, lprec), C, t0, scale, lprec,
                       store_p=need_grad and CONFIG["bwd_split"])
        ctx.save_for_backward(q, k, v, fst, gst, p)
        ctx.cfg = (W, N, S, scale, t0, C, F0 is not None)
        ctx.set_materialize_grads(False)
        return o, ffin, gfin

    @staticmethod
    def backward(ctx, do, dff, dgf):
        q, k, v, fst, gst, p = ctx.saved_tensors
        W, N, S, scale, t0, C, has_init = ctx.cfg
        T, prec, lprec = q.shape[1], _precision(q.dtype), _local_precision(q.dtype)
        do = torch.zeros_like(v) if do is None else do.contiguous()
        dq, dkl, dvl, bf, bg = bwd_local(q, k, v, do, fst, gst, consts_for(W, N, S, C, T, q.device, lprec), C, t0,
                                         scale, lprec, p)
        dk, dv, df0, dg0 = bwd_scan(k, v, dkl, dvl, bf, bg, dff, dgf, consts_for(W, N, S, C, T, q.device, prec), N, C,
                                    has_init, prec)
        return dq, dk, dv, df0, dg0, None, None, None, None, None, None, None


def bla_triton(q, k, v, window: int, resolution: int, *, num_slots: int | None = None,
               scale: float | None = None, chunk_size: int = 64, initial_state: BLAState | None = None,
               output_final_state: bool = False):
    """Chunked BLA with Triton kernels (GPU, or the Triton interpreter on CPU).

    Same semantics and validation as :func:`blaviz.ops.bla.chunk.bla_chunk`; differentiable in
    ``q, k, v`` and the initial state. ``chunk_size`` must be a power of two >= 16 (tensor-core tiles);
    head dims up to 128. float64 inputs are delegated to ``bla_chunk`` (Triton's float64 products
    are not worth a kernel here). The returned state is float32.

    Args:
        q, k: ``[B, T, H, Dk]``; v: ``[B, T, H, Dv]``; float32, bfloat16 or float16.
    Returns:
        ``(o [B, T, H, Dv], final_state or None)``.
    """
    W, N, S, scale, t0 = check_inputs(q, k, v, window, resolution, num_slots, scale, initial_state)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 16 \
            or chunk_size & (chunk_size - 1):
        raise ValueError(f"chunk_size must be a power of two >= 16 for the Triton kernels, got {chunk_size!r}")
    if q.dtype == torch.float64:
        from blaviz.ops.bla.chunk import bla_chunk
        return bla_chunk(q, k, v, W, N, num_slots=S, scale=scale, chunk_size=chunk_size,
                         initial_state=initial_state, output_final_state=output_final_state)
    if q.shape[-1] > MAX_HEAD_DIM or v.shape[-1] > MAX_HEAD_DIM:
        raise ValueError(f"head dims up to {MAX_HEAD_DIM} are supported, got {q.shape[-1]} and {v.shape[-1]}")
    if not (q.device == k.device == v.device):
        raise ValueError("q, k, v must be on one device")
    F0 = G0 = None
    if initial_state is not None:
        F0 = initial_state.key_freq.to(device=q.device, dtype=torch.float32).contiguous()
        G0 = initial_state.value_freq.to(device=q.device, dtype=torch.float32).contiguous()
    need_grad = torch.is_grad_enabled() and any(
        x is not None and x.requires_grad for x in (q, k, v, F0, G0))
    o, Ff, Gf = _BLATriton.apply(q.contiguous(), k.contiguous(), v.contiguous(), F0, G0,
                                 W, N, S, scale, t0, chunk_size, need_grad)
    T = q.shape[1]
    return o, (BLAState(Ff, Gf, t0 + T) if output_final_state else None)
