"""The read-out model's grid for chapter 10: predicted in-window recall against ``W/N``, ``S``
and ``d`` (:func:`blaviz.analysis.readout_recall`), written to one JSON file with provenance::

    python -m blaviz.experiments.readout_grid --out results/beyond/readout.json [--trials 16]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from blaviz.analysis.readout import readout_recall
from blaviz.experiments.provenance import provenance

WINDOW = 64
RESOLUTIONS = (63, 31, 21, 15, 11, 7)
SLOTS = ("N", "2N", "W")
WIDTHS = (64, 128, 256)


def slots_for(rule: str, window: int, resolution: int) -> int:
    """``S`` for a rule ``N``, ``2N`` or ``W``."""
    return {"N": resolution, "2N": 2 * resolution, "W": window}[rule]


def grid(*, trials: int, window: int = WINDOW, resolutions=RESOLUTIONS, widths=WIDTHS,
         slot_rules=SLOTS, erasures=("periodic", "exact"), seed: int = 0) -> list[dict]:
    """One row per ``(erasure, d, S rule, N)``: the predicted recall and its best temperature.
    The exact-erasure rows use ``S = N`` and ``d = 64`` only (what the erasure alone changes)."""
    rows = []
    for erasure in erasures:
        for d in widths:
            for rule in slot_rules:
                if erasure == "exact" and (rule != "N" or d != 64):
                    continue
                for n in resolutions:
                    r = readout_recall(window, n, slots_for(rule, window, n), d, trials=trials,
                                       erasure=erasure, seed=seed)
                    rows.append({"window": window, "resolution": n, "w_over_n": window / n,
                                 "slots": rule, "num_slots": slots_for(rule, window, n),
                                 "head_dim": d, "erasure": erasure, "recall": r.recall,
                                 "temperature": None if math.isinf(r.temperature)
                                 else r.temperature})
                    print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True)
    ap.add_argument("--trials", type=int, default=16)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows = grid(trials=args.trials)
    out = {"rows": rows, "trials": args.trials, "num_candidates": 4096, "context": 4 * WINDOW,
           "model": "blaviz.analysis.readout.readout_recall (ideal query, best temperature)",
           **provenance(" ".join(["python -m blaviz.experiments.readout_grid"] + sys.argv[1:]),
                        wall_s=round(time.perf_counter() - t0, 1))}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
