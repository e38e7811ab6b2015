"""Gated DeltaNet: a decaying associative memory updated by the delta (error-correcting) rule."""
from blaviz.ops.deltanet.naive import gated_delta_rule

__all__ = ["gated_delta_rule"]
