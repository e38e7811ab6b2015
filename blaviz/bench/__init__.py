"""Correctness-gated benchmarks: ``python -m blaviz.bench cpu`` and ``python -m blaviz.bench gpu``.

Each op is checked against a reference before it is timed; an op that fails its check is reported
as such and not timed. Results are saved as JSON with provenance (command, git commit, machine,
versions, date, wall time) under ``results/bench/``.
"""
