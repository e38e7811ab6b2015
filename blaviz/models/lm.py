"""A Zoology-style language model for MQAR and RegBench: ``n_layers`` blocks of
"short convolution, then the mixer under test", with pre-norm residuals and an optional MLP.

::

    h = Embedding(tokens)                      # no positional embedding: the convolution and the
    for each block:                            # mixer are the only sources of order information
        h = h + BaseConv(LayerNorm(h))         # Linear(x) * causal depthwise conv (kernel 4)
        h = h + Mixer(LayerNorm(h))            # BLA, SWA, full attention, GSA, GLA, linear, GDN
        h = h + MLP(LayerNorm(h))              # GELU, mlp_ratio * d_model hidden (0: no MLP)
    logits = LayerNorm(h) @ Embedding.weight^T # tied input/output embeddings

``state_size`` is the mixer's recurrent state per layer (all heads), the x-axis of the MQAR plots;
the convolution caches (``3 d_model`` numbers per layer) are the same for every mixer and not counted.
Because only a few positions are scored in MQAR, :meth:`MixerLM.forward` returns hidden states and
:meth:`MixerLM.logits` is applied to the scored positions only (``[n, vocab]`` instead of ``[B, T, vocab]``).
"""
from __future__ import annotations

import torch
from torch import nn

from blaviz.layers import BaseConv, build_mixer


class Block(nn.Module):
    """``h += BaseConv(LN(h)); h += Mixer(LN(h)); h += MLP(LN(h))``."""

    def __init__(self, d_model: int, mixer: str, mixer_kwargs: dict, *, conv_kernel: int = 4,
                 mlp_ratio: float = 2.0, conv_gated: bool = True):
        super().__init__()
        self.norm_conv = nn.LayerNorm(d_model)
        self.conv = BaseConv(d_model, conv_kernel, gated=conv_gated)
        self.norm_mix = nn.LayerNorm(d_model)
        self.mixer = build_mixer(mixer, d_model, **mixer_kwargs)
        hidden = int(round(mlp_ratio * d_model))
        if hidden > 0:
            self.norm_mlp = nn.LayerNorm(d_model)
            self.mlp = nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model))
        else:
            self.norm_mlp = self.mlp = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.conv(self.norm_conv(h))
        h = h + self.mixer(self.norm_mix(h))
        if self.mlp is not None:
            h = h + self.mlp(self.norm_mlp(h))
        return h


class MixerLM(nn.Module):
    """Embedding, ``n_layers`` :class:`Block`s, final LayerNorm, tied output embedding.

    Args:
        vocab_size, d_model, n_layers: the usual.
        mixer: a name from :data:`blaviz.layers.MIXERS`; ``mixer_kwargs`` go to its constructor
            (``num_heads``, ``window``, ``resolution``, ``num_slots``, ``impl`` ...).
        conv_kernel: the short convolution's kernel (Zoology: 4).
        mlp_ratio: hidden width of each block's MLP over ``d_model``; 0 removes the MLPs.
    """

    def __init__(self, vocab_size: int, d_model: int, mixer: str, mixer_kwargs: dict | None = None, *,
                 n_layers: int = 2, conv_kernel: int = 4, mlp_ratio: float = 2.0, conv_gated: bool = True):
        super().__init__()
        mixer_kwargs = dict(mixer_kwargs or {})
        self.vocab_size, self.d_model, self.n_layers = vocab_size, d_model, n_layers
        self.embed = nn.Embedding(vocab_size, d_model)
        self.blocks = nn.ModuleList(Block(d_model, mixer, mixer_kwargs, conv_kernel=conv_kernel,
                                          mlp_ratio=mlp_ratio, conv_gated=conv_gated)
                                    for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` token ids -> final hidden states ``[B, T, d_model]`` (after the last norm)."""
        h = self.embed(input_ids)
        for block in self.blocks:
            h = block(h)
        return self.norm(h)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden states ``[..., d_model]`` -> logits ``[..., vocab]`` (tied embedding)."""
        return hidden @ self.embed.weight.T

    @property
    def mixers(self):
        return [b.mixer for b in self.blocks]

    @property
    def state_size(self) -> int:
        """Recurrent state of one layer's mixer (all heads); every layer has the same mixer."""
        return self.mixers[0].state_size

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
