"""Chapter 8 figures (MQAR): one decoded example, accuracy against state from stored runs, the
window-coverage ceiling of sliding window attention, and the training curve of a live run.

The numbers come from :mod:`blaviz.data.mqar` (the generator), :mod:`blaviz.experiments.analysis`
(best accuracy over learning rates, read from ``runs.jsonl``) and :mod:`blaviz.state_size`; this
module only draws them. The per-slice figure is a plotly-native slider (works on the static site).
"""
from __future__ import annotations

import html
from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from blaviz.data.mqar import IGNORE_INDEX, mqar_test_slices
from blaviz.state_size import state_size

from .figures import compact, slider_figure

__all__ = [
    "ROLE_COLORS", "example_roles", "example_table",
    "STATE_FORMULAS", "state_formula_rows",
    "query_distances", "window_coverage",
    "provenance", "runs_label",
    "MIXER_LABELS", "accuracy_state_traces", "accuracy_state_layout", "accuracy_state_figure",
    "per_slice_figure", "training_curve_figure",
]

# ------------------------------------------------------------------------------ one example
#: background of each token role in :func:`example_table` (translucent: readable in dark mode too)
ROLE_COLORS = {
    "key": "rgba(31,119,180,0.30)",
    "value": "rgba(44,160,44,0.30)",
    "query": "rgba(255,127,14,0.45)",
    "answer": "rgba(214,39,40,0.28)",
    "filler": "rgba(128,128,128,0.10)",
}
_ROLE_PREFIX = {"key": "k", "value": "v", "query": "q", "answer": "a", "filler": ""}


def example_roles(inputs, labels, num_kv_pairs: int) -> list[dict]:
    """Decode one MQAR example: per position ``{"pos", "token", "role", "pair", "label"}``.

    ``inputs`` and ``labels`` are one row of :func:`blaviz.data.mqar.make_mqar` (1-D). Roles:
    ``key``/``value`` (the context, pairs ``1..num_kv_pairs``), ``query`` (a labelled position:
    a key shown again, whose value must be predicted there), ``answer`` (the value written right
    after a query, when ``answers_in_input``), ``filler`` (everything else, not scored). ``pair``
    is the 1-based index of the key-value pair a token belongs to (``None`` for filler); ``label``
    is the target at that position (``None`` where it is ``-100``).
    """
    x = torch.as_tensor(inputs).reshape(-1).tolist()
    y = torch.as_tensor(labels).reshape(-1).tolist()
    if len(x) != len(y):
        raise ValueError(f"inputs ({len(x)}) and labels ({len(y)}) differ in length")
    ctx = 2 * int(num_kv_pairs)
    if ctx > len(x):
        raise ValueError(f"num_kv_pairs={num_kv_pairs} needs at least {ctx} positions, got {len(x)}")
    pair_of_key = {x[p]: p // 2 + 1 for p in range(0, ctx, 2)}
    out = []
    for p, (tok, lab) in enumerate(zip(x, y)):
        label = None if lab == IGNORE_INDEX else int(lab)
        if p < ctx:
            role, pair = ("key" if p % 2 == 0 else "value"), p // 2 + 1
        elif label is not None:
            if tok not in pair_of_key:
                raise ValueError(f"position {p} is labelled but holds {tok}, which is not a context key")
            role, pair = "query", pair_of_key[tok]
        elif p > 0 and out[p - 1]["role"] == "query" and tok == out[p - 1]["label"]:
            role, pair = "answer", out[p - 1]["pair"]
        else:
            role, pair = "filler", None
        out.append({"pos": p, "token": int(tok), "role": role, "pair": pair, "label": label})
    n_queries = sum(r["role"] == "query" for r in out)
    if n_queries != num_kv_pairs:
        raise ValueError(f"found {n_queries} queries, expected num_kv_pairs={num_kv_pairs}")
    return out


class _HTML:
    """Rich output holding HTML (a plain-text fallback keeps terminals and nbval readable)."""

    def __init__(self, html_text: str, text: str):
        self.html, self.text = html_text, text

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def example_table(inputs, labels, num_kv_pairs: int, *, per_row: int = 12) -> _HTML:
    """One decoded example as an HTML table: position, token, and role (``k2`` = key of pair 2),
    coloured by role, ``per_row`` positions per block. Returns an object Jupyter and the website
    render as HTML (its ``repr`` is a one-line-per-position text version)."""
    roles = example_roles(inputs, labels, num_kv_pairs)
    cell = "padding:1px 4px;text-align:center;border:1px solid rgba(128,128,128,0.35);"
    head = "padding:1px 6px 1px 0;text-align:right;font-weight:600;border:none;white-space:nowrap;"
    blocks = []
    for start in range(0, len(roles), per_row):
        part = roles[start:start + per_row]

        def row(title, cells):
            return f"<tr><th style='{head}'>{title}</th>" + "".join(cells) + "</tr>"

        pos = [f"<td style='{cell}opacity:0.7'>{r['pos']}</td>" for r in part]
        tok = [f"<td style='{cell}background:{ROLE_COLORS[r['role']]};font-family:monospace'>{r['token']}</td>"
               for r in part]
        rol = [f"<td style='{cell}background:{ROLE_COLORS[r['role']]}'>"
               + (f"{_ROLE_PREFIX[r['role']]}<sub>{r['pair']}</sub>" if r["pair"] else "&middot;") + "</td>"
               for r in part]
        lab = [f"<td style='{cell}font-family:monospace'>{'' if r['label'] is None else r['label']}</td>"
               for r in part]
        blocks.append("<table style='border-collapse:collapse;margin:0 0 8px 0;font-size:0.8em'>"
                      + row("position", pos) + row("token", tok) + row("role", rol) + row("label", lab)
                      + "</table>")
    legend = " ".join(
        f"<span style='background:{c};padding:1px 6px;margin-right:4px;border-radius:3px'>"
        f"{html.escape(name)}</span>" for name, c in ROLE_COLORS.items())
    html_text = ("<div class='blaviz-mqar-example' style='overflow-x:auto'>" + "".join(blocks)
                 + f"<div style='font-size:0.85em'>{legend}</div></div>")
    text = "\n".join(f"{r['pos']:4d} {r['token']:6d} {r['role']:<7s}"
                     + ("" if r["pair"] is None else f" pair {r['pair']}")
                     + ("" if r["label"] is None else f" -> label {r['label']}") for r in roles)
    return _HTML(html_text, text)


# ------------------------------------------------------------------------------ state sizes
#: the per-layer state formulas of BLA_SPEC section 7 (``H`` heads of dimension ``d``)
STATE_FORMULAS = {
    "bla": "2 N d H",
    "swa": "2 W d H",
    "gsa": "2 M d H",
    "linear": "d^2 H",
    "gla": "d^2 H",
    "gated_deltanet": "d^2 H",
    "softmax": "2 T d H",
}

#: how the book writes each mixer
MIXER_LABELS = {"bla": "BLA", "swa": "SWA", "softmax": "full attention", "gsa": "GSA", "gla": "GLA",
                "linear": "linear attention", "gated_deltanet": "Gated DeltaNet",
                "gated_bla": "gated BLA", "bla_multires": "multi-resolution BLA",
                "bla_exact_erasure": "BLA, exact erasure", "swa_bla_hybrid": "SWA + BLA hybrid"}


def state_formula_rows(*, head_dim: int = 64, num_heads: int = 1, window: int = 128, resolution: int = 15,
                       num_slots: int = 16, seq_len: int = 256) -> list[tuple[str, str, str, int]]:
    """``(mixer, formula, example config, state per layer)`` for every MQAR mixer; the numbers
    come from :func:`blaviz.state_size.state_size`."""
    kw = {"bla": dict(resolution=resolution), "swa": dict(window=window), "gsa": dict(num_slots=num_slots),
          "softmax": dict(seq_len=seq_len), "linear": {}, "gla": {}, "gated_deltanet": {}}
    cfg = {"bla": f"N = {resolution} (any W)", "swa": f"W = {window}", "gsa": f"M = {num_slots} slots",
           "softmax": f"T = {seq_len}", "linear": "", "gla": "", "gated_deltanet": ""}
    return [(MIXER_LABELS[m], STATE_FORMULAS[m], cfg[m],
             state_size(m, head_dim=head_dim, num_heads=num_heads, **kw[m])) for m in STATE_FORMULAS]


# ------------------------------------------------------------------------------ SWA's ceiling
def query_distances(inputs: torch.Tensor, labels: torch.Tensor, num_kv_pairs: int) -> torch.Tensor:
    """For every query of a batch ``[B, L]``: how many tokens back its value sits in the context
    (``query position - value position``), flattened. A window of ``W`` tokens that ends at the
    query holds the value exactly when this distance is below ``W``."""
    ctx = 2 * int(num_kv_pairs)
    b, i = (labels != IGNORE_INDEX).nonzero(as_tuple=True)
    values = labels[b, i]
    ctx_values = inputs[:, 1:ctx:2]                         # [B, num_kv_pairs]
    hit = ctx_values[b] == values[:, None]
    if not bool(hit.any(dim=1).all()):
        raise ValueError("a query's value is missing from its context")
    j = hit.float().argmax(dim=1)
    return i - (2 * j + 1)


def window_coverage(data, windows: Iterable[int]) -> dict[str, np.ndarray]:
    """Share of test queries whose value lies inside the last ``W`` tokens, for each ``W``.

    ``data`` is a :class:`blaviz.data.MQARData` (or a dict of its fields, as stored
    in each line of ``runs.jsonl``); the test sets are regenerated exactly as
    :func:`blaviz.data.mqar_sets` makes them. Returns ``{slice name: shares}`` plus
    ``"pooled"`` (over the scored tokens of ``data.pooled_slices``). A one-layer window cannot
    recall a value outside it, so this is sliding window attention's ceiling; two layers can relay
    a little further back, so a measured point can sit slightly above it.
    """
    from blaviz.data.mqar import MQARData, slice_name

    if isinstance(data, dict):
        data = MQARData(**data)
    windows = np.asarray(list(windows), dtype=np.int64)
    sets = mqar_test_slices(data.n_test, seed=data.seed, vocab_size=data.vocab_size, power_a=data.power_a,
                            slices=data.test_slices)
    out, pooled = {}, []
    pooled_names = {slice_name(s) for s in data.pooled_slices}
    for (L, kv), (x, y) in sets.items():
        d = query_distances(x, y, kv).numpy()
        out[slice_name((L, kv))] = (d[None, :] < windows[:, None]).mean(axis=1)
        if slice_name((L, kv)) in pooled_names:
            pooled.append(d)
    d = np.concatenate(pooled)
    out["pooled"] = (d[None, :] < windows[:, None]).mean(axis=1)
    return out


# ------------------------------------------------------------------------------ provenance
def provenance(records: Sequence[dict]) -> dict:
    """What made a set of ``runs.jsonl`` records: GPUs, dates, commits (``+dirty`` when the
    working tree had uncommitted changes), torch versions, and how many records."""
    gpus = sorted({r.get("gpu_name") or r.get("device", "?") for r in records})
    dates = sorted({str(r.get("started_at", "?"))[:10] for r in records})
    commits = []
    for r in sorted(records, key=lambda r: str(r.get("started_at", ""))):
        c = str(r.get("git_commit", "unknown"))[:7]
        dirty = str(r.get("git_dirty", "")).lower() in ("true", "1")
        c = c + "+dirty" if dirty else c
        if c not in commits:
            commits.append(c)
    return {"gpus": gpus, "dates": dates, "commits": commits, "n_runs": len(records),
            "torch": sorted({str(r.get("torch_version")) for r in records})}


def runs_label(records: Sequence[dict]) -> str:
    """``"27 complete runs on NVIDIA H200"``: a figure's subtitle (commits and dates belong to the
    appendix that says how each results file was made, not to a figure)."""
    p = provenance(records)
    return f"{p['n_runs']} complete runs on {', '.join(p['gpus'])}"


# ------------------------------------------------------------------------------ accuracy vs state
_SWA_COLOR, _CEIL_COLOR = "#555555", "rgba(85,85,85,0.55)"
_BLA_COLORS = ["#fdae6b", "#f16913", "#d94801", "#a63603", "#7f2704", "#4d1802"]
_OTHER_STYLE = {
    "softmax": dict(color="#1f77b4", symbol="star", size=15),
    "gsa": dict(color="#2ca02c", symbol="diamond", size=10),
    "gla": dict(color="#9467bd", symbol="square", size=10),
    "linear": dict(color="#8c564b", symbol="triangle-up", size=11),
    "gated_deltanet": dict(color="#e377c2", symbol="x", size=11),
    "gated_bla": dict(color="#17becf", symbol="diamond", size=11),
    "bla_multires": dict(color="#bcbd22", symbol="hexagon", size=11),
    "bla_exact_erasure": dict(color="#7f7f7f", symbol="cross", size=11),
    "swa_bla_hybrid": dict(color="#393b79", symbol="star-triangle-up", size=12),
}


def _slice_key(name: str):
    """``"64x4" < "64x8" < "128x32"``: by sequence length, then pairs."""
    try:
        return tuple(int(v) for v in name.split("x"))
    except ValueError:
        return (10**9, 0)


def _acc(row: dict, metric: str | None) -> float:
    return row["accuracy"] if metric in (None, "pooled") else row["per_slice"][metric]


def _seed_values(row: dict, metric: str | None) -> list[float]:
    """The row's accuracy per seed (one value for a row without ``seeds``)."""
    if "seeds" not in row:
        return [_acc(row, metric)]
    return [x["accuracy"] if metric in (None, "pooled") else x["per_slice"][metric] for x in row["seeds"]]


def _error_y(rows, metric) -> dict:
    """Error bars from the lowest to the highest seed (none where a point has one seed)."""
    vals = [_seed_values(r, metric) for r in rows]
    means = [_acc(r, metric) for r in rows]
    return dict(type="data", symmetric=False, array=[max(v) - m for v, m in zip(vals, means)],
                arrayminus=[m - min(v) for v, m in zip(vals, means)], thickness=1.5, width=4)


def _hover(rows, metric):
    out = []
    for r in rows:
        v = _seed_values(r, metric)
        seeds = (f"mean of {len(v)} seeds, {min(v):.3f} to {max(v):.3f}" if len(v) > 1
                 else "one seed")
        out.append(f"{MIXER_LABELS.get(r['mixer'], r['mixer'])} {r['config'] or ''}<br>state {r['state_size']:,}"
                   f"<br>accuracy {_acc(r, metric):.3f} (lr {r['best_lr']:g})<br>{seeds}")
    return out


def accuracy_state_traces(rows: Sequence[dict], *, metric: str | None = None, coverage=None,
                          d_model: int | None = None) -> list[go.Scatter]:
    """Accuracy (pooled, or one slice: ``metric="64x8"``) against state per layer, one trace per
    mixer and, for BLA, one per window ``W`` (its points are ``N = 3, 7, 15, ...``).

    ``rows`` are :func:`blaviz.experiments.analysis.best_over_lr` rows. ``coverage``, a pair
    ``(states, shares)`` from :func:`window_coverage`, adds SWA's window ceiling as a dashed line.
    The set of traces depends on ``rows`` only, not on ``metric`` (a slider can switch metrics).
    Each point is the mean over its seeds; its error bar runs from the lowest to the highest seed
    (no bar where only one seed exists; the hover text says how many).
    """
    rows = [r for r in rows if d_model is None or r["d_model"] == d_model]
    traces = []
    if coverage is not None:
        xs, ys = coverage
        traces.append(go.Scatter(x=np.asarray(xs), y=compact(np.asarray(ys, dtype=np.float64)), mode="lines",
                                 name="SWA ceiling: share of values inside W", line=dict(color=_CEIL_COLOR, dash="dash"),
                                 hovertemplate="state %{x:,}: %{y:.3f} of values inside the window<extra></extra>"))
    swa = sorted((r for r in rows if r["mixer"] == "swa"), key=lambda r: r["state_size"])
    if swa:
        traces.append(go.Scatter(
            x=[r["state_size"] for r in swa], y=[_acc(r, metric) for r in swa], mode="lines+markers+text",
            name="SWA", line=dict(color=_SWA_COLOR, width=2), marker=dict(size=9),
            text=[r["config"] for r in swa], textposition="top left", textfont=dict(size=10),
            error_y=_error_y(swa, metric), hovertext=_hover(swa, metric), hoverinfo="text"))
    # one line per window; reads with more slots than coefficients (config "M=...") get their own
    # line in the window's colour, since they share their states with the S = N points
    by_window = defaultdict(list)
    for r in rows:
        if r["mixer"] == "bla":
            cfg = dict(p.split("=") for p in r["config"].split(","))
            by_window[(int(cfg["W"]), "M" in cfg)].append(r)
    windows = sorted({w for w, _ in by_window})
    for (w, more_slots), rs in sorted(by_window.items()):
        rs = sorted(rs, key=lambda r: r["state_size"])
        color = _BLA_COLORS[windows.index(w) % len(_BLA_COLORS)]
        traces.append(go.Scatter(
            x=[r["state_size"] for r in rs], y=[_acc(r, metric) for r in rs], mode="lines+markers",
            name=f"BLA, W = {w}" + (", more slots (S > N)" if more_slots else ""),
            line=dict(color=color, width=2, dash="dash" if more_slots else "solid"),
            marker=dict(size=10, symbol="circle-open" if more_slots else "circle"),
            error_y=_error_y(rs, metric), hovertext=_hover(rs, metric), hoverinfo="text"))
    for mixer in sorted({r["mixer"] for r in rows} - {"swa", "bla"}):
        rs = sorted((r for r in rows if r["mixer"] == mixer), key=lambda r: r["state_size"])
        style = _OTHER_STYLE.get(mixer, dict(color="black", symbol="circle", size=10))
        traces.append(go.Scatter(
            x=[r["state_size"] for r in rs], y=[_acc(r, metric) for r in rs], mode="markers",
            name=MIXER_LABELS.get(mixer, mixer), marker=dict(**style), error_y=_error_y(rs, metric),
            hovertext=_hover(rs, metric), hoverinfo="text"))
    return traces


_STATE_TICKS = [2 ** k for k in range(7, 18)]


def _short(v: int) -> str:
    return f"{v // 1024}k" if v >= 1024 else str(v)


def accuracy_state_layout(title: str, *, subtitle: str = "", threshold: float | None = 0.5,
                          height: int = 460) -> dict:
    """Log-state x axis, accuracy y axis, an optional dotted threshold line, a subtitle, and the
    legend below the plot."""
    text = title + (f"<br><sup>{html.escape(subtitle)}</sup>" if subtitle else "")
    shapes = []
    if threshold is not None:
        shapes.append(dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=threshold, y1=threshold,
                           line=dict(color="rgba(120,120,120,0.7)", dash="dot", width=1)))
    return dict(
        title=dict(text=text, font=dict(size=15)), height=height, shapes=shapes,
        xaxis=dict(type="log", title="state per layer (real numbers, log scale)",
                   tickvals=_STATE_TICKS, ticktext=[_short(v) for v in _STATE_TICKS]),
        yaxis=dict(title="test accuracy", range=[-0.03, 1.1]),
        # below the plot, never over the data (on a phone as on a desktop)
        legend=dict(orientation="h", x=0, xanchor="left", y=-0.18, yanchor="top", font=dict(size=11)),
        margin=dict(l=60, r=20, t=70, b=50),
        hovermode="closest",
    )


def _coverage_curve(data, head_dim: int, num_heads: int, windows) -> tuple[np.ndarray, dict]:
    windows = np.asarray(sorted(set(int(w) for w in windows)), dtype=np.int64)
    states = np.array([state_size("swa", head_dim=head_dim, num_heads=num_heads, window=int(w)) for w in windows])
    return states, window_coverage(data, windows)


DEFAULT_COVERAGE_WINDOWS = tuple(sorted({int(round(w)) for w in np.geomspace(2, 512, 49)}))


def accuracy_state_figure(rows: Sequence[dict], *, metric: str | None = None, records: Sequence[dict] = (),
                          coverage_windows: Sequence[int] | None = DEFAULT_COVERAGE_WINDOWS,
                          threshold: float | None = 0.5, d_model: int | None = None) -> go.Figure:
    """Accuracy against state per layer (log x) of the best-over-lr ``rows``; ``records`` (the
    complete ``runs.jsonl`` lines) give the subtitle and the data for SWA's window ceiling."""
    coverage = None
    if coverage_windows and records:
        r0 = records[0]
        states, cov = _coverage_curve(r0["data"], r0["head_dim"], r0["num_heads"], coverage_windows)
        coverage = (states, cov[metric or "pooled"])
    name = "pooled" if metric in (None, "pooled") else f"slice {metric}"
    fig = go.Figure(data=accuracy_state_traces(rows, metric=metric, coverage=coverage, d_model=d_model))
    fig.update_layout(accuracy_state_layout(f"MQAR accuracy ({name}) against state",
                                            subtitle=runs_label(records) if records else "",
                                            threshold=threshold, height=560))
    return fig


def per_slice_figure(rows: Sequence[dict], *, records: Sequence[dict] = (), slices: Sequence[str] | None = None,
                     coverage_windows: Sequence[int] | None = DEFAULT_COVERAGE_WINDOWS,
                     threshold: float | None = 0.5, active: int = 0, d_model: int | None = None) -> go.Figure:
    """:func:`accuracy_state_figure` with a plotly-native slider over the test slices
    (``64x4 ... 512x128``, ordered by length then pairs)."""
    slices = list(slices or sorted(rows[0]["per_slice"], key=_slice_key))
    cov = None
    if coverage_windows and records:
        r0 = records[0]
        states, cov = _coverage_curve(r0["data"], r0["head_dim"], r0["num_heads"], coverage_windows)
    sub = html.escape(runs_label(records)) if records else ""
    steps = []
    for s in slices:
        traces = accuracy_state_traces(rows, metric=s, coverage=None if cov is None else (states, cov[s]),
                                       d_model=d_model)
        # short first line: plotly titles do not wrap, and a phone shows about 35 characters
        title = (f"MQAR accuracy, slice {s}<br><sup>slice: sequence length x pairs</sup>"
                 + (f"<br><sup>{sub}</sup>" if sub else ""))
        steps.append((s, traces, {"title.text": title}))
    layout = accuracy_state_layout("", threshold=threshold, height=620)
    layout["margin"] = dict(l=60, r=20, t=90, b=40)
    layout["legend"]["y"] = -0.42          # below the slider
    return slider_figure(steps, slider_label="test slice", layout=layout, active=active)


# ------------------------------------------------------------------------------ a live run
def training_curve_figure(history: Sequence[dict], *, title: str = "", chance: float | None = None) -> go.Figure:
    """Validation accuracy (left axis) and mean training loss (right axis) against the step, from
    a run record's ``history`` (older records call the loss ``loss``)."""
    steps = [h["step"] for h in history]
    acc = [h["val_pooled"] for h in history]
    loss = [h.get("train_loss", h.get("loss")) for h in history]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=steps, y=acc, mode="lines+markers", name="validation accuracy",
                             line=dict(color="#d94801", width=2)), secondary_y=False)
    fig.add_trace(go.Scatter(x=steps, y=loss, mode="lines", name="training loss",
                             line=dict(color="#555555", dash="dash")), secondary_y=True)
    if chance is not None:
        fig.add_hline(y=chance, line=dict(color="rgba(120,120,120,0.7)", dash="dot", width=1),
                      annotation_text=f"guessing among the pairs: {chance:g}", annotation_position="bottom right")
    fig.update_yaxes(title_text="accuracy", range=[-0.03, 1.05], secondary_y=False)
    fig.update_yaxes(title_text="training loss", secondary_y=True, showgrid=False, rangemode="tozero",
                     tickformat=".1f")
    fig.update_xaxes(title_text="training step")
    fig.update_layout(height=360, title=dict(text=title, font=dict(size=14)), margin=dict(l=60, r=60, t=80, b=45),
                      legend=dict(orientation="h", x=0, y=1.02, xanchor="left", yanchor="bottom"))
    return fig
