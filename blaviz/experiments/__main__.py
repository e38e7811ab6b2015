"""Command line: ``python -m blaviz.experiments {<task>, analyze, steptime} ...``.

Every registered task (``mqar``, ``regbench``, ...) is a subcommand with the same options.
Examples::

    python -m blaviz.experiments mqar --preset ci                      # CPU, under a minute
    python -m blaviz.experiments mqar --preset book --device cuda --concurrency 12 --out /tmp/mqar
    python -m blaviz.experiments mqar --preset paper --shard 0/4 --device cuda --concurrency 12
    python -m blaviz.experiments mqar --preset book --list             # the runs, nothing trained
    python -m blaviz.experiments analyze results/mqar/book/runs.jsonl
    python -m blaviz.experiments regbench --preset ci                  # CPU, under a minute
    python -m blaviz.experiments regbench --preset book --device cuda --concurrency 12
    python -m blaviz.experiments analyze results/regbench/book/runs.jsonl --json summary.json
    python -m blaviz.experiments steptime --task mqar --preset book --device cuda

Every task writes the same JSON lines (RegBench's add ``validity_accuracy`` and ``tv_distance``);
``analyze`` reads the records' ``task`` and reports with that task's analysis.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

BLA_IMPLS = ("auto", "chunk", "triton", "parallel", "recurrent")


def _list_of(convert, check, what):
    """An argparse ``type``: a comma-separated list, each item converted, the whole list checked."""
    def parse(text):
        try:
            values = tuple(convert(v.strip()) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}") from None
        if not values or not all(check(v) for v in values):
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}")
        return values
    return parse


def _strict_int(text: str) -> int:
    return int(text)  # int("1.5") raises ValueError, as it should


def _int_at_least(minimum: int):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an int >= {minimum}, got {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"expected an int >= {minimum}, got {text!r}")
        return v
    return parse


def _positive_seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}")
    return v


_lrs = _list_of(float, lambda v: math.isfinite(v) and v > 0, "finite learning rates > 0")
_widths = _list_of(_strict_int, lambda v: v >= 1, "widths (ints >= 1)")
_seeds = _list_of(_strict_int, lambda v: v >= 0, "seeds (ints >= 0)")
_names = _list_of(str, bool, "names")
_thresholds = _list_of(float, lambda v: 0 <= v <= 1, "accuracy thresholds in [0, 1]")


def _add_sweep_args(m, task) -> None:
    """The options of a task's subcommand (every task shares them)."""
    m.add_argument("--preset", default="ci", choices=tuple(task.presets), help="the preset to run")
    m.add_argument("--out", default=None, help=f"output folder (default results/{task.name}/<preset>)")
    m.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 ...")
    m.add_argument("--concurrency", type=_int_at_least(1), default=1,
                   help="runs trained at once, one process each")
    m.add_argument("--shard", default=None, help="i/n: keep every n-th run starting at i")
    m.add_argument("--mixers", type=_names, default=None, help="comma-separated subset of the preset's mixers")
    m.add_argument("--widths", type=_widths, default=None, help="comma-separated d_model subset/override")
    m.add_argument("--lrs", type=_lrs, default=None, help="comma-separated learning rates (override)")
    m.add_argument("--seeds", type=_seeds, default=None, help="comma-separated seeds (override)")
    m.add_argument("--bla-impl", default="auto", choices=BLA_IMPLS, help="BLA's implementation")
    m.add_argument("--cuda-graph", action="store_true",
                   help="replay each training step as a CUDA graph (TrainConfig.cuda_graph)")
    m.add_argument("--time-budget", type=_positive_seconds, default=None,
                   help="seconds: start no run after this, and cut runs still training at it")
    m.add_argument("--max-runs", type=_int_at_least(0), default=None, help="train at most this many runs")
    m.add_argument("--list", action="store_true", help="print the runs (and which are done) and exit")
    m.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    m.add_argument("--threads", type=_int_at_least(1), default=None,
                   help="torch CPU threads per process (default: 1 on the CPU, torch's own on a GPU)")


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _parser(tasks):
    parser = argparse.ArgumentParser(prog="python -m blaviz.experiments", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for task in tasks:
        doc = (type(task).__doc__ or "").strip().split("\n")[0]
        _add_sweep_args(sub.add_parser(task.name, help=f"run (or resume) a {task.name} sweep. {doc}"), task)

    st = sub.add_parser("steptime", help="time training steps of a preset's models (sizing a sweep)")
    st.add_argument("--task", default="mqar", choices=tuple(t.name for t in tasks))
    st.add_argument("--preset", default="book")
    st.add_argument("--device", default="auto")
    st.add_argument("--mixers", type=_names, default=None)
    st.add_argument("--widths", type=_widths, default=None)
    st.add_argument("--steps", type=_int_at_least(1), default=10)
    st.add_argument("--concurrency", type=_int_at_least(1), default=1)
    st.add_argument("--bla-impl", default="auto", choices=BLA_IMPLS)
    st.add_argument("--cuda-graph", action="store_true", help="time CUDA-graph training steps")
    st.add_argument("--limit", type=_int_at_least(1), default=None, help="time only the first N configurations")

    a = sub.add_parser("analyze", help="best-over-lr table and state efficiency of runs.jsonl files")
    a.add_argument("paths", nargs="+")
    a.add_argument("--thresholds", type=_thresholds, default=(0.5, 0.8, 0.9),
                   help="accuracy thresholds of the state-efficiency table (MQAR)")
    a.add_argument("--json", default=None, help="also write the summary JSON here")
    return parser


def _analyze(args, parser) -> int:
    from blaviz.experiments.records import RecordError, task_of
    from blaviz.experiments.registry import get_task

    missing = [p for p in args.paths if not Path(p).is_file()]
    if missing:
        parser.error(f"analyze: no such file: {', '.join(missing)}")
    try:
        task = get_task(task_of(args.paths))
        kw = {"thresholds": args.thresholds} if task.name == "mqar" else {}
        print(task.report(*args.paths, **kw))
        if args.json:
            task.save_summary(args.paths[0] if len(args.paths) == 1 else args.paths, args.json, **kw)
    except (RecordError, ValueError) as e:
        print(f"analyze: {e}", file=sys.stderr)
        return 2
    return 0


def _steptime(args, parser) -> int:
    from blaviz.experiments.registry import get_task
    from blaviz.experiments.timing import steptime

    task = get_task(args.task)
    try:
        preset = task.get_preset(args.preset)
        specs = task.sweep_specs(preset, mixers=args.mixers, widths=args.widths)
    except ValueError as e:
        parser.error(f"--preset/--mixers: {e}")
    device = _device(args.device)
    first = {}
    for s in specs:  # one run per mixer configuration and width (the lr does not change the time)
        first.setdefault((s["mixer"], json.dumps(s["mixer_kwargs"], sort_keys=True), s["d_model"]), s)
    t0 = time.perf_counter()
    rows = steptime(task, preset, list(first.values())[:args.limit], device=device, steps=args.steps,
                    concurrency=args.concurrency, bla_impl=args.bla_impl, cuda_graph=args.cuda_graph)
    for r in rows:
        print(json.dumps(r), flush=True)
    total = sum(r["est_train_s"] for r in rows) * len(preset.lrs) * len(preset.seeds)
    print(f"[steptime] {time.perf_counter() - t0:.1f}s; processes={args.concurrency}; estimated "
          f"training of the whole sweep in one process at this per-process speed: {total:.0f}s", flush=True)
    return 0


def main(argv=None) -> int:
    from blaviz.experiments.registry import get_task, task_names

    parser = _parser([get_task(n) for n in task_names()])
    args = parser.parse_args(argv)
    if args.command == "analyze":
        return _analyze(args, parser)
    if args.command == "steptime":
        return _steptime(args, parser)

    import torch

    from blaviz.experiments.records import RecordError
    from blaviz.experiments.sweep import finished_keys, parse_shard, run_sweep, select

    task = get_task(args.command)
    preset = task.get_preset(args.preset)
    try:
        specs = task.sweep_specs(preset, mixers=args.mixers, widths=args.widths, lrs=args.lrs, seeds=args.seeds)
        shard = parse_shard(args.shard)
    except ValueError as e:
        parser.error(str(e))
    out = args.out or f"results/{task.name}/{preset.name}"
    device = _device(args.device)
    if args.threads or device == "cpu":
        # small models gain nothing from intra-op threads, and lose a lot on a busy machine
        torch.set_num_threads(args.threads or 1)
    try:
        if args.list:
            done = finished_keys(f"{out}/runs.jsonl")
            for s in select(specs, shard):
                print(("done " if s["key"] in done else "todo ") + s["key"])
            return 0
        print(f"[blaviz] {task.name} preset {preset.name}: {len(specs)} runs, shard {shard[0]}/{shard[1]}, "
              f"device {device}, concurrency {args.concurrency}, out {out}", file=sys.stderr, flush=True)
        summary = run_sweep(preset, specs, out, device=device, concurrency=args.concurrency, shard=shard,
                            bla_impl=args.bla_impl, time_budget_s=args.time_budget,
                            progress=not args.no_progress, max_runs=args.max_runs,
                            cuda_graph=args.cuda_graph)
    except RecordError as e:
        print(f"{task.name}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary), flush=True)
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
