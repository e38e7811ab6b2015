"""The harness loses nothing: workers die with their parent and leave their finished runs on disk,
a torn line never swallows the next record, malformed lines are named by file and line, and the
command line refuses bad values naming the flag. Runs here are fake (tests/experiments/fake_task.py):
no training, so the tests take seconds."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blaviz.experiments.__main__ import main
from blaviz.experiments.records import RecordError, append_record, finished_keys, read_records
from blaviz.experiments.sweep import run_sweep
from tests.experiments import fake_task

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fake():
    return fake_task.register()


def _alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.slow   # three Python processes start and import torch: ~20 s on two busy cores
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_their_parent_and_keep_finished_runs(tmp_path):
    """A sweep with two workers: one finishes a run after freezing the sweep (SIGSTOP: the parent
    can write nothing more), the other is in a long run; then kill -9 of the sweep. The finished
    run must be in runs.jsonl, and both workers must be gone within seconds."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.experiments.fake_task", str(tmp_path)], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True)
    runs, pids = tmp_path / "runs.jsonl", {}
    try:
        deadline = time.monotonic() + 90
        while not (runs.exists() and runs.read_text().strip()) and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"the sweep ended early: {proc.stderr.read()}")
            time.sleep(0.1)
        pids = {p.stem: int(p.read_text()) for p in (tmp_path / "pids").glob("*.pid")}
        proc.kill()
        assert proc.wait(timeout=30) == -signal.SIGKILL
        assert set(pids) == {"sleeper", "stopper"}
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [m for m, p in pids.items() if _alive(p)], "workers outlived their parent"
        recs = read_records(runs)
        assert [r["mixer"] for r in recs] == ["stopper"] and recs[0]["worker_pid"] == pids["stopper"]
    finally:
        proc.kill()
        for p in pids.values():      # the processes this test started, if the harness let them live
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def test_a_torn_line_does_not_swallow_the_next_record(tmp_path, fake, capsys):
    p = fake_task.fake_preset([("a", {}), ("b", {})])
    specs = fake.sweep_specs(p)
    run_sweep(p, specs[:1], tmp_path, progress=False)
    runs = tmp_path / "runs.jsonl"
    with open(runs, "a") as f:
        f.write('{"key": "torn write, no newl')        # a sweep killed in the middle of a line
    run_sweep(p, specs, tmp_path, progress=False)
    assert finished_keys(runs) == {s["key"] for s in specs}
    lines = runs.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["key"] == specs[1]["key"]
    assert f"{runs}:2: not JSON" in capsys.readouterr().err
    # and a resumed sweep trains nothing again
    assert run_sweep(p, specs, tmp_path, progress=False)["todo"] == 0


def _append_many(path, prefix):
    for i in range(50):
        append_record(path, {"key": f"{prefix}{i}", "pad": "x" * 5000})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks")
def test_appends_from_many_processes_stay_whole_lines(tmp_path):
    ctx = multiprocessing.get_context("fork")      # already imported: no start-up cost
    procs = [ctx.Process(target=_append_many, args=(tmp_path / "r.jsonl", f"p{j}-")) for j in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    keys = [json.loads(line)["key"] for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert sorted(keys) == sorted(f"p{j}-{i}" for j in range(3) for i in range(50))


MALFORMED = ['{}', '[1, 2]', 'null',
             '{"key": "k1", "d_model": 8, "lr": 0.1, "seed": 0, "accuracy": 0.5, "per_slice": {}, "state_size": 1, '
             '"mixer_kwargs": {}}',
             '{"key": "k2", "mixer": "swa", "mixer_kwargs": {}, "d_model": 8, "lr": 0.1, "seed": 0, '
             '"accuracy": "0.9", "per_slice": {}, "state_size": 1}']
REASONS = ["no string 'key'", "expected a JSON object, got list", "expected a JSON object, got NoneType",
           "has no 'mixer'", "'accuracy' is str"]


def _write_malformed(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(MALFORMED) + "\n")
    return path


def test_malformed_lines_are_named_by_file_and_line(tmp_path, fake, capsys):
    runs = _write_malformed(tmp_path / "runs.jsonl")
    with pytest.raises(RecordError) as e:
        read_records(runs, strict=True)
    for n, reason in enumerate(REASONS, 1):
        assert f"{runs}:{n}: " in str(e.value) and reason in str(e.value)
    # --list and the sweep go on (a bad line is not a finished run) and say which lines they skipped
    capsys.readouterr()
    assert main(["mqar", "--preset", "ci", "--list", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert out.out.count("todo ") == 2 and all(f"{runs}:{n}: " in out.err for n in range(1, 6))
    assert "Traceback" not in out.err
    p = fake_task.fake_preset([("a", {})])
    assert run_sweep(p, fake.sweep_specs(p), tmp_path, progress=False)["finished"] == 1
    assert f"{runs}:5: " in capsys.readouterr().err
    # analyze refuses to summarise a file it cannot read whole, and names every bad line
    assert main(["analyze", str(runs)]) == 2
    err = capsys.readouterr().err
    assert all(f"{runs}:{n}: {r}" in err or (f"{runs}:{n}: " in err and r in err) for n, r in enumerate(REASONS, 1))
    assert "Traceback" not in err


def test_analyze_refuses_to_mix_tasks(tmp_path, capsys):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    base = {"mixer": "swa", "mixer_kwargs": {"window": 4}, "d_model": 8, "lr": 0.1, "seed": 0, "accuracy": 0.5,
            "state_size": 64}
    append_record(a, dict(base, key="m", task="mqar", per_slice={"64x4": 0.5}))
    append_record(b, dict(base, key="r", task="regbench", per_slice={"pos 0-31": 0.5}, validity_accuracy=0.5,
                          tv_distance=0.5))
    assert main(["analyze", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert f"mqar runs in {a}" in err and f"regbench runs in {b}" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, flag", [
    (["mqar", "--mixers", "nope"], "--mixers"),
    (["mqar", "--max-runs", "-1"], "--max-runs"),
    (["mqar", "--lrs", "abc"], "--lrs"),
    (["mqar", "--lrs", "nan"], "--lrs"),
    (["mqar", "--lrs", "-1"], "--lrs"),
    (["mqar", "--seeds", "1.5"], "--seeds"),
    (["mqar", "--widths", "0"], "--widths"),
    (["mqar", "--concurrency", "0"], "--concurrency"),
    (["mqar", "--preset", "nope"], "--preset"),
    (["mqar", "--shard", "3/2"], "--shard"),
    (["regbench", "--bla-impl", "fast"], "--bla-impl"),
    (["mqar", "--time-budget", "inf"], "--time-budget"),
    (["analyze", "no/such/runs.jsonl"], "no such file"),
])
def test_the_command_line_names_the_bad_flag(argv, flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv + ["--list", "--out", str(tmp_path)] if argv[0] != "analyze" else argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "Traceback" not in err


def test_bench_cpu_checks_its_arguments_before_running(tmp_path, capsys):
    from blaviz.bench.__main__ import main as bench

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    t0 = time.perf_counter()
    with pytest.raises(SystemExit) as e:
        bench(["cpu", "--out", str(blocker / "cpu.json")])        # its folder is a file
    assert e.value.code == 2 and "--out" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        bench(["cpu", "stray"])
    assert e.value.code == 2 and "stray" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 5                             # refused, not benchmarked
