"""Provenance and small helpers shared by the CPU and GPU benchmarks."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=os.path.dirname(os.path.abspath(__file__)))
        return out.stdout.strip() or None if out.returncode == 0 else None
    except Exception:  # pragma: no cover - no git
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(command: str | None = None) -> dict:
    import torch
    info = {
        "command": command or " ".join(["python -m blaviz.bench"] + sys.argv[1:]),
        "git_commit": git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    try:
        import triton
        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    return info


def save_json(path: str, payload: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)
    print(f"saved {path}")


def table(rows: list[dict], cols: list[str]) -> str:
    def fmt(x):
        if isinstance(x, float):
            return f"{x:.4g}"
        return "-" if x is None else str(x)
    width = {c: max([len(c)] + [len(fmt(r.get(c))) for r in rows]) for c in cols}
    lines = [" | ".join(c.rjust(width[c]) for c in cols), "-+-".join("-" * width[c] for c in cols)]
    lines += [" | ".join(fmt(r.get(c)).rjust(width[c]) for c in cols) for r in rows]
    return "\n".join(lines)
