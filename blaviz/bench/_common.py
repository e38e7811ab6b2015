"""Provenance and small helpers shared by the CPU and GPU benchmarks."""
from __future__ import annotations

import json
import os
import sys

from blaviz.experiments.provenance import provenance as _provenance


def provenance(command: str | None = None) -> dict:
    """The shared record (:mod:`blaviz.experiments.provenance`) with the benchmark's command line."""
    return _provenance(command or " ".join(["python -m blaviz.bench"] + sys.argv[1:]))


def check_writable(path: str) -> None:
    """Raise ``OSError`` unless ``path`` can be written (its folder is made; nothing is truncated)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    existed = os.path.exists(path)
    with open(path, "a"):
        pass
    if not existed:
        os.remove(path)


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


def parse_value(text: str):
    """``"true"`` -> True, ``"16"`` -> 16, anything else stays a string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(low)
    except ValueError:
        return text.strip()
