"""Read ``runs.jsonl``: best accuracy over learning rates, accuracy against state, BLA vs SWA.

* :func:`load_runs` keeps complete runs (no error, not cut by a time limit), the last line per key.
* :func:`best_over_lr` groups runs by ``(mixer, config, d_model)``, averages seeds per learning rate
  and keeps the best learning rate (what MQAR papers plot).
* :func:`state_efficiency` is the paper's comparison: the smallest state (per layer) at which each
  mixer reaches a fixed pooled accuracy, and the ratio ``state_SWA / state_BLA`` (">1": BLA needs
  less state). Only points on the measured grid count: no interpolation.
* Seeds: a row holds the mean over the seeds of its best learning rate, their standard deviation,
  min, max and count, and each seed's numbers. Runs of different presets pool when their
  ``preset_hash`` agrees (same data, model and recipe: ``book_seeds`` adds seeds to ``book``).
  :func:`state_efficiency_range` gives the ratio's interval over seeds (see there).
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


def seed_stats(values) -> dict:
    """``{"mean", "std", "min", "max", "n"}`` of one number over seeds (``std``: the sample standard
    deviation, ``n - 1`` in the denominator; 0.0 for a single seed, which ``n`` makes visible)."""
    v = [float(x) for x in values]
    if not v:
        raise ValueError("seed_stats needs at least one value")
    m = sum(v) / len(v)
    std = (sum((x - m) ** 2 for x in v) / (len(v) - 1)) ** 0.5 if len(v) > 1 else 0.0
    return {"mean": m, "std": std, "min": min(v), "max": max(v), "n": len(v)}


def _check_one_seed_each(rs: list[dict], where: str) -> None:
    seeds = [r.get("seed") for r in rs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{where}: seeds {sorted(seeds)} repeat (two runs of one seed would count twice)")


def _mean_accuracy(rs: list[dict]) -> float:
    return sum(r["accuracy"] for r in rs) / len(rs)


def best_over_lr(runs: list[dict]) -> list[dict]:
    """One row per ``(preset_hash, mixer, config, d_model)``: the best learning rate, and over its
    seeds the mean (``accuracy``, ``per_slice``), ``accuracy_std``, ``accuracy_min``,
    ``accuracy_max``, ``n_seeds`` and ``seeds`` (each seed's accuracy and slices).

    The learning rate is chosen on the seeds that every learning rate of the row has (the seed-0
    sweep, when extra seeds ran only at its best rate), then all seeds of that rate are reported.
    Choosing by the mean of each rate's own seeds would favour a rate with one lucky seed over a
    rate whose extra seeds pulled its mean down."""
    groups = defaultdict(lambda: defaultdict(list))
    for r in runs:
        groups[(r.get("preset_hash"), r["mixer"], config_label(r), r["d_model"])][r["lr"]].append(r)
    rows = []
    for (phash, mixer, cfg, d), by_lr in groups.items():
        for lr, rs in by_lr.items():
            _check_one_seed_each(rs, f"{mixer} {cfg} d_model {d} lr {lr:g}")
        common = set.intersection(*({r.get("seed", 0) for r in rs} for rs in by_lr.values()))
        lr, rs = max(by_lr.items(), key=lambda t: (
            _mean_accuracy([r for r in t[1] if r.get("seed", 0) in common] or t[1]), -t[0]))
        acc = _mean_accuracy(rs)
        rs = sorted(rs, key=lambda r: r.get("seed", 0))
        slices = rs[0]["per_slice"].keys()
        st = seed_stats(r["accuracy"] for r in rs)
        rows.append({
            "mixer": mixer, "config": cfg, "d_model": d, "state_size": rs[0]["state_size"],
            "preset_hash": phash, "accuracy": acc, "accuracy_std": st["std"],
            "accuracy_min": st["min"], "accuracy_max": st["max"], "best_lr": lr,
            "n_lrs": len(by_lr), "n_seeds": len(rs),
            "per_slice": {s: sum(r["per_slice"][s] for r in rs) / len(rs) for s in slices},
            "seeds": [{"seed": r.get("seed"), "accuracy": r["accuracy"], "per_slice": r["per_slice"]}
                      for r in rs],
            "accuracy_by_lr": {str(l): _mean_accuracy(v) for l, v in sorted(by_lr.items())},
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


def _seed_values(row: dict, metric: str | None) -> list[float]:
    """A row's accuracy (pooled or one slice) per seed; a row without ``seeds`` counts as one."""
    if "seeds" not in row:
        return [_acc(row, metric)]
    return [s["accuracy"] if metric is None else s["per_slice"][metric] for s in row["seeds"]]


def reachable_states(rows: list[dict], mixer: str, threshold: float, d_model: int | None = None,
                     metric: str | None = None) -> tuple[list[int], bool]:
    """Every value the smallest state reaching ``threshold`` can take when each configuration of
    ``mixer`` contributes one of its seeds, and whether some choice reaches it nowhere.

    The smallest state is ``s`` for some choice exactly when a configuration at ``s`` has a seed at or
    above the threshold and every configuration of smaller state has a seed below it."""
    pts = sorted((r["state_size"], _seed_values(r, metric)) for r in rows
                 if r["mixer"] == mixer and (d_model is None or r["d_model"] == d_model))
    states = []
    for s in sorted({p[0] for p in pts}):
        below_can_fail = all(min(v) < threshold for t, v in pts if t < s)
        if below_can_fail and any(max(v) >= threshold for t, v in pts if t == s):
            states.append(s)
    all_can_fail = all(min(v) < threshold for _, v in pts)
    return states, all_can_fail


def state_efficiency_range(rows: list[dict], threshold: float = 0.9, d_model: int | None = None,
                           a: str = "bla", b: str = "swa", metric: str | None = None) -> dict:
    """:func:`state_efficiency` on the seed means, with its interval over seeds.

    The interval is the range of ``state_b / state_a`` over every choice of one stored seed per
    configuration (the choices for ``a`` and ``b`` independent): ``ratio_low`` and ``ratio_high``
    over the choices where both mixers reach the threshold; ``always_defined`` says whether every
    choice does. It is a range of what the seeds showed, not a confidence interval; a configuration
    with one seed contributes no spread (``min_seeds``: the fewest seeds of any ``a`` or ``b`` row at
    this width)."""
    out = state_efficiency(rows, threshold, d_model, a, b, metric)
    sa, fail_a = reachable_states(rows, a, threshold, d_model, metric)
    sb, fail_b = reachable_states(rows, b, threshold, d_model, metric)
    both = bool(sa and sb)
    out.update({"ratio_low": min(sb) / max(sa) if both else None,
                "ratio_high": max(sb) / min(sa) if both else None,
                "always_defined": both and not fail_a and not fail_b,
                "min_seeds": min((r.get("n_seeds", 1) for r in rows
                                  if r["mixer"] in (a, b) and (d_model is None or r["d_model"] == d_model)),
                                 default=0)})
    return out


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
    """Write the best-over-lr rows and efficiency numbers (with their range over seeds) as JSON (what
    the book reads). ``path_in``: one ``runs.jsonl`` or a list of them (a sweep and its extra seeds)."""
    paths = [path_in] if isinstance(path_in, (str, Path)) else list(path_in)
    runs = load_runs(*paths)
    path_in = path_in if len(paths) == 1 else " ".join(str(p) for p in paths)
    rows = best_over_lr(runs)
    widths = sorted({r["d_model"] for r in rows})
    metrics = [None] + (_slice_order(rows[0]["per_slice"]) if rows else [])
    eff = [state_efficiency_range(rows, th, d, metric=m) for d in widths for m in metrics for th in thresholds]
    data = {**summary_provenance(runs, path_in, path_out), "rows": rows, "state_efficiency": eff}
    Path(path_out).write_text(json.dumps(data, indent=1, sort_keys=True))
    return data
