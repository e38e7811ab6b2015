"""Read RegBench's ``runs.jsonl``: the best learning rate per configuration, each mixer's trend
with its state, and the summary the book reads (with the test-set baselines)."""
from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

from blaviz.experiments.analysis import config_label as label
from blaviz.experiments.analysis import _check_one_seed_each, load_runs, seed_stats, summary_provenance
from blaviz.experiments.regbench.baseline_scores import baselines
from blaviz.experiments.records import REQUIRED_FIELDS
from blaviz.experiments.regbench.data import RegBenchSetup

#: a RegBench record carries its two test metrics besides the fields every record has
RECORD_FIELDS = {**REQUIRED_FIELDS, "validity_accuracy": (int, float), "tv_distance": (int, float)}

__all__ = ["config_label", "summarize", "trend", "markdown_table", "report", "save_summary"]


_LABEL_KEYS = (("window", "W"), ("resolution", "N"), ("num_slots", "M"), ("num_heads", "H"), ("feature_map", "phi"),
               ("recipe", "recipe"), ("learn_temperature", "T"))


def config_label(rec: dict) -> str:
    """``"W=128,N=15"`` for BLA, ``"W=32"`` for SWA, ``"M=32"`` for GSA, ``"H=4"`` for GLA/GDN (the
    RegBench grid varies the heads, so they are part of the label here)."""
    return label(rec, _LABEL_KEYS)


def summarize(runs: list[dict]) -> list[dict]:
    """One row per ``(preset_hash, mixer, config, d_model)``: the learning rate with the best
    seed-mean validity, with its validity, TV distance, state size and validity by position (seed
    means), the validity's ``validity_std``, ``validity_min``, ``validity_max``, ``tv_std``,
    ``n_seeds``, and ``seeds`` (each seed's validity and TV)."""
    groups = defaultdict(lambda: defaultdict(list))
    for r in runs:
        groups[(r.get("preset_hash"), r["mixer"], config_label(r), r["d_model"])][r["lr"]].append(r)
    rows = []
    for (phash, mixer, cfg, d), by_lr in groups.items():
        def mean(rs, k):
            return sum(r[k] for r in rs) / len(rs)
        for lr, rs in by_lr.items():
            _check_one_seed_each(rs, f"{mixer} {cfg} d_model {d} lr {lr:g}")
        lr, rs = max(by_lr.items(), key=lambda t: (mean(t[1], "validity_accuracy"), -t[0]))
        rs = sorted(rs, key=lambda r: r.get("seed", 0))
        v, t = (seed_stats(r[k] for r in rs) for k in ("validity_accuracy", "tv_distance"))
        rows.append({
            "mixer": mixer, "config": cfg, "d_model": d, "state_size": rs[0]["state_size"],
            "preset_hash": phash, "validity_std": v["std"], "validity_min": v["min"],
            "validity_max": v["max"], "tv_std": t["std"],
            "seeds": [{"seed": r.get("seed"), "validity": r["validity_accuracy"], "tv": r["tv_distance"]}
                      for r in rs],
            "validity": mean(rs, "validity_accuracy"), "tv": mean(rs, "tv_distance"),
            "best_lr": lr, "n_lrs": len(by_lr), "n_seeds": len(rs), "steps": rs[0].get("steps"),
            "per_slice": {s: sum(r["per_slice"][s] for r in rs) / len(rs) for s in rs[0]["per_slice"]},
            "validity_by_lr": {str(l): mean(v, "validity_accuracy") for l, v in sorted(by_lr.items())},
        })
    rows.sort(key=lambda r: (r["d_model"], r["mixer"], r["state_size"], r["config"]))
    return rows


#: the config entry that sets each mixer's state; the others (BLA's window) define separate families
_STATE_KNOB = {"bla": "N", "swa": "W", "gsa": "M", "gla": "H", "gated_deltanet": "H", "linear": "H"}


def _family(mixer: str, config: str) -> str:
    """``"W=128,N=15"`` -> ``"W=128"`` for BLA: the config without the entry that sets the state."""
    knob = _STATE_KNOB.get(mixer)
    return ",".join(p for p in config.split(",") if p and p.split("=")[0] != knob)


def trend(rows: list[dict], mixer: str, d_model: int | None = None) -> dict:
    """Does ``mixer`` improve as its state grows? Validity and TV from its smallest to its largest state,
    within each family of configurations that differ only in what sets the state (BLA: one family per
    window ``W``, since ``N`` sets its state; comparing ``W=512, N=7`` with ``W=128, N=63`` would mix
    the two effects). ``groups`` lists every family; ``validity_gain`` and ``tv_gain`` are the
    smallest over the families with two points or more, so a mixer counts as improving only if it
    improves in every family; ``state_range`` spans all of them.

    Over seeds (gains of seed means): ``validity_gain_low`` / ``validity_gain_high`` is the range of
    the gain over every choice of one seed at each end of a family (then the smallest over families,
    as for the gain), and ``n_seeds`` the seeds at the two ends."""
    pts = [r for r in rows if r["mixer"] == mixer and (d_model is None or r["d_model"] == d_model)]
    groups = []
    for fam in sorted({_family(mixer, r["config"]) for r in pts}):
        g = sorted((r for r in pts if _family(mixer, r["config"]) == fam), key=lambda r: r["state_size"])
        if len(g) >= 2:
            r0, r1 = g[0], g[-1]
            v0, v1 = (_seed_validities(r) for r in (r0, r1))
            groups.append({"family": fam, "points": len(g), "state_range": [r0["state_size"], r1["state_size"]],
                           "validity_gain": r1["validity"] - r0["validity"], "tv_gain": r0["tv"] - r1["tv"],
                           "validity_gain_low": min(v1) - max(v0), "validity_gain_high": max(v1) - min(v0),
                           "n_seeds": [len(v0), len(v1)]})
    if not groups:
        return {"mixer": mixer, "points": len(pts)}
    states = [r["state_size"] for r in pts]
    return {"mixer": mixer, "points": len(pts), "state_range": [min(states), max(states)], "groups": groups,
            "validity_gain": min(g["validity_gain"] for g in groups), "tv_gain": min(g["tv_gain"] for g in groups),
            "validity_gain_low": min(g["validity_gain_low"] for g in groups),
            "validity_gain_high": min(g["validity_gain_high"] for g in groups)}


def _seed_validities(row: dict) -> list[float]:
    return [s["validity"] for s in row["seeds"]] if "seeds" in row else [row["validity"]]


def markdown_table(rows: list[dict]) -> str:
    slices = list(rows[0]["per_slice"]) if rows else []
    head = ["mixer", "d_model", "config", "state/layer", "validity", "TV", "best lr"] + slices
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["mixer"], str(r["d_model"]), r["config"] or "-", str(r["state_size"]), f"{r['validity']:.3f}",
                 f"{r['tv']:.3f}", f"{r['best_lr']:g}"] + [f"{r['per_slice'][s]:.3f}" for s in slices]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(*paths) -> str:
    """A text report of ``runs.jsonl`` files: the table, then each mixer's trend with state."""
    rows = summarize(load_runs(*paths, required=RECORD_FIELDS))
    if not rows:
        return "no complete runs"
    out = [markdown_table(rows), ""]
    for d in sorted({r["d_model"] for r in rows}):
        for mixer in sorted({r["mixer"] for r in rows if r["d_model"] == d}):
            t = trend(rows, mixer, d)
            for g in t.get("groups", []):
                fam = f" ({g['family']})" if g["family"] else ""
                out.append(f"d_model={d} {mixer}{fam}: state {g['state_range'][0]} -> {g['state_range'][1]}: "
                           f"validity {g['validity_gain']:+.3f}, TV {-g['tv_gain']:+.3f}")
    return "\n".join(out)


def save_summary(path_in, path_out, *, preset: str | None = None, presets=None) -> dict:
    """Write the best-over-lr rows, the trends and the test-set baselines as JSON (what the book reads).
    ``path_in``: one ``runs.jsonl`` or a list of them (e.g. the book sweep and its extra seeds).

    Baselines are computed when the runs' preset is one of ``presets`` (``{name: Preset}``),
    on the runs' own data setup."""
    presets = presets or {}
    paths = [path_in] if isinstance(path_in, (str, Path)) else list(path_in)
    runs = load_runs(*paths, required=RECORD_FIELDS)
    rows = summarize(runs)
    name = preset or (runs[0]["preset"] if runs else None)
    source = path_in if len(paths) == 1 else " ".join(str(p) for p in paths)
    data = {**summary_provenance(runs, source, path_out), "rows": rows,
            "trends": [trend(rows, m, d) for d in sorted({r["d_model"] for r in rows})
                       for m in sorted({r["mixer"] for r in rows if r["d_model"] == d})]}
    if name in presets:
        setup = RegBenchSetup(**runs[0]["data"]) if runs else presets[name].data
        data["baselines"] = baselines(setup)
        data["baselines_setup"] = asdict(setup)
    Path(path_out).write_text(json.dumps(_finite(data), indent=1, sort_keys=True))
    return data


def _finite(obj):
    """NaN -> None, recursively (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj
