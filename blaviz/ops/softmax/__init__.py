"""Full (quadratic) softmax attention, the reference every bounded-state mixer is measured against."""
from blaviz.ops.softmax.naive import softmax_attention

__all__ = ["softmax_attention"]
