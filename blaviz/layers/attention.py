"""Softmax-attention mixers: full causal attention, sliding-window attention (SWA) and BLA.

All three read the past through a softmax: over every token (full), over the last ``W`` tokens
(SWA, state ``2 W d`` per head), or over ``N`` blurry Dirichlet-interpolated slots of a ``W``-token
frequency window (BLA, state ``2 N d`` per head; exactly SWA at ``N = W``).
"""
from __future__ import annotations

import math
import sys

import torch
from torch import nn

from blaviz.layers import fast_ops
from blaviz.layers.base import TokenMixer
from blaviz.ops.bla import IMPLS as BLA_IMPLS
from blaviz.ops.bla import bla_attention
from blaviz.ops.softmax import softmax_attention
from blaviz.ops.swa import sliding_window_attention
from blaviz.state_size import state_size


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
_RESOLVED: dict[tuple[str, str], str] = {}


def _probe_triton(device) -> str | None:
    """Run the Triton BLA forward and backward once on a small problem and compare with ``chunk``.

    Returns ``None`` when it works and agrees, else the reason it cannot be used.
    """
    try:
        from blaviz.ops.bla.triton import bla_triton  # noqa: F401
    except Exception as exc:  # ImportError, or a kernel module that fails to load
        return f"import failed: {type(exc).__name__}: {exc}"
    try:
        g = torch.Generator(device="cpu").manual_seed(0)
        shape = (2, 67, 2, 32)
        base = [torch.randn(*shape, generator=g).to(device) for _ in range(3)]
        grads = []
        outs = []
        for impl in ("triton", "chunk"):
            q, k, v = (t.clone().requires_grad_(True) for t in base)
            o, _ = bla_attention(q, k, v, 16, 7, impl=impl)
            o.square().sum().backward()
            outs.append(o.detach())
            grads.append([t.grad for t in (q, k, v)])
        for a, b in zip([outs[0], *grads[0]], [outs[1], *grads[1]]):
            err = ((a - b).norm() / b.norm().clamp_min(1e-30)).item()
            if not err <= 1e-3:
                return f"disagrees with chunk (relative error {err:.1e})"
    except Exception as exc:
        return f"forward/backward failed: {type(exc).__name__}: {exc}"
    return None


def resolve_bla_impl(impl: str, device) -> str:
    """The BLA implementation a layer will run: ``auto``/``triton`` on CUDA become ``triton`` when
    :mod:`blaviz.ops.bla.triton` imports and passes a forward+backward probe against ``chunk``,
    else ``chunk`` (the reason is printed once per process). ``auto`` off CUDA is ``chunk``."""
    if impl not in BLA_IMPLS:
        raise ValueError(f"BLA impl must be one of {BLA_IMPLS}, got {impl!r}")
    device = torch.device(device)
    if impl not in ("auto", "triton"):
        return impl
    if device.type != "cuda":
        return "chunk" if impl == "auto" else impl
    key = (impl, str(device))
    if key not in _RESOLVED:
        reason = _probe_triton(device)
        _RESOLVED[key] = "triton" if reason is None else "chunk"
        note = "probe passed" if reason is None else f"falling back to chunk: {reason}"
        print(f"[blaviz] BLA impl on {device}: {_RESOLVED[key]} ({note})", file=sys.stderr, flush=True)
    return _RESOLVED[key]


class BlurryWindowAttention(TokenMixer):
    """BLA: softmax over ``num_slots`` blurry slots read from an ``N``-coefficient frequency
    window of period ``W`` (:func:`blaviz.ops.bla.bla_attention`).

    ``bla_impl`` is passed to :func:`bla_attention` after :func:`resolve_bla_impl`
    (``auto``: Triton on CUDA when available and correct, else the PyTorch ``chunk`` form).
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
        return resolve_bla_impl(self.bla_impl, self.q_proj.weight.device)

    def mix(self, q, k, v, x):
        impl = "parallel" if self.impl == "naive" else self.resolved_impl
        if self.learn_temperature:      # the scores are linear in q: scaling q scales the logits
            q = q * self.log_temperature.exp().to(q.dtype)[:, None]
        o, _ = bla_attention(q, k, v, self.window, self.resolution, num_slots=self.num_slots,
                             impl=impl, chunk_size=self.chunk_size)
        return o

    @property
    def state_size(self):
        return state_size("bla", head_dim=self.head_dim, num_heads=self.num_heads, resolution=self.resolution)

    def config(self):
        return {**super().config(), "window": self.window, "resolution": self.resolution,
                "num_slots": self.num_slots if self.num_slots is not None else self.resolution,
                "learn_temperature": self.learn_temperature}
