"""The small language model the synthetic experiments train (Zoology's "BaseConv + mixer" stack)."""
from blaviz.models.lm import Block, MixerLM

__all__ = ["MixerLM", "Block"]
