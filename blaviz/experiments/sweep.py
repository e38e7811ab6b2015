"""A resumable sweep runner: one JSON line per finished run in ``<out>/runs.jsonl``.

* **Resumable**: a run whose ``key`` already has a complete line in ``runs.jsonl`` is skipped, so
  re-running the same command (or passing in an earlier ``runs.jsonl``) continues where it stopped.
* **Concurrent**: ``concurrency = K > 1`` trains ``K`` runs at once, each in its own spawned
  process (its own CUDA context); small models leave most of an H200 idle, so several share it.
* **Nothing lost**: the process that trained a run appends its record itself, one locked write of
  one line (:func:`~blaviz.experiments.records.append_record`), so a finished run is on disk even
  if the parent is killed; workers watch their parent and exit when it is gone.
* **Sharded**: ``shard = (i, n)`` keeps every ``n``-th run starting at ``i`` (of the full, ordered
  list, before skipping finished runs), to split one sweep across machines.
* **fla tuned once**: ``fla_gsa`` runs side by side on a GPU find fla's kernel choices made
  once before the workers start (:func:`needs_first_calls`), instead of each tuning for minutes.
* **Time-boxed**: with ``time_budget_s`` no run starts after the budget, and runs still training
  at the budget stop and are written with ``"stopped": "time_limit"``; such lines do not count as
  finished, so a later call trains them again.

Failures are appended to ``<out>/errors.jsonl`` and do not stop the sweep. The runner serves every
task: the preset's ``task`` names the registered :class:`~blaviz.experiments.task.Task` whose
``run_one`` trains each run.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import datetime as _dt
import multiprocessing as mp
import os
import platform
import shlex
import sys
import threading
import time
import traceback
from pathlib import Path

import torch

from blaviz.experiments.fla_layers import first_calls, fla_runs
from blaviz.experiments.provenance import git_state, software
from blaviz.experiments.records import append_record, finished_keys, is_complete, read_records  # noqa: F401 (re-exported)
from blaviz.experiments.registry import get_task

REPO_ROOT = Path(__file__).resolve().parents[2]


def git_info() -> dict:
    """Commit of the code that ran (``dirty`` when the library differs from it)."""
    return git_state(REPO_ROOT)


def environment(device) -> dict:
    """Versions and hardware, recorded with every run (the keys of the run records' schema)."""
    device = torch.device(device)
    sw = software()
    return {"device": str(device), "torch_version": sw["torch"], "triton_version": sw["triton"],
            "python_version": sw["python"], "hostname": platform.node(),
            "gpu_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "cpu_threads": torch.get_num_threads()}


def parse_shard(text: str | None) -> tuple[int, int]:
    if not text:
        return (0, 1)
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard i/n needs 0 <= i < n, got {text!r}")
    return i, n


def select(specs: list[dict], shard=(0, 1), done: set[str] = frozenset()) -> list[dict]:
    i, n = shard
    return [s for j, s in enumerate(specs) if j % n == i and s["key"] not in done]


# ------------------------------------------------------------------------------- one run
# Held while a record is written, so that a worker told to die (its parent is gone) never stops
# between opening runs.jsonl and finishing the line.
_WRITING = threading.Lock()


def needs_first_calls(todo: list[dict], device, concurrency: int) -> bool:
    """Whether fla's first calls should be made before the workers start: fla's kernels tune
    themselves on their first call (minutes), so ``fla_gsa`` runs started side by side on a GPU
    would each tune; made once first, they find the choices in the Triton cache."""
    return concurrency > 1 and torch.device(device).type == "cuda" and bool(fla_runs(todo))


def _run_spec(task, spec, preset, device, bla_impl, progress, time_limit_s, extra, runs_path, err_path):
    """Train one run, append its record to ``runs_path`` (an error record to ``err_path``) and
    return it. Runs in a worker or in-process: the record is on disk before the parent hears of it,
    so it survives the parent."""
    t0 = time.perf_counter()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    try:
        rec = task.run_one(spec, preset, device=device, progress=progress, bla_impl=bla_impl,
                           time_limit_s=time_limit_s)
    except Exception:
        rec = {"key": spec["key"], "spec": spec, "error": traceback.format_exc(), "started_at": started}
        with _WRITING:
            append_record(err_path, rec)
        return rec
    rec.update(environment(device))
    rec.update(extra)
    rec["started_at"] = started
    rec["wall_time_s"] = round(time.perf_counter() - t0, 3)
    with _WRITING:
        append_record(runs_path, rec)
    return rec


def _watch_parent(parent_pid: int, interval_s: float) -> None:
    """Exit this worker once its parent is gone (it is then re-parented): a worker must not outlive
    the sweep, holding memory (and on a GPU a CUDA context) while blocked on a dead pipe."""
    while True:
        if os.getppid() != parent_pid:
            with _WRITING:          # let a record being written finish first
                os._exit(1)
        time.sleep(interval_s)


def _init_worker(threads: int, parent_pid: int, interval_s: float = 0.5):
    torch.set_num_threads(max(1, threads))
    threading.Thread(target=_watch_parent, args=(parent_pid, interval_s), daemon=True,
                     name="watch-parent").start()


def run_sweep(preset, specs: list[dict], out_dir, *, device="cpu", concurrency: int = 1,
              shard=(0, 1), bla_impl: str = "auto", time_budget_s: float | None = None,
              progress: bool = True, command: str | None = None, max_runs: int | None = None,
              cuda_graph: bool = False) -> dict:
    """Run the not-yet-finished ``specs`` of this shard; each run's record is appended to
    ``<out>/runs.jsonl`` (a failure's to ``<out>/errors.jsonl``) by the process that trained it.

    Returns a summary: how many runs were selected, finished, failed, cut by the budget, skipped.
    """
    from tqdm.auto import tqdm

    task = get_task(preset.task)
    if cuda_graph:      # how the steps execute: not part of the run's key (specs are made already)
        preset = dataclasses.replace(preset, train={**preset.train, "cuda_graph": True})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs_path, err_path = out_dir / "runs.jsonl", out_dir / "errors.jsonl"
    done = finished_keys(runs_path)
    shard_specs = select(specs, shard)
    todo = [s for s in shard_specs if s["key"] not in done]
    if max_runs is not None:
        todo = todo[:max_runs]
    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    extra = {"command": command, "concurrency": concurrency, "shard": f"{shard[0]}/{shard[1]}", **git_info()}
    summary = {"selected": len(shard_specs), "already_done": len(shard_specs) - len([s for s in shard_specs if s["key"] not in done]),
               "todo": len(todo), "finished": 0, "failed": 0, "time_limited": 0, "not_started": 0}
    t_start = time.perf_counter()

    def remaining():
        return None if time_budget_s is None else time_budget_s - (time.perf_counter() - t_start)

    bar = tqdm(total=len(todo), desc=f"{preset.task}/{preset.name}", disable=not progress,
               dynamic_ncols=True)

    def handle(rec):  # the record is already on disk
        if "error" in rec:
            summary["failed"] += 1
            tqdm.write(f"FAILED {rec['key']}:\n{rec['error']}")
        else:
            if rec.get("stopped") == "time_limit":
                summary["time_limited"] += 1
            else:
                summary["finished"] += 1
            tv = f" tv={rec['tv_distance']:.3f}" if "tv_distance" in rec else ""
            tqdm.write(f"{rec['key']}: acc={rec['accuracy']:.3f}{tv} state={rec['state_size']} "
                       f"steps={rec['steps']} ({rec['stopped']}) {rec['wall_time_s']:.0f}s")
        bar.update(1)

    if needs_first_calls(todo, device, concurrency):
        for line in first_calls(task, preset, specs=todo, device=device):
            tqdm.write(f"fla's first calls made: {line} ({time.perf_counter() - t_start:.0f} s)")
    if concurrency <= 1:
        for spec in todo:
            left = remaining()
            if left is not None and left <= 0:
                summary["not_started"] += 1
                continue
            handle(_run_spec(task, spec, preset, device, bla_impl, progress, left, extra, runs_path, err_path))
    else:
        threads = max(1, (os.cpu_count() or 1) // concurrency)
        ctx = mp.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=concurrency, mp_context=ctx, initializer=_init_worker,
                                    initargs=(threads, os.getpid())) as pool:
            queue = list(todo)
            running = set()
            while queue or running:
                while queue and len(running) < concurrency:
                    left = remaining()
                    if left is not None and left <= 0:
                        summary["not_started"] += len(queue)
                        queue = []
                        break
                    spec = queue.pop(0)
                    running.add(pool.submit(_run_spec, task, spec, preset, device, bla_impl, False, left, extra,
                                            runs_path, err_path))
                if not running:
                    break
                finished, running = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                running = set(running)
                for fut in finished:
                    try:
                        handle(fut.result())
                    except Exception:  # the worker process itself died
                        summary["failed"] += 1
                        append_record(err_path, {"error": traceback.format_exc()})
                        bar.update(1)
    bar.close()
    summary["wall_time_s"] = round(time.perf_counter() - t_start, 2)
    return summary
