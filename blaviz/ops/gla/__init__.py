"""Gated linear attention: linear attention with a data-dependent per-channel decay."""
from blaviz.ops.gla.naive import gla_attention

__all__ = ["gla_attention"]
