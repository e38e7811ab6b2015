"""CPU benchmark of the PyTorch forms: ``chunk`` against ``recurrent`` and ``parallel``.

B=1, H=4, D=64, N=15, W=128, float32, T = 1k .. 16k. Correctness gate first (T=1024: chunk and
parallel against recurrent, relative RMS <= 1e-5). An impl is skipped at a length where its
predicted time (from the last measured length: linear for chunk/recurrent, quadratic for parallel)
exceeds ``TIME_LIMIT_S`` or where the parallel form's ``T x T`` buffers would exceed a quarter of RAM.
"""
from __future__ import annotations

import os
import time

import torch

from blaviz.bench._common import provenance, save_json, table
from blaviz.ops.bla import bla_chunk, bla_parallel, bla_recurrent
from blaviz.testing import rel_rms

TIME_LIMIT_S = 60.0
CFG = dict(B=1, H=4, D=64, N=15, W=128, dtype="float32")
IMPLS = {"chunk": bla_chunk, "recurrent": bla_recurrent, "parallel": bla_parallel}
GROWTH = {"chunk": 1, "recurrent": 1, "parallel": 2}


def _mem_total() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):  # pragma: no cover
        return 8 << 30


def _inputs(T, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(CFG["B"], T, CFG["H"], CFG["D"], generator=g) for _ in range(3)]


def _time(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


def _time_min(fn, reps):
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(out=None, quick=False, threads=1) -> int:
    """Run the sweep. One torch thread by default: the timings compare forms, and a shared
    2-core machine gives erratic numbers with several threads fighting for the cores."""
    t_start = time.perf_counter()
    torch.set_num_threads(threads)
    W, N = CFG["W"], CFG["N"]
    lengths = [256, 512, 1024] if quick else [1024, 2048, 4096, 8192, 16384]
    gate_T = min(1024, lengths[0])
    q, k, v = _inputs(gate_T)
    ref, _ = bla_recurrent(q.double(), k.double(), v.double(), W, N)
    gate = {}
    for name, fn in IMPLS.items():
        kw = {"chunk_size": 64} if name == "chunk" else {}
        o, _ = fn(q, k, v, W, N, **kw)
        err = rel_rms(o, ref)
        gate[name] = {"T": gate_T, "rel_rms_vs_float64_recurrent": err, "passed": bool(err <= 1e-5)}
        print(f"gate {name:9s} T={gate_T}: rel RMS vs float64 recurrent {err:.2e} "
              f"{'ok' if err <= 1e-5 else 'FAILED: not timed'}")
    rows, last = [], {}
    mem = _mem_total()
    for T in lengths:
        q, k, v = _inputs(T, seed=T)
        for name, fn in IMPLS.items():
            row = {"impl": name, "T": T}
            rows.append(row)
            if not gate[name]["passed"]:
                row["skipped"] = "failed its correctness gate"
                continue
            if name == "parallel":
                need = 4 * T * T * (CFG["B"] * CFG["H"] * 3 + N + 1)   # qk, weights, p-sums + S Dirichlet blocks
                if need > mem // 4:
                    row["skipped"] = f"needs ~{need / 2**30:.1f} GiB of T x T buffers (> 1/4 of {mem / 2**30:.0f} GiB RAM)"
                    print(f"skip {name} T={T}: {row['skipped']}")
                    continue
            if name in last:
                T0, s0 = last[name]
                pred = s0 * (T / T0) ** GROWTH[name]
                if pred > TIME_LIMIT_S:
                    row["skipped"] = f"predicted {pred:.0f} s > {TIME_LIMIT_S:.0f} s"
                    print(f"skip {name} T={T}: {row['skipped']}")
                    continue
            kw = {"chunk_size": 64} if name == "chunk" else {}
            with torch.no_grad():
                first = _time(lambda: fn(q, k, v, W, N, **kw), 1)
                reps = 1 if first > 5 else (3 if first > 0.5 else 7)
                # the minimum over repeats: the least disturbed run on a shared machine
                sec = min(first, _time_min(lambda: fn(q, k, v, W, N, **kw), reps)) if reps > 1 else first
            last[name] = (T, sec)
            row.update(ms=sec * 1e3, us_per_token=sec * 1e6 / (T * CFG["B"]))
            print(f"{name:9s} T={T:6d}: {sec * 1e3:10.1f} ms  {row['us_per_token']:8.2f} us/token")
    for T in lengths:
        by = {r["impl"]: r for r in rows if r["T"] == T}
        c = by["chunk"].get("ms")
        for name in ("recurrent", "parallel"):
            if c and by[name].get("ms"):
                by["chunk"][f"speedup_vs_{name}"] = by[name]["ms"] / c
    print()
    print(table(rows, ["impl", "T", "ms", "us_per_token", "speedup_vs_recurrent", "speedup_vs_parallel", "skipped"]))
    chunk_us = [r["us_per_token"] for r in rows if r["impl"] == "chunk" and "us_per_token" in r]
    summary = {"chunk_us_per_token_max_over_min": max(chunk_us) / min(chunk_us) if chunk_us else None}
    r4 = [r for r in rows if r["impl"] == "chunk" and r["T"] == 4096]
    if r4 and "speedup_vs_recurrent" in r4[0]:
        summary["chunk_speedup_vs_recurrent_T4096"] = r4[0]["speedup_vs_recurrent"]
    print("summary:", summary)
    payload = {"provenance": dict(provenance(), wall_time_s=round(time.perf_counter() - t_start, 1)),
               "config": dict(CFG, lengths=lengths, chunk_size=64, time_limit_s=TIME_LIMIT_S, torch_threads=threads, timing="min over repeats (1 repeat above 5 s)"),
               "gate": gate, "rows": rows, "summary": summary}
    save_json(out or os.path.join("results", "bench", "cpu_pytorch.json"), payload)
    return 0
