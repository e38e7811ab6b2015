"""What every token mixer layer shares: projections to heads, the state-size report, a config.

A *token mixer* maps ``x [B, T, d_model] -> y [B, T, d_model]`` causally. Each layer here wraps
one functional operator from :mod:`blaviz.ops` (or its exact fast form in
:mod:`blaviz.layers.fast_ops`) with the learned parts around it: query/key/value projections into
``num_heads`` heads of ``head_dim``, whatever gates the operator needs, and an output projection.
``layer.state_size`` is the recurrent state one layer keeps, all heads together
(:func:`blaviz.state_size.state_size`, BLA_SPEC section 7).
"""
from __future__ import annotations

import torch
from torch import nn

IMPLS = ("fast", "naive")


class RMSNorm(nn.Module):
    """Root-mean-square norm over the last dimension, with a learned gain."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class TokenMixer(nn.Module):
    """Base class: ``q, k, v`` projections into heads and an output projection.

    Subclasses set ``name`` and implement :meth:`mix` on ``[B, T, H, D]`` tensors and
    :attr:`state_size`. ``impl="fast"`` uses the exact batched forms of
    :mod:`blaviz.layers.fast_ops` (for training speed), ``impl="naive"`` the references in
    :mod:`blaviz.ops` (token loops; the ground truth).
    """

    name = "mixer"

    def __init__(self, d_model: int, num_heads: int = 1, head_dim: int | None = None, *,
                 impl: str = "fast"):
        super().__init__()
        if head_dim is None:
            if d_model % num_heads:
                raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
            head_dim = d_model // num_heads
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.d_model, self.num_heads, self.head_dim, self.impl = d_model, num_heads, head_dim, impl
        inner = num_heads * head_dim
        self.q_proj = nn.Linear(d_model, inner, bias=False)
        self.k_proj = nn.Linear(d_model, inner, bias=False)
        self.v_proj = nn.Linear(d_model, inner, bias=False)
        self.o_proj = nn.Linear(inner, d_model, bias=False)

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, H * D] -> [B, T, H, D]``."""
        return x.view(*x.shape[:2], self.num_heads, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.heads(self.q_proj(x)), self.heads(self.k_proj(x)), self.heads(self.v_proj(x))
        o = self.mix(q, k, v, x)
        return self.o_proj(o.reshape(*x.shape[:2], -1))

    def mix(self, q, k, v, x):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def state_size(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def config(self) -> dict:
        """The hyper-parameters that define this mixer (what a results file records)."""
        return {"mixer": self.name, "num_heads": self.num_heads, "head_dim": self.head_dim}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config().items()) + f", state_size={self.state_size}"
