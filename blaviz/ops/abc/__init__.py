"""ABC (attention with bounded-memory control): slots holding softmax-over-time averages."""
from blaviz.ops.abc.naive import abc_attention

__all__ = ["abc_attention"]
