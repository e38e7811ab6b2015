"""The read-out model: SWA recalls everything, recall falls with W/N, rises with d and S."""
import math

import pytest
import torch

from blaviz.analysis.readout import read_kernels, readout_recall
from blaviz.dirichlet import bla_slot_kernels

FAST = dict(trials=8, num_candidates=1024, temperatures=(16.0, 64.0, math.inf))


def test_full_resolution_recalls_everything():
    r = readout_recall(16, 16, head_dim=16, **FAST)
    assert r.recall == 1.0
    assert r.lags.tolist() == list(range(0, 16, 2)) and r.per_lag.shape == (8,)


@pytest.mark.slow
def test_recall_falls_with_blur_and_rises_with_width_and_slots():
    r = {N: readout_recall(32, N, head_dim=32, **FAST).recall for N in (15, 7, 3)}
    assert r[15] > r[7] > r[3]
    narrow = readout_recall(32, 7, head_dim=16, **FAST).recall
    wide = readout_recall(32, 7, head_dim=128, **FAST).recall
    assert wide > narrow
    assert readout_recall(32, 7, 14, head_dim=32, **FAST).recall > r[7]


@pytest.mark.slow
def test_reproduces_known_values_at_w64():
    # at W/N ~ 2 recall is about 1; at W/N ~ 4 with S = N about 0.6 (d = 64)
    kw = dict(trials=6, temperatures=(16.0,), num_candidates=4096)
    assert readout_recall(64, 31, head_dim=64, **kw).recall > 0.95
    assert 0.45 < readout_recall(64, 15, head_dim=64, **kw).recall < 0.75


def test_deterministic_given_seed():
    a = readout_recall(16, 5, head_dim=8, seed=3, **FAST)
    b = readout_recall(16, 5, head_dim=8, seed=3, **FAST)
    assert a.recall == b.recall and torch.equal(a.per_lag, b.per_lag)
    assert set(a.per_temperature) == set(FAST["temperatures"])


def test_read_kernels():
    assert torch.equal(read_kernels(16, 5, 7, 40), bla_slot_kernels(16, 5, 7, 40))
    ex = read_kernels(16, 5, 7, 40, erasure="exact")
    assert ex.shape == (7, 40) and ex[:, 16:].abs().max() == 0


@pytest.mark.parametrize("kw,match", [
    (dict(head_dim=0), "head_dim"), (dict(trials=1.5), "trials"),
    (dict(temperatures=(0.0,)), "temperatures"), (dict(erasure="blurry"), "erasure"),
    (dict(context=8), "context"), (dict(num_candidates=True), "num_candidates"),
])
def test_bad_inputs(kw, match):
    with pytest.raises(ValueError, match=match):
        readout_recall(16, 5, **kw)
