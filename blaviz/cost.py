"""Arithmetic of each form, per token and per head: the complexity table of chapter 6.

Counts are FLOPs of matrix products (2 per multiply-add), the work tensor cores do; elementwise
work (rotations, the softmax, masks) is ``O(N + S + C)`` per token and left out. For
:func:`bla_chunk_flops` the count is *exact* for ``blaviz.ops.bla.chunk``: a test checks it
against ``torch.utils.flop_counter``. The others are the leading terms of the textbook forms.
"""
from __future__ import annotations


def bla_chunk_flops(resolution: int, num_slots: int, chunk_size: int, head_dim: int,
                    value_dim: int | None = None) -> float:
    """Matmul FLOPs per token of the chunked form (BLA_SPEC section 4), full chunks.

    ``6 N (d+e) + 4 C (d+e) + 2 N^2 (d+e) / C + 4 C N + 4 N S``: reading and writing the state
    (``N``), the intra-chunk products (``C``), one state rotation per chunk, the intra-chunk
    Dirichlet factors, and the slot reads.
    """
    N, S, C, d = resolution, num_slots, chunk_size, head_dim
    e = d if value_dim is None else value_dim
    return 6 * N * (d + e) + 4 * C * (d + e) + 2 * N * N * (d + e) / C + 4 * C * N + 4 * N * S


def bla_recurrent_flops(resolution: int, num_slots: int, head_dim: int, value_dim: int | None = None) -> float:
    """Per token of the recurrent form as written (rotation as an ``N x N`` product)."""
    N, S, d = resolution, num_slots, head_dim
    e = d if value_dim is None else value_dim
    return (2 * N * N + 2 * N + 2 * S * N) * (d + e) + 2 * S * (d + e)


def swa_flops(window: int, head_dim: int, value_dim: int | None = None) -> float:
    """Sliding window attention: ``W`` keys scored and ``W`` values summed per query."""
    e = head_dim if value_dim is None else value_dim
    return 2 * window * (head_dim + e)


def full_attention_flops(seq_len: int, head_dim: int, value_dim: int | None = None) -> float:
    """Causal softmax attention averaged over a sequence of ``T`` tokens (``T/2`` keys each)."""
    e = head_dim if value_dim is None else value_dim
    return seq_len * (head_dim + e)


def gsa_flops(num_slots: int, head_dim: int, value_dim: int | None = None) -> float:
    """Gated slot attention, recurrent form: write and read ``S`` key slots and ``S`` value slots."""
    e = head_dim if value_dim is None else value_dim
    return 4 * num_slots * (head_dim + e)
