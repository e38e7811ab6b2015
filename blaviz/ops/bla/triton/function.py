"""``bla_triton``: the chunked Triton kernels behind a
``torch.autograd.Function``.

Forward: state scan (``_fwd_scan_kernel``) then outputs (``_fwd_out_kernel``);
the states entering every chunk (``[B, H, NC, NP, D]`` float32, as many numbers
as ``k`` when ``N ~ C``) and, when a gradient will be needed, the slot weights
(``[B, H, T, SP]`` float32) are kept for backward. Backward: per-chunk local
gradients (``_bwd_local_kernel``, two launches: value side from the saved slot
weights, then key side), then the adjoint scan (``_bwd_scan_kernel``). See the
two kernel modules for the algebra, and ``chunk_fwd`` for the two operand
precisions.

The launch helpers (:func:`chunk_plan`, :func:`fwd_scan`, :func:`fwd_out`,
:func:`bwd_local`, :func:`bwd_scan`) are public so that a benchmark or a
notebook can time or inspect one launch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton

from blaviz.ops.bla.state import BLAState, check_inputs
from blaviz.ops.bla.triton._consts import (
    ChunkConsts,
    chunk_consts,
    pow2_at_least_16,
)
from blaviz.ops.bla.triton.chunk_bwd import _bwd_local_kernel, _bwd_scan_kernel
from blaviz.ops.bla.triton.chunk_fwd import _fwd_out_kernel, _fwd_scan_kernel

MAX_HEAD_DIM = 128
PRECISIONS = ("tf32rn", "tf32x3", "tf32x3q", "bf16x3q")


@dataclass(frozen=True)
class LaunchConfig:
    """How the chunk kernels are launched (the defaults are the tuned
    configuration).

    * ``scan_bd``: d-tile of the scans, whose programs are (batch, head, K|V,
      d-tile): smaller tiles give more programs in flight for long sequences.
    * ``scan_warps``, ``scan_stages``: warps and software-pipelining stages of
      the scans.
    * ``out_warps``, ``bwd_warps``: warps of the per-chunk forward and backward
      programs.
    * ``score_dot``: operand precision of the score side for bf16/fp16 inputs
      (``chunk_fwd`` explains the two sides). ``tf32x3`` keeps the logits at
      float32 accuracy at any scale of ``q`` and ``k``; ``tf32x3q`` and
      ``bf16x3q`` keep that accuracy with cheaper products wherever one operand
      is the queries: two tf32 products (queries exact in tf32), or three bf16
      products with the other operand split into three bf16 parts (the
      default: half-size operand tiles; fp16 queries, not bf16 values, use
      ``tf32x3q``). ``tf32rn`` is one product everywhere, with logit errors
      that grow with ``|q| |k|``. float32 inputs always use ``tf32x3``.
    """

    scan_bd: int = 16
    scan_warps: int = 4
    scan_stages: int = 2
    out_warps: int = 4
    bwd_warps: int = 4
    score_dot: str = "bf16x3q"

    def __post_init__(self):
        for name in ("scan_warps", "out_warps", "bwd_warps"):
            val = getattr(self, name)
            if val not in (1, 2, 4, 8, 16):
                raise ValueError(
                    f"{name} must be one of 1, 2, 4, 8, 16, got {val!r}"
                )
        if self.scan_bd not in (16, 32, 64, 128):
            raise ValueError(
                f"scan_bd must be one of 16, 32, 64, 128, got {self.scan_bd!r}"
            )
        if (
            isinstance(self.scan_stages, bool)
            or not isinstance(self.scan_stages, int)
            or self.scan_stages < 1
        ):
            raise ValueError(
                f"scan_stages must be an integer >= 1, got {self.scan_stages!r}"
            )
        if self.score_dot not in PRECISIONS:
            raise ValueError(
                f"score_dot must be one of {PRECISIONS}, got {self.score_dot!r}"
            )


DEFAULT_LAUNCH = LaunchConfig()


@dataclass(frozen=True)
class ChunkPlan:
    """Everything a launch needs besides the tensors: the operand precision and
    fixed tables of each side (``score``: keys up to the slot weights;
    ``value``: the rest and the backward), ``N``, the chunk size ``C`` and the
    launch settings."""

    score: ChunkConsts
    value: ChunkConsts
    sprec: str
    prec: str
    N: int
    C: int
    launch: LaunchConfig


def chunk_plan(
    W: int,
    N: int,
    S: int,
    C: int,
    T: int,
    dtype: torch.dtype,
    device,
    launch: LaunchConfig = DEFAULT_LAUNCH,
) -> ChunkPlan:
    """The plan for inputs of ``dtype``: float32 -> ``tf32x3`` on both sides;
    bf16/fp16 -> ``launch.score_dot`` on the score side and ``tf32rn`` on the
    value side. ``tf32rn`` products read tables rounded to tf32 on the host;
    ``tf32x3`` products need the exact float32 tables.
    """
    full = dtype == torch.float32
    sprec, prec = ("tf32x3", "tf32x3") if full else (launch.score_dot, "tf32rn")
    if sprec == "bf16x3q" and dtype != torch.bfloat16:
        sprec = "tf32x3q"  # fp16 queries are not exact in bf16
    tables = {
        p: chunk_consts(W, N, S, C, T, device, rounded=p == "tf32rn")
        for p in {sprec, prec}
    }
    return ChunkPlan(tables[sprec], tables[prec], sprec, prec, N, C, launch)


#: The last compiled kernel of each launch site (GPU only), read by
#: :func:`kernel_stats`.
_launched: dict = {}


def _record(name, handle):
    if handle is not None and hasattr(handle, "n_spills"):
        _launched[name] = handle


def kernel_stats(clear: bool = False) -> dict:
    """Registers per thread, spilled registers and shared memory of the kernel
    each launch site ran last (GPU only; empty under the interpreter).
    ``clear``: forget them afterwards, so the next call reports only what
    launched in between."""
    out = {
        name: dict(
            n_regs=int(k.n_regs),
            n_spills=int(k.n_spills),
            shared_bytes=int(k.metadata.shared),
        )
        for name, k in _launched.items()
    }
    if clear:
        _launched.clear()
    return out


def fwd_scan(k, v, F0, G0, plan: ChunkPlan):
    """Launch the forward state scan; returns ``(fst, gst, ffin, gfin)``
    (float32: the states entering every chunk ``[B, H, NC, NP, D]`` and the
    final states ``[B, H, N, D]``)."""
    B, T, H, DK = k.shape
    DV = v.shape[-1]
    N, C, L = plan.N, plan.C, plan.launch
    dev, NP, NC = k.device, plan.value.NP, triton.cdiv(T, C)
    has_init = F0 is not None
    fst = torch.empty(B, H, NC, NP, DK, device=dev, dtype=torch.float32)
    gst = torch.empty(B, H, NC, NP, DV, device=dev, dtype=torch.float32)
    ffin = torch.empty(B, H, N, DK, device=dev, dtype=torch.float32)
    gfin = torch.empty(B, H, N, DV, device=dev, dtype=torch.float32)
    nkt, nvt = triton.cdiv(DK, L.scan_bd), triton.cdiv(DV, L.scan_bd)
    _record(
        "fwd_scan",
        _fwd_scan_kernel[(B * H, nkt + nvt)](
            k,
            v,
            F0 if has_init else ffin,
            G0 if has_init else gfin,
            fst,
            gst,
            ffin,
            gfin,
            plan.score.A,
            plan.score.YM,
            plan.value.A,
            plan.value.YM,
            T,
            H,
            N,
            DK,
            DV,
            NC,
            nkt,
            C=C,
            NP=NP,
            BD=L.scan_bd,
            HAS_INIT=has_init,
            SPREC=plan.sprec,
            PREC=plan.prec,
            num_warps=L.scan_warps,
            num_stages=L.scan_stages,
        ),
    )
    return fst, gst, ffin, gfin


def fwd_out(
    q,
    k,
    v,
    fst,
    gst,
    plan: ChunkPlan,
    t0: int,
    scale: float,
):
    """Launch the per-chunk output kernel twice (key side, storing the slot
    weights; then value side, reading them); returns ``(o, p)``: ``o`` in the
    input dtype, ``p`` the slot weights ``[B, H, NC*C, SP]`` float32 (the
    backward reads them too).
    """
    B, T, H, DK = q.shape
    DV = v.shape[-1]
    C, sk, sv = plan.C, plan.score, plan.value
    NC = triton.cdiv(T, C)
    o = torch.empty(B, T, H, DV, device=q.device, dtype=q.dtype)
    p = torch.empty(B, H, NC * C, sv.SP, device=q.device, dtype=torch.float32)
    for part in (1, 2):
        _record(
            f"fwd_out_{part}",
            _fwd_out_kernel[(NC, B * H)](
                q,
                k,
                v,
                fst,
                gst,
                o,
                p,
                sk.Cn,
                sk.Cn_sw,
                sk.Rs,
                sv.R,
                sv.Minv,
                sv.Cn,
                sv.Rs,
                sv.RsT_sw,
                sv.c0,
                sv.s0,
                sv.c1,
                sv.s1,
                sv.swap,
                sv.start,
                T,
                H,
                DK,
                DV,
                NC,
                t0,
                scale,
                C=C,
                NP=sv.NP,
                SP=sv.SP,
                DKP=pow2_at_least_16(DK),
                DVP=pow2_at_least_16(DV),
                SPREC=plan.sprec,
                PREC=plan.prec,
                PART=part,
                num_warps=plan.launch.out_warps,
                num_stages=1,
            ),
        )
    return o, p


def bwd_local(q, k, v, do, fst, gst, p, plan: ChunkPlan, scale: float):
    """Launch the per-chunk backward (value side, then key side) from the
    forward's slot weights ``p``; returns ``(dq, dk_local, dv_local, beta_F,
    beta_G)``."""
    B, T, H, DK = q.shape
    DV = v.shape[-1]
    C, cv = plan.C, plan.value
    dev, NP, NC = q.device, cv.NP, triton.cdiv(T, C)
    dq = torch.empty_like(q)
    dkl = torch.empty(B, H, NC * C, DK, device=dev, dtype=torch.float32)
    dvl = torch.empty(B, H, NC * C, DV, device=dev, dtype=torch.float32)
    bf = torch.empty(B, H, NC, NP, DK, device=dev, dtype=torch.float32)
    bg = torch.empty(B, H, NC, NP, DV, device=dev, dtype=torch.float32)
    dz = torch.empty(B, H, NC * C, cv.SP, device=dev, dtype=torch.float32)
    for part in (1, 2):
        _record(
            f"bwd_local_{part}",
            _bwd_local_kernel[(NC, B * H)](
                q,
                k,
                v,
                do,
                fst,
                gst,
                dq,
                dkl,
                dvl,
                bf,
                bg,
                dz,
                p,
                cv.R,
                cv.Minv,
                cv.Cn,
                cv.Cn_sw,
                cv.Rs,
                cv.RsT_sw,
                cv.c0,
                cv.s0,
                cv.c1,
                cv.s1,
                cv.swap,
                T,
                H,
                DK,
                DV,
                NC,
                scale,
                C=C,
                NP=NP,
                SP=cv.SP,
                DKP=pow2_at_least_16(DK),
                DVP=pow2_at_least_16(DV),
                PREC=plan.prec,
                PART=part,
                num_warps=plan.launch.bwd_warps,
                num_stages=1,
            ),
        )
    return dq, dkl, dvl, bf, bg


def bwd_scan(k, v, dkl, dvl, bf, bg, dff, dgf, plan: ChunkPlan, has_init: bool):
    """Launch the adjoint scan; returns ``(dk, dv, dF0 or None, dG0 or
    None)``."""
    B, T, H, DK = k.shape
    DV = v.shape[-1]
    N, C, L, cv = plan.N, plan.C, plan.launch, plan.value
    dev, NC = k.device, triton.cdiv(T, C)
    dk = torch.empty_like(k)
    dv = torch.empty_like(v)
    has_dfin = dff is not None or dgf is not None
    if has_dfin:
        dff = (
            torch.zeros(B, H, N, DK, device=dev)
            if dff is None
            else dff.float().contiguous()
        )
        dgf = (
            torch.zeros(B, H, N, DV, device=dev)
            if dgf is None
            else dgf.float().contiguous()
        )
    df0 = (
        torch.empty(B, H, N, DK, device=dev, dtype=torch.float32)
        if has_init
        else None
    )
    dg0 = (
        torch.empty(B, H, N, DV, device=dev, dtype=torch.float32)
        if has_init
        else None
    )
    nkt, nvt = triton.cdiv(DK, L.scan_bd), triton.cdiv(DV, L.scan_bd)
    _record(
        "bwd_scan",
        _bwd_scan_kernel[(B * H, nkt + nvt)](
            dkl,
            dvl,
            bf,
            bg,
            dff if has_dfin else bf,
            dgf if has_dfin else bg,
            dk,
            dv,
            df0 if has_init else bf,
            dg0 if has_init else bg,
            cv.A,
            cv.YM,
            T,
            H,
            N,
            DK,
            DV,
            NC,
            nkt,
            C=C,
            NP=cv.NP,
            BD=L.scan_bd,
            HAS_DFIN=has_dfin,
            HAS_INIT=has_init,
            PREC=plan.prec,
            num_warps=L.scan_warps,
            num_stages=L.scan_stages,
        ),
    )
    return dk, dv, df0, dg0


class _BLATriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, F0, G0, plan, scale, t0, need_grad):
        fst, gst, ffin, gfin = fwd_scan(k, v, F0, G0, plan)
        o, p = fwd_out(q, k, v, fst, gst, plan, t0, scale)
        ctx.save_for_backward(q, k, v, fst, gst, p if need_grad else None)
        ctx.cfg = (plan, scale, F0 is not None)
        ctx.set_materialize_grads(False)
        return o, ffin, gfin

    @staticmethod
    def backward(ctx, do, dff, dgf):
        q, k, v, fst, gst, p = ctx.saved_tensors
        plan, scale, has_init = ctx.cfg
        do = torch.zeros_like(v) if do is None else do.contiguous()
        dq, dkl, dvl, bf, bg = bwd_local(q, k, v, do, fst, gst, p, plan, scale)
        dk, dv, df0, dg0 = bwd_scan(
            k, v, dkl, dvl, bf, bg, dff, dgf, plan, has_init
        )
        return dq, dk, dv, df0, dg0, None, None, None, None


def bla_triton(
    q,
    k,
    v,
    window: int,
    resolution: int,
    *,
    num_slots: int | None = None,
    scale: float | None = None,
    chunk_size: int = 64,
    initial_state: BLAState | None = None,
    output_final_state: bool = False,
    launch: LaunchConfig | None = None,
):
    """Chunked BLA with Triton kernels (GPU, or the Triton interpreter on CPU).

    Same semantics and validation as :func:`blaviz.ops.bla.chunk.bla_chunk`;
    differentiable in ``q, k, v`` and the initial state. ``chunk_size`` must be
    a power of two >= 16 (tensor-core tiles); head dims up to 128. float64
    inputs are delegated to ``bla_chunk`` (Triton's float64 products are not
    worth a kernel here). The returned state is float32 ``[B, H, N, D]``, the
    layout :func:`bla_step_triton` reads and updates in place.

    Args:
        q, k: ``[B, T, H, Dk]``; v: ``[B, T, H, Dv]``; float32, bfloat16 or
            float16.
        launch: launch settings (default :data:`DEFAULT_LAUNCH`).
    Returns:
        ``(o [B, T, H, Dv], final_state or None)``.
    """
    W, N, S, scale, t0 = check_inputs(
        q, k, v, window, resolution, num_slots, scale, initial_state
    )
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or chunk_size < 16
        or chunk_size & (chunk_size - 1)
    ):
        raise ValueError(
            "chunk_size must be a power of two >= 16 for the Triton kernels, "
            f"got {chunk_size!r}"
        )
    if launch is None:
        launch = DEFAULT_LAUNCH
    elif not isinstance(launch, LaunchConfig):
        raise ValueError(
            "launch must be a LaunchConfig or None, got "
            f"{type(launch).__name__}"
        )
    if q.dtype == torch.float64:
        from blaviz.ops.bla.chunk import bla_chunk

        return bla_chunk(
            q,
            k,
            v,
            W,
            N,
            num_slots=S,
            scale=scale,
            chunk_size=chunk_size,
            initial_state=initial_state,
            output_final_state=output_final_state,
        )
    if q.shape[-1] > MAX_HEAD_DIM or v.shape[-1] > MAX_HEAD_DIM:
        raise ValueError(
            f"head dims up to {MAX_HEAD_DIM} are supported, "
            f"got {q.shape[-1]} and {v.shape[-1]}"
        )
    if not (q.device == k.device == v.device):
        raise ValueError("q, k, v must be on one device")
    F0 = G0 = None
    if initial_state is not None:
        F0 = initial_state.key_freq.to(
            device=q.device, dtype=torch.float32
        ).contiguous()
        G0 = initial_state.value_freq.to(
            device=q.device, dtype=torch.float32
        ).contiguous()
    need_grad = torch.is_grad_enabled() and any(
        x is not None and x.requires_grad for x in (q, k, v, F0, G0)
    )
    T = q.shape[1]
    plan = chunk_plan(W, N, S, chunk_size, T, q.dtype, q.device, launch)
    o, Ff, Gf = _BLATriton.apply(
        q.contiguous(),
        k.contiguous(),
        v.contiguous(),
        F0,
        G0,
        plan,
        scale,
        t0,
        need_grad,
    )
    return o, (BLAState(Ff, Gf, t0 + T) if output_final_state else None)
