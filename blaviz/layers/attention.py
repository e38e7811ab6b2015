"""Softmax-attention mixers: full causal attention, sliding-window attention (SWA) and BLA.

All three read the past through a softmax: over every token (full), over the last ``W`` tokens
(SWA, state ``2 W d`` per head), or over ``N`` blurry Dirichlet-interpolated slots of a ``W``-token
frequency window (BLA, state ``2 N d`` per head; exactly SWA at ``N = W``).
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from blaviz.layers import fast_ops
from blaviz.layers.base import TokenMixer
from blaviz.ops.bla import IMPLS as BLA_IMPLS
from blaviz.ops.bla import bla_attention, triton_supports
from blaviz.ops.softmax import softmax_attention
from blaviz.ops.swa import sliding_window_attention
from blaviz.state_size import state_size
from blaviz.testing import fwd_bwd_errors


class SoftmaxAttention(TokenMixer):
    """Full causal softmax attention. Its state (the KV cache) grows with the sequence:
    ``state_size`` is reported at ``seq_len`` tokens (``2 T d`` per head)."""

    name = "softmax"

    def __init__(self, d_model, num_heads=1, head_dim=None, *, seq_len: int = 256, impl="fast"):
        super().__init__(d_model, num_heads, head_dim, impl=impl)
        self.seq_len = seq_len

    def mix(self, q, k, v, x):
        if self.impl == "naive":
            return softmax_attention(q, k, v)
        return fast_ops.causal_softmax(q, k, v)

    @property
    def state_size(self):
        return state_size("softmax", head_dim=self.head_dim, num_heads=self.num_heads, seq_len=self.seq_len)

    def config(self):
        return {**super().config(), "seq_len": self.seq_len}


class SlidingWindowAttention(TokenMixer):
    """Softmax attention over the last ``window`` tokens (the token itself included)."""

    name = "swa"

    def __init__(self, d_model, num_heads=1, head_dim=None, *, window: int, impl="fast"):
        super().__init__(d_model, num_heads, head_dim, impl=impl)
        self.window = int(window)

    def mix(self, q, k, v, x):
        if self.impl == "naive":
            return sliding_window_attention(q, k, v, self.window)
        return fast_ops.sliding_window(q, k, v, self.window)

    @property
    def state_size(self):
        return state_size("swa", head_dim=self.head_dim, num_heads=self.num_heads, window=self.window)

    def config(self):
        return {**super().config(), "window": self.window}


# ------------------------------------------------------------------------------------------ BLA
#: device -> None (the Triton kernels passed the probe there) or the reason they cannot be used
_PROBED: dict[str, str | None] = {}
_WARNED: set[str] = set()

#: The probe's tolerance: float32 Triton (``tf32x3`` products) against float64 sits near 1e-6; a
#: broken kernel is off by O(1).
PROBE_TOL = 1e-3


def _probe_triton(device) -> str | None:
    """Run the Triton BLA forward and backward once on a small problem (float32, three chunks, the
    last one short) and compare outputs and gradients with the ``chunk`` form in float64.

    Returns ``None`` when it works and agrees, else the reason it cannot be used.
    """
    try:
        from blaviz.ops.bla.triton import bla_triton  # noqa: F401
    except Exception as exc:  # ImportError, or a kernel module that fails to load
        return f"import failed: {type(exc).__name__}: {exc}"
    g = torch.Generator(device="cpu").manual_seed(0)
    qkv = [torch.randn(1, 37, 2, 16, generator=g).to(device) for _ in range(3)]

    def run(impl):
        return lambda q, k, v: bla_attention(q, k, v, 16, 7, impl=impl, chunk_size=16)[0]
    try:
        errors = fwd_bwd_errors(run("triton"), qkv, run("chunk"), names=["q", "k", "v"])
    except Exception as exc:
        return f"forward/backward failed: {type(exc).__name__}: {exc}"
    worst = max(errors, key=errors.get)
    if not errors[worst] <= PROBE_TOL:
        return f"disagrees with the float64 chunk form ({worst}: relative RMS {errors[worst]:.1e})"
    return None


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def resolve_bla_impl(impl: str, device, *, triton_ok: tuple[bool, str] = (True, "")) -> str:
    """The BLA implementation a layer will run on ``device``.

    * ``recurrent``, ``parallel``, ``chunk``: as given.
    * ``triton``: ``triton`` if it can run, else a clear error: a ``ValueError`` when the layer's
      sizes are beyond the kernels (``triton_ok``, from :func:`blaviz.ops.bla.triton_supports`),
      a ``RuntimeError`` when the kernels do not import or, on CUDA, fail a forward+backward
      probe against the float64 ``chunk`` form. Off CUDA it runs in Triton's interpreter.
    * ``auto``: ``triton`` on CUDA when it can run, else ``chunk``; a fallback on CUDA is said
      once per reason (``RuntimeWarning``).

    The probe runs once per device and process.
    """
    if impl not in BLA_IMPLS:
        raise ValueError(f"BLA impl must be one of {BLA_IMPLS}, got {impl!r}")
    device = torch.device(device)
    if impl not in ("auto", "triton"):
        return impl
    ok, why = triton_ok
    if impl == "triton" and not ok:
        raise ValueError(f"bla_impl='triton' cannot run this layer: {why}; use 'auto' or 'chunk'")
    if impl == "auto" and device.type != "cuda":
        return "chunk"
    if impl == "auto" and not ok:
        _warn_once(f"BLA on {device}: the chunk form instead of Triton ({why})")
        return "chunk"
    if device.type == "cuda":
        key = str(device)
        if key not in _PROBED:
            _PROBED[key] = _probe_triton(device)
        reason = _PROBED[key]
    else:                                   # the interpreter: check that the kernels import
        try:
            from blaviz.ops.bla.triton import bla_triton  # noqa: F401
            reason = None
        except Exception as exc:
            reason = f"import failed: {type(exc).__name__}: {exc}"
    if reason is None:
        return "triton"
    if impl == "triton":
        raise RuntimeError(f"bla_impl='triton' was asked for, but the Triton kernels cannot run on "
                           f"{device}: {reason}. Use bla_impl='auto' (falls back to 'chunk') or 'chunk'.")
    _warn_once(f"BLA on {device}: falling back to the chunk form, Triton is unusable: {reason}")
    return "chunk"


class BlurryWindowAttention(TokenMixer):
    """BLA: softmax over ``num_slots`` blurry slots read from an ``N``-coefficient frequency
    window of period ``W`` (:func:`blaviz.ops.bla.bla_attention`).

    ``bla_impl`` is passed to :func:`bla_attention` after :func:`resolve_bla_impl`
    (``auto``: Triton on CUDA when available, correct and able to take the sizes, else the
    PyTorch ``chunk`` form; ``triton``: Triton or an error).
    """

    name = "bla"

    def __init__(self, d_model, num_heads=1, head_dim=None, *, window: int, resolution: int,
                 num_slots: int | None = None, bla_impl: str = "auto", chunk_size: int = 64,
                 learn_temperature: bool = False, impl="fast"):
        super().__init__(d_model, num_heads, head_dim, impl=impl)
        self.window, self.resolution = int(window), int(resolution)
        self.num_slots = None if num_slots is None else int(num_slots)
        self.bla_impl, self.chunk_size = bla_impl, int(chunk_size)
        from blaviz.dirichlet import check_config
        check_config(self.window, self.resolution, self.num_slots)  # fail at construction, not in training
        if bla_impl not in BLA_IMPLS:
            raise ValueError(f"bla_impl must be one of {BLA_IMPLS}, got {bla_impl!r}")
        self._triton_ok = triton_supports(self.window, self.resolution, self.num_slots,
                                         head_dim=self.head_dim, chunk_size=self.chunk_size)
        if bla_impl == "triton" and not self._triton_ok[0]:
            raise ValueError(f"bla_impl='triton' cannot run this layer: {self._triton_ok[1]}; "
                             f"use 'auto' or 'chunk'")
        if not isinstance(learn_temperature, bool):
            raise ValueError(f"learn_temperature must be True or False, got {learn_temperature!r}")
        self.learn_temperature = learn_temperature
        if learn_temperature:
            # A slot key averages about W/N corrected keys (unit DC gain), so its norm, and the spread
            # of the slot scores, shrink like sqrt(N/W). This per-head factor on the queries starts at
            # sqrt(W/N), which undoes that on average, and is learned from there. Not in BLA_SPEC: an
            # experiment of chapter 8 (the 'temperature' MQAR preset).
            init = 0.5 * math.log(self.window / self.resolution)
            self.log_temperature = nn.Parameter(torch.full((self.num_heads,), init))

    @property
    def resolved_impl(self) -> str:
        return resolve_bla_impl(self.bla_impl, self.q_proj.weight.device, triton_ok=self._triton_ok)

    def mix(self, q, k, v, x):
        impl = "parallel" if self.impl == "naive" else self.resolved_impl
        if self.learn_temperature:      # the scores are linear in q: scaling q scales the logits
            q = q * self.log_temperature.exp().to(q.dtype)[:, None]
        # no finiteness check here: it costs a host synchronisation per call on a GPU, and a
        # non-finite activation shows up in the training loss anyway
        o, _ = bla_attention(q, k, v, self.window, self.resolution, num_slots=self.num_slots,
                             impl=impl, chunk_size=self.chunk_size, check_finite=False)
        return o

    @property
    def state_size(self):
        return state_size("bla", head_dim=self.head_dim, num_heads=self.num_heads, resolution=self.resolution)

    def config(self):
        return {**super().config(), "window": self.window, "resolution": self.resolution,
                "num_slots": self.num_slots if self.num_slots is not None else self.resolution,
                "learn_temperature": self.learn_temperature}
