"""The bounded decoding state of BLA and the argument checks every BLA form shares."""
from __future__ import annotations

import math
import numbers
import operator
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


FLOAT_DTYPES = (torch.float64, torch.float32, torch.bfloat16, torch.float16)


def as_int(name: str, value) -> int:
    """An integer argument: ``int`` and numpy integers (``operator.index``), a float with an
    integer value (``8.0``), or a one-element tensor holding one of these. ``True``, ``2.5``, ``nan``, ``inf`` and strings
    raise a ``ValueError`` that names the argument."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        value = value.item()
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        pass
    if isinstance(value, numbers.Real) and math.isfinite(value) and float(value) == int(value):
        return int(value)
    raise ValueError(f"{name} must be an integer, got {value!r}")


def as_chunk_size(chunk_size) -> int:
    """``chunk_size`` as an int ``>= 1`` (numpy integers accepted), else a ``ValueError``."""
    try:
        C = as_int("chunk_size", chunk_size)
    except ValueError:
        C = 0
    if C < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    return C


def check_inputs(q, k, v, window, resolution, num_slots, scale, initial_state, *, step=False):
    """Validate BLA's arguments; return ``(W, N, S, scale, position)``.

    ``q, k``: ``[B, T, H, Dk]``; ``v``: ``[B, T, H, Dv]`` (``[B, H, D]`` when ``step``), every
    dimension ``>= 1``, one floating dtype, one device. ``initial_state``: a :class:`BLAState` of
    real floating tensors on that device. Values are not looked at here (see :func:`require_finite`).
    """
    names = ("q", "k", "v")
    ndim = 3 if step else 4
    layout = "[B, H, D]" if step else "[B, T, H, D]"
    for name, x in zip(names, (q, k, v)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != ndim:
            raise ValueError(f"{name} must have shape {layout} ({ndim} dims), got shape {tuple(x.shape)}")
        if x.dtype not in FLOAT_DTYPES:
            raise ValueError(f"{name} must be float64, float32, bfloat16 or float16, got {x.dtype}")
    if q.shape != k.shape:
        raise ValueError(f"q and k must have the same shape, got {tuple(q.shape)} and {tuple(k.shape)}")
    if v.shape[:-1] != q.shape[:-1]:
        raise ValueError(f"v must match q in all but the last dim, got {tuple(v.shape)} and {tuple(q.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")
    if not step and q.shape[1] < 1:
        raise ValueError("the sequence length T (dim 1 of q) must be >= 1")
    for name, x in zip(names, (q, k, v)):
        if 0 in x.shape:        # Dk = 0 would divide by zero in the default scale
            raise ValueError(f"{name} must have every dimension >= 1 ({layout}), got shape {tuple(x.shape)}")
    W, N, S = check_config(as_int("window", window), as_int("resolution", resolution),
                           None if num_slots is None else as_int("num_slots", num_slots))
    if scale is None:
        scale = q.shape[-1] ** -0.5
    # checked as a Python float (float64): 1e39 is finite even though float32 cannot hold it
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number or None, got {scale!r}")
    cd = compute_dtype(q.dtype)
    if abs(scale) > torch.finfo(cd).max:      # finite, but inf once cast to the compute dtype
        raise ValueError(f"scale={scale!r} overflows {cd}, the compute dtype for {q.dtype} inputs; "
                         f"use float64 inputs for such a scale")
    position = 0
    if initial_state is not None:
        if not isinstance(initial_state, BLAState):
            raise ValueError(f"initial_state must be a BLAState (key_freq, value_freq, position), got {type(initial_state).__name__}")
        B, H = q.shape[0], q.shape[-2]
        want = {"key_freq": (B, H, N, q.shape[-1]), "value_freq": (B, H, N, v.shape[-1])}
        for field, shape in want.items():
            x = getattr(initial_state, field)
            if not isinstance(x, torch.Tensor) or x.dtype not in FLOAT_DTYPES:
                # a complex state would otherwise be cast to its real part without a word
                kind = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
                raise TypeError(f"initial_state.{field} must be a real floating tensor "
                                f"(float64, float32, bfloat16 or float16), got {kind}")
            if tuple(x.shape) != shape:
                raise ValueError(f"initial_state.{field} must have shape {shape}, got {tuple(x.shape)}")
            if x.device != q.device:
                raise ValueError(f"initial_state.{field} must be on q's device ({q.device}), got {x.device}")
        position = initial_state.position
        if isinstance(position, bool) or not isinstance(position, int) or position < 0:
            raise ValueError(f"initial_state.position must be an int >= 0, got {position!r}")
    return W, N, S, float(scale), position


def require_finite(q, k, v, initial_state=None) -> None:
    """Raise a ``ValueError`` naming the first tensor with a NaN or an infinity, and where.

    Why: in the chunked and parallel forms a non-finite key or value at position ``p`` reaches
    the outputs at *earlier* positions of its chunk through the matrix products (``0 * inf`` is
    NaN), while the recurrent definition keeps them finite; no form gives a meaningful answer.
    Costs one reduction over the inputs and, on a GPU, one host synchronisation (the ``if``).
    """
    named = [("q", q), ("k", k), ("v", v)]
    if initial_state is not None:
        named += [("initial_state.key_freq", initial_state.key_freq),
                  ("initial_state.value_freq", initial_state.value_freq)]
    if named[0][1].is_cuda and torch.cuda.is_current_stream_capturing():
        raise RuntimeError("the finiteness check needs a host synchronisation, which a CUDA graph capture "
                           "forbids: pass check_finite=False inside the capture")
    flags = torch.stack([torch.isfinite(x).all() for _, x in named])
    if bool(flags.all()):           # one synchronisation for all tensors
        return
    for name, x in named:
        bad = ~torch.isfinite(x)
        if bad.any():
            where = tuple(int(i) for i in bad.nonzero()[0])
            raise ValueError(f"{name} has a non-finite value ({x[where].item()}) at index {where}; "
                             f"BLA's inputs must be finite (a NaN or infinity at position p would "
                             f"spread to earlier outputs of its chunk)")


#: Triton's largest tile (``TRITON_MAX_TENSOR_NUMEL``): every block a kernel holds must fit.
_TRITON_MAX_TILE = 2 ** 20
#: CUDA's limit on the second grid dimension, over which the per-chunk kernels spread ``B * H``.
_CUDA_MAX_GRID_Y = 65535
#: The kernels' limit on the head dimensions (``blaviz.ops.bla.triton.function.MAX_HEAD_DIM``).
TRITON_MAX_HEAD_DIM = 128


def _pow2_at_least(n: int, lo: int) -> int:
    return max(lo, 1 << (n - 1).bit_length())


def triton_supports(window, resolution, num_slots=None, *, head_dim: int, value_dim: int | None = None,
                    chunk_size: int | None = 64, batch_heads: int = 1) -> tuple[bool, str]:
    """Whether the Triton kernels can run this configuration: ``(True, "")`` or ``(False, why)``.

    The limits, from the kernels' tiles: frequencies padded to ``NP = max(32, 2^ceil(log2 N))``
    rows and slots to ``SP`` likewise; head dims padded to a power of two ``>= 16`` and at most
    128; ``chunk_size`` ``C`` a power of two ``>= 16`` (``None``: the decoding kernel, which has no
    chunks). Each tile (``NP x NP`` state map, ``NP x SP`` slot reads, ``C x NP``, ``C x SP``,
    ``C x C``, ``C x D``, ``NP x D``) must hold at most ``2^20`` numbers, and, for the chunk
    kernels, ``batch_heads = B * H`` at most 65535 (a CUDA grid dimension). A GPU's shared
    memory and registers may refuse smaller sizes than these; what is stated here is what fails
    on every device.
    """
    W, N, S = check_config(as_int("window", window), as_int("resolution", resolution),
                           None if num_slots is None else as_int("num_slots", num_slots))
    Dk = as_int("head_dim", head_dim)
    Dv = Dk if value_dim is None else as_int("value_dim", value_dim)
    if max(Dk, Dv) > TRITON_MAX_HEAD_DIM:
        return False, f"head dims up to {TRITON_MAX_HEAD_DIM} are supported, got {Dk} and {Dv}"
    NP, SP, DP = _pow2_at_least(N, 32), _pow2_at_least(S, 32), _pow2_at_least(max(Dk, Dv), 16)
    tiles = {"NP x NP": NP * NP, "NP x SP": NP * SP, "NP x D": NP * DP}
    if chunk_size is not None:
        C = as_chunk_size(chunk_size)
        if C < 16 or C & (C - 1):
            return False, f"chunk_size must be a power of two >= 16 for the Triton kernels, got {C}"
        tiles.update({"C x NP": C * NP, "C x SP": C * SP, "C x C": C * C, "C x D": C * DP})
        if as_int("batch_heads", batch_heads) > _CUDA_MAX_GRID_Y:
            return False, (f"B * H = {batch_heads} exceeds {_CUDA_MAX_GRID_Y}, the CUDA grid "
                           f"dimension the per-chunk kernels spread it over")
    name, size = max(tiles.items(), key=lambda kv: kv[1])
    if size > _TRITON_MAX_TILE:
        return False, (f"a {name} tile of {size} numbers (N={N} -> NP={NP}, S={S} -> SP={SP}) "
                       f"exceeds Triton's {_TRITON_MAX_TILE}")
    return True, ""


def zero_state(B, H, N, Dk, Dv, *, device=None, dtype=torch.float32) -> BLAState:
    """The empty frequency window at time 0."""
    return BLAState(torch.zeros(B, H, N, Dk, device=device, dtype=dtype),
                    torch.zeros(B, H, N, Dv, device=device, dtype=dtype), 0)
