"""The bounded decoding state of BLA and the argument checks every BLA form shares."""
from __future__ import annotations

from typing import NamedTuple

import torch

from blaviz.dirichlet import check_config

IMPLS = ("recurrent", "parallel", "chunk", "triton", "auto")


class BLAState(NamedTuple):
    """What BLA carries between calls (BLA_SPEC section 2), per head.

    * ``key_freq``   ``[B, H, N, Dk]``: the real frequency window of the keys ``F``.
    * ``value_freq`` ``[B, H, N, Dv]``: the real frequency window of the values ``G``.
    * ``position``   ``int``: how many tokens were consumed; the next token has time ``position``.
      It decides which slots are still masked at the start of a sequence (``s_j > t``).

    ``key_freq`` and ``value_freq`` are float32 for float32/bf16/fp16 inputs and float64 for
    float64 inputs: the state is kept in the compute precision.
    """

    key_freq: torch.Tensor
    value_freq: torch.Tensor
    position: int


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; everything else (fp32, bf16, fp16) is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def check_inputs(q, k, v, window, resolution, num_slots, scale, initial_state, *, step=False):
    """Validate BLA's arguments; return ``(W, N, S, scale, position)``.

    ``q, k``: ``[B, T, H, Dk]``; ``v``: ``[B, T, H, Dv]`` (``[B, H, D]`` when ``step``).
    """
    names = ("q", "k", "v")
    ndim = 3 if step else 4
    for name, x in zip(names, (q, k, v)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != ndim:
            layout = "[B, H, D]" if step else "[B, T, H, D]"
            raise ValueError(f"{name} must have shape {layout} ({ndim} dims), got shape {tuple(x.shape)}")
        if x.dtype not in (torch.float64, torch.float32, torch.bfloat16, torch.float16):
            raise ValueError(f"{name} must be float64, float32, bfloat16 or float16, got {x.dtype}")
    if q.shape != k.shape:
        raise ValueError(f"q and k must have the same shape, got {tuple(q.shape)} and {tuple(k.shape)}")
    if v.shape[:-1] != q.shape[:-1]:
        raise ValueError(f"v must match q in all but the last dim, got {tuple(v.shape)} and {tuple(q.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not step and q.shape[1] < 1:
        raise ValueError("the sequence length T (dim 1 of q) must be >= 1")
    W, N, S = check_config(window, resolution, num_slots)
    if scale is None:
        scale = q.shape[-1] ** -0.5
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not torch.isfinite(torch.tensor(float(scale))):
        raise ValueError(f"scale must be a finite number or None, got {scale!r}")
    position = 0
    if initial_state is not None:
        if not isinstance(initial_state, BLAState):
            raise ValueError(f"initial_state must be a BLAState (key_freq, value_freq, position), got {type(initial_state).__name__}")
        B, H = q.shape[0], q.shape[-2]
        want_k, want_v = (B, H, N, q.shape[-1]), (B, H, N, v.shape[-1])
        if tuple(initial_state.key_freq.shape) != want_k:
            raise ValueError(f"initial_state.key_freq must have shape {want_k}, got {tuple(initial_state.key_freq.shape)}")
        if tuple(initial_state.value_freq.shape) != want_v:
            raise ValueError(f"initial_state.value_freq must have shape {want_v}, got {tuple(initial_state.value_freq.shape)}")
        position = initial_state.position
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise ValueError(f"initial_state.position must be an int >= 0, got {position!r}")
    return W, N, S, float(scale), position


def zero_state(B, H, N, Dk, Dv, *, device=None, dtype=torch.float32) -> BLAState:
    """The empty frequency window at time 0."""
    return BLAState(torch.zeros(B, H, N, Dk, device=device, dtype=dtype),
                    torch.zeros(B, H, N, Dv, device=device, dtype=dtype), 0)
