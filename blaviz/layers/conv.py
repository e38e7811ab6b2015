"""Zoology's short-convolution mixer (``BaseConv``), the first half of every layer of the MQAR model.

``BaseConv(x) = Linear(x) * ShortConv(x)``: a causal depthwise convolution of kernel 4 (each
channel mixes itself with its last 3 tokens), gated by a linear map of the input. It gives every
position a view of its immediate predecessors: in MQAR the value token then "knows" its key,
which is what lets one attention-like layer later retrieve it (Arora et al. 2023, Zoology).
"""
from __future__ import annotations

import torch
from torch import nn


class ShortConv(nn.Module):
    """Causal depthwise ``Conv1d``: ``y_t[c] = sum_{i < kernel} w[c, i] x_{t-i}[c] + b[c]``."""

    def __init__(self, d_model: int, kernel_size: int = 4):
        super().__init__()
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(d_model, d_model, kernel_size, groups=d_model, padding=kernel_size - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, D]
        T = x.shape[1]
        return self.conv(x.transpose(1, 2))[..., :T].transpose(1, 2)


class BaseConv(nn.Module):
    """Zoology's ``BaseConv``: ``Linear(x) * ShortConv(x)`` (the residual is added by the block).

    ``gated=False`` drops the multiplicative gate: ``Linear(ShortConv(x))``, a plain short
    convolution followed by a channel mix.
    """

    def __init__(self, d_model: int, kernel_size: int = 4, *, gated: bool = True):
        super().__init__()
        self.gated = gated
        self.proj = nn.Linear(d_model, d_model)
        self.conv = ShortConv(d_model, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gated:
            return self.proj(x) * self.conv(x)
        return self.proj(self.conv(x))
