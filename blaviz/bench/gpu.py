"""GPU benchmark (H200): BLA's Triton kernels against flex-attention SWA, cuDNN attention and fla GSA.

bf16, H=16, d=64, B*T = 65536 tokens, T in {2048, 8192, 32768}. Every op passes a correctness check
(relative RMS against a float64/float32 reference on a small problem) before it is timed; one that
fails is reported and not timed. Medians of ``triton.testing.do_bench``. Throughput is also given as
a fraction of the HBM copy bandwidth measured in the same run, counting the fewest bytes the op must
move (inputs read once, outputs written once). BLA uses N in {15, 31, 63} (N must be odd when N < W;
these stand for 16, 32, 64) and W in {128, 512, 2048}.
"""
from __future__ import annotations

import os
import time
import traceback

from blaviz.bench._common import parse_value, provenance, save_json, table
from blaviz.testing import rel_rms

H, D = 16, 64
TOKENS = 65536
LENGTHS = (2048, 8192, 32768)
BLA_N = (15, 31, 63)
BLA_W = (128, 512, 2048)
FLEX_W = (64, 512)
GSA_M = (16, 32, 64)
DECODE_BATCH = 64
BREAKDOWN_T = (8192, 32768)


def _setup_env():
    base = os.environ.get("BLAVIZ_BENCH_CACHE", "/tmp/blaviz_bench_cache")
    os.environ.setdefault("TRITON_CACHE_DIR", os.path.join(base, "triton"))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(base, "inductor"))


def _cuda_ready() -> bool:
    """Set the compile caches up; say so and return False when there is no CUDA device."""
    _setup_env()
    import torch
    if not torch.cuda.is_available():
        print("no CUDA device: the GPU benchmark needs one")
        return False
    return True


def _gpu_provenance(**extra) -> dict:
    """The provenance record of a GPU benchmark file: commit, versions, host, plus the GPU and CUDA."""
    import torch
    prov = provenance()
    prov.update(gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda, **extra)
    return prov


def _bench(fn) -> float:
    from triton.testing import do_bench
    return float(do_bench(fn, warmup=25, rep=100, return_mode="median"))


def _rand(*shape, dtype=None, requires_grad=False):
    import torch
    x = torch.randn(*shape, device="cuda", dtype=dtype or torch.bfloat16)
    return x.requires_grad_(requires_grad)


class Runner:
    def __init__(self):
        self.rows, self.gates, self.errors = [], [], []

    def gate(self, op, cfg, err, tol):
        ok = bool(err == err and err <= tol)        # NaN fails
        self.gates.append(dict(op=op, **cfg, rel_rms=err, tol=tol, passed=ok))
        print(f"gate {op} {cfg}: rel RMS {err:.2e} (tol {tol:.0e}) {'ok' if ok else 'FAILED: not timed'}", flush=True)
        return ok

    def error(self, what, exc):
        msg = f"{what}: {type(exc).__name__}: {exc}"
        self.errors.append(msg)
        print("ERROR", msg, flush=True)
        traceback.print_exc()

    def time_op(self, op, cfg, T, fwd, fwdbwd, min_bytes_fwd, min_bytes_fb, bw):
        import torch
        B = TOKENS // T
        row = dict(op=op, **cfg, T=T, B=B)
        try:
            row["fwd_ms"] = _bench(fwd)
            if fwdbwd is not None:
                row["fwdbwd_ms"] = _bench(fwdbwd)
        except Exception as exc:  # noqa: BLE001
            self.error(f"time {op} {cfg} T={T}", exc)
        torch.cuda.synchronize()
        if "fwd_ms" in row:
            row["fwd_Mtok_s"] = TOKENS / row["fwd_ms"] / 1e3
            row["fwd_frac_hbm"] = min_bytes_fwd / (row["fwd_ms"] * 1e-3) / bw
        if "fwdbwd_ms" in row:
            row["fwdbwd_Mtok_s"] = TOKENS / row["fwdbwd_ms"] / 1e3
            row["fwdbwd_frac_hbm"] = min_bytes_fb / (row["fwdbwd_ms"] * 1e-3) / bw
        self.rows.append(row)
        print(f"{op:10s} {cfg} T={T:6d} B={B:3d}: fwd {row.get('fwd_ms', float('nan')):.3f} ms, "
              f"fwd+bwd {row.get('fwdbwd_ms', float('nan')):.3f} ms", flush=True)
        return row


def _min_bytes(n_tensors):
    return n_tensors * TOKENS * H * D * 2      # bf16 [B, T, H, D] tensors


# --------------------------------------------------------------------------------- BLA
def _bla_gate(R, W, N, C, label="bla", with_state=False, T=1000, launch=None):
    """The float64 check before any timing: relative RMS of o and of dq, dk, dv (and, ``with_state``,
    of the final state and of the initial state's gradients, the quantities the scans carry over
    every chunk) must all be <= 5e-3 for bf16 inputs."""
    import torch
    from blaviz.ops.bla import BLAState
    from blaviz.ops.bla.triton import bla_triton
    g = torch.Generator(device="cuda").manual_seed(W + N)
    q, k, v = (torch.randn(1, T, 4, D, device="cuda", generator=g).bfloat16() for _ in range(3))
    do = torch.randn(1, T, 4, D, device="cuda", generator=g)
    F0, G0, dF, dG = (torch.randn(1, 4, N, D, device="cuda", generator=g, dtype=torch.float64) for _ in range(4))

    def loss_and_grads(dtype, state_dtype):
        xs = [t.to(dtype).requires_grad_() for t in (q, k, v)]
        st = None
        if with_state:
            st = BLAState(F0.to(state_dtype).requires_grad_(), G0.to(state_dtype).requires_grad_(), 3)
        # float64 inputs: bla_triton hands them to the chunked PyTorch reference itself
        o, fin = bla_triton(*xs, W, N, chunk_size=C, initial_state=st, output_final_state=True, launch=launch)
        loss = (o.double() * do.double()).sum()
        wrt = xs
        if with_state:
            loss = loss + (fin.key_freq.double() * dF).sum() + (fin.value_freq.double() * dG).sum()
            wrt = xs + [st.key_freq, st.value_freq]
        outs = [o] + ([fin.key_freq, fin.value_freq] if with_state else [])
        return outs, torch.autograd.grad(loss, wrt)
    ref_o, ref_g = loss_and_grads(torch.float64, torch.float64)
    got_o, got_g = loss_and_grads(torch.bfloat16, torch.float32)
    err = max(rel_rms(a, b) for a, b in zip(list(got_o) + list(got_g), list(ref_o) + list(ref_g)))
    return R.gate(label, dict(W=W, N=N, C=C, T=T, with_state=with_state), err, 5e-3)


def _bla_fns(T, W, N, C, launch=None):
    import torch
    from blaviz.ops.bla.triton import bla_triton
    B = TOKENS // T
    q, k, v = (_rand(B, T, H, D, requires_grad=True) for _ in range(3))
    do = _rand(B, T, H, D)

    def fwd():
        with torch.no_grad():
            return bla_triton(q, k, v, W, N, chunk_size=C, launch=launch)

    def fwdbwd():
        o, _ = bla_triton(q, k, v, W, N, chunk_size=C, launch=launch)
        return torch.autograd.grad(o, (q, k, v), do)
    return fwd, fwdbwd


#: Launch settings timed beside the defaults in the ``variants`` section (N=63, W=512, T=8192):
#: ``{name: (LaunchConfig overrides, chunk size)}``. The defaults are not changed by the run.
VARIANTS = {
    "default": ({}, 64),
    "out_warps_8": ({"out_warps": 8}, 64),
    "score_tf32rn": ({"score_dot": "tf32rn"}, 64),
    "score_tf32x3": ({"score_dot": "tf32x3"}, 64),
    "score_tf32x3q": ({"score_dot": "tf32x3q"}, 64),
}
#: The settings the ``variants`` section may choose for the rest of a run: those that change how
#: the work is launched, not the precision of a product (the GPU tests ran with the defaults').
STRUCTURAL = ("scan_bd", "scan_warps", "scan_stages", "out_warps", "bwd_warps")


def bench_bla_variants(R, bw, variants=None, rounds=2):
    """Launch settings at N=63, W=512, T=8192, each gated against float64 (with an initial state)
    first, timed in alternating rounds (best of the rounds' medians), with each kernel's registers
    and spills. Returns ``(rows, chosen)``: the fastest (forward+backward) of the variants that
    passed their gate and differ from the defaults only in :data:`STRUCTURAL` settings."""
    import dataclasses
    from blaviz.ops.bla.triton import DEFAULT_LAUNCH, LaunchConfig, kernel_stats
    variants = VARIANTS if variants is None else variants
    ok, gate_ok, fns, stats = {}, {}, {}, {}
    times = {name: {"fwd_ms": [], "fwdbwd_ms": []} for name in variants}
    for name, (over, C) in variants.items():
        try:
            launch = LaunchConfig(**{**dataclasses.asdict(DEFAULT_LAUNCH), **over})
            # a variant that fails its gate is still timed (to know what the precision would buy)
            # but marked, and never becomes a default
            gate_ok[name] = _bla_gate(R, 512, 63, C, label=f"variant {name}", with_state=True, launch=launch)
            fns[name] = _bla_fns(8192, 512, 63, C, launch)
            ok[name] = True
        except Exception as exc:  # noqa: BLE001
            R.error(f"variant {name}", exc)
            ok[name] = False
    for r in range(rounds):
        for name in variants:
            if not ok.get(name):
                continue
            try:
                fwd, fb = fns[name]
                kernel_stats(clear=True)
                times[name]["fwd_ms"].append(_bench(fwd))
                times[name]["fwdbwd_ms"].append(_bench(fb))
                stats.setdefault(name, kernel_stats())
            except Exception as exc:  # noqa: BLE001
                R.error(f"time variant {name}", exc)
                ok[name] = False
                continue
            print(f"round {r} {name}: fwd {times[name]['fwd_ms'][-1]:.3f} ms, "
                  f"fwd+bwd {times[name]['fwdbwd_ms'][-1]:.3f} ms", flush=True)
    rows = [dict(value=name, overrides=variants[name][0], chunk_size=variants[name][1], T=8192, W=512, N=63,
                 passed_gate=gate_ok.get(name, False),
                 fwd_ms=min(t["fwd_ms"]), fwdbwd_ms=min(t["fwdbwd_ms"]), all=t, kernels=stats.get(name, {}))
            for name, t in times.items() if t["fwd_ms"] and t["fwdbwd_ms"]]
    for row in rows:
        print("variant", row["value"], row["fwd_ms"], row["fwdbwd_ms"],
              {k: (v["n_regs"], v["n_spills"]) for k, v in row["kernels"].items()}, flush=True)
    eligible = [r for r in rows if r["passed_gate"] and r["chunk_size"] == 64 and set(r["overrides"]) <= set(STRUCTURAL)]
    best = min(eligible, key=lambda r: r["fwdbwd_ms"], default=None)
    chosen = LaunchConfig(**{**dataclasses.asdict(DEFAULT_LAUNCH), **(best["overrides"] if best else {})})
    print("chosen launch settings:", chosen, flush=True)
    return rows, chosen


def bench_accuracy(R):
    """bf16 at large logits: q and k scaled by 1, 10 and 100; relative RMS of o against float64 on the
    same rounded inputs, for the Triton path (every score-side precision) and the PyTorch chunk form."""
    import torch
    from blaviz.ops.bla import bla_chunk
    from blaviz.ops.bla.triton import DEFAULT_LAUNCH, LaunchConfig, bla_triton
    from blaviz.testing import rel_rms as rr
    rows = []
    W, N, T = 512, 63, 2048
    g = torch.Generator(device="cuda").manual_seed(11)
    for s in (1, 10, 100):
        q, k, v = (torch.randn(2, T, 4, D, device="cuda", generator=g) for _ in range(3))
        q, k, v = (x.bfloat16() for x in (q * s, k * s, v))
        ref, _ = bla_chunk(q.double(), k.double(), v.double(), W, N)
        row = dict(scale=s, W=W, N=N, T=T, chunk=rr(bla_chunk(q, k, v, W, N)[0], ref))
        for sd in ("tf32x3", "tf32x3q", "bf16x3q", "tf32rn"):
            row[f"triton_{sd}"] = rr(bla_triton(q, k, v, W, N, launch=LaunchConfig(score_dot=sd))[0], ref)
        row["ratio_default"] = row[f"triton_{DEFAULT_LAUNCH.score_dot}"] / row["chunk"]
        rows.append(row)
        print("accuracy", row, flush=True)
    return rows


def bench_bla(R, bw, C, launch=None):
    for N in BLA_N:
        for W in BLA_W:
            try:
                if not _bla_gate(R, W, N, C, launch=launch):
                    continue
            except Exception as exc:  # noqa: BLE001
                R.error(f"gate bla W={W} N={N}", exc)
                continue
            for T in LENGTHS:
                try:
                    fwd, fb = _bla_fns(T, W, N, C, launch)
                except Exception as exc:  # noqa: BLE001
                    R.error(f"bla inputs T={T}", exc)
                    continue
                R.time_op("bla", dict(W=W, N=N), T, fwd, fb, _min_bytes(4), _min_bytes(11), bw)


def training_step_launches(q, k, v, do, plan, scale):
    """The four launches of one training step without an initial state, in order: forward scan,
    forward outputs, per-chunk backward, adjoint scan. Returns the tensors the later launches read,
    ``(fst, gst, p, dkl, dvl, bf, bg)``. Used by the breakdown and by :mod:`blaviz.bench.regs`."""
    from blaviz.ops.bla.triton import bwd_local, bwd_scan, fwd_out, fwd_scan
    fst, gst, _, _ = fwd_scan(k, v, None, None, plan)
    _, p = fwd_out(q, k, v, fst, gst, plan, 0, scale)
    _, dkl, dvl, bf, bg = bwd_local(q, k, v, do, fst, gst, p, plan, scale)
    bwd_scan(k, v, dkl, dvl, bf, bg, None, None, plan, False)
    return fst, gst, p, dkl, dvl, bf, bg


def bench_bla_breakdown(C, launch=None):
    """Each of the four launches alone (N=63, W=512), with registers and spills."""
    import torch
    from blaviz.ops.bla.triton import (DEFAULT_LAUNCH, bwd_local, bwd_scan, chunk_plan, fwd_out, fwd_scan,
                                       kernel_stats)
    out = []
    for T in BREAKDOWN_T:
        B = TOKENS // T
        q, k, v, do = (_rand(B, T, H, D) for _ in range(4))
        plan, scale = chunk_plan(512, 63, 63, C, T, torch.bfloat16, q.device, launch or DEFAULT_LAUNCH), D ** -0.5
        kernel_stats(clear=True)
        fst, gst, p, dkl, dvl, bf, bg = training_step_launches(q, k, v, do, plan, scale)
        row = dict(T=T, B=B, C=C, precision=dict(score=plan.sprec, value=plan.prec),
                   launch=dict(plan.launch.__dict__), fwd_scan_ms=_bench(lambda: fwd_scan(k, v, None, None, plan)),
                   fwd_out_store_p_ms=_bench(lambda: fwd_out(q, k, v, fst, gst, plan, 0, scale)),
                   bwd_local_ms=_bench(lambda: bwd_local(q, k, v, do, fst, gst, p, plan, scale)),
                   bwd_scan_ms=_bench(lambda: bwd_scan(k, v, dkl, dvl, bf, bg, None, None, plan, False)))
        row["kernels"] = kernel_stats()                # registers and spills of every launch timed above
        out.append(row)
        print("breakdown", row, flush=True)
        del fst, gst, dkl, dvl, bf, bg, p
        torch.cuda.empty_cache()
    return out


# --------------------------------------------------------------------------------- baselines
def bench_flex(R, bw, after_each=None):
    """flex-attention's sliding window at each of :data:`FLEX_W`, gated against dense SDPA;
    ``after_each()`` (the run's save) follows every timed length, since each compiles for
    minutes: a call stopped by its time limit keeps the rows already timed."""
    import torch
    import torch.nn.functional as Fn
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    import torch._dynamo
    # one compiled graph per (W, T, grad) combination: raise dynamo's limit (default 8), else it
    # silently falls back to the unfused eager path (seen: 272 ms and out-of-memory at T=32768)
    torch._dynamo.config.cache_size_limit = 64
    if hasattr(torch._dynamo.config, "recompile_limit"):
        torch._dynamo.config.recompile_limit = 64
    flex = torch.compile(flex_attention, dynamic=False)

    def mask_for(W):
        def swa(b, h, q_idx, kv_idx):
            return (q_idx >= kv_idx) & (q_idx - kv_idx < W)
        return swa

    for W in FLEX_W:
        try:
            T0 = 1024
            q, k, v = (_rand(1, 2, T0, D) for _ in range(3))
            bm = create_block_mask(mask_for(W), None, None, T0, T0, device="cuda")
            o = flex(q, k, v, block_mask=bm)
            i = torch.arange(T0, device="cuda")
            dense = (i[:, None] >= i[None, :]) & (i[:, None] - i[None, :] < W)
            ref = Fn.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=dense)
            if not R.gate("flex_swa", dict(W=W), rel_rms(o, ref), 5e-3):
                continue
        except Exception as exc:  # noqa: BLE001
            R.error(f"flex gate W={W}", exc)
            continue
        for T in LENGTHS:
            if T != 8192 and (W != 512 or T < 8192):
                continue                      # compile time: W=64 at T=8192, W=512 at T=8192 and 32768
            B = TOKENS // T
            try:
                q, k, v = (_rand(B, H, T, D, requires_grad=True) for _ in range(3))
                do = _rand(B, H, T, D)
                bm = create_block_mask(mask_for(W), None, None, T, T, device="cuda")

                qd, kd, vd = (t.detach() for t in (q, k, v))

                def fwd():                    # no torch.no_grad(): a grad-mode change recompiles
                    return flex(qd, kd, vd, block_mask=bm)

                def fb():
                    return torch.autograd.grad(flex(q, k, v, block_mask=bm), (q, k, v), do)
            except Exception as exc:  # noqa: BLE001
                R.error(f"flex T={T} W={W}", exc)
                continue
            R.time_op("flex_swa", dict(W=W), T, fwd, fb, _min_bytes(4), _min_bytes(11), bw)
            if after_each is not None:
                after_each()


def bench_cudnn(R, bw, after_each=None):
    """cuDNN's causal attention at every length, gated against float32 SDPA; ``after_each()``
    follows every timed length."""
    import torch
    import torch.nn.functional as Fn
    from torch.nn.attention import SDPBackend, sdpa_kernel
    try:
        q, k, v = (_rand(1, 2, 1024, D) for _ in range(3))
        with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
            o = Fn.scaled_dot_product_attention(q, k, v, is_causal=True)
        ref = Fn.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
        if not R.gate("cudnn_causal", {}, rel_rms(o, ref), 5e-3):
            return
    except Exception as exc:  # noqa: BLE001
        R.error("cudnn gate", exc)
        return
    for T in LENGTHS:
        B = TOKENS // T
        q, k, v = (_rand(B, H, T, D, requires_grad=True) for _ in range(3))
        do = _rand(B, H, T, D)

        def fwd():
            with torch.no_grad(), sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                return Fn.scaled_dot_product_attention(q, k, v, is_causal=True)

        def fb():
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                o = Fn.scaled_dot_product_attention(q, k, v, is_causal=True)
            return torch.autograd.grad(o, (q, k, v), do)
        R.time_op("cudnn_causal", {}, T, fwd, fb, _min_bytes(4), _min_bytes(11), bw)
        if after_each is not None:
            after_each()


def _gsa_inputs(B, T, M, requires_grad=False):
    import torch
    import torch.nn.functional as Fn
    q, k, v = (_rand(B, T, H, D, requires_grad=requires_grad) for _ in range(3))
    s = _rand(B, T, H, M, requires_grad=requires_grad)
    g = Fn.logsigmoid(torch.randn(B, T, H, M, device="cuda")).div(16).bfloat16().requires_grad_(requires_grad)
    return q, k, v, s, g


def _gsa_lengths(M: int, lengths) -> list[int]:
    """The lengths fla's GSA is timed at for ``M`` slots: T = 8192, and every length at M = 64."""
    return [T for T in lengths if T == 8192 or M == 64]


def fla_gsa_first_calls(M: int, lengths=LENGTHS) -> None:
    """fla's chunked GSA, forward and backward, once at every shape :func:`bench_gsa` runs for
    slot count ``M``: its first calls, which compile every autotuning configuration of each kernel
    into the Triton cache. Run by :func:`compile_fla_gsa` in a process of its own."""
    import torch
    from fla.ops.gsa import chunk_gsa
    shapes = [(TOKENS // T, T) for T in _gsa_lengths(M, lengths)] + [(1, 256)]
    for B, T in shapes:
        q, k, v, s, g = _gsa_inputs(B, T, M, requires_grad=True)
        o, _ = chunk_gsa(q, k, v, s, g)
        torch.autograd.grad(o, (q, k, v, s, g), torch.randn_like(o))
        torch.cuda.synchronize()


def compile_fla_gsa(Ms, lengths=LENGTHS, timeout_s: float = 600.0) -> dict:
    """Make fla's GSA first calls for every slot count in ``Ms`` side by side, one process each,
    before anything is timed. A first call compiles dozens of configurations per kernel one after
    another (minutes on one CPU core) and times each once compiled; fla keeps each kernel's choice
    in the Triton cache, where the timed run finds it. The processes share the GPU only while one
    of them times a configuration (a fraction of a second after seconds of compiling), so the
    choices are nearly those of a process alone. Returns each ``M``'s exit code (None: timed out)
    and the wall time."""
    import subprocess
    import sys
    procs = {M: subprocess.Popen([sys.executable, "-c",
                                  "import blaviz.bench.gpu as g; g._cuda_ready(); "
                                  f"g.fla_gsa_first_calls({M}, {tuple(lengths)})"])
             for M in Ms}
    t0, codes = time.perf_counter(), {}
    for M, p in procs.items():
        try:
            codes[M] = p.wait(timeout=max(1.0, timeout_s - (time.perf_counter() - t0)))
        except subprocess.TimeoutExpired:
            p.kill()
            codes[M] = None
    wall = time.perf_counter() - t0
    print(f"fla GSA kernels compiled for M={list(Ms)} in {wall:.0f} s: {codes}", flush=True)
    return dict(exit_codes={str(M): c for M, c in codes.items()}, wall_s=round(wall, 1))


def bench_gsa(R, bw, after_each=None):
    """fla's chunked GSA at every slot count of :data:`GSA_M`, gated against our float64 GSA.

    fla autotunes each kernel on its first call, keyed by head count and sizes but not by batch
    or length, so the first call decides the configuration every later shape uses. That call is
    therefore made at the timed shape (forward and backward), before the small-shape gate and
    untimed; without :func:`compile_fla_gsa` before it, it takes minutes per ``M`` (compiling),
    and ``after_each()`` (the run's save) follows every ``M``: a call stopped by its time limit
    keeps the slot counts already timed."""
    import torch
    try:
        from fla.ops.gsa import chunk_gsa
    except Exception as exc:  # noqa: BLE001
        R.error("fla import", exc)
        return
    from blaviz.ops.gsa import gsa_attention
    for M in GSA_M:
        gated = False
        for T in _gsa_lengths(M, LENGTHS):
            B = TOKENS // T
            q, k, v, s, g = _gsa_inputs(B, T, M, requires_grad=True)
            do = _rand(B, T, H, D)

            def fwd():
                with torch.no_grad():
                    return chunk_gsa(q, k, v, s, g)

            def fb():
                o, _ = chunk_gsa(q, k, v, s, g)
                return torch.autograd.grad(o, (q, k, v, s, g), do)
            try:
                fb()                # the autotuning call, at the timed shape: not timed
                torch.cuda.synchronize()
                print(f"fla_gsa M={M} T={T}: autotuned", flush=True)
                if not gated:       # once per M, before its first timing
                    sq, sk, sv, ss, sg = _gsa_inputs(1, 256, M)
                    o, _ = chunk_gsa(sq, sk, sv, ss, sg)
                    ref, _ = gsa_attention(*(t.double() for t in (sq, sk, sv, ss, sg)))
                    # 1e-2 for this baseline: fla's bf16 GSA measured 5.35e-3 at M=16 (first H200
                    # run), a precision difference of its kernel, not a wrong op; BLA's gates stay 5e-3.
                    if not R.gate("fla_gsa", dict(M=M), rel_rms(o, ref), 1e-2):
                        break
                    gated = True
            except Exception as exc:  # noqa: BLE001
                R.error(f"gsa M={M} T={T}", exc)
                break
            R.time_op("fla_gsa", dict(M=M), T, fwd, fb, _min_bytes(4) + 2 * TOKENS * H * M * 2,
                      _min_bytes(11) + 6 * TOKENS * H * M * 2, bw)
        if after_each is not None:
            after_each()


def _graph_time(fn):
    import torch
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    torch.cuda.synchronize()
    return _bench(g.replay) * 1e3        # microseconds


DECODE_LOOP = 16


def bench_decode(R, bw):
    """One decoding step at batch 64, W=512, per N: the raw kernel (``bla_step_triton``) and the
    public ``bla_step`` (in place, preallocated output, ``check_finite=False``), each replayed from
    a CUDA graph; the public step called eagerly (Python and launch overhead included); and one
    captured loop of ``DECODE_LOOP`` public steps from a prefill's state (per-token time)."""
    import torch
    from blaviz.ops.bla import bla_attention, bla_step
    from blaviz.ops.bla.triton import bla_step_triton
    rows = []
    Bd, W = DECODE_BATCH, 512
    for N in BLA_N:
        try:
            (q, k, v, st), (ro, rs) = _decode_inputs(D, N)
            o, new = bla_step(q, k, v, st, W, N)
            err = max(rel_rms(o, ro), rel_rms(new.key_freq, rs.key_freq), rel_rms(new.value_freq, rs.value_freq))
            if not R.gate("bla_decode", dict(W=W, N=N), err, 5e-3):
                continue
            out = torch.empty_like(o)
            raw = _graph_time(lambda: bla_step_triton(q, k, v, st, W, N, out_state=st, out=out))
            api = _graph_time(lambda: bla_step(q, k, v, st, W, N, check_finite=False, out_state=st, out=out))
            eager = _bench(lambda: bla_step(q, k, v, st, W, N, check_finite=False, out_state=st, out=out)) * 1e3
            # a captured loop of DECODE_LOOP tokens after a prefill of 1024 (t >= W: no start mask)
            qs, ks, vs = (_rand(Bd, 1024 + DECODE_LOOP, H, D) for _ in range(3))
            _, pre = bla_attention(qs[:, :1024], ks[:, :1024], vs[:, :1024], W, N, output_final_state=True,
                                   check_finite=False)
            steps = [tuple(x[:, 1024 + i].contiguous() for x in (qs, ks, vs)) for i in range(DECODE_LOOP)]
            outs = [torch.empty(Bd, H, D, device="cuda", dtype=torch.bfloat16) for _ in range(DECODE_LOOP)]

            def loop():
                s_ = pre
                for i, (qi, ki, vi) in enumerate(steps):
                    _, s_ = bla_step(qi, ki, vi, s_, W, N, check_finite=False, out_state=pre, out=outs[i])
            loop_us = _graph_time(loop) / DECODE_LOOP
            state_bytes = _decode_bytes(N, D)
            rows.append(dict(op="bla_decode", W=W, N=N, batch=Bd, us=api, raw_kernel_us=raw, api_over_raw=api / raw,
                             eager_api_us=eager, loop_us_per_token=loop_us, state_MiB=state_bytes / 2 / 2**20,
                             frac_hbm=state_bytes / (api * 1e-6) / bw))
            print("decode", rows[-1], flush=True)
        except Exception as exc:  # noqa: BLE001
            R.error(f"decode N={N}", exc)
    try:
        from fla.ops.gsa.fused_recurrent import fused_recurrent_gsa_inference
        from blaviz.ops.gsa import gsa_attention
        M = 64
        q, k, v, s, g = _gsa_inputs(Bd, 1, M)
        hk = torch.randn(Bd, H, D, M, device="cuda")
        hv = torch.randn(Bd, H, M, D, device="cuda")
        o, _ = fused_recurrent_gsa_inference(q, k, v, s, g, initial_state=(hk, hv), output_final_state=True,
                                             scale=D ** -0.5)
        ref, _ = gsa_attention(*(t.double() for t in (q, k, v, s, g)), initial_state=(hk.double(), hv.double()))
        if R.gate("fla_gsa_decode", dict(M=M), rel_rms(o, ref), 5e-3):
            us = _graph_time(lambda: fused_recurrent_gsa_inference(q, k, v, s, g, initial_state=(hk, hv),
                                                                   output_final_state=True, scale=D ** -0.5))
            rows.append(dict(op="fla_gsa_decode", M=M, batch=Bd, us=us))
            print("decode", rows[-1], flush=True)
    except Exception as exc:  # noqa: BLE001
        R.error("fla gsa decode", exc)
    return rows


def copy_bandwidth() -> float:
    import torch
    n = 1 << 30                                  # 1 GiB of bf16 read + 1 GiB written
    x = torch.randn(n // 2, device="cuda", dtype=torch.bfloat16)
    y = torch.empty_like(x)
    ms = _bench(lambda: y.copy_(x))
    del x, y
    torch.cuda.empty_cache()
    return 2 * n / (ms * 1e-3)


def parse_variants(text: str) -> dict:
    """``"base:;r:score_dot=tf32rn;c:C=32,out_warps=8"`` -> ``{name: (LaunchConfig overrides, C)}``
    (values as :func:`blaviz.bench._common.parse_value` reads them; ``C`` is the chunk size, 64 unless
    given; an empty list is the defaults)."""
    import dataclasses
    from blaviz.ops.bla.triton import LaunchConfig
    keys = [f.name for f in dataclasses.fields(LaunchConfig)] + ["C"]
    out = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, body = part.partition(":")
        if not name or name in out:
            raise ValueError(f"variants: each needs a new name before ':', got {part!r}")
        over, C = {}, 64
        for item in filter(None, (x.strip() for x in body.split(","))):
            key, eq, val = item.partition("=")
            if not eq or key not in keys:
                raise ValueError(f"variants: {item!r} must be KEY=VALUE with KEY one of {keys}")
            if key == "C":
                C = parse_value(val)
            else:
                over[key] = parse_value(val)
        LaunchConfig(**over)                      # refuse bad values before any GPU time is spent
        out[name] = (over, C)
    if not out:
        raise ValueError("variants: none given")
    return out


def run_ab(key: str, values, out=None, rounds: int = 2) -> int:
    """``python -m blaviz.bench ab --key K --values A,B``: :func:`run_variants` with one launch
    setting ``K`` (a :class:`LaunchConfig` field, or ``C``) at each value."""
    return run_variants(parse_variants(";".join(f"{key}={v}:{key}={v}" for v in values)),
                        out=out or os.path.join("results", "bench", f"h200_ab_{key}.json"), rounds=rounds)


def run_variants(variants: dict, out=None, rounds: int = 2) -> int:
    """``python -m blaviz.bench ab --variants "name:k=v,k=v;..."``: launch settings compared in one
    run at N = 63, W = 512, T = 8192 (:func:`bench_bla_variants`). Writes
    ``results/bench/h200_variants.json`` unless ``out`` says otherwise."""
    if not _cuda_ready():
        return 1
    import dataclasses
    R = Runner()
    rows, chosen = bench_bla_variants(R, None, variants, rounds)
    defaults = dict(dataclasses.asdict(chosen), chosen=True)
    save_json(out or os.path.join("results", "bench", "h200_variants.json"),
              dict(provenance=_gpu_provenance(), config=dict(variants=variants, defaults=defaults, W=512, N=63,
                                                             T=8192, B=TOKENS // 8192, H=H, D=D, dtype="bfloat16",
                                                             rounds=rounds,
                                                             timing="best of the rounds' do_bench medians"),
                   rows=rows, gates=R.gates, errors=R.errors))
    print(table(rows, ["value", "chunk_size", "fwd_ms", "fwdbwd_ms"]))
    return 0 if not R.errors else 2


def _decode_inputs(d, N):
    """Batch-64 decoding inputs at head dim ``d``: bf16 ``q, k, v``, a float32 state at position
    4096, and the float64 reference step ``(o, state)``."""
    import torch
    from blaviz.ops.bla import BLAState, bla_step_reference
    q, k, v = (torch.randn(DECODE_BATCH, H, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    st = BLAState(torch.randn(DECODE_BATCH, H, N, d, device="cuda"),
                  torch.randn(DECODE_BATCH, H, N, d, device="cuda"), 4096)
    ref = bla_step_reference(q.double(), k.double(), v.double(),
                             BLAState(st.key_freq.double(), st.value_freq.double(), 4096), 512, N)
    return (q, k, v, st), ref


def _decode_case(R, inputs, ref, N, cfg, **launch):
    """Gate one decode launch (``bla_step_triton(..., **launch)``) against the float64 step, then
    time it in place from a CUDA graph (µs); ``None`` when the gate fails."""
    from blaviz.ops.bla import BLAState
    from blaviz.ops.bla.triton import bla_step_triton
    q, k, v, st = inputs
    o, new = bla_step_triton(q, k, v, st, 512, N, **launch)
    err = max(rel_rms(o, ref[0]), rel_rms(new.key_freq, ref[1].key_freq), rel_rms(new.value_freq, ref[1].value_freq))
    if not R.gate("bla_decode", cfg, err, 5e-3):
        return None
    buf = BLAState(new.key_freq.clone(), new.value_freq.clone(), 4096)
    return _graph_time(lambda: bla_step_triton(q, k, v, buf, 512, N, out_state=buf, **launch))


def _decode_bytes(N, d):
    """HBM bytes one decode step must move: the float32 state read and written, keys and values."""
    return 2 * 2 * DECODE_BATCH * H * N * d * 4


def run_decode_warps(out=None) -> int:
    """``python -m blaviz.bench decode-warps``: the fused decode step at every ``num_warps``, for
    N = 15, 31, 63 and head dims 64 and 128 (batch 64, 16 heads, W = 512), each configuration
    gated against the float64 reference first. Writes ``results/bench/h200_decode_warps.json``."""
    if not _cuda_ready():
        return 1
    from blaviz.ops.bla.triton import decode_warps, pow2_at_least_32
    R = Runner()
    bw = copy_bandwidth()
    rows = []
    for d in (64, 128):
        for N in BLA_N:
            inputs, ref = _decode_inputs(d, N)
            for nw in (1, 2, 4, 8, 16):
                try:
                    us = _decode_case(R, inputs, ref, N, dict(W=512, N=N, D=d, num_warps=nw), num_warps=nw)
                    if us is None:
                        continue
                    rows.append(dict(N=N, D=d, num_warps=nw, us=us, frac_hbm=_decode_bytes(N, d) / (us * 1e-6) / bw,
                                     default=nw == decode_warps(pow2_at_least_32(N), d, d)))
                    print("decode", rows[-1], flush=True)
                except Exception as exc:  # noqa: BLE001
                    R.error(f"decode N={N} D={d} warps={nw}", exc)
    save_json(out or os.path.join("results", "bench", "h200_decode_warps.json"),
              dict(provenance=_gpu_provenance(), config=dict(batch=DECODE_BATCH, H=H, W=512, dtype="bfloat16",
                                                             state="float32",
                                                             timing="CUDA graph replay, triton.testing.do_bench median"),
                   hbm_copy_bytes_per_s=bw, rows=rows, gates=R.gates, errors=R.errors))
    print(table(rows, ["N", "D", "num_warps", "us", "frac_hbm", "default"]))
    return 0 if not R.errors else 2


def _targets(rows, decode, bw, accuracy=()):
    """The issue's targets, each ``{value, target, met}``, from the rows of one run."""
    def get(op, T, **cfg):
        for r in rows:
            if r["op"] == op and r["T"] == T and all(r.get(k) == v for k, v in cfg.items()):
                return r
        return {}
    t = {}

    def add(name, value, target, met):
        t[name] = dict(value=value, target=target, met=bool(met))
    b8, b32, f8 = get("bla", 8192, W=512, N=63), get("bla", 32768, W=512, N=63), get("flex_swa", 8192, W=512)
    if "fwd_ms" in b8:
        add("fwd_T8192_N63_ms", b8["fwd_ms"], 1.1, b8["fwd_ms"] <= 1.1)
    if "fwdbwd_ms" in b8:
        add("fwdbwd_T8192_N63_ms", b8["fwdbwd_ms"], 3.4, b8["fwdbwd_ms"] <= 3.4)
    for N in (15, 31):
        r = get("bla", 8192, W=512, N=N)
        if "fwd_ms" in r:
            add(f"fwd_T8192_N{N}_ms", r["fwd_ms"], 0.8, r["fwd_ms"] <= 0.8)
    for N in BLA_N:
        r = get("bla", 8192, W=512, N=N)
        for key in ("fwd_ms", "fwdbwd_ms"):
            if key in r and key in f8:
                add(f"{key[:-3]}_N{N}_over_flex_W512", r[key] / f8[key], 1.0, r[key] <= f8[key])
    for key in ("fwd_ms", "fwdbwd_ms"):
        if key in b8 and key in b32:
            ratio = b8[key] / b32[key]           # throughput at 32k over throughput at 8k
            add(f"{key[:-3]}_throughput_T32768_over_T8192", ratio, 0.85, ratio >= 0.85)
    for d in decode:
        if d.get("op") != "bla_decode":
            continue
        if d["N"] == 63:
            add("decode_us_N63_batch64", d["us"], 25.0, d["us"] <= 25.0)
        if "api_over_raw" in d:
            add(f"decode_api_over_raw_N{d['N']}", d["api_over_raw"], 1.2, d["api_over_raw"] <= 1.2)
    for a in accuracy:
        if a["scale"] > 1:
            add(f"bf16_x{a['scale']}_triton_over_chunk", a["ratio_default"], 2.0, a["ratio_default"] <= 2.0)
    return t


SECTIONS = ("variants", "accuracy", "bla", "decode", "flex", "cudnn", "gsa")


def parse_launch(text: str):
    """``"score_dot=tf32rn,out_warps=8"`` -> a :class:`LaunchConfig` with those fields changed."""
    import dataclasses
    from blaviz.ops.bla.triton import DEFAULT_LAUNCH, LaunchConfig
    ((over, C),) = parse_variants(f"launch:{text}").values()
    if C != 64:
        raise ValueError("--launch sets LaunchConfig fields; the chunk size is not one")
    return LaunchConfig(**{**dataclasses.asdict(DEFAULT_LAUNCH), **over})


def run(out=None, quick=False, sections=SECTIONS, launch=None, compile_fla=True) -> int:
    """The correctness-gated benchmark. ``sections`` (default all of :data:`SECTIONS`) lets two GPUs
    split one run: each writes its own JSON, and :func:`merge` joins them. The JSON is rewritten
    after every section, so a run stopped by a time limit keeps what it measured (``complete`` says
    whether it finished). With ``gsa`` among the sections, fla's kernels are first compiled for
    every slot count side by side (:func:`compile_fla_gsa`; ``compile_fla=False`` skips it)."""
    if not _cuda_ready():
        return 1
    bad = sorted(set(sections) - set(SECTIONS))
    if bad or not sections:
        raise ValueError(f"sections must be a non-empty subset of {SECTIONS}, got {sorted(sections)}")
    t_start = time.perf_counter()
    R = Runner()
    global LENGTHS, BLA_N, BLA_W, BREAKDOWN_T
    if quick:                                   # a short run: W=512, T=8192 and 32768, no variants
        LENGTHS, BLA_W, BREAKDOWN_T = (8192, 32768), (512,), (8192,)
        sections = tuple(x for x in sections if x != "variants")
    fla_compile = None
    if "gsa" in sections and compile_fla:
        fla_compile = compile_fla_gsa(GSA_M, LENGTHS)
    bw = copy_bandwidth()
    print(f"HBM copy bandwidth (read + write): {bw / 1e12:.2f} TB/s", flush=True)
    from blaviz.ops.bla.triton import DEFAULT_LAUNCH
    import dataclasses
    explicit = launch is not None
    launch = DEFAULT_LAUNCH if launch is None else launch
    state = dict(variants=[], chosen=dict(dataclasses.asdict(launch), chunk_size=64,
                                          is_default=launch == DEFAULT_LAUNCH), breakdown=[],
                 decode=[], accuracy=[], done=[])

    def save(complete=False):
        targets = _targets(R.rows, state["decode"], bw, state["accuracy"])
        prov = _gpu_provenance(wall_time_s=round(time.perf_counter() - t_start, 1))
        try:
            import fla
            prov["fla"] = fla.__version__
        except Exception:  # noqa: BLE001
            prov["fla"] = None
        payload = dict(provenance=prov,
                       config=dict(H=H, D=D, tokens=TOKENS, dtype="bfloat16", lengths=LENGTHS,
                                   timing="triton.testing.do_bench median, warmup 25 ms, rep 100 ms",
                                   bla_note="N=15/31/63 stand for 16/32/64: N < W must be odd",
                                   min_bytes="fwd: q,k,v read + o written; fwd+bwd: + q,k,v,do read, dq,dk,dv written",
                                   sections=list(sections), fla_compile=fla_compile),
                       complete=complete, sections_done=list(state["done"]),
                       hbm_copy_bytes_per_s=bw, chosen_launch=state["chosen"], variants=state["variants"],
                       breakdown=state["breakdown"], rows=R.rows, decode=state["decode"],
                       accuracy=state["accuracy"], gates=R.gates,
                       errors=R.errors, targets=targets)
        save_json(out or os.path.join("results", "bench", "h200.json"), payload)
        return targets

    if "variants" in sections and not quick:
        try:
            state["variants"], chosen = bench_bla_variants(R, bw)
            if not explicit:                   # --launch wins over the variants' choice
                launch = chosen
                state["chosen"] = dict(dataclasses.asdict(launch), chunk_size=64, is_default=launch == DEFAULT_LAUNCH)
        except Exception as exc:  # noqa: BLE001
            R.error("variants", exc)
        state["done"].append("variants")
        save()
    if "accuracy" in sections:
        try:
            state["accuracy"] = bench_accuracy(R)
        except Exception as exc:  # noqa: BLE001
            R.error("accuracy", exc)
        state["done"].append("accuracy")
        save()
    C = 64
    if "bla" in sections:
        try:
            state["breakdown"] = bench_bla_breakdown(C, launch)
        except Exception as exc:  # noqa: BLE001
            R.error("breakdown", exc)
        bench_bla(R, bw, C, launch)
        state["done"].append("bla")
        save()
    if "decode" in sections:
        state["decode"] = bench_decode(R, bw)
        state["done"].append("decode")
        save()
    for name, fn in (("flex", bench_flex), ("cudnn", bench_cudnn), ("gsa", bench_gsa)):
        if name in sections:
            try:
                fn(R, bw, after_each=save)
            except Exception as exc:  # noqa: BLE001
                R.error(fn.__name__, exc)
            state["done"].append(name)
            save()
    targets = save(complete=True)
    print()
    cols = ["op", "W", "N", "M", "T", "B", "fwd_ms", "fwdbwd_ms", "fwd_Mtok_s", "fwdbwd_Mtok_s", "fwd_frac_hbm",
            "fwdbwd_frac_hbm"]
    print(table(R.rows, cols))
    print()
    if state["decode"]:
        print(table(state["decode"], ["op", "W", "N", "M", "batch", "us", "raw_kernel_us", "eager_api_us",
                                      "loop_us_per_token", "frac_hbm"]))
    print("targets:", targets)
    print("errors:", R.errors)
    return 0 if not R.errors else 2


def merge(paths, out) -> dict:
    """Join benchmark JSONs of one code version (sections run side by side on two GPUs) into one:
    rows, decode rows, gates and errors are concatenated; the first file's variants, breakdown and
    launch settings are kept (only one run times them); targets are recomputed over the union."""
    import json
    runs = [json.load(open(p)) for p in paths]
    commits = {r["provenance"].get("commit") for r in runs}
    if len(commits) != 1:
        raise ValueError(f"merge: the files come from different commits {sorted(map(str, commits))}")
    first = dict(runs[0])
    for key in ("rows", "decode", "gates", "errors", "sections_done"):
        first[key] = [x for r in runs for x in r.get(key, [])]
    first["complete"] = all(r.get("complete", True) for r in runs)
    first["provenance"] = dict(first["provenance"], merged_from=[
        dict(path=os.path.basename(p), sections=r["config"].get("sections"), wall_time_s=r["provenance"].get("wall_time_s"),
             fla=r["provenance"].get("fla"), gpu=r["provenance"].get("gpu")) for p, r in zip(paths, runs)])
    first["provenance"]["fla"] = next((r["provenance"]["fla"] for r in runs if r["provenance"].get("fla")), None)
    first["targets"] = _targets(first["rows"], first["decode"], first["hbm_copy_bytes_per_s"], first.get("accuracy", []))
    save_json(out, first)
    return first
