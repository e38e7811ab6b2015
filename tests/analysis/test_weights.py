"""blaviz.analysis.weights: effective weights, their summaries, and the slot-space (GSA) view."""
import math

import pytest
import torch

from blaviz import dirichlet as d
from blaviz.analysis.weights import (compare_impls, lag_summary, resolution_grid, slot_space_attention,
                                     slot_space_kernels, spectral_radius, swa_attention_weights,
                                     transition_eigenvalues, valid_resolution, weights_by_lag)
from blaviz.ops.bla import bla_attention, bla_attention_weights
from blaviz.ops.swa import sliding_window_attention


def rand(B, T, H, D, n=3):
    return [torch.randn(B, T, H, D, dtype=torch.float64) for _ in range(n)]


# ----------------------------------------------------------------------------- resolutions
@pytest.mark.parametrize("W,N,want", [(16, 5, 5), (16, 6, 5), (16, 16, 16), (16, 40, 16), (16, 0, 1),
                                      (16, -3, 1), (9, 8, 7), (9, 9, 9), (1, 1, 1), (2, 2, 2), (2, 1, 1)])
def test_valid_resolution(W, N, want):
    got = valid_resolution(W, N)
    assert got == want
    d.check_config(W, got)  # always accepted by the library


def test_resolution_grid():
    assert resolution_grid(8) == [1, 3, 5, 7, 8]
    assert resolution_grid(9) == [1, 3, 5, 7, 9]
    assert resolution_grid(1) == [1]
    thin = resolution_grid(64, max_steps=6)
    assert thin[0] == 1 and thin[-1] == 64 and len(thin) <= 6
    assert all(n % 2 == 1 or n == 64 for n in thin) and thin == sorted(set(thin))
    assert resolution_grid(8, max_steps=10) == [1, 3, 5, 7, 8]
    with pytest.raises(ValueError, match="max_steps"):
        resolution_grid(64, max_steps=1)
    with pytest.raises(ValueError, match="window"):
        resolution_grid(0)


# ----------------------------------------------------------------------------- effective weights
def test_swa_weights_are_the_operator_matrix():
    q, k, v = rand(2, 30, 3, 5)
    W = 7
    A = swa_attention_weights(q, k, W)
    assert A.shape == (2, 3, 30, 30)
    o = torch.einsum("bhts,bshd->bthd", A, v)
    assert (o - sliding_window_attention(q, k, v, W)).abs().max() < 1e-13
    t = torch.arange(30)
    outside = (t[:, None] - t[None, :] >= W) | (t[:, None] < t[None, :])
    assert A[..., outside].abs().max() == 0
    assert (A.sum(-1) - 1).abs().max() < 1e-13


@pytest.mark.parametrize("W", [8, 9])
def test_swa_weights_equal_bla_at_full_resolution(W):
    q, k, _ = rand(1, 25, 2, 4)
    assert (swa_attention_weights(q, k, W) - bla_attention_weights(q, k, W, W)).abs().max() < 1e-12


def test_weights_by_lag():
    A = torch.arange(16.0).reshape(4, 4)
    assert weights_by_lag(A, 2).tolist() == [A[2, 2], A[2, 1], A[2, 0]]
    assert weights_by_lag(A, -1).tolist() == [15.0, 14.0, 13.0, 12.0]
    assert weights_by_lag(A[None, None], 0).shape == (1, 1, 1)
    for bad in (4, -5):
        with pytest.raises(ValueError, match="query"):
            weights_by_lag(A, bad)


def test_lag_summary_of_swa():
    q, k, _ = rand(1, 40, 2, 4)
    W = 8
    s = lag_summary(swa_attention_weights(q, k, W), W)
    assert set(s) == {"row_sum", "beyond_window", "negative", "reach"}
    assert abs(s["row_sum"] - 1) < 1e-13 and s["beyond_window"] == 0 and s["negative"] == 0
    assert 0 <= s["reach"] <= W - 1


def test_lag_summary_by_hand():
    # one row (t = 3): weights by lag 0..3 are 0.5, -0.25, 0, 0.25; window 2
    A = torch.zeros(4, 4, dtype=torch.float64)
    A[3] = torch.tensor([0.25, 0.0, -0.25, 0.5])
    s = lag_summary(A, 2, start=3, mass=0.6)
    assert s["row_sum"] == pytest.approx(0.5)
    assert s["beyond_window"] == pytest.approx(0.25)        # |0.25| at lag 3 of total 1.0
    assert s["negative"] == pytest.approx(0.25)
    assert s["reach"] == 1                                   # lags 0..1 hold 0.75 >= 0.6
    assert lag_summary(A, 2, start=3, mass=0.5)["reach"] == 0
    with pytest.raises(ValueError, match="start"):
        lag_summary(A, 2, start=4)


def test_lag_summary_sees_bla_blur():
    q, k, _ = rand(1, 48, 1, 8)
    W = 16
    low, full = (lag_summary(bla_attention_weights(q, k, W, n), W) for n in (5, W))
    assert low["beyond_window"] > 0.05 and low["negative"] > 0
    assert full["beyond_window"] < 1e-12 and abs(full["row_sum"] - 1) < 1e-12


# ----------------------------------------------------------------------------- implementations
@pytest.mark.parametrize("W,N,S,C", [(16, 5, None, 16), (12, 7, 9, 10), (9, 9, None, 4), (8, 8, 5, 7)])
def test_compare_impls(W, N, S, C):
    q, k, v = rand(1, 37, 2, 4)
    err = compare_impls(q, k, v, W, N, num_slots=S, chunk_size=C)
    assert set(err) == {"parallel", "chunk"}
    assert max(err.values()) < 1e-12
    err = compare_impls(q, k, v, W, N, num_slots=S, impls=("chunk",), reference="parallel")
    assert set(err) == {"chunk"} and err["chunk"] < 1e-12


def test_compare_impls_sees_a_difference():
    q, k, v = rand(1, 20, 1, 4)
    # different resolutions are different operators; a wrong reference must not pass silently
    o5, _ = bla_attention(q, k, v, 16, 5, impl="recurrent")
    o7, _ = bla_attention(q, k, v, 16, 7, impl="recurrent")
    assert (o5 - o7).abs().max() > 1e-3


# ----------------------------------------------------------------------------- slot space
@pytest.mark.parametrize("W,N", [(16, 5), (8, 8), (9, 9), (9, 3), (12, 1)])
def test_slot_space_attention_is_bla(W, N):
    q, k, v = rand(2, 33, 2, 4)
    v = torch.randn(2, 33, 2, 3, dtype=torch.float64)
    o = slot_space_attention(q, k, v, W, N)
    want, _ = bla_attention(q, k, v, W, N, impl="recurrent")
    assert o.shape == want.shape and o.dtype == torch.float64
    assert (o - want).abs().max() < 1e-11
    o32 = slot_space_attention(q.float(), k.float(), v.float(), W, N, scale=0.3)
    assert o32.dtype == torch.float32
    want, _ = bla_attention(q, k, v, W, N, impl="recurrent", scale=0.3)
    assert (o32.double() - want).abs().max() < 1e-5


@pytest.mark.parametrize("W,N", [(16, 5), (8, 8), (9, 9), (10, 3)])
def test_slot_space_kernels_are_the_abc_kernels(W, N):
    L = 3 * W
    h = slot_space_kernels(W, N, L)
    assert h.shape == (N, L)
    assert (h - d.bla_slot_kernels(W, N, None, L)).abs().max() < 1e-12


def test_slot_space_kernels_at_full_resolution_pick_one_lag():
    W = 8
    h = slot_space_kernels(W, W, 20)
    want = torch.zeros(W, 20, dtype=torch.float64)
    want[torch.arange(W), torch.arange(W)] = 1
    assert (h - want).abs().max() < 1e-12
    with pytest.raises(ValueError, match="length"):
        slot_space_kernels(8, 3, 0)


@pytest.mark.parametrize("W", [8, 9, 16])
def test_eigenvalues(W):
    Tm, _ = d.slot_space(W, W)
    assert torch.linalg.matrix_power(Tm, W).abs().max() < 1e-12       # nilpotent: exact zeros are right
    assert transition_eigenvalues(W, W).abs().max() == 0 and spectral_radius(W, W) == 0
    assert spectral_radius(W, 1) == pytest.approx(1 - 1 / W)           # N = 1: one EMA slot
    for N in range(1, W, 2):
        ev = transition_eigenvalues(W, N)
        assert ev.shape == (N,) and ev.dtype == torch.complex128
        assert 0 < ev.abs().max() < 1
        want = torch.linalg.eigvals(d.transition_matrix(W, N))       # similar matrices
        assert torch.allclose(ev.abs().sort().values, want.abs().sort().values, atol=1e-10)
        assert math.isclose(spectral_radius(W, N), float(ev.abs().max()))
