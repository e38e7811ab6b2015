"""Linear attention: an undecayed outer-product memory ``h_t = h_{t-1} + k_t^T v_t``."""
from blaviz.ops.linear.naive import linear_attention

__all__ = ["linear_attention"]
