"""Token-mixer layers (``nn.Module``): the operators of :mod:`blaviz.ops` with their projections.

=================  ===================================  ===========================================
name               class                                state per layer (all heads), ``d`` = head dim
=================  ===================================  ===========================================
``bla``            :class:`BlurryWindowAttention`       ``2 N d H``
``swa``            :class:`SlidingWindowAttention`      ``2 W d H``
``softmax``        :class:`SoftmaxAttention`            ``2 T d H`` (grows with ``T``)
``gsa``            :class:`GatedSlotAttention`          ``2 M d H``
``gla``            :class:`GatedLinearAttention`        ``d^2 H``
``linear``         :class:`LinearAttention`             ``d^2 H``
``gated_deltanet`` :class:`GatedDeltaNet`               ``d^2 H``
``mamba2``         :class:`Mamba2Mixer`                 ``N d H`` (``N`` = ``d_state``)
=================  ===================================  ===========================================

``build_mixer(name, d_model, num_heads=..., **kwargs)`` makes one by name; ``BaseConv`` is the
short-convolution mixer that precedes each of them in the MQAR model.
"""
from blaviz.layers.attention import (BlurryWindowAttention, SlidingWindowAttention, SoftmaxAttention,
                                     resolve_bla_impl)
from blaviz.layers.base import RMSNorm, TokenMixer
from blaviz.layers.conv import BaseConv, ShortConv
from blaviz.layers.mamba2 import Mamba2Mixer
from blaviz.layers.recurrent import GatedDeltaNet, GatedLinearAttention, GatedSlotAttention, LinearAttention
from blaviz.layers.bla_variants import ExactErasureBLA, GatedBLA, HybridSWABLA, MultiResolutionBLA

MIXERS = {
    "bla": BlurryWindowAttention,
    "swa": SlidingWindowAttention,
    "softmax": SoftmaxAttention,
    "gsa": GatedSlotAttention,
    "gla": GatedLinearAttention,
    "linear": LinearAttention,
    "gated_deltanet": GatedDeltaNet,
    "mamba2": Mamba2Mixer,
    # BLA variants beyond the paper (blaviz.layers.bla_variants)
    "bla_multires": MultiResolutionBLA,
    "gated_bla": GatedBLA,
    "bla_exact_erasure": ExactErasureBLA,
    "swa_bla_hybrid": HybridSWABLA,
}
# The library's own mixers; register_mixer adds lab mixers beside them.
BUILTIN_MIXERS = frozenset(MIXERS)


def register_mixer(name: str, factory) -> None:
    """Make ``build_mixer(name, ...)`` call ``factory(d_model, **kwargs)`` (lab code adds mixers
    this way, e.g. fla's layers, without the library importing them). A built-in name is an error;
    registering the same factory again is a no-op."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}")
    if MIXERS.get(name, factory) is not factory:
        raise ValueError(f"a mixer named {name!r} is already registered")
    MIXERS[name] = factory


def build_mixer(name: str, d_model: int, **kwargs) -> TokenMixer:
    """``MIXERS[name](d_model, **kwargs)``, with a clear error for an unknown name."""
    if name not in MIXERS:
        raise ValueError(f"unknown mixer {name!r}; choose one of {tuple(MIXERS)}")
    return MIXERS[name](d_model, **kwargs)


__all__ = ["MIXERS", "BUILTIN_MIXERS", "build_mixer", "register_mixer", "TokenMixer", "RMSNorm", "BaseConv", "ShortConv",
           "BlurryWindowAttention", "SlidingWindowAttention", "SoftmaxAttention", "GatedSlotAttention",
           "GatedLinearAttention", "LinearAttention", "GatedDeltaNet", "Mamba2Mixer", "resolve_bla_impl",
           "MultiResolutionBLA", "GatedBLA", "ExactErasureBLA", "HybridSWABLA"]
