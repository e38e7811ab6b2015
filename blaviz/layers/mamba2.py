"""Mamba2 (SSD) token mixer: the :mod:`blaviz.ops.mamba2` operator with Mamba2's projections.

Kept small, following ``mamba_ssm``'s ``Mamba2`` layer in what matters for MQAR:

* one ``in_proj`` to ``[z, x, B, C, dt]`` (``z`` the output gate, ``x`` the values in ``H`` heads
  of ``head_dim = P``, ``B, C`` of ``d_state = N`` per head, ``dt`` one per head); SiLU on
  ``x, B, C`` (Mamba2 applies it after its depthwise short convolution, which here is the
  :class:`~blaviz.layers.conv.BaseConv` the MQAR model already puts before every mixer);
* ``dt = softplus(dt + dt_bias)``, ``A = -exp(A_log)``, Mamba2's initialisation (``A`` in
  ``[1, 16]``, ``dt`` log-uniform in ``[1e-3, 1e-1]``), a learned skip ``D``;
* output ``RMSNorm(y) * SiLU(z)`` per head, as in :class:`~blaviz.layers.recurrent.GatedDeltaNet`
  (Mamba2 normalises ``y * SiLU(z)`` over all heads; per-head norm keeps the layers comparable).

One ``B, C`` group per head (Mamba2's ``ngroups = num_heads``). State ``N P`` per head.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from blaviz.layers.base import RMSNorm, TokenMixer
from blaviz.ops.mamba2 import ssd_attention, ssd_attention_parallel
from blaviz.state_size import state_size


class Mamba2Mixer(TokenMixer):
    """Mamba2: ``h_t = e^{dt_t A} h_{t-1} + dt_t B_t^T x_t``, ``y_t = C_t h_t + D x_t``, gated output.

    ``impl="naive"`` runs the token-by-token recurrence; ``impl="fast"`` the exact parallel
    (masked-decay, ``O(T^2)``) form, which is batched and so faster at MQAR lengths.
    """

    name = "mamba2"

    def __init__(self, d_model, num_heads=1, head_dim=None, *, d_state: int = 64, impl="fast"):
        super().__init__(d_model, num_heads, head_dim, impl=impl)
        # Mamba2 has one fused input projection instead of the base class's q/k/v.
        del self.q_proj, self.k_proj, self.v_proj
        H, P = self.num_heads, self.head_dim
        self.d_state = N = int(d_state)
        self.split = (H * P, H * P, H * N, H * N, H)             # z, x, B, C, dt
        self.in_proj = nn.Linear(d_model, sum(self.split), bias=False)
        self.A_log = nn.Parameter(torch.empty(H).uniform_(1, 16).log())
        dt = torch.exp(torch.rand(H) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp_min(1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))   # softplus^-1(dt)
        self.D = nn.Parameter(torch.ones(H))
        self.norm = RMSNorm(P)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, xs, Bm, Cm, dt = self.in_proj(x).split(self.split, dim=-1)
        xs, Bm, Cm = (self.heads(F.silu(t)) for t in (xs, Bm, Cm))
        dt = F.softplus(dt + self.dt_bias)
        A = -self.A_log.exp()
        op = ssd_attention if self.impl == "naive" else ssd_attention_parallel
        y, _ = op(xs, dt, A, Bm, Cm, D=self.D)
        o = self.norm(y) * F.silu(self.heads(z))
        return self.o_proj(o.reshape(*x.shape[:2], -1))

    @property
    def state_size(self):
        return state_size("mamba2", head_dim=self.head_dim, num_heads=self.num_heads, d_state=self.d_state)

    def config(self):
        return {**super().config(), "d_state": self.d_state}
