"""Mamba2 (SSD): a state-space memory with one scalar decay per head and per token."""
from blaviz.ops.mamba2.naive import ssd_attention, ssd_attention_parallel

__all__ = ["ssd_attention", "ssd_attention_parallel"]
