"""Input validation and the dtype policy shared by the baseline reference implementations.

Every baseline takes fla's layout ``[B, T, H, D]``. The references are meant to be read and to be
trusted as ground truth, so they refuse malformed input loudly (``ValueError`` naming the argument)
instead of letting broadcasting silently produce a wrong answer.

Dtype policy: compute in float64 when ``q`` is float64 (so identities can be checked to ~1e-12),
otherwise in float32 (half-precision inputs would lose the recurrences' accumulated state);
outputs are returned in ``q``'s dtype, recurrent states in the compute dtype, as fla does.
"""
from __future__ import annotations

import math
import numbers
import operator

import torch

FLOAT_DTYPES = "float16, bfloat16, float32 or float64"


def compute_dtype(q: torch.Tensor) -> torch.dtype:
    return torch.float64 if q.dtype == torch.float64 else torch.float32


def check_tensor(x, name: str, ndim: int | tuple[int, ...], layout: str) -> None:
    """A floating tensor of rank ``ndim`` (or one of several ranks) with no empty dimension."""
    ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape {layout}; got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype ({FLOAT_DTYPES}); got {x.dtype}")
    if x.ndim not in ranks:
        rank_text = " or ".join(f"{r}-D" for r in ranks)
        raise ValueError(f"{name} must be a {rank_text} tensor of shape {layout}; got shape {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} must have every dimension >= 1 (shape {layout}); got shape {tuple(x.shape)}")


def check_same_device(x: torch.Tensor, name: str, ref: torch.Tensor) -> None:
    if x.device != ref.device:
        raise ValueError(f"{name} must be on the same device as q ({ref.device}); got {x.device}")


def check_qkv(q, k, v):
    """Validate the shared ``q, k: [B, T, H, Dk]``, ``v: [B, T, H, Dv]`` triple; return (B, T, H, Dk, Dv)."""
    check_tensor(q, "q", 4, "[B, T, H, Dk]")
    check_tensor(k, "k", 4, "[B, T, H, Dk]")
    check_tensor(v, "v", 4, "[B, T, H, Dv]")
    B, T, H, Dk = q.shape
    for x, name in ((k, "k"), (v, "v")):
        if x.shape[:3] != q.shape[:3]:
            raise ValueError(
                f"{name} must have the same (B, T, H) as q, {tuple(q.shape[:3])}; got {tuple(x.shape[:3])}"
            )
        # Mixed q/k/v precisions would make "the input dtype" ambiguous for the output.
        if x.dtype != q.dtype:
            raise ValueError(f"{name} must have the same dtype as q ({q.dtype}); got {x.dtype}")
        check_same_device(x, name, q)
    if k.shape[3] != Dk:
        raise ValueError(f"k must have the same head dimension Dk as q ({Dk}); got {k.shape[3]}")
    return B, T, H, Dk, v.shape[3]


def check_like(x, name: str, shape: tuple, layout: str, ref: torch.Tensor) -> None:
    """A floating tensor of exactly ``shape`` on ``ref``'s device (gates and states may use any float dtype)."""
    check_tensor(x, name, len(shape), layout)
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {layout} = {tuple(shape)}; got {tuple(x.shape)}")
    check_same_device(x, name, ref)


def check_scale(scale, head_dim: int, dtype: torch.dtype | None = None) -> float:
    """``scale`` as a float (default ``head_dim ** -0.5``): finite as a Python float (float64), and,
    given the inputs' ``dtype``, within range of the compute dtype (``1e39`` is finite but is
    infinite in float32, and the scores would turn to NaN)."""
    if scale is None:
        return head_dim ** -0.5
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale):
        raise ValueError(f"scale must be None or a finite real number; got {scale!r}")
    if dtype is not None:
        cd = torch.float64 if dtype == torch.float64 else torch.float32
        if abs(scale) > torch.finfo(cd).max:
            raise ValueError(f"scale={scale!r} overflows {cd}, the compute dtype for {dtype} inputs; "
                             f"use float64 inputs for such a scale")
    return float(scale)


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}") from None
    if value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value}")
    return value


def check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


def check_state(state, name: str, shape: tuple, layout: str, ref: torch.Tensor):
    """``None`` or a floating tensor of ``shape``; returned in the compute dtype."""
    if state is None:
        return None
    check_like(state, name, shape, layout, ref)
    return state.to(compute_dtype(ref))
