"""Where a measurement came from: code, software, hardware. One source for every result file.

Benchmarks, sweeps and the GPU scripts all record the same facts through these functions::

    python -m blaviz.experiments.provenance --out results/x/provenance.json --command "..." --script scripts/x.sh \
        [--started 2026-11-28T12:00:00Z] [--wall 232] [--runs runs.jsonl] [--preset mqar:book]

On the GPU machine the working tree travels without ``.git``: ``BLAVIZ_GIT_COMMIT`` and
``BLAVIZ_GIT_DIRTY`` then name the code.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def git_state(repo_root: Path | str = REPO_ROOT) -> dict:
    """``{"git_commit", "git_dirty"}``: the commit, and whether the library differs from it.

    ``BLAVIZ_GIT_COMMIT`` (and ``BLAVIZ_GIT_DIRTY``) win when set: the GPU machine's copy can hold a
    ``.git`` of an older commit under a newer working tree, and only the caller knows which it is.
    """
    if os.environ.get("BLAVIZ_GIT_COMMIT"):
        return {"git_commit": os.environ["BLAVIZ_GIT_COMMIT"],
                "git_dirty": os.environ.get("BLAVIZ_GIT_DIRTY", "unknown")}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--", "blaviz"], cwd=repo_root,
                                capture_output=True, text=True, timeout=10, check=True).stdout
        return {"git_commit": commit, "git_dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": os.environ.get("BLAVIZ_GIT_COMMIT", "unknown"),
                "git_dirty": os.environ.get("BLAVIZ_GIT_DIRTY", "unknown")}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def software() -> dict:
    """Python, torch and triton versions (triton ``None`` when it is not installed)."""
    import torch
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    return {"python": platform.python_version(), "torch": torch.__version__, "triton": triton_version}


def hardware() -> dict:
    """The CPU, and the GPU with its driver when CUDA is available."""
    import torch
    info = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": None, "nvidia_smi": None}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        try:
            info["nvidia_smi"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=30).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            pass
    return info


def provenance(command: str, **extra) -> dict:
    """Everything above plus the command, the date (UTC) and ``commit`` (the code's commit, also
    under ``git_commit``); ``extra`` fields are added as given."""
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    state = git_state()
    return {"command": command, "date": now, "commit": state["git_commit"], **state, **software(),
            **hardware(), **extra}


def run_counts(runs_path: str | Path) -> dict:
    """Complete and time-limited runs in a sweep's ``runs.jsonl``."""
    recs = [json.loads(line) for line in Path(runs_path).read_text().splitlines() if line.strip()]
    limited = sum(1 for r in recs if r.get("stopped") == "time_limit")
    return {"runs_lines": len(recs), "runs_complete": len(recs) - limited, "runs_time_limited": limited}


def _preset_description(spec: str) -> dict:
    from blaviz.experiments.registry import get_preset

    return get_preset(spec).describe()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m blaviz.experiments.provenance", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="where to write the JSON")
    ap.add_argument("--command", required=True, help="the command that made the results")
    ap.add_argument("--script", default=None)
    ap.add_argument("--started", default=None, help="start time (UTC, ISO 8601)")
    ap.add_argument("--wall", type=float, default=None, help="wall time in seconds")
    ap.add_argument("--runs", default=None, help="a runs.jsonl to count complete and cut runs in")
    ap.add_argument("--preset", default=None, help="TASK:NAME (e.g. mqar:book), to record the preset")
    args = ap.parse_args(argv)
    extra = {k: v for k, v in (("script", args.script), ("started_utc", args.started),
                               ("wall_time_s", args.wall)) if v is not None}
    if args.runs:
        extra.update(run_counts(args.runs))
    if args.preset:
        extra["preset"] = _preset_description(args.preset)
    info = provenance(args.command, **extra)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(info, indent=1) + "\n")
    print(f"[provenance] wrote {args.out}")
    return info


if __name__ == "__main__":
    main()
