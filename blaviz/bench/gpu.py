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

H, D = 16, 64
TOKENS = 65536
LENGTHS = (2048, 8192, 32768)
BLA_N = (15, 31, 63)
BLA_W = (128, 512, 2048)
FLEX_W = (64, 512, 2048)
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


def rel_rms(a, b) -> float:
    a, b = a.double(), b.double()
    return float((a - b).pow(2).mean().sqrt() / b.pow(2).mean().sqrt().clamp_min(1e-300))


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
def _bla_gate(R, W, N, C, label="bla", with_state=False, T=1000):
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
        o, fin = bla_triton(*xs, W, N, chunk_size=C, initial_state=st, output_final_state=True)
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


def _bla_fns(T, W, N, C):
    import torch
    from blaviz.ops.bla.triton import bla_triton
    B = TOKENS // T
    q, k, v = (_rand(B, T, H, D, requires_grad=True) for _ in range(3))
    do = _rand(B, T, H, D)

    def fwd():
        with torch.no_grad():
            return bla_triton(q, k, v, W, N, chunk_size=C)

    def fwdbwd():
        o, _ = bla_triton(q, k, v, W, N, chunk_size=C)
        return torch.autograd.grad(o, (q, k, v), do)
    return fwd, fwdbwd


def bench_bla_variants(R, bw):
    """Launch settings at N=63, W=512, T=8192 (and the scan tile at T=32768): pick the fastest."""
    from blaviz.ops.bla.triton import CONFIG
    base = dict(CONFIG)
    variants = [
        dict(C=64, out_warps=8, bwd_warps=8), dict(C=64, out_warps=4, bwd_warps=4),
        dict(C=32, out_warps=4, bwd_warps=4), dict(C=32, out_warps=8, bwd_warps=8),
    ]
    best, best_t = None, float("inf")
    out = []
    for var in variants:
        CONFIG.update(base)
        CONFIG.update({k: v for k, v in var.items() if k != "C"})
        try:
            if not _bla_gate(R, 512, 63, var["C"], label="bla-variant"):
                continue
            fwd, fb = _bla_fns(8192, 512, 63, var["C"])
            tf, tfb = _bench(fwd), _bench(fb)
        except Exception as exc:  # noqa: BLE001
            R.error(f"variant {var}", exc)
            continue
        out.append(dict(var, T=8192, fwd_ms=tf, fwdbwd_ms=tfb))
        print(f"variant {var}: fwd {tf:.3f} ms, fwd+bwd {tfb:.3f} ms", flush=True)
        if tfb < best_t:
            best, best_t = var, tfb
    CONFIG.update(base)
    if best is not None:
        CONFIG.update({k: v for k, v in best.items() if k != "C"})
    C = best["C"] if best else 64
    for bd in (16, 32):
        CONFIG["scan_bd"] = bd
        try:
            fwd, fb = _bla_fns(32768, 512, 63, C)
            tf, tfb = _bench(fwd), _bench(fb)
            out.append(dict(scan_bd=bd, C=C, T=32768, fwd_ms=tf, fwdbwd_ms=tfb))
            print(f"scan_bd {bd} at T=32768: fwd {tf:.3f} ms, fwd+bwd {tfb:.3f} ms", flush=True)
        except Exception as exc:  # noqa: BLE001
            R.error(f"scan_bd {bd}", exc)
    bds = [r for r in out if "scan_bd" in r and "fwdbwd_ms" in r]
    if bds:
        CONFIG["scan_bd"] = min(bds, key=lambda r: r["fwdbwd_ms"])["scan_bd"]
    chosen = dict(CONFIG, chunk_size=C)
    print("chosen launch settings:", chosen, flush=True)
    return out, chosen


def bench_bla(R, bw, C):
    for N in BLA_N:
        for W in BLA_W:
            try:
                if not _bla_gate(R, W, N, C):
                    continue
            except Exception as exc:  # noqa: BLE001
                R.error(f"gate bla W={W} N={N}", exc)
                continue
            for T in LENGTHS:
                try:
                    fwd, fb = _bla_fns(T, W, N, C)
                except Exception as exc:  # noqa: BLE001
                    R.error(f"bla inputs T={T}", exc)
                    continue
                R.time_op("bla", dict(W=W, N=N), T, fwd, fb, _min_bytes(4), _min_bytes(11), bw)


def bench_bla_breakdown(C):
    """Each of the four launches alone (N=63, W=512)."""
    import torch
    from blaviz.ops.bla.triton import function as f
    out = []
    for T in BREAKDOWN_T:
        B = TOKENS // T
        q, k, v, do = (_rand(B, T, H, D) for _ in range(4))
        prec, scale = f._precision(torch.bfloat16), D ** -0.5
        cc = f.consts_for(512, 63, 63, C, T, q.device, prec)
        f._LAUNCHED.clear()
        fst, gst, _, _ = f.fwd_scan(k, v, None, None, cc, 63, C, prec)
        _, p = f.fwd_out(q, k, v, fst, gst, cc, C, 0, scale, prec, store_p=f.CONFIG["bwd_split"])
        dq, dkl, dvl, bf, bg = f.bwd_local(q, k, v, do, fst, gst, cc, C, 0, scale, prec, p)
        row = dict(T=T, B=B, C=C, precision=prec,
                   fwd_scan_ms=_bench(lambda: f.fwd_scan(k, v, None, None, cc, 63, C, prec)),
                   fwd_out_ms=_bench(lambda: f.fwd_out(q, k, v, fst, gst, cc, C, 0, scale, prec)),
                   fwd_out_store_p_ms=_bench(lambda: f.fwd_out(q, k, v, fst, gst, cc, C, 0, scale, prec, p is not None)),
                   bwd_local_ms=_bench(lambda: f.bwd_local(q, k, v, do, fst, gst, cc, C, 0, scale, prec, p)),
                   bwd_scan_ms=_bench(lambda: f.bwd_scan(k, v, dkl, dvl, bf, bg, None, None, cc, 63, C, False, prec)))
        row["kernels"] = f.kernel_stats()              # registers and spills of every launch timed above
        out.append(row)
        print("breakdown", row, flush=True)
        del fst, gst, dkl, dvl, bf, bg, p
        torch.cuda.empty_cache()
    return out


# --------------------------------------------------------------------------------- baselines
def bench_flex(R, bw):
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
            if T != 8192 and W != 512:
                continue                      # compile time: all W at T=8192, all T at W=512
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


def bench_cudnn(R, bw):
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


def _gsa_inputs(B, T, M, requires_grad=False):
    import torch
    import torch.nn.functional as Fn
    q, k, v = (_rand(B, T, H, D, requires_grad=requires_grad) for _ in range(3))
    s = _rand(B, T, H, M, requires_grad=requires_grad)
    g = Fn.logsigmoid(torch.randn(B, T, H, M, device="cuda")).div(16).bfloat16().requires_grad_(requires_grad)
    return q, k, v, s, g


def bench_gsa(R, bw):
    import torch
    try:
        from fla.ops.gsa import chunk_gsa
    except Exception as exc:  # noqa: BLE001
        R.error("fla import", exc)
        return
    from blaviz.ops.gsa import gsa_attention
    for M in GSA_M:
        try:
            q, k, v, s, g = _gsa_inputs(1, 256, M)
            o, _ = chunk_gsa(q, k, v, s, g)
            ref, _ = gsa_attention(*(t.double() for t in (q, k, v, s, g)))
            # 1e-2 for this baseline: fla's bf16 GSA measured 5.35e-3 at M=16 (first H200 run), a
            # precision difference of its kernel, not a wrong op; BLA's own gates stay at 5e-3.
            if not R.gate("fla_gsa", dict(M=M), rel_rms(o, ref), 1e-2):
                continue
        except Exception as exc:  # noqa: BLE001
            R.error(f"gsa gate M={M}", exc)
            continue
        for T in LENGTHS:
            if T != 8192 and M != 64:
                continue
            B = TOKENS // T
            q, k, v, s, g = _gsa_inputs(B, T, M, requires_grad=True)
            do = _rand(B, T, H, D)

            def fwd():
                with torch.no_grad():
                    return chunk_gsa(q, k, v, s, g)

            def fb():
                o, _ = chunk_gsa(q, k, v, s, g)
                return torch.autograd.grad(o, (q, k, v, s, g), do)
            R.time_op("fla_gsa", dict(M=M), T, fwd, fb, _min_bytes(4) + 2 * TOKENS * H * M * 2,
                      _min_bytes(11) + 6 * TOKENS * H * M * 2, bw)


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


def bench_decode(R, bw):
    import torch
    from blaviz.ops.bla import BLAState, bla_step_reference as bla_step
    from blaviz.ops.bla.triton import bla_step_triton
    rows = []
    Bd = DECODE_BATCH
    for N in BLA_N:
        W = 512
        try:
            q, k, v = (_rand(Bd, H, D) for _ in range(3))
            st = BLAState(torch.randn(Bd, H, N, D, device="cuda"), torch.randn(Bd, H, N, D, device="cuda"), 4096)
            o, new = bla_step_triton(q, k, v, st, W, N)
            ro, rs = bla_step(q.double(), k.double(), v.double(),
                              BLAState(st.key_freq.double(), st.value_freq.double(), 4096), W, N)
            err = max(rel_rms(o, ro), rel_rms(new.key_freq, rs.key_freq), rel_rms(new.value_freq, rs.value_freq))
            if not R.gate("bla_decode", dict(W=W, N=N), err, 5e-3):
                continue
            us = _graph_time(lambda: bla_step_triton(q, k, v, st, W, N, out_state=st))
            state_bytes = 2 * 2 * Bd * H * N * D * 4
            rows.append(dict(op="bla_decode", W=W, N=N, batch=Bd, us=us, state_MiB=state_bytes / 2 / 2**20,
                             frac_hbm=state_bytes / (us * 1e-6) / bw))
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
    """``"base:;pre:preround=true;both:preround=true,fwd_split=true"`` -> ``{name: {key: value}}``
    (values as :func:`blaviz.bench._common.parse_value` reads them; an empty list is the defaults)."""
    from blaviz.ops.bla.triton import CONFIG
    out = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, body = part.partition(":")
        if not name or name in out:
            raise ValueError(f"variants: each needs a new name before ':', got {part!r}")
        over = {}
        for item in filter(None, (x.strip() for x in body.split(","))):
            key, eq, val = item.partition("=")
            if not eq or key not in CONFIG:
                raise ValueError(f"variants: {item!r} must be KEY=VALUE with KEY one of {sorted(CONFIG)}")
            over[key] = None if val.strip().lower() == "none" else parse_value(val)
        out[name] = over
    if not out:
        raise ValueError("variants: none given")
    return out


def run_ab(key: str, values, out=None, rounds: int = 2) -> int:
    """``python -m blaviz.bench ab --key K --values A,B``: :func:`run_variants` with one setting ``K``
    at each value. Writes ``results/bench/h200_ab_<K>.json``."""
    from blaviz.ops.bla.triton import CONFIG
    if key not in CONFIG:
        raise ValueError(f"key must be one of {sorted(CONFIG)}, got {key!r}")
    return run_variants({f"{key}={v!r}": {key: v} for v in values}, out=out or os.path.join(
        "results", "bench", f"h200_ab_{key}.json"), rounds=rounds)


def run_variants(variants: dict, out=None, rounds: int = 2) -> int:
    """``python -m blaviz.bench ab --variants "name:k=v,k=v;..."``: kernel settings (``CONFIG``
    overrides) compared in one run at N = 63, W = 512, T = 8192, C = 64 (the targets' shape). Each is
    gated against float64 first (with an initial state: its gradient and the final state are what the
    scans carry), then forward and forward+backward are timed, the variants alternating for ``rounds``
    rounds (so drift hits all alike); the registers and spills of each compiled kernel are recorded.
    Writes ``results/bench/h200_variants.json`` unless ``out`` says otherwise."""
    if not _cuda_ready():
        return 1
    from blaviz.ops.bla.triton import CONFIG
    from blaviz.ops.bla.triton.function import _LAUNCHED, kernel_stats
    R, base = Runner(), dict(CONFIG)
    ok, stats = {}, {}
    times = {name: {"fwd_ms": [], "fwdbwd_ms": []} for name in variants}
    try:
        for name, over in variants.items():
            CONFIG.clear()
            CONFIG.update(base, **over)
            try:
                ok[name] = _bla_gate(R, 512, 63, 64, label=f"variant {name}", with_state=True)
            except Exception as exc:  # noqa: BLE001
                R.error(f"gate {name}", exc)
                ok[name] = False
        fns = {}
        for r in range(rounds):
            for name, over in variants.items():
                if not ok[name]:
                    continue
                CONFIG.clear()
                CONFIG.update(base, **over)
                try:
                    if name not in fns:
                        fns[name] = _bla_fns(8192, 512, 63, 64)
                        _LAUNCHED.clear()                  # the stats below are this variant's kernels only
                    fwd, fb = fns[name]
                    times[name]["fwd_ms"].append(_bench(fwd))
                    times[name]["fwdbwd_ms"].append(_bench(fb))
                    stats.setdefault(name, kernel_stats())
                except Exception as exc:  # noqa: BLE001
                    R.error(f"time {name}", exc)
                    ok[name] = False
                    continue
                print(f"round {r} {name}: fwd {times[name]['fwd_ms'][-1]:.3f} ms, "
                      f"fwd+bwd {times[name]['fwdbwd_ms'][-1]:.3f} ms", flush=True)
    finally:
        CONFIG.clear()
        CONFIG.update(base)
    rows = [dict(value=name, overrides=variants[name], fwd_ms=min(t["fwd_ms"]), fwdbwd_ms=min(t["fwdbwd_ms"]),
                 all=t, kernels=stats.get(name, {}))
            for name, t in times.items() if t["fwd_ms"] and t["fwdbwd_ms"]]
    save_json(out or os.path.join("results", "bench", "h200_variants.json"),
              dict(provenance=_gpu_provenance(), config=dict(variants=variants, defaults=base, W=512, N=63, T=8192,
                                                C=64, B=TOKENS // 8192, H=H, D=D, dtype="bfloat16", rounds=rounds,
                                                timing="best of the rounds' do_bench medians"),
                   rows=rows, gates=R.gates, errors=R.errors))
    print(table(rows, ["value", "fwd_ms", "fwdbwd_ms"]))
    for r in rows:
        print(r["value"], {k: (v["n_regs"], v["n_spills"]) for k, v in r["kernels"].items()})
    return 0 if not R.errors else 2


def run_decode_warps(out=None) -> int:
    """``python -m blaviz.bench decode-warps``: the fused decode step at every ``num_warps``, for
    N = 15, 31, 63 and head dims 64 and 128 (batch 64, 16 heads, W = 512), each configuration
    gated against the float64 reference first. Writes ``results/bench/h200_decode_warps.json``."""
    if not _cuda_ready():
        return 1
    import torch
    from blaviz.ops.bla import BLAState, bla_step_reference
    from blaviz.ops.bla.triton import bla_step_triton
    from blaviz.ops.bla.triton._consts import pow2_at_least_32
    from blaviz.ops.bla.triton.decode import decode_warps
    R = Runner()
    bw = copy_bandwidth()
    rows, Bd, W = [], DECODE_BATCH, 512
    for d in (64, 128):
        for N in BLA_N:
            q, k, v = (torch.randn(Bd, H, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))
            st = BLAState(torch.randn(Bd, H, N, d, device="cuda"), torch.randn(Bd, H, N, d, device="cuda"), 4096)
            ro, rs = bla_step_reference(q.double(), k.double(), v.double(),
                                        BLAState(st.key_freq.double(), st.value_freq.double(), 4096), W, N)
            for nw in (1, 2, 4, 8, 16):
                try:
                    o, new = bla_step_triton(q, k, v, st, W, N, num_warps=nw)
                    err = max(rel_rms(o, ro), rel_rms(new.key_freq, rs.key_freq), rel_rms(new.value_freq, rs.value_freq))
                    if not R.gate("bla_decode", dict(W=W, N=N, D=d, num_warps=nw), err, 5e-3):
                        continue
                    buf = BLAState(new.key_freq.clone(), new.value_freq.clone(), 4096)
                    us = _graph_time(lambda: bla_step_triton(q, k, v, buf, W, N, out_state=buf, num_warps=nw))
                    state_bytes = 2 * 2 * Bd * H * N * d * 4
                    rows.append(dict(N=N, D=d, num_warps=nw, us=us, frac_hbm=state_bytes / (us * 1e-6) / bw,
                                     default=nw == decode_warps(pow2_at_least_32(N), d, d)))
                    print("decode", rows[-1], flush=True)
                except Exception as exc:  # noqa: BLE001
                    R.error(f"decode N={N} D={d} warps={nw}", exc)
    save_json(out or os.path.join("results", "bench", "h200_decode_warps.json"),
              dict(provenance=_gpu_provenance(), config=dict(batch=Bd, H=H, W=W, dtype="bfloat16", state="float32",
                                                timing="CUDA graph replay, triton.testing.do_bench median"),
                   hbm_copy_bytes_per_s=bw, rows=rows, gates=R.gates, errors=R.errors))
    print(table(rows, ["N", "D", "num_warps", "us", "frac_hbm", "default"]))
    return 0 if not R.errors else 2


def _targets(rows, decode, bw):
    def get(op, T, **cfg):
        for r in rows:
            if r["op"] == op and r["T"] == T and all(r.get(k) == v for k, v in cfg.items()):
                return r
        return {}
    b8 = get("bla", 8192, W=512, N=63)
    b32 = get("bla", 32768, W=512, N=63)
    f8 = get("flex_swa", 8192, W=512)
    dec = [d for d in decode if d.get("op") == "bla_decode" and d.get("N") == 63]
    t = {}
    if "fwd_ms" in b8:
        t["fwd_T8192_ms"] = dict(value=b8["fwd_ms"], target=1.2, met=b8["fwd_ms"] <= 1.2)
    if "fwdbwd_ms" in b8:
        t["fwdbwd_T8192_ms"] = dict(value=b8["fwdbwd_ms"], target=4.3, met=b8["fwdbwd_ms"] <= 4.3)
    if "fwd_ms" in b8 and "fwd_ms" in f8:
        t["fwd_vs_flex_W512"] = dict(value=b8["fwd_ms"] / f8["fwd_ms"], target=1.0, met=b8["fwd_ms"] <= f8["fwd_ms"])
    if "fwdbwd_ms" in b8 and "fwdbwd_ms" in f8:
        t["fwdbwd_vs_flex_W512"] = dict(value=b8["fwdbwd_ms"] / f8["fwdbwd_ms"], target=1.0,
                                        met=b8["fwdbwd_ms"] <= f8["fwdbwd_ms"])
    for key in ("fwd_ms", "fwdbwd_ms"):
        if key in b8 and key in b32:
            ratio = b8[key] / b32[key]           # throughput at 32k over throughput at 8k
            t[f"{key[:-3]}_throughput_T32768_over_T8192"] = dict(value=ratio, target=0.85, met=ratio >= 0.85)
    g8 = get("fla_gsa", 8192, M=64)
    for key in ("fwd_ms", "fwdbwd_ms"):
        if key in b8 and key in g8:                   # BLA N=63 against fla's GSA with 64 slots
            t[f"{key[:-3]}_speedup_vs_fla_gsa_M64"] = dict(value=g8[key] / b8[key], target=3.0,
                                                          met=g8[key] / b8[key] >= 3.0)
    if dec:
        t["decode_us_N63_batch64"] = dict(value=dec[0]["us"], target=20.0, met=dec[0]["us"] <= 20.0)
    return t


SECTIONS = ("variants", "bla", "decode", "flex", "cudnn", "gsa")


def run(out=None, quick=False, sections=SECTIONS) -> int:
    """The correctness-gated benchmark. ``sections`` (default all of :data:`SECTIONS`) lets two GPUs
    split one run (``gsa`` autotunes fla's kernels for minutes): each writes its own JSON, and
    :func:`merge` joins them. The JSON is rewritten after every section, so a run stopped by a time
    limit keeps what it measured (``complete`` says whether it finished)."""
    if not _cuda_ready():
        return 1
    bad = sorted(set(sections) - set(SECTIONS))
    if bad or not sections:
        raise ValueError(f"sections must be a non-empty subset of {SECTIONS}, got {sorted(sections)}")
    t_start = time.perf_counter()
    R = Runner()
    global LENGTHS, BLA_N, BLA_W, BREAKDOWN_T
    if quick:                                   # a short check: BLA only, no launch-setting sweep
        LENGTHS, BLA_N, BLA_W, BREAKDOWN_T = (8192, 32768), (63,), (512,), (8192,)
        sections = tuple(x for x in sections if x == "bla")
    bw = copy_bandwidth()
    print(f"HBM copy bandwidth (read + write): {bw / 1e12:.2f} TB/s", flush=True)
    state = dict(variants=[], chosen={}, breakdown=[], decode=[], done=[])

    def save(complete=False):
        targets = _targets(R.rows, state["decode"], bw)
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
                                   sections=list(sections)),
                       complete=complete, sections_done=list(state["done"]),
                       hbm_copy_bytes_per_s=bw, chosen_launch=state["chosen"], variants=state["variants"],
                       breakdown=state["breakdown"], rows=R.rows, decode=state["decode"], gates=R.gates,
                       errors=R.errors, targets=targets)
        save_json(out or os.path.join("results", "bench", "h200.json"), payload)
        return targets

    if "variants" in sections and not quick:
        try:
            state["variants"], state["chosen"] = bench_bla_variants(R, bw)
        except Exception as exc:  # noqa: BLE001
            R.error("variants", exc)
        state["done"].append("variants")
        save()
    C = state["chosen"].get("chunk_size", 64)
    if "bla" in sections:
        try:
            state["breakdown"] = bench_bla_breakdown(C)
        except Exception as exc:  # noqa: BLE001
            R.error("breakdown", exc)
        bench_bla(R, bw, C)
        state["done"].append("bla")
        save()
    if "decode" in sections:
        state["decode"] = bench_decode(R, bw)
        state["done"].append("decode")
        save()
    for name, fn in (("flex", bench_flex), ("cudnn", bench_cudnn), ("gsa", bench_gsa)):
        if name in sections:
            try:
                fn(R, bw)
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
        print(table(state["decode"], ["op", "W", "N", "M", "batch", "us", "frac_hbm"]))
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
    first["targets"] = _targets(first["rows"], first["decode"], first["hbm_copy_bytes_per_s"])
    save_json(out, first)
    return first
