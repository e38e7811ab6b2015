"""The chunked form's FLOP formula is exact: counted by torch's flop counter on the real code."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from blaviz.cost import bla_chunk_flops, full_attention_flops, swa_flops
from blaviz.ops.bla import bla_chunk


@pytest.mark.parametrize("N,S,C,d,e", [(7, 7, 8, 16, 16), (15, 9, 16, 8, 12), (9, 9, 4, 4, 4)])
def test_chunk_flops_formula_matches_counter(N, S, C, d, e):
    B, H, T = 2, 3, 4 * C                      # full chunks only
    q, k = torch.randn(2, B, T, H, d).unbind(0)
    v = torch.randn(B, T, H, e)
    with FlopCounterMode(display=False) as counter:
        bla_chunk(q, k, v, 32, N, num_slots=S, chunk_size=C)
    per_token = counter.get_total_flops() / (B * H * T)
    assert per_token == pytest.approx(bla_chunk_flops(N, S, C, d, e), rel=1e-12)


def test_reference_counts():
    assert swa_flops(64, 64) == 2 * 64 * 128
    assert full_attention_flops(1024, 64) == 1024 * 128
