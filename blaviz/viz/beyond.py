"""Figures and tables of chapter 10, "Beyond the paper": the read-out model next to trained
accuracies, the variants' labels, the regime's controls and what its runs cost (the variants'
accuracy against state is chapter 8's figure, :func:`blaviz.viz.mqar.accuracy_state_figure`).

Every function reads plain rows (the JSON of ``results/beyond/readout.json``, the records of a
``runs.jsonl``, the rows of ``results/mqar/book/summary.json``) and returns a plotly figure or
table rows: nothing here trains or computes a prediction.
"""
from __future__ import annotations

import statistics
from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import compact

__all__ = ["trained_bla_points", "readout_figure", "readout_table", "variant_label",
           "controls_figure", "run_cost", "erasure_kernels_figure"]

_SLOT_STYLE = {"N": ("S = N", "solid"), "2N": ("S = 2N", "dash"), "W": ("S = W", "dot")}
# one colour per slot rule on every panel (plotly would cycle colours across the panels)
_SLOT_COLOR = {"N": "#636efa", "2N": "#ef553b", "W": "#00a383"}
_TRAINED_COLOR = "#c2410c"


def _config(cfg: str) -> dict:
    """``"W=64,N=15"`` -> ``{"W": 64, "N": 15}`` (a summary row's ``config``)."""
    out = {}
    for part in cfg.split(","):
        k, _, v = part.partition("=")
        if v.isdigit():
            out[k] = int(v)
    return out


def trained_bla_points(summary_rows: Sequence[dict], *, slice_name: str = "64x16",
                       min_window: int = 64) -> list[dict]:
    """BLA's trained accuracy on one test slice, per ``(W, N, d_model)``, from a summary's rows.

    The default slice, 16 key-value pairs in 64 tokens, puts the items on every second token and
    every query inside a window of ``W >= 64``: the situation the read-out model describes.
    """
    pts = []
    for r in summary_rows:
        c = _config(r.get("config", ""))
        if r.get("mixer") != "bla" or "W" not in c or c["W"] < min_window or c["N"] >= c["W"]:
            continue
        if slice_name not in r.get("per_slice", {}):
            continue
        pts.append({"window": c["W"], "resolution": c["N"], "w_over_n": c["W"] / c["N"],
                    "d_model": r["d_model"], "accuracy": r["per_slice"][slice_name]})
    return sorted(pts, key=lambda p: (p["d_model"], p["w_over_n"]))


def readout_figure(rows: Sequence[dict], trained: Sequence[dict] = (), *,
                   widths: Sequence[int] = (64, 128, 256),
                   trained_label: str = "trained BLA, slice 64x16") -> go.Figure:
    """Predicted in-window recall against ``W/N``: one panel per head width ``d``, one line per
    slot rule; exact erasure (dashed grey, ``S = N``) and trained points on the ``d = 64`` panel."""
    fig = make_subplots(rows=1, cols=len(widths), shared_yaxes=True, shared_xaxes=True,
                        subplot_titles=[f"d = {d}" for d in widths], horizontal_spacing=0.04)
    for col, d in enumerate(widths, start=1):
        for rule, (name, dash) in _SLOT_STYLE.items():
            pts = sorted((r for r in rows if r["head_dim"] == d and r["slots"] == rule
                          and r["erasure"] == "periodic"), key=lambda r: r["w_over_n"])
            if not pts:
                continue
            fig.add_trace(go.Scatter(
                x=compact([p["w_over_n"] for p in pts]), y=compact([p["recall"] for p in pts]),
                mode="lines+markers", name=name, legendgroup=rule, showlegend=col == 1,
                line=dict(dash=dash, color=_SLOT_COLOR[rule]), marker=dict(size=6),
                hovertemplate=f"{name}, d = {d}<br>W/N = %{{x:.2f}}<br>recall %{{y:.3f}}"
                              "<extra></extra>"), row=1, col=col)
        exact = sorted((r for r in rows if r["head_dim"] == d and r["erasure"] == "exact"),
                       key=lambda r: r["w_over_n"])
        if exact:
            fig.add_trace(go.Scatter(
                x=compact([p["w_over_n"] for p in exact]),
                y=compact([p["recall"] for p in exact]), mode="lines", name="exact erasure, S = N",
                line=dict(dash="longdash", color="grey"), showlegend=col == 1,
                hovertemplate="exact erasure<br>W/N = %{x:.2f}<br>recall %{y:.3f}<extra></extra>"),
                row=1, col=col)
        mine = [p for p in trained if d == 64]
        if mine:
            fig.add_trace(go.Scatter(
                x=compact([p["w_over_n"] for p in mine]), y=compact([p["accuracy"] for p in mine]),
                mode="markers", name=trained_label,
                marker=dict(symbol="x", size=9, color=_TRAINED_COLOR),
                text=[f"W={p['window']}, N={p['resolution']}, d_model {p['d_model']}"
                      for p in mine], showlegend=True,
                hovertemplate="%{text}<br>accuracy %{y:.3f}<extra></extra>"), row=1, col=col)
    fig.update_xaxes(type="log", title_text="W / N", tickvals=[1, 2, 4, 8])
    fig.update_yaxes(title_text="in-window recall", range=[0, 1.05], row=1, col=1)
    fig.update_layout(height=380, legend=dict(orientation="h", y=-0.25),
                      margin=dict(t=40, b=40))
    return fig


def readout_table(rows: Sequence[dict], *, resolutions=(31, 21, 15, 7),
                  widths=(64, 128, 256)) -> tuple[list[list], list[str]]:
    """``(rows, headers)`` for :func:`blaviz.viz.md_table`: recall per ``(d, S rule)`` and ``N``
    at ``W = 64`` (periodic erasure)."""
    index = {(r["head_dim"], r["slots"], r["resolution"]): r["recall"] for r in rows
             if r["erasure"] == "periodic"}
    out = []
    for d in widths:
        for rule in _SLOT_STYLE:
            vals = [index.get((d, rule, n)) for n in resolutions]
            if any(v is not None for v in vals):
                out.append([d, _SLOT_STYLE[rule][0]]
                           + ["-" if v is None else f"{v:.2f}" for v in vals])
    W = rows[0]["window"] if rows else 64
    return out, ["d", "slots"] + [f"W/N = {W / n:.1f}" for n in resolutions]


def variant_label(rec: dict) -> str:
    """A short name for a run's mixer and configuration."""
    m, kw = rec["mixer"], rec["mixer_kwargs"]
    if m == "swa":
        return f"SWA W={kw['window']}"
    if m == "bla":
        s = kw.get("num_slots")
        return f"BLA ({kw['window']}, {kw['resolution']})" + (f" S={s}" if s else "")
    if m == "bla_multires":
        return "multi-res " + " + ".join(f"({w}, {n})" for w, n in kw["heads"])
    if m == "gated_bla":
        return f"gated BLA ({kw['window']}, {kw['resolution']})"
    if m == "bla_exact_erasure":
        return f"exact erasure ({kw['window']}, {kw['resolution']})"
    if m == "swa_bla_hybrid":
        return f"SWA {kw['swa_window']} + BLA ({kw['window']}, {kw['resolution']})"
    return m + ("(" + ",".join(f"{k}={v}" for k, v in sorted(kw.items())) + ")" if kw else "")


def controls_figure(records: Sequence[dict], *, title: str = "") -> go.Figure:
    """Validation accuracy against training step, one line per run (label and learning rate)."""
    fig = go.Figure()
    for r in sorted(records, key=lambda r: (variant_label(r), r["lr"])):
        h = r.get("history", [])
        if not h:
            continue
        name = f"{variant_label(r)}, lr {r['lr']:g}"
        fig.add_trace(go.Scatter(
            x=[p["step"] for p in h], y=compact([p["val_pooled"] for p in h]),
            mode="lines+markers", name=name,
            hovertemplate=name + "<br>step %{x}<br>val %{y:.3f}<extra></extra>"))
    fig.update_layout(title=title, height=380, xaxis_title="training step",
                      yaxis=dict(title="pooled validation accuracy", range=[0, 1]),
                      legend=dict(orientation="h", y=-0.3))
    return fig


def run_cost(records: Sequence[dict], concurrency: int) -> list[dict]:
    """GPU-minutes one complete run would take, per configuration, from (cut) runs that shared
    one GPU ``concurrency`` ways: ``planned_steps * (train_time_s / steps) / concurrency / 60``.
    A run that stops early (0.99 reached) costs less; the estimate is for the whole schedule."""
    out = {}
    for r in records:
        if "error" in r or not r.get("steps"):
            continue
        per_step = r["train_time_s"] / r["steps"]
        minutes = r["planned_steps"] * per_step / concurrency / 60
        key = variant_label(r)
        out.setdefault(key, []).append({"s_per_step": per_step, "minutes": minutes,
                                        "planned_steps": r["planned_steps"]})
    return [{"label": k, "s_per_step": statistics.mean(x["s_per_step"] for x in v),
             "planned_steps": v[0]["planned_steps"],
             "gpu_minutes": statistics.mean(x["minutes"] for x in v)} for k, v in out.items()]


def erasure_kernels_figure(window: int = 32, resolution: int = 7, slots=(0, 2),
                           length: int | None = None) -> go.Figure:
    """Slot kernels ``h_j(D)`` of BLA (periodic erasure) beside exact erasure's truncated ones,
    with the peak ``N / W`` marked: what each slot weighs the token at lag ``D`` with."""
    from blaviz.analysis.readout import read_kernels

    L = length or 2 * window
    periodic = read_kernels(window, resolution, None, L, "periodic")
    exact = read_kernels(window, resolution, None, L, "exact")
    fig = go.Figure()
    lags = list(range(L))
    colors = ("#636efa", "#ef553b", "#00a383", "#ab63fa")
    for i, j in enumerate(slots):
        for h, name, dash in ((periodic, "BLA", "solid"), (exact, "exact erasure", "dot")):
            fig.add_trace(go.Scatter(
                x=lags, y=compact(h[j].numpy()), mode="lines",
                line=dict(dash=dash, color=colors[i % len(colors)]),
                name=f"{name}, slot {j}",
                hovertemplate=f"{name}, slot {j}<br>lag %{{x}}<br>weight %{{y:.3f}}"
                              "<extra></extra>"))
    fig.add_hline(y=resolution / window, line=dict(color="grey", width=1, dash="dash"),
                  annotation_text="N / W", annotation_position="top right")
    fig.update_layout(height=340, xaxis_title="lag D (tokens)", yaxis_title="h_j(D)",
                      title=f"Slot kernels, W = {window}, N = {resolution}",
                      legend=dict(orientation="h", y=-0.3))
    return fig
