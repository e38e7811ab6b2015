"""Read ``runs.jsonl``: best accuracy over learning rates, accuracy against state, BLA vs SWA.

* :func:`load_runs` keeps complete runs (no error, not cut by a time limit), the last line per key.
* :func:`best_over_lr` groups runs by ``(mixer, config, d_model)``, averages seeds per learning rate
  and keeps the best learning rate (what MQAR papers plot).
* :func:`state_efficiency` is the paper's comparison: the smallest state (per layer) at which each
  mixer reaches a fixed pooled accuracy, and the ratio ``state_SWA / state_BLA`` (">1": BLA needs
  less state). Only points on the measured grid count: no interpolation.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from blaviz.experiments.records import REQUIRED_FIELDS, is_complete, read_records

# what tells two models of one mixer apart in tables and in the best-over-lr grouping: the state
# knobs, then the layer variants (a GSA recipe, BLA's learned temperature), which must never merge
_CONFIG_KEYS = (("window", "W"), ("resolution", "N"), ("num_slots", "M"), ("feature_map", "phi"),
                ("recipe", "recipe"), ("learn_temperature", "T"))


def load_runs(*paths, include_incomplete: bool = False, required: dict = REQUIRED_FIELDS) -> list[dict]:
    """Records from one or more ``runs.jsonl`` files, the last complete line per ``key``.

    A malformed line raises :class:`~blaviz.experiments.records.RecordError` naming its file and
    line (a summary is never computed from part of a file without saying so)."""
    by_key = {}
    for path in paths:
        for rec in read_records(path, strict=True, required=required):
            if include_incomplete or is_complete(rec):
                by_key[rec["key"]] = rec
    return list(by_key.values())


def config_label(rec: dict, keys=_CONFIG_KEYS) -> str:
    """``"W=64,N=7"`` for BLA, ``"W=32"`` for SWA, ``"M=16"`` (``"M=16,recipe=fla"``) for GSA, ``""``
    for the rest: the ``mixer_kwargs`` named in ``keys`` (``(kwarg, short name)`` pairs), in order."""
    kw = rec.get("mixer_kwargs", {})
    return ",".join(f"{short}={kw[k]}" for k, short in keys if k in kw)


def best_over_lr(runs: list[dict]) -> list[dict]:
    """One row per ``(mixer, config, d_model)``: the best learning rate's seed-mean accuracy."""
    groups = defaultdict(lambda: defaultdict(list))
    for r in runs:
        groups[(r["mixer"], config_label(r), r["d_model"])][r["lr"]].append(r)
    rows = []
    for (mixer, cfg, d), by_lr in groups.items():
        scored = []
        for lr, rs in by_lr.items():
            acc = sum(r["accuracy"] for r in rs) / len(rs)
            scored.append((acc, lr, rs))
        acc, lr, rs = max(scored, key=lambda t: (t[0], -t[1]))
        slices = rs[0]["per_slice"].keys()
        rows.append({
            "mixer": mixer, "config": cfg, "d_model": d, "state_size": rs[0]["state_size"],
            "accuracy": acc, "best_lr": lr, "n_lrs": len(by_lr), "n_seeds": len(rs),
            "per_slice": {s: sum(r["per_slice"][s] for r in rs) / len(rs) for s in slices},
            "accuracy_by_lr": {str(l): sum(r["accuracy"] for r in v) / len(v) for l, v in sorted(by_lr.items())},
            "steps": rs[0].get("steps"),
        })
    rows.sort(key=lambda r: (r["d_model"], r["mixer"], r["state_size"], r["config"]))
    return rows


def _acc(row: dict, metric: str | None) -> float:
    """Pooled accuracy (``metric=None``) or one slice's (``metric="64x16"``) of a best-lr row."""
    return row["accuracy"] if metric is None else row["per_slice"][metric]


def accuracy_vs_state(rows: list[dict], mixer: str, d_model: int | None = None,
                      metric: str | None = None) -> list[tuple[int, float, str]]:
    """``[(state_size, accuracy, config), ...]`` of one mixer, by increasing state."""
    pts = [(r["state_size"], _acc(r, metric), r["config"]) for r in rows
           if r["mixer"] == mixer and (d_model is None or r["d_model"] == d_model)]
    return sorted(pts)


def smallest_state_reaching(rows: list[dict], mixer: str, threshold: float, d_model: int | None = None,
                            metric: str | None = None):
    """The smallest measured state at which ``mixer`` reaches ``threshold`` accuracy (or None)."""
    ok = [s for s, a, _ in accuracy_vs_state(rows, mixer, d_model, metric) if a >= threshold]
    return min(ok) if ok else None


def state_efficiency(rows: list[dict], threshold: float = 0.9, d_model: int | None = None,
                     a: str = "bla", b: str = "swa", metric: str | None = None) -> dict:
    """``{"threshold", "bla_state", "swa_state", "ratio"}`` with ``ratio = state_b / state_a``
    (``None`` where either mixer never reaches the threshold on the grid). ``metric`` picks one
    test slice instead of the pooled accuracy (the learning rate stays the one best when pooled)."""
    sa = smallest_state_reaching(rows, a, threshold, d_model, metric)
    sb = smallest_state_reaching(rows, b, threshold, d_model, metric)
    return {"threshold": threshold, "d_model": d_model, "metric": metric or "pooled",
            f"{a}_state": sa, f"{b}_state": sb, "ratio": (sb / sa) if (sa and sb) else None}


def _slice_order(names) -> list[str]:
    """``"64x4" < "64x8" < "128x32"``: by sequence length, then pairs (not alphabetically)."""
    def key(n):
        try:
            return tuple(int(v) for v in n.split("x"))
        except ValueError:
            return (10**9, n)
    return sorted(names, key=key)


def markdown_table(rows: list[dict], slices: bool = True) -> str:
    """The sweep as a Markdown table (one row per mixer configuration and width)."""
    slice_names = _slice_order(rows[0]["per_slice"]) if rows and slices else []
    head = ["mixer", "d_model", "config", "state/layer", "best acc", "best lr"] + slice_names
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["mixer"], str(r["d_model"]), r["config"] or "-", str(r["state_size"]),
                 f"{r['accuracy']:.3f}", f"{r['best_lr']:g}"] + [f"{r['per_slice'][s]:.3f}" for s in slice_names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(*paths, thresholds=(0.5, 0.8, 0.9)) -> str:
    """A text report: the table, then BLA vs SWA state efficiency per width and threshold."""
    runs = load_runs(*paths)
    if not runs:
        return "no complete runs"
    rows = best_over_lr(runs)
    out = [markdown_table(rows), ""]
    metrics = [None] + _slice_order(rows[0]["per_slice"])
    for d in sorted({r["d_model"] for r in rows}):
        for metric in metrics:
            for th in thresholds:
                e = state_efficiency(rows, th, d, metric=metric)
                ratio = f"{e['ratio']:.2f}x" if e["ratio"] else "n/a"
                out.append(f"d_model={d} {e['metric']} accuracy>={th}: smallest BLA state {e['bla_state']}, "
                           f"smallest SWA state {e['swa_state']}, SWA/BLA = {ratio}")
    return "\n".join(out)


def summary_provenance(runs: list[dict], path_in, path_out) -> dict:
    """How a summary was made: its source, the commits of the runs in it, the command that wrote it."""
    return {"source": str(path_in), "commit": sorted({str(r.get("git_commit")) for r in runs}),
            "command": f"python -m blaviz.experiments analyze {path_in} --json {path_out}"}


def save_summary(path_in, path_out, thresholds=(0.5, 0.8, 0.9)) -> dict:
    """Write the best-over-lr rows and efficiency numbers as JSON (what the book reads)."""
    runs = load_runs(path_in)
    rows = best_over_lr(runs)
    widths = sorted({r["d_model"] for r in rows})
    metrics = [None] + (_slice_order(rows[0]["per_slice"]) if rows else [])
    eff = [state_efficiency(rows, th, d, metric=m) for d in widths for m in metrics for th in thresholds]
    data = {**summary_provenance(runs, path_in, path_out), "rows": rows, "state_efficiency": eff}
    Path(path_out).write_text(json.dumps(data, indent=1, sort_keys=True))
    return data
