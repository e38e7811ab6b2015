"""BLA with exact (non-periodic) erasure: a ring buffer subtracts the leaving token itself.

A diagnostic of BLA's blurry erasure, with state ``2 (N + W) d`` per head (see
:mod:`blaviz.ops.exact_erasure.naive`). ``impl``: ``recurrent`` (the definition) or
``parallel`` (banded, for training on short sequences).
"""
from __future__ import annotations

from blaviz.ops.exact_erasure.naive import exact_erasure_recurrent, truncated_dirichlet_kernels
from blaviz.ops.exact_erasure.parallel import exact_erasure_parallel

IMPLS = ("recurrent", "parallel")

__all__ = ["exact_erasure_attention", "exact_erasure_recurrent", "exact_erasure_parallel",
           "truncated_dirichlet_kernels", "IMPLS"]


def exact_erasure_attention(q, k, v, window: int, resolution: int, *,
                            num_slots: int | None = None, scale: float | None = None,
                            impl: str = "parallel"):
    """BLA's reads over the exact DFT of the last ``W`` tokens; ``o [B, T, H, Dv]``."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    fn = exact_erasure_recurrent if impl == "recurrent" else exact_erasure_parallel
    return fn(q, k, v, window, resolution, num_slots=num_slots, scale=scale)
