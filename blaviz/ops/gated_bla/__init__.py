"""Gated BLA: BLA with a data-dependent forget gate on its frequency window.

=========  =====================================  =====================
``impl``   form                                   use
=========  =====================================  =====================
recurrent  token by token (the definition)        reference, decoding
chunk      chunked, exact, PyTorch                training
=========  =====================================  =====================

``g = 0`` everywhere is plain BLA. The math is in :mod:`blaviz.ops.gated_bla.naive` (the
recurrence) and :mod:`blaviz.ops.gated_bla.chunk` (the derivation of the chunked form).
"""
from __future__ import annotations

from blaviz.ops.gated_bla.chunk import gated_bla_chunk
from blaviz.ops.gated_bla.naive import check_gate, gated_bla_recurrent

IMPLS = ("recurrent", "chunk")

__all__ = ["gated_bla_attention", "gated_bla_recurrent", "gated_bla_chunk", "check_gate",
           "IMPLS"]


def gated_bla_attention(q, k, v, g, window: int, resolution: int, *,
                        num_slots: int | None = None, scale: float | None = None,
                        impl: str = "chunk", chunk_size: int = 64, initial_state=None,
                        output_final_state: bool = False):
    """Gated BLA (see the module docstring).

    Args:
        q, k: ``[B, T, H, Dk]``; v: ``[B, T, H, Dv]``; g: ``[B, T, H]``, the log forget gate
            (``g <= 0``; ``a_t = exp(g_t)`` scales the window before each write).
        window, resolution, num_slots, scale: as :func:`blaviz.bla_attention`.
        impl: ``recurrent`` or ``chunk``.
    Returns:
        ``(o [B, T, H, Dv], final_state or None)``.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    kw = dict(num_slots=num_slots, scale=scale, initial_state=initial_state,
              output_final_state=output_final_state)
    if impl == "recurrent":
        return gated_bla_recurrent(q, k, v, g, window, resolution, **kw)
    return gated_bla_chunk(q, k, v, g, window, resolution, chunk_size=chunk_size, **kw)
