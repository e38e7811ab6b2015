"""BLA variants beyond the paper, as token mixers (state per layer reported like every mixer).

=====================  =========================================  ================================
name                   what changes                               state per layer
=====================  =========================================  ================================
``bla`` + num_slots    reads at ``S = 2N`` or ``S = W`` slots     ``2 N d H`` (reads are free)
``bla_multires``       one ``(W, N)`` per head: a sharp short     ``sum_h 2 N_h d``
                       window beside a blurry long one
``gated_bla``          a data-dependent forget gate on the        ``2 N d H``
                       frequency window (:mod:`~blaviz.ops.gated_bla`)
``bla_exact_erasure``  erases the leaving token exactly (a        ``2 (N + W) d H``
                       ring buffer: a diagnostic, not a rival)
``swa_bla_hybrid``     a short SWA sublayer, then a BLA one       ``2 (W_swa + N) d H``
=====================  =========================================  ================================

Oversampled reads need no new class: :class:`~blaviz.layers.BlurryWindowAttention` takes
``num_slots``. One head of width ``d_model`` is ``num_heads=1``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from blaviz.dirichlet import check_config
from blaviz.layers.attention import BlurryWindowAttention, SlidingWindowAttention
from blaviz.layers.base import TokenMixer
from blaviz.ops.bla import bla_attention
from blaviz.ops.exact_erasure import exact_erasure_attention
from blaviz.ops.gated_bla import gated_bla_attention
from blaviz.state_size import state_size

__all__ = ["MultiResolutionBLA", "GatedBLA", "ExactErasureBLA", "HybridSWABLA"]


def _pairs(heads) -> tuple[tuple[int, int], ...]:
    try:
        pairs = tuple((int(w), int(n)) for w, n in heads)
    except (TypeError, ValueError):
        raise ValueError(f"heads must be a list of (window, resolution) pairs, got {heads!r}") \
            from None
    if not pairs:
        raise ValueError("heads must name at least one (window, resolution) pair")
    for w, n in pairs:
        check_config(w, n)
    return pairs


class MultiResolutionBLA(TokenMixer):
    """BLA with a window and resolution per head, e.g. ``heads=((16, 15), (128, 15))``: one
    nearly exact short window beside one blurry long window, ``len(heads)`` heads in all.

    Heads with the same ``(W, N)`` share one :func:`blaviz.bla_attention` call.
    """

    name = "bla_multires"

    def __init__(self, d_model, num_heads=None, head_dim=None, *, heads, bla_impl="auto",
                 chunk_size: int = 64, impl="fast"):
        self.heads_cfg = _pairs(heads)
        if num_heads is not None and num_heads != len(self.heads_cfg):
            raise ValueError(f"num_heads={num_heads} must equal len(heads)={len(self.heads_cfg)}")
        super().__init__(d_model, len(self.heads_cfg), head_dim, impl=impl)
        self.bla_impl, self.chunk_size = bla_impl, int(chunk_size)

    def mix(self, q, k, v, x):
        from blaviz.layers.attention import resolve_bla_impl
        impl = "parallel" if self.impl == "naive" else resolve_bla_impl(self.bla_impl, q.device)
        out = torch.empty_like(v)
        for cfg in dict.fromkeys(self.heads_cfg):
            idx = [h for h, c in enumerate(self.heads_cfg) if c == cfg]
            o, _ = bla_attention(q[:, :, idx], k[:, :, idx], v[:, :, idx], *cfg, impl=impl,
                                 chunk_size=self.chunk_size)
            out[:, :, idx] = o
        return out

    @property
    def state_size(self):
        return sum(state_size("bla", head_dim=self.head_dim, resolution=n)
                   for _, n in self.heads_cfg)

    def config(self):
        return {**super().config(), "heads": [list(c) for c in self.heads_cfg]}


class GatedBLA(TokenMixer):
    """BLA with a forget gate ``a_t = exp(g_t)`` per head and token on its frequency window.

    ``g = logsigmoid(x W_g + b) / gate_logit_normalizer`` (GSA's parametrisation, one gate per
    head). ``b`` starts at ``gate_bias`` so that the gates start near one: the layer begins as
    plain BLA (with the defaults ``a ~ 0.997`` per step, 0.8 across a window of 64) and learns
    where to forget.
    """

    name = "gated_bla"

    def __init__(self, d_model, num_heads=1, head_dim=None, *, window: int, resolution: int,
                 num_slots: int | None = None, gate_logit_normalizer: float = 16.0,
                 gate_bias: float = 3.0, chunk_size: int = 64, impl="fast"):
        super().__init__(d_model, num_heads, head_dim, impl=impl)
        self.window, self.resolution = int(window), int(resolution)
        self.num_slots = None if num_slots is None else int(num_slots)
        check_config(self.window, self.resolution, self.num_slots)
        if not (isinstance(gate_logit_normalizer, (int, float)) and gate_logit_normalizer > 0):
            raise ValueError(f"gate_logit_normalizer must be > 0, got {gate_logit_normalizer!r}")
        self.gate_logit_normalizer, self.gate_bias = float(gate_logit_normalizer), float(gate_bias)
        self.chunk_size = int(chunk_size)
        self.g_proj = nn.Linear(d_model, self.num_heads, bias=False)
        # a separate parameter, not the Linear's bias: model initialisers zero Linear biases
        self.g_bias = nn.Parameter(torch.full((self.num_heads,), self.gate_bias))

    def mix(self, q, k, v, x):
        logit = self.g_proj(x).float() + self.g_bias.float()
        g = F.logsigmoid(logit) / self.gate_logit_normalizer                     # [B, T, H]
        impl = "recurrent" if self.impl == "naive" else "chunk"
        o, _ = gated_bla_attention(q, k, v, g.to(q.dtype), self.window, self.resolution,
                                   num_slots=self.num_slots, impl=impl,
                                   chunk_size=self.chunk_size)
        return o

    @property
    def state_size(self):
        return state_size("bla", head_dim=self.head_dim, num_heads=self.num_heads,
                          resolution=self.resolution)

    def config(self):
        return {**super().config(), "window": self.window, "resolution": self.resolution,
                "num_slots": self.num_slots or self.resolution,
                "gate_logit_normalizer": self.gate_logit_normalizer,
                "gate_bias": self.gate_bias}


class ExactErasureBLA(TokenMixer):
    """BLA's reads over the exact ``N``-coefficient DFT of the last ``W`` tokens
    (:mod:`blaviz.ops.exact_erasure`): what BLA would do without its blurry erasure. Its state
    includes a ring buffer of ``W`` raw keys and values."""

    name = "bla_exact_erasure"

    def __init__(self, d_model, num_heads=1, head_dim=None, *, window: int, resolution: int,
                 num_slots: int | None = None, impl="fast"):
        super().__init__(d_model, num_heads, head_dim, impl=impl)
        self.window, self.resolution = int(window), int(resolution)
        self.num_slots = None if num_slots is None else int(num_slots)
        check_config(self.window, self.resolution, self.num_slots)

    def mix(self, q, k, v, x):
        impl = "recurrent" if self.impl == "naive" else "parallel"
        return exact_erasure_attention(q, k, v, self.window, self.resolution,
                                       num_slots=self.num_slots, impl=impl)

    @property
    def state_size(self):
        return (state_size("bla", head_dim=self.head_dim, num_heads=self.num_heads,
                           resolution=self.resolution)
                + state_size("swa", head_dim=self.head_dim, num_heads=self.num_heads,
                             window=self.window))

    def config(self):
        return {**super().config(), "window": self.window, "resolution": self.resolution,
                "num_slots": self.num_slots or self.resolution}


class HybridSWABLA(TokenMixer):
    """Two mixers in one layer's place: a short SWA (``swa_window``) then BLA, each with a
    pre-norm residual, ``y = h2 - x`` where ``h1 = x + SWA(norm(x))``,
    ``h2 = h1 + BLA(norm(h1))``. The short window keeps the last tokens exact; BLA reaches far.

    (The base class's own projections are unused: each sublayer has its own.)
    """

    name = "swa_bla_hybrid"

    def __init__(self, d_model, num_heads=1, head_dim=None, *, swa_window: int, window: int,
                 resolution: int, num_slots: int | None = None, bla_impl="auto",
                 chunk_size: int = 64, impl="fast"):
        nn.Module.__init__(self)
        self.d_model, self.impl = d_model, impl
        self.swa = SlidingWindowAttention(d_model, num_heads, head_dim, window=swa_window,
                                          impl=impl)
        self.bla = BlurryWindowAttention(d_model, num_heads, head_dim, window=window,
                                         resolution=resolution, num_slots=num_slots,
                                         bla_impl=bla_impl, chunk_size=chunk_size, impl=impl)
        self.num_heads, self.head_dim = self.bla.num_heads, self.bla.head_dim
        self.norm_swa, self.norm_bla = nn.LayerNorm(d_model), nn.LayerNorm(d_model)

    def forward(self, x):
        h = x + self.swa(self.norm_swa(x))
        return h + self.bla(self.norm_bla(h)) - x

    @property
    def resolved_impl(self):
        return self.bla.resolved_impl

    @property
    def state_size(self):
        return self.swa.state_size + self.bla.state_size

    def config(self):
        return {"mixer": self.name, "num_heads": self.num_heads, "head_dim": self.head_dim,
                "swa_window": self.swa.window, **{k: v for k, v in self.bla.config().items()
                                                  if k in ("window", "resolution", "num_slots")}}
