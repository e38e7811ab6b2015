"""Computations the book reports on (no plotting): effective weights, summaries, reference views.

Figures live in :mod:`blaviz.viz`; the numbers they draw are computed here, and tested.

* :mod:`blaviz.analysis.impulse` (chapters 2 and 3): a frequency window and its blur, the sliding
  DFT against BLA's erasure from the state, impulse responses, leakage, erasure-corrected keys.
* :mod:`blaviz.analysis.weights` (chapters 4 and 5): effective weights, their summaries, the GSA
  view, the spectrum of the transition.
* :mod:`blaviz.analysis.readout` (chapter 10): a read-out model of in-window recall.
"""
from blaviz.analysis.impulse import (Leakage, complex_coefficients, corrected_keys,
                                     default_response_length, erasing_states,
                                     ideal_impulse_response, impulse_response, leakage,
                                     leaving_estimates, main_lobe_halfwidth, reconstruct_window,
                                     reconstruction_error, sample_key_channel, sliding_dft,
                                     states_from_corrected_keys, window_coefficients)
from blaviz.analysis.readout import ReadoutRecall, read_kernels, readout_recall

__all__ = [
    "sample_key_channel", "window_coefficients", "complex_coefficients", "reconstruct_window",
    "reconstruction_error", "main_lobe_halfwidth", "sliding_dft", "erasing_states",
    "leaving_estimates", "impulse_response", "ideal_impulse_response", "Leakage", "leakage",
    "default_response_length", "corrected_keys", "states_from_corrected_keys",
    "ReadoutRecall", "read_kernels", "readout_recall",
]
