"""Recurrent (fixed-state) baselines: linear attention, GLA, GSA and Gated DeltaNet.

Each follows the corresponding flash-linear-attention layer in what matters for MQAR, kept small:

* **linear attention**: a feature map on ``q, k`` (``elu+1`` by default, or ``identity``), the
  undecayed outer-product memory, and a per-head RMSNorm on the output in place of the usual
  denominator (fla's choice). State ``d_k d_v`` per head.
* **GLA**: per-key-channel log-sigmoid forget gates from a low-rank (rank 16) projection, divided
  by ``gate_logit_normalizer = 16`` so decays start close to 1; output RMSNorm times a SiLU output
  gate. State ``d_k d_v`` per head.
* **GSA**: ``M`` slots with log-sigmoid forget gates ``g = logsigmoid(W_f x) / 8`` and write weights
  ``s = 1 - exp(g)`` (each slot an exponential moving average; the GSA paper's choice); SiLU feature
  map on ``q, k``; output RMSNorm. State ``2 M d`` per head.
* **Gated DeltaNet**: SiLU then L2-normalised ``q, k``; ``beta = sigmoid(W_b x)``;
  Mamba2-style decay ``g = -exp(A_log) * softplus(W_a x + dt_bias)``; output RMSNorm times a SiLU
  gate. State ``d_k d_v`` per head.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from blaviz.layers import fast_ops
from blaviz.layers.base import RMSNorm, TokenMixer
from blaviz.ops.deltanet import gated_delta_rule
from blaviz.ops.gla import gla_attention
from blaviz.ops.gsa import gsa_attention
from blaviz.ops.linear import linear_attention
from blaviz.state_size import state_size

FEATURE_MAPS = {
    "elu1": lambda x: F.elu(x) + 1.0,
    "identity": lambda x: x,
    "silu": F.silu,
}


class LinearAttention(TokenMixer):
    """Causal linear attention ``h_t = h_{t-1} + phi(k_t)^T v_t``, ``o_t = RMSNorm(phi(q_t) h_t)``."""

    name = "linear"

    def __init__(self, d_model, num_heads=1, head_dim=None, *, feature_map: str = "elu1", impl="fast"):
        super().__init__(d_model, num_heads, head_dim, impl=impl)
        if feature_map not in FEATURE_MAPS:
            raise ValueError(f"feature_map must be one of {tuple(FEATURE_MAPS)}, got {feature_map!r}")
        self.feature_map = feature_map
        self.norm = RMSNorm(self.head_dim)

    def mix(self, q, k, v, x):
        phi = FEATURE_MAPS[self.feature_map]
        q, k = phi(q), phi(k)
        o = linear_attention(q, k, v)[0] if self.impl == "naive" else fast_ops.masked_linear(q, k, v)
        return self.norm(o)

    @property
    def state_size(self):
        return state_size("linear", head_dim=self.head_dim, num_heads=self.num_heads)

    def config(self):
        return {**super().config(), "feature_map": self.feature_map}


class GatedLinearAttention(TokenMixer):
    """GLA: ``h_t = diag(exp(gk_t)) h_{t-1} + k_t^T v_t`` with data-dependent per-channel decays."""

    name = "gla"

    def __init__(self, d_model, num_heads=1, head_dim=None, *, gate_rank: int = 16,
                 gate_logit_normalizer: float = 16.0, chunk_size: int = 16, impl="fast"):
        super().__init__(d_model, num_heads, head_dim, impl=impl)
        inner = self.num_heads * self.head_dim
        self.gk_proj = nn.Sequential(nn.Linear(d_model, gate_rank, bias=False), nn.Linear(gate_rank, inner))
        self.g_proj = nn.Linear(d_model, inner, bias=False)
        self.norm = RMSNorm(self.head_dim)
        self.gate_rank, self.gate_logit_normalizer, self.chunk_size = gate_rank, gate_logit_normalizer, chunk_size

    def mix(self, q, k, v, x):
        gk = self.heads(F.logsigmoid(self.gk_proj(x)) / self.gate_logit_normalizer)
        if self.impl == "naive":
            o, _ = gla_attention(q, k, v, gk)
        else:
            o, _ = fast_ops.chunk_gated_linear(q, k, v, gk=gk, chunk_size=self.chunk_size)
        return self.norm(o) * F.silu(self.heads(self.g_proj(x)))

    @property
    def state_size(self):
        return state_size("gla", head_dim=self.head_dim, num_heads=self.num_heads)

    def config(self):
        return {**super().config(), "gate_rank": self.gate_rank, "gate_logit_normalizer": self.gate_logit_normalizer}


class GatedSlotAttention(TokenMixer):
    """GSA with ``num_slots`` exponential-moving-average slots read through a softmax over slots.

    ``recipe`` picks the layer around the operator:

    * ``"blaviz"`` (default, what the stored sweeps ran): SiLU on ``q, k``; slot scores scaled by
      ``d^-1/2``; a per-head RMSNorm on the output.
    * ``"fla"``: the recipe of fla's ``GatedSlotAttention`` layer: SiLU on ``q, k`` *and* ``v``; slot
      scores unscaled (``scale = 1``); SiLU on the output, then an RMSNorm over all heads. With
      ``d = 64`` the default scale makes the softmax over slots eight times flatter than fla's.
    """

    name = "gsa"
    RECIPES = ("blaviz", "fla")

    def __init__(self, d_model, num_heads=1, head_dim=None, *, num_slots: int = 64,
                 gate_logit_normalizer: float = 8.0, chunk_size: int = 16, recipe: str = "blaviz", impl="fast"):
        super().__init__(d_model, num_heads, head_dim, impl=impl)
        if recipe not in self.RECIPES:
            raise ValueError(f"recipe must be one of {self.RECIPES}, got {recipe!r}")
        self.num_slots, self.recipe = int(num_slots), recipe
        self.f_proj = nn.Linear(d_model, self.num_heads * self.num_slots, bias=False)
        self.norm = RMSNorm(self.head_dim * (self.num_heads if recipe == "fla" else 1))
        self.gate_logit_normalizer, self.chunk_size = gate_logit_normalizer, chunk_size

    def mix(self, q, k, v, x):
        B, T = x.shape[:2]
        g = F.logsigmoid(self.f_proj(x)).view(B, T, self.num_heads, self.num_slots) / self.gate_logit_normalizer
        s = 1.0 - g.exp()
        q, k = F.silu(q), F.silu(k)
        fla = self.recipe == "fla"
        scale = 1.0 if fla else None
        if fla:
            v = F.silu(v)
        if self.impl == "naive":
            o, _ = gsa_attention(q, k, v, s, g, scale=scale)
        else:
            o, _ = fast_ops.chunk_gsa(q, k, v, s, g, scale=scale, chunk_size=self.chunk_size)
        if fla:
            return self.norm(F.silu(o).flatten(2)).view_as(o)
        return self.norm(o)

    @property
    def state_size(self):
        return state_size("gsa", head_dim=self.head_dim, num_heads=self.num_heads, num_slots=self.num_slots)

    def config(self):
        return {**super().config(), "num_slots": self.num_slots, "gate_logit_normalizer": self.gate_logit_normalizer,
                "recipe": self.recipe}


class GatedDeltaNet(TokenMixer):
    """Gated DeltaNet: ``S_t = e^{g_t} (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t^T v_t``."""

    name = "gated_deltanet"

    def __init__(self, d_model, num_heads=1, head_dim=None, *, chunk_size: int = 32, impl="fast"):
        super().__init__(d_model, num_heads, head_dim, impl=impl)
        H = self.num_heads
        self.b_proj = nn.Linear(d_model, H, bias=False)
        self.a_proj = nn.Linear(d_model, H, bias=False)
        self.g_proj = nn.Linear(d_model, H * self.head_dim, bias=False)
        # Mamba2 initialisation: A in [1, 16], dt log-uniform in [1e-3, 1e-1] (through softplus^-1)
        self.A_log = nn.Parameter(torch.empty(H).uniform_(1, 16).log())
        dt = torch.exp(torch.rand(H) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp_min(1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.norm = RMSNorm(self.head_dim)
        self.chunk_size = chunk_size

    def mix(self, q, k, v, x):
        q = F.normalize(F.silu(q), dim=-1)
        k = F.normalize(F.silu(k), dim=-1)
        v = F.silu(v)
        beta = torch.sigmoid(self.b_proj(x))
        g = -self.A_log.exp() * F.softplus(self.a_proj(x) + self.dt_bias)
        if self.impl == "naive":
            o, _ = gated_delta_rule(q, k, v, g, beta)
        else:
            o, _ = fast_ops.chunk_gated_delta(q, k, v, g, beta, chunk_size=self.chunk_size)
        return self.norm(o) * F.silu(self.heads(self.g_proj(x)))

    @property
    def state_size(self):
        return state_size("gated_deltanet", head_dim=self.head_dim, num_heads=self.num_heads)
