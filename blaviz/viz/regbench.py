"""Figures of chapter 9 (RegBench): automata, prompts, training curves, and the state sweep.

* :func:`automaton_figure` draws one DFA: states on a circle (the start state on top, filled),
  edges as curved arrows labelled with their symbols (letters ``a .. r``), self-loops as small
  circles outside the state. :func:`automaton_slider` puts several sampled automata behind a
  plotly-native slider (works on the static site); the arrowheads are layout annotations, swapped
  by each slider step.
* :func:`format_prompt` writes a prompt with letters and ``|`` between its strings.
* :func:`state_sweep_figure` plots validity accuracy and TV distance against state size (log
  axis), one line per mixer (one per window for BLA when the rows hold several), with reference
  lines; :func:`training_curves_figure` plots the validation history that every run records.
* :func:`convergence_figure` plots the validation history of a whole sweep, one panel per mixer and
  one line per run; :func:`late_change` measures how much a history metric still moved over the
  last part of training.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from blaviz.data.dfa import DFA, NUM_SYMBOLS, random_dfa
from blaviz.data.regbench import PAD_ID, SEP_ID

from .figures import compact, slider_figure

#: how symbols are written on the page: ``0 -> a`` ... ``17 -> r``
SYMBOL_NAMES = "abcdefghijklmnopqr"
assert len(SYMBOL_NAMES) == NUM_SYMBOLS

#: one colour per mixer, shared by every RegBench figure
MIXER_COLORS = {"bla": "#d62728", "swa": "#1f77b4", "softmax": "#7f7f7f", "gsa": "#2ca02c",
                "gla": "#9467bd", "gated_deltanet": "#8c564b", "linear": "#e377c2"}
MIXER_NAMES = {"bla": "BLA", "swa": "SWA", "softmax": "full attention", "gsa": "GSA", "gla": "GLA",
               "gated_deltanet": "Gated DeltaNet", "linear": "linear attention"}

NODE_RADIUS = 0.11          # in data units (the circle of states has radius 1)
_EDGE_COLOR = "#555"
_START_COLOR = "#f2b134"
_NODE_COLOR = "#cfe2f3"


def symbol_name(a: int) -> str:
    """``0 -> "a"``, ..., ``17 -> "r"``, separator ``"|"``, padding ``"_"``."""
    if a == SEP_ID:
        return "|"
    if a == PAD_ID:
        return "_"
    return SYMBOL_NAMES[a]


def format_prompt(tokens: Iterable[int], *, max_strings: int | None = None) -> str:
    """A prompt as text: symbols as letters, strings separated by ``" | "``, padding dropped."""
    strings, cur = [], []
    for t in tokens:
        t = int(t)
        if t == PAD_ID:
            break
        if t == SEP_ID:
            strings.append("".join(cur))
            cur = []
        else:
            cur.append(symbol_name(t))
    if cur:
        strings.append("".join(cur))
    more = ""
    if max_strings is not None and len(strings) > max_strings:
        more = f" | ... ({len(strings) - max_strings} more strings)"
        strings = strings[:max_strings]
    return " | ".join(strings) + more


# ------------------------------------------------------------------------------- automata


def state_positions(num_states: int) -> np.ndarray:
    """``[S, 2]``: states on the unit circle, state 0 on top, clockwise."""
    angles = math.pi / 2 - 2 * math.pi * np.arange(num_states) / num_states
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _bezier(p0, c, p1, n=24):
    t = np.linspace(0.0, 1.0, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t ** 2 * p1


def _trim(curve: np.ndarray, start: np.ndarray, end: np.ndarray, radius: float) -> np.ndarray:
    """Drop the points of ``curve`` inside the circles of ``radius`` around its two end states."""
    keep = (np.linalg.norm(curve - start, axis=1) > radius) & (np.linalg.norm(curve - end, axis=1) > radius)
    out = curve[keep]
    return out if len(out) >= 2 else curve[[0, -1]]


def _edge_geometry(pos: np.ndarray, q: int, r: int, bend: float = 0.18):
    """(curve points, label position) of the edge ``q -> r`` (bent to its right; self-loops outside)."""
    p0 = pos[q]
    if q == r:
        radial = p0 / max(np.linalg.norm(p0), 1e-9)
        centre = p0 + radial * (NODE_RADIUS + 0.06)
        theta = np.linspace(0, 2 * math.pi, 40)
        loop = centre + 0.1 * np.stack([np.cos(theta), np.sin(theta)], axis=1)
        loop = np.roll(loop, -int(np.argmin(np.linalg.norm(loop - p0, axis=1))), axis=0)  # start at the node
        loop = loop[np.linalg.norm(loop - p0, axis=1) > NODE_RADIUS]
        return loop, centre + radial * 0.17
    p1 = pos[r]
    chord = p1 - p0
    normal = np.array([chord[1], -chord[0]])  # right of the direction q -> r
    ctrl = (p0 + p1) / 2 + bend * normal
    curve = _trim(_bezier(p0, ctrl, p1), p0, p1, NODE_RADIUS)
    mid = _bezier(p0, ctrl, p1, 3)[1]
    return curve, mid + 0.06 * normal / max(np.linalg.norm(normal), 1e-9)


def automaton_parts(dfa: DFA, *, title: str | None = None) -> tuple[list, dict]:
    """The traces ``[edges, edge labels, states]`` and a layout update (arrowheads, title) of ``dfa``.

    Every DFA gives the same three traces (what :func:`slider_figure` needs); the arrowheads are
    annotations, so they live in the layout update.
    """
    pos = state_positions(dfa.num_states)
    grouped: dict[tuple[int, int], list[int]] = defaultdict(list)
    for q in range(dfa.num_states):
        for a, r in dfa.out_edges(q):
            grouped[(q, r)].append(a)
    xs, ys, lx, ly, ltext, arrows = [], [], [], [], [], []
    for (q, r), symbols in sorted(grouped.items()):
        curve, label = _edge_geometry(pos, q, r)
        xs += curve[:, 0].tolist() + [None]
        ys += curve[:, 1].tolist() + [None]
        lx.append(float(label[0]))
        ly.append(float(label[1]))
        ltext.append(",".join(symbol_name(a) for a in symbols))
        head = curve[-1]
        far = np.nonzero(np.linalg.norm(curve - head, axis=1) >= 0.06)[0]  # a tail far enough for plotly
        tail = curve[far[-1]] if len(far) else curve[0]
        arrows.append(dict(x=float(head[0]), y=float(head[1]), ax=float(tail[0]), ay=float(tail[1]),
                           xref="x", yref="y", axref="x", ayref="y", text="", showarrow=True,
                           arrowhead=2, arrowsize=1.4, arrowwidth=1.3, arrowcolor=_EDGE_COLOR))
    start = pos[0]
    # the start arrow comes in from the upper left (a self-loop of state 0 points straight up)
    arrows.append(dict(x=float(start[0] - 0.8 * NODE_RADIUS), y=float(start[1] + 0.6 * NODE_RADIUS),
                       ax=float(start[0] - 0.5), ay=float(start[1] + 0.3), xref="x", yref="y", axref="x",
                       ayref="y", text="start",
                       showarrow=True, arrowhead=2, arrowsize=1.4, arrowwidth=1.5, arrowcolor="black"))
    hover = []
    for q in range(dfa.num_states):
        edges = ", ".join(f"{symbol_name(a)} -> {r}" for a, r in dfa.out_edges(q)) or "none"
        hover.append(f"state {q}{' (start)' if q == 0 else ''}<br>edges: {edges}")
    traces = [
        go.Scatter(x=compact(np.array(xs, dtype=float)), y=compact(np.array(ys, dtype=float)), mode="lines",
                   line=dict(color=_EDGE_COLOR, width=1.3), hoverinfo="skip", showlegend=False, name="edges"),
        go.Scatter(x=lx, y=ly, mode="text", text=ltext, textfont=dict(size=13, color="#b22222"),
                   hoverinfo="skip", showlegend=False, name="symbols"),
        go.Scatter(x=pos[:, 0], y=pos[:, 1], mode="markers+text", text=[str(q) for q in range(dfa.num_states)],
                   textfont=dict(size=13), hovertext=hover, hoverinfo="text", showlegend=False, name="states",
                   marker=dict(size=30, color=[_START_COLOR] + [_NODE_COLOR] * (dfa.num_states - 1),
                               line=dict(color="#1f3b57", width=2))),
    ]
    if title is None:
        title = (f"{dfa.num_states} states, {len({a for q in range(dfa.num_states) for a, _ in dfa.out_edges(q)})}"
                 f" symbols used, {sum(len(dfa.out_edges(q)) for q in range(dfa.num_states))} edges")
    return traces, {"annotations": arrows, "title": {"text": title}}


AUTOMATON_LAYOUT = dict(
    height=460, margin=dict(l=10, r=10, t=50, b=10), plot_bgcolor="white",
    xaxis=dict(visible=False, range=[-1.45, 1.45]),
    yaxis=dict(visible=False, range=[-1.4, 1.55], scaleanchor="x", scaleratio=1),
)


def automaton_figure(dfa: DFA, *, title: str | None = None) -> go.Figure:
    """One automaton: states on a circle (start state filled, on top), edges as labelled arrows."""
    traces, update = automaton_parts(dfa, title=title)
    fig = go.Figure(data=traces, layout=AUTOMATON_LAYOUT)
    fig.update_layout(update)
    return fig


def sample_automaton(seed: int, **dfa_kwargs) -> DFA:
    """The RegBench automaton :func:`~blaviz.data.dfa.random_dfa` draws from ``seed`` (minimised)."""
    return random_dfa(np.random.default_rng(seed), **dfa_kwargs)


def automaton_for_seed(seed: int = 0, max_states: int = 12) -> go.Figure:
    """What the live app draws: the automaton of ``seed`` with ``4 .. max_states`` states."""
    dfa = sample_automaton(int(seed), num_states_range=(min(4, max_states), max_states))
    return automaton_figure(dfa, title=f"seed {seed}: " + automaton_parts(dfa)[1]["title"]["text"])


def automaton_slider(seeds: Sequence[int] = (0, 1, 2, 3, 4, 5), *, active: int = 0, **dfa_kwargs) -> go.Figure:
    """A plotly-native slider over the automata of ``seeds`` (no kernel needed)."""
    steps = []
    for s in seeds:
        dfa = sample_automaton(int(s), **dfa_kwargs)
        traces, update = automaton_parts(dfa)
        update["title"] = {"text": f"seed {s}: " + update["title"]["text"]}
        steps.append((str(s), traces, update))
    # the slider takes room below the plot: a taller figure keeps the drawing as large as automaton_figure's
    layout = dict(AUTOMATON_LAYOUT, height=AUTOMATON_LAYOUT["height"] + 150)
    return slider_figure(steps, slider_label="seed", layout=layout, active=active)


# ------------------------------------------------------------------------------------ results


def _mixer_label(mixer: str) -> str:
    return MIXER_NAMES.get(mixer, mixer)


def _bla_window(row: dict):
    """The window ``W`` of a BLA row, from its config label ``"W=128,N=15"`` (``None`` if absent)."""
    for part in (row.get("config") or "").split(","):
        if part.startswith("W="):
            return int(part[2:])
    return None


def sweep_series(rows: Sequence[dict]) -> dict[str, list[dict]]:
    """The lines of :func:`state_sweep_figure`: ``{name: rows sorted by state}``, one per mixer, except
    that BLA gets one line per window when the rows hold several windows (``"BLA W=128"``); a single
    line through two windows would zig-zag between them at equal state."""
    by_mixer = defaultdict(list)
    for r in rows:
        by_mixer[r["mixer"]].append(r)
    order = [m for m in MIXER_COLORS if m in by_mixer] + sorted(m for m in by_mixer if m not in MIXER_COLORS)
    series = {}
    for mixer in order:
        pts = sorted(by_mixer[mixer], key=lambda r: r["state_size"])
        windows = sorted({_bla_window(r) for r in pts}, key=lambda w: (w is None, w)) if mixer == "bla" else []
        if len(windows) > 1:
            for w in windows:
                series[f"{_mixer_label(mixer)} W={w}"] = [r for r in pts if _bla_window(r) == w]
        else:
            series[_mixer_label(mixer)] = pts
    return series


#: line styles of reference lines (n-gram baselines, guesses): each its own dash and grey
REFERENCE_STYLES = (dict(dash="dot", color="#555555"), dict(dash="dash", color="#8c6d31"),
                    dict(dash="dashdot", color="#7f7f7f"), dict(dash="longdash", color="#393b79"))


def _seeds_of(row: dict, key: str) -> list[float]:
    return [float(x[key]) for x in row["seeds"]] if row.get("seeds") else [float(row[key])]


def seed_error_bars(rows: Sequence[dict], key: str = "validity") -> dict:
    """Plotly ``error_y`` from each row's lowest to its highest seed (zero where one seed exists)."""
    vals = [_seeds_of(r, key) for r in rows]
    return dict(type="data", symmetric=False, thickness=1.3, width=3,
                array=[max(v) - float(r[key]) for v, r in zip(vals, rows)],
                arrayminus=[float(r[key]) - min(v) for v, r in zip(vals, rows)])


def _seed_note(row: dict, key: str) -> str:
    v = _seeds_of(row, key)
    return f"mean of {len(v)} seeds, {min(v):.3f} to {max(v):.3f}" if len(v) > 1 else "one seed"


def state_sweep_figure(rows: Sequence[dict], *, references: dict | None = None,
                       title: str | None = None) -> go.Figure:
    """Validity accuracy (left) and TV distance (right) against state per layer (log x), one line per
    mixer (per window for BLA, see :func:`sweep_series`). ``rows``: ``{"mixer", "state_size",
    "validity", "tv", "config"}`` (the output of :func:`blaviz.experiments.regbench.summarize`).
    ``references``: ``{name: {"validity", "tv"}}`` drawn as dotted horizontal lines (e.g. the
    in-context 3-gram and the uniform guess). Rows with ``seeds`` get error bars from the lowest to
    the highest seed, and the hover text gives the seed count."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("validity (higher is better)", "TV distance (lower is better)"))
    seen = defaultdict(int)
    for name, pts in sweep_series(rows).items():
        mixer = pts[0]["mixer"]
        color = MIXER_COLORS.get(mixer)
        dash = ("solid", "dash", "dot", "dashdot")[seen[mixer] % 4]
        seen[mixer] += 1
        for col, key in ((1, "validity"), (2, "tv")):
            text = [f"{_mixer_label(mixer)} {r.get('config') or ''}".strip() + "<br>" + _seed_note(r, key)
                    for r in pts]
            fig.add_trace(go.Scatter(
                x=[float(r["state_size"]) for r in pts], y=compact([float(r[key]) for r in pts]),
                mode="lines+markers", name=name, legendgroup=name, showlegend=col == 1,
                line=dict(color=color, width=3 if mixer in ("bla", "swa") else 1.5, dash=dash),
                marker=dict(size=8 if mixer in ("bla", "swa") else 6), text=text,
                error_y=seed_error_bars(pts, key),
                hovertemplate="%{text}<br>state %{x:,}<br>" + key + " %{y:.3f}<extra></extra>"), row=1, col=col)
    for i, (name, ref) in enumerate((references or {}).items()):
        style = REFERENCE_STYLES[i % len(REFERENCE_STYLES)]       # distinct lines for distinct references
        for col, key in ((1, "validity"), (2, "tv")):
            v = ref.get(key)
            if v is None or not math.isfinite(v):
                continue
            fig.add_hline(y=float(v), line=dict(width=1.3, **style), row=1, col=col,
                          annotation_text=name, annotation_position="bottom right",
                          annotation_font=dict(size=10, color=style["color"]))
    fig.update_xaxes(type="log", title_text="state per layer")
    fig.update_yaxes(range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(range=[0, 1.0], row=1, col=2)
    fig.update_layout(height=430, margin=dict(l=50, r=20, t=70 if title else 40, b=50), title=title,
                      legend=dict(orientation="h", x=0, y=-0.22))
    return fig


def training_curves_figure(records: Sequence[dict], *, label_key=None) -> go.Figure:
    """Validation validity (left) and mean training loss (right) against the step, one line per run
    (each record's ``history``; ``label_key(rec)`` names a line, default: mixer and config)."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("validation validity accuracy", "training loss (mean since last point)"))
    for rec in records:
        hist = rec.get("history") or []
        if not hist:
            continue
        name = label_key(rec) if label_key else " ".join(
            [_mixer_label(rec["mixer"])] + [f"{k}={v}" for k, v in sorted(rec.get("mixer_kwargs", {}).items())
                                            if k in ("window", "resolution", "num_slots", "num_heads")])
        color = MIXER_COLORS.get(rec["mixer"])
        steps = [h["step"] for h in hist]
        val = [h.get("val_validity", h.get("val_pooled")) for h in hist]
        fig.add_trace(go.Scatter(x=steps, y=compact(val), mode="lines+markers", name=name, legendgroup=name,
                                 line=dict(color=color)), row=1, col=1)
        fig.add_trace(go.Scatter(x=steps, y=compact([h["train_loss"] for h in hist]), mode="lines+markers",
                                 name=name, legendgroup=name, showlegend=False, line=dict(color=color)), row=1, col=2)
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(range=[0, 1.02], row=1, col=1)
    fig.update_layout(height=380, margin=dict(l=50, r=20, t=40, b=50), legend=dict(orientation="h", x=0, y=-0.25))
    return fig


def position_figure(records: Sequence[dict], *, references: dict | None = None) -> go.Figure:
    """Validity accuracy by position in the prompt (``per_slice``): later positions have seen more of
    the language. One bar group per run; ``references`` (``{name: {slice: value}}``) as lines."""
    fig = go.Figure()
    for rec in records:
        slices = list(rec["per_slice"])
        fig.add_trace(go.Bar(x=slices, y=compact([rec["per_slice"][s] for s in slices]),
                             name=_mixer_label(rec["mixer"]), marker_color=MIXER_COLORS.get(rec["mixer"])))
    for i, (name, ref) in enumerate((references or {}).items()):
        slices = list(ref)
        fig.add_trace(go.Scatter(x=slices, y=compact([ref[s] for s in slices]), mode="lines+markers", name=name,
                                 line=REFERENCE_STYLES[i % len(REFERENCE_STYLES)],
                                 marker=dict(symbol=("circle-open", "diamond-open", "square-open")[i % 3])))
    fig.update_layout(height=380, barmode="group", yaxis=dict(range=[0, 1.02], title="validity accuracy"),
                      xaxis=dict(title="target position in the prompt"), margin=dict(l=60, r=20, t=30, b=50),
                      legend=dict(orientation="h", x=0, y=-0.3))
    return fig


# ------------------------------------------------------------------------------ convergence


def run_label(rec: dict) -> str:
    """``"BLA W=128 N=15"``, ``"SWA W=32"``, ``"GLA H=4"``, ``"full attention"``: a run's name in figures."""
    from blaviz.experiments.regbench import config_label

    return " ".join([_mixer_label(rec["mixer"])] + [p for p in config_label(rec).split(",") if p])


def late_change(rec: dict, key: str = "val_validity", frac: float = 0.2) -> dict:
    """How much ``key`` of a run's ``history`` moved over the last ``frac`` of its steps.

    The reference point is the last evaluation at or before step ``(1 - frac) * steps`` (the history
    is sampled every few steps, so the window can be a little longer than ``frac``). Returns
    ``{"from_step", "to_step", "start", "end", "change" (end - start), "max_abs" (the largest distance
    of a later point from the start)}``.
    """
    hist = [h for h in rec.get("history") or [] if h.get(key) is not None]
    if len(hist) < 2:
        raise ValueError(f"{run_label(rec)}: fewer than two history points with {key!r}")
    last = hist[-1]["step"]
    cut = (1 - frac) * last
    before = [h for h in hist if h["step"] <= cut]
    ref = before[-1] if before else hist[0]
    later = [h for h in hist if h["step"] > ref["step"]]
    start, end = float(ref[key]), float(hist[-1][key])
    return {"from_step": ref["step"], "to_step": last, "start": start, "end": end,
            "change": end - start, "max_abs": max(abs(float(h[key]) - start) for h in later)}


def convergence_figure(records: Sequence[dict], *, key: str = "val_validity", title: str | None = None,
                       cols: int = 3) -> go.Figure:
    """The validation history of a sweep: one panel per mixer, one line per run (``key`` of each
    record's ``history`` against the step). Lines share their mixer's colour, lighter for smaller
    states; BLA runs with a second window are dashed."""
    by_mixer = defaultdict(list)
    for r in records:
        if r.get("history"):
            by_mixer[r["mixer"]].append(r)
    order = [m for m in MIXER_COLORS if m in by_mixer] + sorted(m for m in by_mixer if m not in MIXER_COLORS)
    rows = max(1, math.ceil(len(order) / cols))
    fig = make_subplots(rows=rows, cols=cols, shared_xaxes=True, shared_yaxes="all",
                        horizontal_spacing=0.04, vertical_spacing=0.1,
                        subplot_titles=[_mixer_label(m) for m in order])
    for i, mixer in enumerate(order):
        runs = sorted(by_mixer[mixer], key=lambda r: (r["mixer_kwargs"].get("window", 0), r["state_size"]))
        windows = sorted({r["mixer_kwargs"].get("window", 0) for r in runs}) if mixer == "bla" else [None]
        for rec in runs:
            w = rec["mixer_kwargs"].get("window", 0) if mixer == "bla" else None
            group = sorted(r["state_size"] for r in runs if mixer != "bla" or r["mixer_kwargs"].get("window", 0) == w)
            shade = 0.35 + 0.65 * (group.index(rec["state_size"]) + 1) / len(group)   # lighter: smaller state
            dash = "solid" if w == windows[0] else "dash"
            hist = rec["history"]
            label = run_label(rec)
            fig.add_trace(go.Scatter(
                x=[h["step"] for h in hist], y=compact([h.get(key) for h in hist]), mode="lines",
                name=f"{label} (state {rec['state_size']:,})", legendgroup=mixer,
                line=dict(color=MIXER_COLORS.get(mixer, "#333"), width=1.8, dash=dash), opacity=shade,
                hovertemplate=label + "<br>step %{x}<br>" + key + " %{y:.3f}<extra></extra>"),
                row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(title_text="training step", row=rows)
    fig.update_yaxes(title_text=key.replace("_", " "), col=1)
    fig.update_layout(height=300 * rows + 80, margin=dict(l=60, r=20, t=60 if title else 40, b=50), title=title,
                      legend=dict(tracegroupgap=6, font=dict(size=10)))
    return fig
