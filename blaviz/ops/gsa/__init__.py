"""Gated slot attention: M decaying key/value slots read through a softmax over slots."""
from blaviz.ops.gsa.naive import gsa_attention

__all__ = ["gsa_attention"]
