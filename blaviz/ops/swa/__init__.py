"""Sliding-window attention: masked O(T^2) form and ring-buffer recurrent form."""
from blaviz.ops.swa.naive import sliding_window_attention, sliding_window_attention_recurrent

__all__ = ["sliding_window_attention", "sliding_window_attention_recurrent"]
