"""Figures and tables of chapter 7 (the Triton kernel).

Three groups, all pure functions of their inputs:

* the **stored GPU benchmark** (``results/bench/h200.json``, written by ``python -m blaviz.bench
  gpu`` or rebuilt from its log): :func:`load_bench`, :func:`timing_figure` (forward and
  forward+backward time against ``T``, a slider over ``N``), :func:`decode_figure`, and small
  row builders for tables (:func:`provenance_rows`, :func:`target_rows`, :func:`breakdown_rows`,
  :func:`variant_rows`, :func:`missing_rows`, :func:`compare_timings`). The file's schema has
  changed between runs (``variants`` / ``variants_N63_W512``, ``breakdown`` as a list or as
  ``breakdown_plain_tf32`` with a note), and some baseline rows are marked ``invalid`` or have no
  timing: every reader here takes what exists and skips what does not.
* the **launch table** of the kernels at a given shape (:func:`kernel_table`), computed from the
  launch settings the wrappers use (``blaviz.ops.bla.triton.CONFIG`` and the padding helpers).
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

#: the stored benchmark of the repository (the book reads ``../results/bench/h200.json`` from book/)
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "results" / "bench" / "h200.json"

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
    """The stored benchmark as a dict, or ``{}`` when the file does not exist."""
    p = Path(DEFAULT_PATH if path is None else path)
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


def variant_rows(bench: dict) -> list[tuple]:
    """The launch-setting sweep: ``(setting, T, fwd ms, fwd+bwd ms)``."""
    var = bench.get("variants", bench.get("variants_N63_W512", []))
    rows = []
    for v in var:
        if "fwd_ms" not in v:
            continue
        setting = ", ".join(f"{k}={v[k]}" for k in ("C", "out_warps", "bwd_warps", "scan_bd") if k in v)
        rows.append((setting, v.get("T"), f"{v['fwd_ms']:.2f}", f"{v.get('fwdbwd_ms', float('nan')):.2f}"))
    return rows


def compare_timings(stored: dict, fresh: dict) -> list[tuple]:
    """BLA rows present in both files: ``(W, N, T, stored fwd, fresh fwd, stored fwd+bwd, fresh fwd+bwd)``."""
    out = []
    for r in bench_rows(fresh, "bla"):
        match = bench_rows(stored, "bla", W=r.get("W"), N=r.get("N"), T=r.get("T"))
        s = match[0] if match else {}

        def fmt(row, key):
            return f"{row[key]:.3f}" if _timed(row, key) else "-"
        out.append((r.get("W"), r.get("N"), r.get("T"), fmt(s, "fwd_ms"), fmt(r, "fwd_ms"),
                    fmt(s, "fwdbwd_ms"), fmt(r, "fwdbwd_ms")))
    return out


# ----------------------------------------------------------------------------- timing figure
def timing_layout(bench: dict | None = None) -> go.Figure:
    """Two panels, forward and forward+backward, log-log; the legend above them."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("forward", "forward + backward"))
    cfg = (bench or {}).get("config", {})
    tokens, lengths = cfg.get("tokens"), cfg.get("lengths") or [2048, 8192, 32768]
    xt = f"T (batch x T = {tokens:,} tokens)" if tokens else "sequence length T"
    fig.update_xaxes(type="log", title_text=xt, tickvals=list(lengths),
                     ticktext=[f"{t // 1024}k" if t >= 1024 else str(t) for t in lengths])
    ticks = [0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]
    fig.update_yaxes(type="log", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
    fig.update_yaxes(title_text="ms per step (median)", row=1, col=1)
    fig.update_layout(height=480, margin=dict(t=110, b=50, l=60, r=20),
                      legend=dict(orientation="h", y=1.14, yanchor="bottom", x=0, xanchor="left"))
    return fig


def cfg_text(cfg: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in cfg.items())


def timing_traces(bench: dict, resolution: int, windows=None) -> list:
    """Traces of one slider step: BLA at ``N = resolution`` (one line per window ``W``), every
    baseline that has valid rows, and the N=63 targets; for each, a forward and a forward+backward
    trace (panels 1 and 2). Series without data are empty traces, so every step has the same
    traces (one slider step per ``N``)."""
    windows = _values(bench, "bla", "W") if windows is None else list(windows)
    series = [("bla", dict(W=W, N=resolution), f"BLA W = {W}", i) for i, W in enumerate(windows)]
    for op in ("flex_swa", "fla_gsa"):
        key = "W" if op == "flex_swa" else "M"
        for i, val in enumerate(_values(bench, op, key)):
            if bench_rows(bench, op, **{key: val}):
                series.append((op, {key: val}, f"{OPS[op][2]} {key} = {val}", i))
    if bench_rows(bench, "cudnn_causal"):
        series.append(("cudnn_causal", {}, OPS["cudnn_causal"][2], 0))
    traces = []
    for col, key in ((1, "fwd_ms"), (2, "fwdbwd_ms")):
        axes = dict(xaxis="x" if col == 1 else "x2", yaxis="y" if col == 1 else "y2")
        for op, cfg, name, i in series:
            rows = [r for r in bench_rows(bench, op, **cfg) if _timed(r, key)]
            traces.append(go.Scatter(
                x=[r["T"] for r in rows], y=[r[key] for r in rows], name=name, legendgroup=name,
                showlegend=col == 1, mode="lines+markers",
                line=dict(color=OPS[op][1], dash=_DASHES[i % len(_DASHES)], width=2 if op == "bla" else 1.5),
                marker=dict(symbol=_SYMBOLS[i % len(_SYMBOLS)], size=7),
                hovertemplate=f"{OPS[op][0]}, {cfg_text(cfg)}<br>T = %{{x}}<br>%{{y:.3f}} ms<extra></extra>", **axes))
        tgt = find_target(bench, "fwd_T8192" if col == 1 else "fwdbwd_T8192")
        show = tgt is not None and resolution == 63
        traces.append(go.Scatter(
            x=[8192] if show else [], y=[tgt["target"]] if show else [], name="target (N = 63)",
            legendgroup="target", showlegend=col == 1, mode="markers",
            marker=dict(symbol="star", size=13, color="black"),
            hovertemplate="target %{y} ms<extra></extra>", **axes))
    return traces


def timing_figure(bench: dict, resolutions=None, active: int = -1) -> go.Figure:
    """Slider over ``N``: stored forward and forward+backward times against ``T``, with baselines."""
    resolutions = _values(bench, "bla", "N") if resolutions is None else list(resolutions)
    if not resolutions:
        raise ValueError("the benchmark file has no BLA rows")
    windows = _values(bench, "bla", "W")
    steps = [(str(n), timing_traces(bench, n, windows)) for n in resolutions]
    return slider_figure(steps, slider_label="N", layout=timing_layout(bench), active=active % len(steps))


# ----------------------------------------------------------------------------- decode figure
def decode_figure(bench: dict) -> go.Figure:
    """Bar chart of the stored decode latencies (one token per sequence, CUDA graph), with the target."""
    rows = [r for r in bench.get("decode", []) if isinstance(r.get("us"), (int, float))]
    if not rows:
        raise ValueError("the benchmark file has no decode rows")
    labels, values, text, colors = [], [], [], []
    for r in rows:
        if r.get("op") == "bla_decode":
            labels.append(f"BLA N = {r.get('N')}")
            colors.append(OPS["bla"][1])
            bits = [f"{r['state_MiB']:.1f} MiB state" if "state_MiB" in r else "",
                    f"{100 * r['frac_hbm']:.0f}% of copy bw" if "frac_hbm" in r else ""]
            text.append("<br>".join(b for b in bits if b))
        else:
            name = "fla GSA" if "gsa" in str(r.get("op")) else str(r.get("op"))
            labels.append(f"{name} M = {r['M']}" if "M" in r else name)
            colors.append(OPS["fla_gsa"][1])
            text.append("")
        values.append(r["us"])
    batch = rows[0].get("batch")
    fig = go.Figure(go.Bar(x=labels, y=compact(values, 4), marker_color=colors, text=text,
                           textposition="inside", insidetextanchor="end", textangle=0,
                           hovertemplate="%{x}: %{y:.1f} µs<extra></extra>"))
    tgt = find_target(bench, "decode_us")
    if tgt is not None:
        fig.add_hline(y=tgt["target"], line_dash="dash", line_color="black",
                      annotation_text=f"target {tgt['target']:g} µs (N = 63)", annotation_position="top left")
    fig.update_layout(height=360, margin=dict(t=40, b=40, l=60, r=20),
                      yaxis=dict(title=f"µs per decoding step (batch {batch}, 16 heads)" if batch else "µs per step",
                                 range=[0, 1.25 * max(values)]))
    return fig


# ----------------------------------------------------------------------------- launch table
def kernel_table(batch: int, seq_len: int, heads: int, head_dim: int, resolution: int,
                 num_slots: int | None = None, chunk_size: int = 64) -> list[tuple]:
    """One row per launch: ``(kernel, phase, grid, programs, tiles, reads, writes)`` at this shape
    (``NC = ceil(T / C)`` chunks, ``BD`` the scans' d-tile).

    Grid and tile sizes come from the wrappers' own rules: ``CONFIG["scan_bd"]`` for the scans'
    d-tile, ``pow2_at_least_32`` for the padded frequency (``NP``) and slot (``SP``) sizes,
    ``pow2_at_least_16`` for head dims.
    """
    from blaviz.ops.bla.triton import CONFIG
    from blaviz.ops.bla.triton._consts import pow2_at_least_16, pow2_at_least_32

    B, T, H, d, N, C = batch, seq_len, heads, head_dim, resolution, chunk_size
    S = N if num_slots is None else num_slots
    NP, SP, DP = pow2_at_least_32(N), pow2_at_least_32(S), pow2_at_least_16(d)
    NC = -(-T // C)
    bd = CONFIG["scan_bd"]
    tiles = 2 * (-(-d // bd))
    scan_grid = ("(B·H, 2⌈d/BD⌉)", (B * H, tiles))
    chunk_grid = ("(NC, B·H)", (NC, B * H))
    state = f"state [{NP}, {bd}], A [{NP}, {NP}], YM [{NP}, {C}], k or v [{C}, {bd}]"
    chunk_tiles = f"[{C}, {DP}], [{C}, {NP}], [{C}, {SP}], [{C}, {C}]"
    split = CONFIG.get("bwd_split", True)
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
        ("_decode_kernel", "decode: one token", ("B·H", (B * H,)), f"F, G [{NP}, {DP}], Rs [{NP}, {SP}]",
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
        from blaviz.ops.bla.triton._consts import round_tf32
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


ROUNDING_LAYOUT = dict(height=380, margin=dict(t=30, b=50, l=70, r=20),
                       xaxis=dict(title="chunks scanned"),
                       yaxis=dict(type="log", title="relative RMS error of the state", exponentformat="power"),
                       legend=dict(x=0.35, y=0.55, yanchor="middle"))
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
