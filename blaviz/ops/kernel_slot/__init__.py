"""Kernel slot attention (the ABC view): softmax over slots built by fixed causal kernels."""
from blaviz.ops.kernel_slot.naive import gsa_constant_gate_kernel, kernel_slot_attention

__all__ = ["kernel_slot_attention", "gsa_constant_gate_kernel"]
