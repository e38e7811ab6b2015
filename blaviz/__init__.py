"""blaviz: Blurry Window Attention, its references, kernels, experiments and figures.

The public API, re-exported here::

    from blaviz import bla_attention, dirichlet_kernel, sliding_window_attention, state_size
"""
from blaviz.dirichlet import dirichlet_kernel, dirichlet_kernel_sum, frequencies
from blaviz.ops.bla import BLAState, bla_attention, bla_attention_weights, bla_step
from blaviz.state_size import state_size, state_size_per_head

__version__ = "0.1.0"

__all__ = ["dirichlet_kernel", "dirichlet_kernel_sum", "frequencies", "bla_attention", "bla_step",
           "bla_attention_weights", "BLAState", "state_size", "state_size_per_head"]

# Baselines, with flash-linear-attention's argument order and semantics.
from blaviz.ops.abc import abc_attention
from blaviz.ops.deltanet import gated_delta_rule
from blaviz.ops.gla import gla_attention
from blaviz.ops.gsa import gsa_attention
from blaviz.ops.kernel_slot import gsa_constant_gate_kernel, kernel_slot_attention
from blaviz.ops.linear import linear_attention
from blaviz.ops.mamba2 import ssd_attention
from blaviz.ops.softmax import softmax_attention
from blaviz.ops.swa import sliding_window_attention
from blaviz.ops.gated_bla import gated_bla_attention
from blaviz.ops.exact_erasure import exact_erasure_attention

__all__ += ["softmax_attention", "sliding_window_attention", "linear_attention", "gla_attention",
            "gsa_attention", "abc_attention", "gated_delta_rule", "kernel_slot_attention",
            "gsa_constant_gate_kernel", "ssd_attention",
            "gated_bla_attention", "exact_erasure_attention"]
