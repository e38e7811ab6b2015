"""Figures and tables of chapter 7 (the Triton kernel).

Three groups, all pure functions of their inputs:

* the **stored GPU benchmark** (``results/bench/h200.json``, written by ``python -m blaviz.bench
  gpu``): :func:`load_bench`, :func:`state_figure` (time of a step against the state per head,
  BLA beside flex-attention's sliding window and fla's GSA), :func:`launch_rows` (each launch of a
  training step: time, registers, spills, programs per SM), and row builders for the appendix
  (:func:`provenance_rows`, :func:`target_rows`, :func:`breakdown_rows`, :func:`missing_rows`).
  Older files used other key names (``breakdown_plain_tf32`` with a note) and some baseline rows
  are marked ``invalid`` or have no timing: every reader takes what exists and skips the rest.
* the **launch table** of the kernels at a given shape (:func:`kernel_table`), from the launch
  settings and padding rules the wrappers use.
* an **emulation of tf32 operand rounding** in the scan over chunks (:func:`emulate_tf32`,
  :func:`scan_rounding_error`, :func:`rounding_figure`): why plain tf32 failed the bf16 bar.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from .figures import compact, slider_figure
from .results import results_file

#: the stored benchmark, a path inside ``results/`` (found by :func:`blaviz.viz.results.results_file`)
DEFAULT_RESULT = "bench/h200.json"

#: display names and colours of the ops the GPU benchmark times
OPS = {
    "bla": ("BLA (Triton)", "#d62728", "BLA"),
    "flex_swa": ("flex-attention SWA", "#1f77b4", "flex SWA"),
    "cudnn_causal": ("cuDNN full causal attention", "#7f7f7f", "cuDNN full causal"),
    "fla_gsa": ("fla GSA", "#2ca02c", "fla GSA"),
}
_DASHES = ("solid", "dash", "dot", "dashdot", "longdash")
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross")


# ----------------------------------------------------------------------------- reading the file
def load_bench(path=None) -> dict:
    """The benchmark at ``path`` (default: the stored one) as a dict, or ``{}`` when there is none."""
    if path is None:
        try:
            path = results_file(DEFAULT_RESULT)
        except FileNotFoundError:
            return {}
    p = Path(path)
    if not p.exists():
        return {}
    return json.loads(p.read_text())


def _timed(row: dict, key: str) -> bool:
    x = row.get(key)
    return isinstance(x, (int, float)) and math.isfinite(x) and "invalid" not in row


def bench_rows(bench: dict, op: str, **cfg) -> list[dict]:
    """Rows of ``op`` whose fields match ``cfg`` and that carry a valid forward time, sorted by ``T``."""
    rows = [r for r in bench.get("rows", []) if r.get("op") == op and _timed(r, "fwd_ms")
            and all(r.get(k) == v for k, v in cfg.items())]
    return sorted(rows, key=lambda r: r.get("T", 0))


def equal_state_rows(bench: dict, pairs=((15, 16), (31, 32), (63, 64))) -> list[tuple]:
    """BLA at ``N`` beside fla's GSA at ``M`` slots (``2Nd`` against ``2Md`` numbers per head:
    the same state, N being odd), for each ``(N, M)`` in ``pairs`` and each length at which both
    were timed in ``bench`` (one run). Each row: ``(T, N, M, BLA fwd ms, BLA fwd+bwd ms,
    GSA fwd ms, GSA fwd+bwd ms, fwd ratio, fwd+bwd ratio)``, ratios being BLA's time over GSA's."""
    out = []
    for N, M in pairs:
        gsa = {r["T"]: r for r in bench_rows(bench, "fla_gsa", M=M)}
        for b in bench_rows(bench, "bla", N=N):
            g = gsa.get(b["T"])
            if g is not None and _timed(b, "fwdbwd_ms") and _timed(g, "fwdbwd_ms"):
                out.append((b["T"], N, M, b["fwd_ms"], b["fwdbwd_ms"], g["fwd_ms"], g["fwdbwd_ms"],
                            b["fwd_ms"] / g["fwd_ms"], b["fwdbwd_ms"] / g["fwdbwd_ms"]))
    return sorted(out)


def _values(bench: dict, op: str, key: str) -> list:
    return sorted({r[key] for r in bench.get("rows", []) if r.get("op") == op and key in r})


def missing_rows(bench: dict) -> list[tuple[str, str]]:
    """What the file says was *not* measured: invalid rows, untimed rows, failed gates, errors.

    Returns ``(what, why)`` pairs; the texts are the file's own, shortened to one line.
    """
    out = []
    for r in bench.get("rows", []):
        cfg = ", ".join(f"{k}={r[k]}" for k in ("W", "N", "M", "T") if k in r)
        if "invalid" in r:
            out.append((f"{r.get('op')} ({cfg})", _first_sentence(r["invalid"])))
        elif not _timed(r, "fwd_ms"):
            out.append((f"{r.get('op')} ({cfg})", "no timing in the file"))
    for g in bench.get("gates", []):
        if not g.get("passed", True):
            cfg = ", ".join(f"{k}={g[k]}" for k in ("W", "N", "M", "C") if k in g)
            out.append((f"{g.get('op')} ({cfg})", f"correctness gate failed (rel. RMS {g.get('rel_rms'):.3g} > "
                                                   f"{g.get('tol'):.0e}): not timed"))
    planned = bench.get("config", {}).get("sections")
    if planned is not None:                   # files that split the benchmark into sections say which ran
        from blaviz.bench.gpu import SECTIONS
        for name in SECTIONS:
            if name not in planned:
                out.append((f"section {name}", "not in this run's sections"))
            elif name not in bench.get("sections_done", []):
                out.append((f"section {name}", "planned, but the run stopped before it finished"))
    for e in bench.get("errors", []):
        m = _ERROR_RE.search(str(e))   # "what: ExceptionType: message", where "what" may hold ": "
        what, why = (str(e)[: m.start()], str(e)[m.start() + 2:]) if m else ("error", str(e))
        out.append((what.strip(), _first_sentence(why.strip())))
    return out


_ERROR_RE = re.compile(r": [A-Za-z_.]*(Error|Exception|Interrupt)\b")


def _first_sentence(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    cut = text.find(". ")
    if 0 < cut < limit:
        return text[: cut + 1]
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def provenance_rows(bench: dict) -> list[tuple[str, str]]:
    """``(key, value)`` pairs of the file's provenance (GPU, versions, date, command, ...)."""
    prov = bench.get("provenance", {})
    keys = ["gpu", "driver", "torch", "triton", "python", "fla", "date", "git_commit", "command",
            "how_this_file_was_made", "note_added_after_the_run", "wall_time_s"]
    rows = [(k, str(prov[k])) for k in keys if prov.get(k) is not None]
    if "hbm_copy_bytes_per_s" in bench:
        rows.append(("HBM copy bandwidth (same run)", f"{bench['hbm_copy_bytes_per_s'] / 1e12:.2f} TB/s"))
    cfg = bench.get("config", {})
    if cfg:
        rows.append(("shapes", ", ".join(f"{k}={cfg[k]}" for k in ("dtype", "H", "D", "tokens", "lengths")
                                         if k in cfg)))
        if "timing" in cfg:
            rows.append(("timing", str(cfg["timing"])))
    for k in ("kernels_timed", "current_default_not_timed"):
        if k in bench:
            rows.append((k.replace("_", " "), str(bench[k])))
    return rows


def find_target(bench: dict, prefix: str) -> dict | None:
    """The first entry of ``bench["targets"]`` whose key starts with ``prefix`` (the key names
    have changed between versions of the benchmark), with its key added as ``"name"``."""
    for k, v in bench.get("targets", {}).items():
        if k.startswith(prefix) and isinstance(v, dict):
            return dict(v, name=k)
    return None


def target_rows(bench: dict) -> list[tuple[str, str, str, str]]:
    """``(target, measured, goal, met)`` rows; ratios are labelled as such."""
    rows = []
    for k, v in bench.get("targets", {}).items():
        if not isinstance(v, dict) or "value" not in v:
            continue
        val, goal = v["value"], v.get("target")
        unit = " ms" if k.endswith("_ms") else (" µs" if "_us_" in k else "x")
        num = f"{val:.2f}" if unit == "x" else f"{val:.3g}"
        met = "yes" if v.get("met") else "no"
        if not v.get("met") and unit in (" ms", " µs") and goal:
            met = f"no ({val / goal:.1f}x over)"
        rows.append((k, f"{num}{unit}", f"{'≤' if '_over_' not in k else '≥'} {goal:g}{unit}", met))
    return rows


def breakdown_rows(bench: dict) -> tuple[list[tuple], str]:
    """Rows ``(T, B, scan fwd, out fwd, local bwd, scan bwd, total)`` in ms, and the file's note.

    ``out fwd`` is the output kernel as a training step runs it: storing the slot weights for the
    split backward (``fwd_out_store_p_ms``) when the file timed that, else without (inference)."""
    bd = bench.get("breakdown", bench.get("breakdown_plain_tf32", []))
    note = ""
    if isinstance(bd, dict):
        note, bd = bd.get("note", ""), bd.get("rows", [])
    keys = ("fwd_scan_ms", "fwd_out_ms", "bwd_local_ms", "bwd_scan_ms")
    rows = []
    for r in bd:
        if not all(k in r for k in keys):
            continue
        vals = [r["fwd_out_store_p_ms"] if k == "fwd_out_ms" and "fwd_out_store_p_ms" in r else r[k] for k in keys]
        rows.append((r.get("T"), r.get("B"), *(f"{x:.2f}" for x in vals), f"{sum(vals):.2f}"))
    return rows, note


# ----------------------------------------------------------------------------- speed at equal state
#: registers of one streaming multiprocessor of an H100/H200 (32-bit registers)
REGISTERS_PER_SM = 65536


def _state(op: str, row: dict, head_dim: int) -> int:
    """Real numbers of state per head of a benchmark row (BLA_SPEC section 7)."""
    size = {"bla": "N", "flex_swa": "W", "fla_gsa": "M"}[op]
    return 2 * row[size] * head_dim


def state_rows(bench: dict, seq_len: int = 8192, window: int = 512) -> list[dict]:
    """The timed rows at one ``T``, each with its state per head and a label.

    BLA at window ``window`` (its time does not depend on ``W``), every flex-attention window,
    every fla GSA slot count. Returns dicts ``op, label, state, fwd_ms, fwdbwd_ms, source``
    sorted by op and state; a missing time is ``None``; ``source`` names the earlier file a row
    was carried over from (``None``: timed in this file's run)."""
    d = bench.get("config", {}).get("D", 64)
    out = []
    for op, cfg, key in (("bla", dict(W=window), "N"), ("flex_swa", {}, "W"),
                         ("fla_gsa", {}, "M")):
        for r in bench_rows(bench, op, T=seq_len, **cfg):
            out.append(dict(op=op, label=f"{key} = {r[key]}", state=_state(op, r, d),
                            fwd_ms=r["fwd_ms"],
                            fwdbwd_ms=r["fwdbwd_ms"] if _timed(r, "fwdbwd_ms") else None,
                            source=r.get("source")))
    return sorted(out, key=lambda r: (list(OPS).index(r["op"]), r["state"]))


def state_figure(bench: dict, seq_len: int = 8192, window: int = 512) -> go.Figure:
    """Time of one training-size step against the state per head, at one ``T``.

    Two panels (forward; forward + backward), log-log, one marker per timed configuration, its
    ``N``/``W``/``M`` written next to it. Points above each other hold the same state."""
    rows = state_rows(bench, seq_len, window)
    if not any(r["op"] == "bla" for r in rows):
        raise ValueError(f"the benchmark file has no BLA rows at T = {seq_len}")
    cfg = bench.get("config", {})
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("forward", "forward + backward"))
    for op, (name, color, _) in OPS.items():
        sel = [r for r in rows if r["op"] == op]
        if not sel:
            continue
        if op == "bla":
            name = f"{name}, W = {window}"
        if all(r["source"] for r in sel):          # carried over from an earlier run: say so
            name = f"{name} (earlier run)"
        for col, key in ((1, "fwd_ms"), (2, "fwdbwd_ms")):
            pts = [r for r in sel if r[key] is not None]
            # labels alternate above and below the points, so neighbours never collide
            where = ["top center" if i % 2 else "bottom center" for i in range(len(pts))]
            fig.add_trace(go.Scatter(
                x=[r["state"] for r in pts], y=compact([r[key] for r in pts], 4),
                text=[r["label"] for r in pts], mode="lines+markers+text",
                textposition=where, cliponaxis=False, name=name, legendgroup=op,
                showlegend=col == 1,
                line=dict(color=color, width=2 if op == "bla" else 1.5,
                          dash="solid" if op == "bla" else "dot"),
                marker=dict(color=color, size=8,
                            symbol=_SYMBOLS[list(OPS).index(op) % len(_SYMBOLS)]),
                hovertemplate=f"{name}, %{{text}}<br>state %{{x:,}} numbers per head"
                              f"<br>%{{y:.2f}} ms<extra></extra>"), row=1, col=col)
    tokens = cfg.get("tokens")
    states = [r["state"] for r in rows]
    span = [math.log10(min(states) / 1.8), math.log10(max(states) * 1.8)]  # room for labels
    xt = [1e3, 1e4, 1e5, 1e6]
    fig.update_xaxes(type="log", range=span, title_text="state per head",
                     tickvals=xt, ticktext=["1k", "10k", "100k", "1M"])
    ticks = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]
    for col, key in ((1, "fwd_ms"), (2, "fwdbwd_ms")):        # each panel its own range
        times = [r[key] for r in rows if r[key] is not None]
        fig.update_yaxes(type="log", range=[math.log10(min(times) / 1.5),
                                            math.log10(max(times) * 1.4)],
                         tickvals=ticks, ticktext=[f"{t:g}" for t in ticks], row=1, col=col)
    ytitle = "ms per step" + (f" ({tokens:,} tokens)" if tokens else "")
    fig.update_yaxes(title_text=ytitle, row=1, col=1)
    fig.update_layout(height=460, margin=dict(t=40, b=40, l=70, r=20),
                      legend=dict(orientation="h", x=0, xanchor="left", y=-0.22,
                                  yanchor="top"))
    return fig


def programs_per_sm(n_regs: int, num_warps: int, registers: int = REGISTERS_PER_SM) -> int:
    """How many programs of a kernel fit on one SM by registers alone: ``registers // (n_regs *
    32 * num_warps)`` (a warp is 32 threads; shared memory and the other limits not counted)."""
    return registers // (n_regs * 32 * num_warps)


#: the launches of one training step, as the benchmark's breakdown names them: the timing key,
#: a label, and the kernel records that describe it (the first group the file has; older files
#: used other names)
LAUNCHES = {"fwd_scan_ms": ("forward scan", (("fwd_scan",),)),
            "fwd_out_store_p_ms": ("forward outputs", (("fwd_out_1", "fwd_out_2"), ("fwd_out_store_p",),
                                                       ("fwd_out_0_store_p",), ("fwd_out",))),
            "bwd_local_ms": ("backward, per chunk", (("bwd_local_1", "bwd_local_2"), ("bwd_local",))),
            "bwd_scan_ms": ("backward scan", (("bwd_scan",),))}


def launch_rows(bench: dict, seq_len: int = 8192) -> list[tuple]:
    """One row per launch of a training step at ``T = seq_len``: ``(launch, ms, share of the
    step, registers per thread, spilled registers, programs per SM by registers)``.

    Registers and spills are what the compiler reported for the kernel the benchmark timed;
    a launch made of two kernels shows both. ``programs per SM`` assumes the launch's warps
    (``chosen_launch``: ``out_warps``, ``bwd_warps``, ``scan_warps``; 4 when not recorded)."""
    bd = [r for r in bench.get("breakdown", []) if isinstance(r, dict) and r.get("T") == seq_len]
    if not bd:
        return []
    r = bd[0]
    kernels = r.get("kernels", {})
    launch = bench.get("chosen_launch", {})
    total = sum(r[k] for k in LAUNCHES if k in r)
    rows = []
    for key, (name, groups) in LAUNCHES.items():
        if key not in r:
            continue
        warps = launch.get("scan_warps" if "scan" in key else
                           "out_warps" if key.startswith("fwd") else "bwd_warps", 4)
        found = next((g for g in groups if all(k in kernels for k in g)), ())
        stats = [kernels[k] for k in found]
        regs = " / ".join(str(s["n_regs"]) for s in stats) or "-"
        spills = " / ".join(str(s["n_spills"]) for s in stats) or "-"
        fit = " / ".join(str(programs_per_sm(s["n_regs"], warps)) for s in stats) or "-"
        rows.append((name, f"{r[key]:.2f}", f"{100 * r[key] / total:.0f}%", regs, spills, fit))
    return rows


# ----------------------------------------------------------------------------- launch table
def kernel_table(batch: int, seq_len: int, heads: int, head_dim: int, resolution: int,
                 num_slots: int | None = None, chunk_size: int = 64) -> list[tuple]:
    """One row per launch: ``(kernel, phase, grid, programs, tiles, reads, writes)`` at this shape
    (``NC = ceil(T / C)`` chunks, ``BD`` the scans' d-tile).

    Grid and tile sizes come from the wrappers' own rules: ``DEFAULT_LAUNCH.scan_bd`` for the scans'
    d-tile, ``pow2_at_least_32`` for the padded frequency (``NP``) and slot (``SP``) sizes,
    ``pow2_at_least_16`` for head dims.
    """
    from blaviz.ops.bla.triton import (DECODE_BLOCK_D, DEFAULT_LAUNCH, pow2_at_least_16,
                                       pow2_at_least_32)

    B, T, H, d, N, C = batch, seq_len, heads, head_dim, resolution, chunk_size
    S = N if num_slots is None else num_slots
    NP, SP, DP = pow2_at_least_32(N), pow2_at_least_32(S), pow2_at_least_16(d)
    NC = -(-T // C)
    bd = DEFAULT_LAUNCH.scan_bd
    tiles = 2 * (-(-d // bd))
    scan_grid = ("(B·H, 2⌈d/BD⌉)", (B * H, tiles))
    chunk_grid = ("(NC, B·H)", (NC, B * H))
    state = f"state [{NP}, {bd}], A [{NP}, {NP}], YM [{NP}, {C}], k or v [{C}, {bd}]"
    chunk_tiles = f"[{C}, {DP}], [{C}, {NP}], [{C}, {SP}], [{C}, {C}]"   # [C,d] [C,N_P] [C,S_P] [C,C]
    split = True                    # the backward is always two launches
    rows = [
        ("_fwd_scan_kernel", "forward 1: scan", scan_grid, state,
         "k, v (each once); A, YM; initial state", f"state entering every chunk [B, H, {NC}, {NP}, d] fp32; final state"),
        ("_fwd_out_kernel", "forward 2: outputs", chunk_grid, chunk_tiles,
         "q, k, v of one chunk; its entering F, G (and again in swap order); fixed tables",
         "o" + (f"; slot weights p, [{C}, {SP}] fp32 per chunk (if a gradient is needed)" if split else "")),
    ]
    if split:
        rows += [
            ("_bwd_local_kernel (PART 1)", "backward 1: value side", chunk_grid, chunk_tiles,
             "do, v, G, saved p", f"dV_loc, beta_G; scale * dZ, [{C}, {SP}] fp32 per chunk"),
            ("_bwd_local_kernel (PART 2)", "backward 2: key side", chunk_grid, chunk_tiles,
             "q, k, F, dZ", "dq (final), dK_loc, beta_F"),
        ]
    else:
        rows.append(("_bwd_local_kernel (PART 0)", "backward 1: per chunk", chunk_grid, chunk_tiles,
                     "q, k, v, do, F, G (p recomputed)", "dq (final), dK_loc, dV_loc, beta_F, beta_G"))
    rows += [
        ("_bwd_scan_kernel", "backward: adjoint scan", scan_grid,
         f"adjoint [{NP}, {bd}], A^T, YM^T (transposed loads)",
         "dK_loc, dV_loc, beta; final-state gradient", "dk, dv; initial-state gradient"),
        ("_decode_kernel", "decode: one token", ("B·H", (B * H,)), f"F, G in [{NP}, {DECODE_BLOCK_D}] column tiles, Rs [{NP}, {SP}]",
         "q, k, v of the token; F, G (twice: direct and swapped); tables", "o; new F, G (may overwrite the old)"),
    ]
    out = []
    for name, phase, grid, tile, reads, writes in rows:
        symbolic, sizes = grid
        programs = int(np.prod(sizes))
        numeric = f"({', '.join(str(g) for g in sizes)})" if len(sizes) > 1 else str(sizes[0])
        out.append((f"`{name}`", phase, f"{symbolic} = {numeric}", f"{programs:,}", tile, reads, writes))
    return out


# ----------------------------------------------------------------------------- tf32 rounding
def emulate_tf32(x: torch.Tensor, mode: str) -> torch.Tensor:
    """float32 operand as a Hopper tensor core reads it, returned as float64.

    ``"trunc"``: the low 13 mantissa bits dropped (plain ``tf32``); ``"rn"``: rounded to the nearest
    tf32 first, as ``_rn_tf32`` in ``chunk_fwd`` does (``(bits + 0x1000) & ~0x1FFF``); ``"fp32"``:
    unchanged."""
    if mode == "rn":                  # the kernels' host-side rounding: one definition of the bit trick
        from blaviz.ops.bla.triton import round_tf32
        return round_tf32(x.to(torch.float32)).to(torch.float64)
    bits = x.to(torch.float32).contiguous().view(torch.int32)
    if mode == "trunc":
        bits = bits & -8192
    elif mode != "fp32":
        raise ValueError(f"mode must be trunc, rn or fp32, got {mode!r}")
    return bits.view(torch.float32).to(torch.float64)


def _emulated_dot(a: torch.Tensor, b: torch.Tensor, mode: str) -> torch.Tensor:
    """``a @ b`` with operands rounded as the tensor cores would, float64 sums, float32 result."""
    if mode == "tf32x3":
        a_hi, b_hi = emulate_tf32(a, "rn"), emulate_tf32(b, "rn")
        a_lo, b_lo = emulate_tf32(a - a_hi, "rn"), emulate_tf32(b - b_hi, "rn")
        out = a_hi @ b_hi + a_hi @ b_lo + a_lo @ b_hi
    else:
        out = emulate_tf32(a, mode) @ emulate_tf32(b, mode)
    return out.to(torch.float32).to(torch.float64)


ROUNDING_MODES = {"trunc": "plain tf32 (truncated operands)", "rn": "tf32rn (rounded to nearest)",
                  "tf32x3": "tf32x3 (three products)"}


def scan_rounding_error(window: int, resolution: int, chunk_size: int = 64, head_dim: int = 64,
                        num_chunks: int = 128, modes=tuple(ROUNDING_MODES), seed: int = 0) -> dict:
    """The forward state scan ``F <- A_C F + (Y Minv) K_c`` with emulated operand rounding.

    Runs the scan in float64 (exact) and with each rounding ``mode`` (see :func:`emulate_tf32`;
    ``"tf32x3"`` splits each operand into two tf32 parts and sums three products), on random keys.
    Returns ``{mode: (rel_rms [num_chunks], bias)}``: the relative RMS error of the state after
    each chunk against the exact scan, and the final state's relative bias ``<err, F> / <F, F>``
    (negative: the state shrinks). An emulation of operand rounding only: the real tensor cores
    also round their float32 sums in their own order.
    """
    from blaviz.dirichlet import chunk_matrices, chunk_transition

    A = chunk_transition(window, resolution, chunk_size)
    m = chunk_matrices(window, resolution, None, chunk_size)
    YM = m.write_out @ m.erase_inv
    g = torch.Generator().manual_seed(seed)
    K = torch.randn(num_chunks, chunk_size, head_dim, generator=g, dtype=torch.float64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # thousands of tiny products: threads only add overhead
    try:
        F = torch.zeros(A.shape[0], head_dim, dtype=torch.float64)
        exact = []
        for c in range(num_chunks):
            F = A @ F + YM @ K[c]
            exact.append(F)
        exact = torch.stack(exact)
        out = {}
        for mode in modes:
            F = torch.zeros_like(F)
            states = []
            for c in range(num_chunks):
                F = (_emulated_dot(A, F, mode) + _emulated_dot(YM, K[c], mode)).to(torch.float32).to(torch.float64)
                states.append(F)
            err = torch.stack(states) - exact
            rel = err.pow(2).mean((1, 2)).sqrt() / exact.pow(2).mean((1, 2)).sqrt()
            bias = float((err[-1] * exact[-1]).sum() / exact[-1].pow(2).sum())
            out[mode] = (rel.numpy(), bias)
    finally:
        torch.set_num_threads(threads)
    return out


ROUNDING_LAYOUT = dict(height=420, margin=dict(t=30, b=50, l=70, r=20),
                       xaxis=dict(title="chunks scanned"),
                       yaxis=dict(type="log", title="relative RMS error of the state", exponentformat="power"),
                       # above the plot, off the data (the slider is below it)
                       legend=dict(orientation="h", x=0, xanchor="left", y=1.02, yanchor="bottom"))
_ROUNDING_COLORS = {"trunc": "#d62728", "rn": "#1f77b4", "tf32x3": "#2ca02c"}


def rounding_traces(window: int = 512, resolution: int = 63, chunk_size: int = 64, head_dim: int = 64,
                    num_chunks: int = 128) -> list:
    """One line per rounding mode: error of the emulated scan against float64, chunk by chunk."""
    res = scan_rounding_error(window, resolution, chunk_size, head_dim, num_chunks)
    x = np.arange(1, num_chunks + 1)
    return [go.Scatter(x=x, y=compact(rel), mode="lines", name=f"{ROUNDING_MODES[mode]}, bias {bias:+.1e}",
                       line=dict(color=_ROUNDING_COLORS[mode]),
                       hovertemplate=f"{ROUNDING_MODES[mode]}<br>chunk %{{x}}: %{{y:.2e}}<extra></extra>")
            for mode, (rel, bias) in res.items()]


def rounding_figure(window: int = 512, resolutions=(15, 31, 63), active: int = -1, **kwargs) -> go.Figure:
    """Slider over ``N``: emulated rounding error of the forward scan for the three operand modes."""
    steps = [(str(n), rounding_traces(window, n, **kwargs)) for n in resolutions]
    return slider_figure(steps, slider_label="N", layout=ROUNDING_LAYOUT, active=active % len(steps), digits=4)
