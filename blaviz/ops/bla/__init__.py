"""Blurry Window Attention: one entry point, several equivalent implementations.

========== ============================================ ==========================
``impl``   form                                         use
========== ============================================ ==========================
recurrent  token by token, bounded state (sec. 2)       decoding; the definition
parallel   erasure-corrected keys, O(T^2) (sec. 3)      the easiest reference
chunk      chunked, PyTorch (sec. 4)                    training on CPU; autograd
triton     chunked, Triton kernels (sec. 4)             training on GPU
auto       triton on CUDA, chunk elsewhere
========== ============================================ ==========================
"""
from __future__ import annotations

from blaviz.ops.bla.chunk import bla_chunk
from blaviz.ops.bla.naive import bla_attention_weights, bla_parallel, bla_recurrent
from blaviz.ops.bla.naive import bla_step as bla_step_reference
from blaviz.ops.bla.state import IMPLS, BLAState, zero_state

__all__ = ["bla_attention", "bla_step", "bla_step_reference", "bla_recurrent", "bla_parallel", "bla_chunk",
           "bla_attention_weights", "BLAState", "zero_state", "IMPLS"]


def bla_attention(q, k, v, window: int, resolution: int, *, num_slots: int | None = None,
                  scale: float | None = None, impl: str = "auto", chunk_size: int = 64,
                  initial_state: BLAState | None = None, output_final_state: bool = False):
    """Blurry Window Attention.

    Args:
        q, k: ``[B, T, H, Dk]``; v: ``[B, T, H, Dv]`` (float64, float32, bfloat16 or float16;
            half precision is computed in float32 and returned in the input dtype).
        window: ``W >= 1``, the period of the frequency window.
        resolution: ``N``, real frequency coefficients kept: odd and ``<= W``, or ``N = W``.
        num_slots: ``S`` slots read by the softmax (default ``N``), at lags ``j W / S``.
        scale: score scale, default ``Dk ** -0.5``.
        impl: one of ``recurrent | parallel | chunk | triton | auto``.
        chunk_size: ``C`` for ``chunk`` and ``triton``.
        initial_state: a :class:`BLAState` to continue from (e.g. after a prefill).
        output_final_state: also return the state after the last token.
    Returns:
        ``(o [B, T, H, Dv], final_state or None)``.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    if impl == "auto":
        impl = "triton" if q.is_cuda else "chunk"
    kw = dict(num_slots=num_slots, scale=scale, initial_state=initial_state,
              output_final_state=output_final_state)
    if impl == "recurrent":
        return bla_recurrent(q, k, v, window, resolution, **kw)
    if impl == "parallel":
        return bla_parallel(q, k, v, window, resolution, **kw)
    if impl == "chunk":
        return bla_chunk(q, k, v, window, resolution, chunk_size=chunk_size, **kw)
    from blaviz.ops.bla.triton import bla_triton  # imported late: triton is optional on CPU
    return bla_triton(q, k, v, window, resolution, chunk_size=chunk_size, **kw)


STEP_IMPLS = ("recurrent", "triton", "auto")


def bla_step(q, k, v, state: BLAState | None, window: int, resolution: int, *,
             num_slots: int | None = None, scale: float | None = None, impl: str = "auto"):
    """Decode one token per sequence from the bounded state (BLA_SPEC section 2).

    Args:
        q, k: ``[B, H, Dk]``; v: ``[B, H, Dv]``; ``state``: a :class:`BLAState` or None (empty).
        impl: ``recurrent`` (the PyTorch reference step), ``triton`` (one fused kernel that reads
            and writes the state once) or ``auto`` (``triton`` on CUDA, ``recurrent`` elsewhere).
    Returns:
        ``(o [B, H, Dv], new_state)``.
    """
    if impl not in STEP_IMPLS:
        raise ValueError(f"impl must be one of {STEP_IMPLS}, got {impl!r}")
    if impl == "auto":
        impl = "triton" if q.is_cuda else "recurrent"
    if impl == "recurrent":
        return bla_step_reference(q, k, v, state, window, resolution, num_slots=num_slots, scale=scale)
    from blaviz.ops.bla.triton import bla_step_triton  # imported late: triton is optional on CPU
    return bla_step_triton(q, k, v, state, window, resolution, num_slots=num_slots, scale=scale)
