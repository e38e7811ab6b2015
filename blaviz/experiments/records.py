"""``runs.jsonl``: one JSON record per finished run, appended by whoever finished it, read back by
the runner (what is done), ``--list`` and ``analyze``.

* **Appending** (:func:`append_record`) is one ``write`` of one whole line under an exclusive
  ``flock``, in ``O_APPEND`` mode, fsynced: records from several processes never interleave, and a
  record is on disk as soon as its run ends. A file whose last line was torn (a writer killed
  mid-write) gets a newline first, so the new record starts on a fresh line.
* **Reading** (:func:`read_records`) names every bad line as ``file:line: reason``. A line that
  is not JSON (a torn write) is skipped with a warning; a JSON value that is not a run record
  (``{}``, ``[1, 2]``, ``null``, a record without ``mixer``, a string accuracy) is skipped with a
  warning, or raised as :class:`RecordError` with ``strict=True`` (what ``analyze`` uses).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: appends are still single writes, without the lock
    fcntl = None

#: fields every complete run record carries, with the types they must have
REQUIRED_FIELDS: dict = {"key": str, "mixer": str, "mixer_kwargs": dict, "d_model": int,
                         "lr": (int, float), "seed": int, "accuracy": (int, float), "per_slice": dict,
                         "state_size": int}


class RecordError(ValueError):
    """Malformed lines of a records file; the message lists them as ``file:line: reason``."""


def is_complete(rec: dict) -> bool:
    """A finished run: no error, not cut by a time limit."""
    return "error" not in rec and rec.get("stopped") != "time_limit"


def record_problem(rec, required: dict = REQUIRED_FIELDS) -> str | None:
    """Why ``rec`` is not a usable run record (``None`` when it is).

    Every record needs a string ``key``; a complete record also every field of ``required`` with
    its type (``bool`` does not count as a number)."""
    if not isinstance(rec, dict):
        return f"expected a JSON object, got {type(rec).__name__} {json.dumps(rec)[:40]}"
    if not isinstance(rec.get("key"), str):
        return "no string 'key'"
    if not is_complete(rec):
        return None
    for name, types in required.items():
        if name not in rec:
            return f"record {rec['key']!r} has no {name!r}"
        v = rec[name]
        if isinstance(v, bool) or not isinstance(v, types):
            return f"record {rec['key']!r}: {name!r} is {type(v).__name__} {json.dumps(v)[:40]}"
    return None


def read_records(path, *, strict: bool = False, required: dict = REQUIRED_FIELDS) -> list[dict]:
    """The run records of ``path`` in file order (a missing file reads as empty).

    Lines that are not JSON are skipped with a warning on stderr (a torn write). Lines that are JSON
    but not a run record (see :func:`record_problem`) are skipped with a warning, or, with
    ``strict``, raise :class:`RecordError` naming every such line as ``file:line: reason``."""
    path = Path(path)
    if not path.exists():
        return []
    out, bad = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                print(f"{path}:{n}: not JSON ({e.msg}; a torn write?): skipped", file=sys.stderr)
                continue
            problem = record_problem(rec, required)
            if problem is None:
                out.append(rec)
            elif strict:
                bad.append(f"{path}:{n}: {problem}")
            else:
                print(f"{path}:{n}: {problem}: skipped", file=sys.stderr)
    if bad:
        raise RecordError("malformed records:\n" + "\n".join(bad))
    return out


def finished_keys(path) -> set[str]:
    """Keys of the complete runs in ``path``."""
    return {r["key"] for r in read_records(path) if is_complete(r)}


def task_of(paths) -> str:
    """The one task whose runs ``paths`` hold (records without ``task`` are MQAR's, as the first
    were); a clear :class:`RecordError` when a line is malformed, the files mix tasks or hold no run."""
    seen: dict[str, str] = {}
    for p in paths:
        for rec in read_records(p, strict=True):
            seen.setdefault(rec.get("task", "mqar"), str(p))
    if not seen:
        raise RecordError(f"no run records in {', '.join(str(p) for p in paths)}")
    if len(seen) > 1:
        where = "; ".join(f"{task} runs in {p}" for task, p in seen.items())
        raise RecordError(f"the files mix tasks ({where}): analyze one task at a time")
    return next(iter(seen))


def append_record(path, rec: dict) -> None:
    """Append ``rec`` as one JSON line: one write under an exclusive lock, on a fresh line, fsynced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(rec, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data      # the last line was torn: start this record on its own line
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)                 # closing releases the lock
