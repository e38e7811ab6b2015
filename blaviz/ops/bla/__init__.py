"""Blurry Window Attention: one entry point, several equivalent implementations.

========== ============================================ ==========================
``impl``   form                                         use
========== ============================================ ==========================
recurrent  token by token, bounded state (sec. 2)       decoding; the definition
parallel   erasure-corrected keys, O(T^2) (sec. 3)      the easiest reference
chunk      chunked, PyTorch (sec. 4)                    training on CPU; autograd
triton     chunked, Triton kernels (sec. 4)             training on GPU
auto       triton on CUDA when the kernels take the size
           (:func:`triton_supports`), chunk elsewhere
========== ============================================ ==========================
"""
from __future__ import annotations

from blaviz.ops.bla.chunk import bla_chunk
from blaviz.ops.bla.naive import bla_attention_weights, bla_parallel, bla_recurrent
from blaviz.ops.bla.naive import bla_step as bla_step_reference
from blaviz.ops.bla.state import (IMPLS, BLAState, as_chunk_size, check_inputs, require_finite,
                                  triton_supports, zero_state)

__all__ = ["bla_attention", "bla_step", "bla_step_reference", "bla_recurrent", "bla_parallel", "bla_chunk",
           "bla_attention_weights", "BLAState", "zero_state", "IMPLS", "triton_supports",
           "choose_impl"]


def choose_impl(impl: str, on_cuda: bool, supported: tuple[bool, str], fallback: str) -> str:
    """What ``auto`` and ``triton`` run: ``triton`` when asked for and ``supported``
    (:func:`triton_supports`), else a ``ValueError`` saying why; ``auto`` is ``triton`` on CUDA
    when supported and the PyTorch ``fallback`` otherwise."""
    ok, why = supported
    if impl == "triton":
        if not ok:
            raise ValueError(f"impl='triton' cannot run this configuration: {why}; "
                             f"use impl='{fallback}' (or 'auto')")
        return "triton"
    return "triton" if on_cuda and ok else fallback


def bla_attention(q, k, v, window: int, resolution: int, *, num_slots: int | None = None,
                  scale: float | None = None, impl: str = "auto", chunk_size: int = 64,
                  initial_state: BLAState | None = None, output_final_state: bool = False,
                  check_finite: bool = True):
    """Blurry Window Attention.

    Args:
        q, k: ``[B, T, H, Dk]``; v: ``[B, T, H, Dv]`` (float64, float32, bfloat16 or float16;
            half precision is computed in float32 and returned in the input dtype). Every
            dimension ``>= 1``; all on one device.
        window: ``W >= 1``, the period of the frequency window.
        resolution: ``N``, real frequency coefficients kept: odd and ``<= W``, or ``N = W``.
        num_slots: ``S`` slots read by the softmax (default ``N``), at lags ``j W / S``.
            ``window``, ``resolution``, ``num_slots`` and ``chunk_size`` take Python or numpy
            integers.
        scale: score scale, any finite real number; default ``Dk ** -0.5``.
        impl: one of ``recurrent | parallel | chunk | triton | auto``. ``triton`` refuses, before
            any kernel runs, a size the kernels cannot take (:func:`triton_supports`); ``auto``
            then runs ``chunk``.
        chunk_size: ``C`` for ``chunk`` and ``triton`` (a power of two ``>= 16`` for ``triton``).
        initial_state: a :class:`BLAState` to continue from (e.g. after a prefill).
        output_final_state: also return the state after the last token.
        check_finite: refuse inputs holding a NaN or an infinity (``ValueError`` naming the
            tensor and the index). The contract: inputs must be finite. Unchecked, a non-finite
            key or value at position ``p`` makes the outputs at earlier positions of its chunk
            non-finite in ``chunk``, ``parallel`` and ``triton`` (every position, for
            ``parallel``), while ``recurrent`` keeps them finite. The check is one reduction
            over the inputs and, on a GPU, one host synchronisation per call: a training loop
            whose loss would show a NaN anyway can pass ``False``.
    Returns:
        ``(o [B, T, H, Dv], final_state or None)``.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    chunk_size = as_chunk_size(chunk_size)
    W, N, S, scale, _ = check_inputs(q, k, v, window, resolution, num_slots, scale, initial_state)
    if check_finite:
        require_finite(q, k, v, initial_state)
    if impl in ("auto", "triton"):
        impl = choose_impl(impl, q.is_cuda, triton_supports(
            W, N, S, head_dim=q.shape[-1], value_dim=v.shape[-1], chunk_size=chunk_size,
            batch_heads=q.shape[0] * q.shape[2]), fallback="chunk")
    kw = dict(num_slots=S, scale=scale, initial_state=initial_state,
              output_final_state=output_final_state)
    if impl == "recurrent":
        return bla_recurrent(q, k, v, W, N, **kw)
    if impl == "parallel":
        return bla_parallel(q, k, v, W, N, **kw)
    if impl == "chunk":
        return bla_chunk(q, k, v, W, N, chunk_size=chunk_size, **kw)
    from blaviz.ops.bla.triton import bla_triton  # imported late: triton is optional on CPU
    return bla_triton(q, k, v, W, N, chunk_size=chunk_size, **kw)


STEP_IMPLS = ("recurrent", "triton", "auto")


def bla_step(q, k, v, state: BLAState | None, window: int, resolution: int, *,
             num_slots: int | None = None, scale: float | None = None, impl: str = "auto",
             check_finite: bool = True, out_state: BLAState | None = None, out=None):
    """Decode one token per sequence from the bounded state (BLA_SPEC section 2).

    Args:
        q, k: ``[B, H, Dk]``; v: ``[B, H, Dv]``; ``state``: a :class:`BLAState` or None (empty).
        impl: ``recurrent`` (the PyTorch reference step), ``triton`` (one fused kernel that reads
            and writes the state once) or ``auto`` (``triton`` on CUDA when the kernel takes the
            size, see :func:`triton_supports`; ``recurrent`` elsewhere).
        check_finite: refuse a NaN or an infinity in ``q, k, v`` or the state, as in
            :func:`bla_attention`. One host synchronisation per step on a GPU, and not allowed
            inside a CUDA graph capture: decoding loops that capture pass ``False``.
        out_state: a :class:`BLAState` to write the new state into, e.g. ``state`` itself (in place);
            with ``out`` (``[B, H, Dv]``, the input dtype) the Triton step allocates nothing.
    Returns:
        ``(o [B, H, Dv], new_state)``.
    """
    if impl not in STEP_IMPLS:
        raise ValueError(f"impl must be one of {STEP_IMPLS}, got {impl!r}")
    W, N, S, scale, _ = check_inputs(q, k, v, window, resolution, num_slots, scale, state, step=True)
    if check_finite:
        require_finite(q, k, v, state)
    if impl in ("auto", "triton"):
        impl = choose_impl(impl, q.is_cuda, triton_supports(
            W, N, S, head_dim=q.shape[-1], value_dim=v.shape[-1], chunk_size=None,
            batch_heads=q.shape[0] * q.shape[1]), fallback="recurrent")
    if impl == "recurrent":
        o, new = bla_step_reference(q, k, v, state, W, N, num_slots=S, scale=scale)
        if out is not None:
            o = out.copy_(o)
        if out_state is not None:
            new = BLAState(out_state.key_freq.copy_(new.key_freq), out_state.value_freq.copy_(new.value_freq),
                           new.position)
        return o, new
    from blaviz.ops.bla.triton import bla_step_triton  # imported late: triton is optional on CPU
    return bla_step_triton(q, k, v, state, W, N, num_slots=S, scale=scale, out_state=out_state, out=out)
