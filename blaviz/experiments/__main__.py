"""Command line: ``python -m blaviz.experiments {mqar, regbench, analyze, steptime} ...``.

Examples::

    python -m blaviz.experiments mqar --preset ci                      # CPU, under a minute
    python -m blaviz.experiments mqar --preset book --device cuda --concurrency 12 --out /tmp/mqar
    python -m blaviz.experiments mqar --preset paper --shard 0/4 --device cuda --concurrency 12
    python -m blaviz.experiments mqar --preset book --list             # the runs, nothing trained
    python -m blaviz.experiments analyze results/mqar/book/runs.jsonl
    python -m blaviz.experiments regbench --preset ci                  # CPU, under a minute
    python -m blaviz.experiments regbench --preset book --device cuda --concurrency 12
    python -m blaviz.experiments analyze results/regbench/book/runs.jsonl --json summary.json

``mqar`` and ``regbench`` take the same options and write the same JSON lines (``regbench``
records add ``validity_accuracy`` and ``tv_distance``); ``analyze`` reads either kind.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch


def _floats(text):
    return tuple(float(v) for v in text.split(",")) if text else None


def _ints(text):
    return tuple(int(v) for v in text.split(",")) if text else None


def _names(text):
    return tuple(v.strip() for v in text.split(",")) if text else None


def _add_sweep_args(m, task: str) -> None:
    """The options of a sweep subcommand (``mqar`` and ``regbench`` share them)."""
    m.add_argument("--preset", default="ci", help="ci | book | paper")
    m.add_argument("--out", default=None, help=f"output folder (default results/{task}/<preset>)")
    m.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 ...")
    m.add_argument("--concurrency", type=int, default=1, help="runs trained at once, one process each")
    m.add_argument("--shard", default=None, help="i/n: keep every n-th run starting at i")
    m.add_argument("--mixers", default=None, help="comma-separated subset of the preset's mixers")
    m.add_argument("--widths", default=None, help="comma-separated d_model subset/override")
    m.add_argument("--lrs", default=None, help="comma-separated learning rates (override)")
    m.add_argument("--seeds", default=None, help="comma-separated seeds (override)")
    m.add_argument("--bla-impl", default="auto", help="auto | chunk | triton | parallel | recurrent")
    m.add_argument("--time-budget", type=float, default=None,
                   help="seconds: start no run after this, and cut runs still training at it")
    m.add_argument("--max-runs", type=int, default=None, help="train at most this many runs")
    m.add_argument("--list", action="store_true", help="print the runs (and which are done) and exit")
    m.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    m.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads per process (default: 1 on the CPU, torch's own on a GPU)")


def _is_regbench(paths) -> bool:
    """Whether the first complete record of ``paths`` is a RegBench run."""
    from blaviz.experiments.analysis import load_runs

    runs = load_runs(*paths)
    return bool(runs) and runs[0].get("task") == "regbench"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blaviz.experiments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    for task, help_text in (("mqar", "run (or resume) an MQAR sweep"),
                            ("regbench", "run (or resume) a RegBench sweep (in-context regular languages)")):
        _add_sweep_args(sub.add_parser(task, help=help_text), task)

    st = sub.add_parser("steptime", help="time training steps of a preset's models (sizing a sweep)")
    st.add_argument("--preset", default="book")
    st.add_argument("--device", default="auto")
    st.add_argument("--mixers", default=None)
    st.add_argument("--widths", default=None)
    st.add_argument("--steps", type=int, default=10)
    st.add_argument("--concurrency", type=int, default=1)
    st.add_argument("--bla-impl", default="auto")
    st.add_argument("--limit", type=int, default=None, help="time only the first N configurations")

    a = sub.add_parser("analyze", help="best-over-lr table and BLA/SWA state efficiency")
    a.add_argument("paths", nargs="+")
    a.add_argument("--thresholds", default="0.5,0.8,0.9")
    a.add_argument("--json", default=None, help="also write the summary JSON here")

    args = parser.parse_args(argv)
    if args.command == "analyze" and _is_regbench(args.paths):
        from blaviz.experiments.regbench import report, save_summary
        print(report(*args.paths))
        if args.json:
            save_summary(args.paths[0], args.json)
        return 0
    if args.command == "analyze":
        from blaviz.experiments.analysis import report, save_summary
        th = _floats(args.thresholds)
        print(report(*args.paths, thresholds=th))
        if args.json:
            save_summary(args.paths[0], args.json, thresholds=th)
        return 0

    if args.command == "regbench":
        from blaviz.experiments.regbench import get_preset, sweep_specs
    else:
        from blaviz.experiments.mqar import get_preset, sweep_specs
    from blaviz.experiments.sweep import finished_keys, parse_shard, run_sweep, select

    if args.command == "steptime":
        from blaviz.experiments.timing import steptime
        preset = get_preset(args.preset)
        device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
        device = "cpu" if device == "auto" else device
        specs = sweep_specs(preset, mixers=_names(args.mixers), widths=_ints(args.widths))
        first = {}
        for s in specs:  # one run per mixer configuration and width (the lr does not change the time)
            first.setdefault((s["mixer"], json.dumps(s["mixer_kwargs"], sort_keys=True), s["d_model"]), s)
        t0 = time.perf_counter()
        rows = steptime(preset, list(first.values())[:args.limit], device=device, steps=args.steps,
                        concurrency=args.concurrency, bla_impl=args.bla_impl)
        for r in rows:
            print(json.dumps(r), flush=True)
        total = sum(r["est_train_s"] for r in rows) * len(preset.lrs) * len(preset.seeds)
        print(f"[steptime] {time.perf_counter() - t0:.1f}s; processes={args.concurrency}; estimated "
              f"training of the whole sweep in one process at this per-process speed: {total:.0f}s", flush=True)
        return 0

    preset = get_preset(args.preset)
    specs = sweep_specs(preset, mixers=_names(args.mixers), widths=_ints(args.widths),
                        lrs=_floats(args.lrs), seeds=_ints(args.seeds))
    out = args.out or f"results/{args.command}/{preset.name}"
    shard = parse_shard(args.shard)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.threads or device == "cpu":
        # small models gain nothing from intra-op threads, and lose a lot on a busy machine
        torch.set_num_threads(args.threads or 1)
    if args.list:
        done = finished_keys(f"{out}/runs.jsonl")
        for s in select(specs, shard):
            print(("done " if s["key"] in done else "todo ") + s["key"])
        return 0
    print(f"[blaviz] preset {preset.name}: {len(specs)} runs, shard {shard[0]}/{shard[1]}, device {device}, "
          f"concurrency {args.concurrency}, out {out}", file=sys.stderr, flush=True)
    summary = run_sweep(preset, specs, out, device=device, concurrency=args.concurrency, shard=shard,
                        bla_impl=args.bla_impl, time_budget_s=args.time_budget,
                        progress=not args.no_progress, max_runs=args.max_runs)
    print(json.dumps(summary), flush=True)
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
