"""A task that trains nothing, for testing the harness: its "runs" sleep, write their pid, or kill
stop the sweep's process, as their ``mixer_kwargs`` say. Importable by the spawned workers (the sweep
pickles the task object), and runnable as a sweep parent::

    python -m tests.experiments.fake_task OUT_DIR     # concurrency 2: a sleeper and a stopper
"""
from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from blaviz.experiments.preset import Preset
from blaviz.experiments.task import Task


@dataclass(frozen=True)
class FakeData:
    vocab_size: int = 8
    longest: int = 8


class FakeTask(Task):
    """``run_one`` obeys ``mixer_kwargs``: ``pid_dir`` (write ``<pid_dir>/<mixer>.pid``),
    ``wait_for`` (a file to wait for first), ``stop_parent`` (SIGSTOP the sweep's process: it can
    no longer write anything, and a test then kills it),
    ``sleep`` (seconds), ``fail`` (raise)."""

    name = "fake"

    def run_one(self, spec, p, *, device="cpu", progress=True, bla_impl="auto", time_limit_s=None):
        kw = spec["mixer_kwargs"]
        if "pid_dir" in kw:
            Path(kw["pid_dir"], f"{spec['mixer']}.pid").write_text(str(os.getpid()))
        if "wait_for" in kw:
            deadline = time.monotonic() + 60
            while not Path(kw["wait_for"]).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        if kw.get("stop_parent"):
            os.kill(os.getppid(), signal.SIGSTOP)
        time.sleep(kw.get("sleep", 0))
        if kw.get("fail"):
            raise RuntimeError("this run fails on purpose")
        return {"key": spec["key"], "task": self.name, "preset": p.name, "preset_hash": spec["preset_hash"],
                "mixer": spec["mixer"], "mixer_kwargs": kw, "d_model": spec["d_model"], "lr": spec["lr"],
                "seed": spec["seed"], "accuracy": 0.5, "per_slice": {"all": 0.5}, "state_size": 4,
                "steps": 1, "stopped": "steps", "worker_pid": os.getpid()}


TASK = FakeTask()


def fake_preset(grid, name="fake") -> Preset:
    return Preset(name=name, task="fake", data=FakeData(), widths=(4,), lrs=(1e-3,), grid=tuple(grid),
                  train={"max_steps": 1})


def register() -> FakeTask:
    from blaviz.experiments.registry import register_task

    return register_task(TASK, replace=True)


def _sleeper_and_killer(out: Path) -> None:
    """A sweep of two runs in two workers: one sleeps for minutes, the other stops this process."""
    from blaviz.experiments.sweep import run_sweep

    register()
    pids = out / "pids"
    pids.mkdir(parents=True, exist_ok=True)
    p = fake_preset([("sleeper", {"pid_dir": str(pids), "sleep": 300}),
                     ("stopper", {"pid_dir": str(pids), "wait_for": str(pids / "sleeper.pid"),
                                  "stop_parent": True})])
    run_sweep(p, TASK.sweep_specs(p), out, concurrency=2, progress=False, command="fake")


if __name__ == "__main__":   # by its importable name, so that the workers can unpickle the task
    from tests.experiments.fake_task import _sleeper_and_killer as run

    run(Path(sys.argv[1]))
