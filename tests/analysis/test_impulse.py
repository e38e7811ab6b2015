"""What chapters 2 and 3 claim about frequency windows, the sliding DFT and BLA's erasure.

Every assertion here was checked numerically first; the notebooks print the same quantities.
"""
import math

import pytest
import torch

from blaviz.analysis import impulse as im
from blaviz.analysis.weights import resolution_grid
from blaviz.dirichlet import (bla_slot_kernels, dirichlet_kernel, frequencies, read_code,
                              slot_lags, transition_matrix, write_code)
from blaviz.ops.bla import bla_recurrent

CONFIGS = [(16, 5), (16, 16), (9, 9), (9, 3), (8, 8), (12, 1), (64, 9), (64, 63)]


pytestmark = pytest.mark.usefixtures("one_thread")


def last_window(x, t, W):
    """Samples x_t, x_{t-1}, ..., x_{t-W+1} in lag order, zeros before the sequence."""
    pad = torch.cat([torch.zeros(W - 1, *x.shape[1:], dtype=x.dtype), x])
    return pad[t:t + W].flip(0)


# ----------------------------------------------------------------------------- chapter 2
def test_sample_key_channel_is_reproducible_and_spiky():
    a, b = im.sample_key_channel(64, seed=3), im.sample_key_channel(64, seed=3)
    assert a.dtype == torch.float64 and a.shape == (64,)
    assert torch.equal(a, b)
    assert not torch.equal(a, im.sample_key_channel(64, seed=4))
    smooth = im.sample_key_channel(64, seed=3, num_spikes=0)
    assert int(((a - smooth).abs() > 1.0).sum()) == 3          # three spikes of height >= 1.5
    assert im.sample_key_channel(256, seed=0, period=64).shape == (256,)
    with pytest.raises(ValueError):
        im.sample_key_channel(0)


@pytest.mark.parametrize("W,N", CONFIGS)
def test_window_coefficients_are_the_dft(W, N):
    g = torch.Generator().manual_seed(W * 10 + N)
    x = torch.randn(W, 3, dtype=torch.float64, generator=g)
    F = im.window_coefficients(x, W, N)
    assert F.shape == (N, 3)
    # F_m = sum_p z_m^p x_p = X_{-m mod W}, with X = torch.fft.fft over the lag axis
    X = torch.fft.fft(x, dim=0)
    want = X[(-frequencies(W, N)) % W]
    assert (im.complex_coefficients(F, W, N) - want).abs().max() < 1e-12
    # a 1-d channel keeps its shape
    assert im.window_coefficients(x[:, 0], W, N).shape == (N,)


def test_window_and_layout_shapes_are_checked():
    with pytest.raises(ValueError):
        im.window_coefficients(torch.zeros(7), 8, 3)
    with pytest.raises(ValueError):
        im.complex_coefficients(torch.zeros(4), 8, 3)
    with pytest.raises(ValueError):
        im.window_coefficients(torch.zeros(8, 2, 2), 8, 3)
    with pytest.raises(ValueError):
        im.window_coefficients(torch.zeros(8), 8, 4)           # even N < W


@pytest.mark.parametrize("W,N", CONFIGS)
def test_reconstruction_is_dirichlet_interpolation(W, N):
    x = im.sample_key_channel(W, seed=1)
    s = torch.tensor([0.0, 0.5, 1.25, W / 3, W - 1.0, -2.75], dtype=torch.float64)
    want = (dirichlet_kernel(s[:, None] - torch.arange(W)[None, :], N, W) * x).sum(-1)
    assert (im.reconstruct_window(x, W, N, s) - want).abs().max() < 1e-12
    # unit DC gain: a constant window is reproduced at every real lag
    const = torch.full((W,), 2.5, dtype=torch.float64)
    assert (im.reconstruct_window(const, W, N, s) - 2.5).abs().max() < 1e-12


@pytest.mark.parametrize("W", [7, 8, 64])
def test_full_resolution_returns_the_samples(W):
    x = im.sample_key_channel(W, seed=2)
    assert (im.reconstruct_window(x, W, W) - x).abs().max() < 1e-12
    assert float(im.reconstruction_error(x, W, [W])[0]) < 1e-13


@pytest.mark.parametrize("W", [16, 64])
def test_reconstruction_error_never_grows_with_resolution(W):
    for seed in range(3):
        x = im.sample_key_channel(W, seed=seed)
        err = im.reconstruction_error(x, W, resolution_grid(W))
        assert (err[1:] <= err[:-1] + 1e-12).all()             # nested projections
        assert float(err[-1]) < 1e-13 and float(err[0]) > 0.3


def test_main_lobe_halfwidth():
    for W in (16, 64, 65):
        for N in range(3, W, 2):
            assert abs(im.main_lobe_halfwidth(W, N) - W / N) < 1e-9
    assert im.main_lobe_halfwidth(64, 1) == math.inf
    assert abs(im.main_lobe_halfwidth(8, 8) - 1.0) < 1e-9      # D_W: zero at the next sample
    assert abs(im.main_lobe_halfwidth(9, 9) - 1.0) < 1e-9


# ----------------------------------------------------------------------------- chapter 3
@pytest.mark.parametrize("W,N", CONFIGS)
def test_sliding_dft_is_the_dft_of_the_last_window(W, N):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3 * W + 5, 2, dtype=torch.float64, generator=g)
    F = im.sliding_dft(x, W, N)
    assert F.shape == (3 * W + 5, N, 2)
    for t in (0, 1, W - 1, W, 2 * W + 3, 3 * W + 4):
        want = im.window_coefficients(last_window(x, t, W), W, N)
        assert (F[t] - want).abs().max() < 1e-11


@pytest.mark.parametrize("W,N", CONFIGS)
def test_erasing_states_follow_the_transition_and_match_bla(W, N):
    g = torch.Generator().manual_seed(2)
    T = 2 * W + 7
    x = torch.randn(T, 3, dtype=torch.float64, generator=g)
    F = im.erasing_states(x, W, N)
    A, e = transition_matrix(W, N), write_code(W, N, [0])[0]
    prev = torch.zeros(N, 3, dtype=torch.float64)
    for t in range(T):
        assert (F[t] - (A @ prev + e[:, None] * x[t])).abs().max() < 1e-12
        prev = F[t]
    # the library's BLA keeps the same key state
    q = torch.randn(1, T, 1, 3, dtype=torch.float64, generator=g)
    _, state = bla_recurrent(q, x[None, :, None], x[None, :, None], W, N, output_final_state=True)
    assert (state.key_freq[0, 0] - F[-1]).abs().max() < 1e-12


@pytest.mark.parametrize("W", [7, 8, 16])
def test_full_resolution_erasure_is_exact(W):
    x = torch.randn(4 * W, dtype=torch.float64)
    F_bla, F_sdft = im.erasing_states(x, W, W), im.sliding_dft(x, W, W)
    assert (F_bla - F_sdft).abs().max() < 1e-11
    leaving = torch.cat([torch.zeros(W, dtype=torch.float64), x[:-W]])
    assert (im.leaving_estimates(F_bla, W, W) - leaving).abs().max() < 1e-11
    assert (im.leaving_estimates(F_sdft, W, W) - leaving).abs().max() < 1e-11


def test_blurry_erasure_differs_from_the_buffer():
    x = im.sample_key_channel(256, seed=1, period=64)
    gap = (im.erasing_states(x, 64, 9) - im.sliding_dft(x, 64, 9)).abs().max()
    assert gap > 0.1


def test_transition_is_a_shift_register_at_full_resolution():
    for W in (7, 8, 64):
        A = transition_matrix(W, W)
        assert torch.linalg.matrix_power(A, W).abs().max() < 1e-12
        assert torch.linalg.matrix_power(A, W - 1).abs().max() > 1e-3


@pytest.mark.parametrize("W", [16, 64])
def test_transition_is_strictly_stable_below_full_resolution(W):
    for N in range(1, W, 2):
        rho = float(torch.linalg.eigvals(transition_matrix(W, N)).abs().max())
        assert rho < 1 - 1e-3
    assert abs(float(torch.linalg.eigvals(transition_matrix(W, 1)).abs().max()) - (1 - 1 / W)) < 1e-12


@pytest.mark.parametrize("W,N", CONFIGS)
def test_impulse_response_definition(W, N):
    lags = torch.tensor([0.0, 1.0, 2.5, W - 1.0], dtype=torch.float64)
    length = 3 * W + 2
    h = im.impulse_response(W, N, lags, length)
    assert h.shape == (4, length)
    x = torch.zeros(length, dtype=torch.float64)
    x[0] = 1.0
    states = im.erasing_states(x, W, N)                         # [T, N]
    assert (h - read_code(W, N, lags) @ states.T).abs().max() < 1e-12
    ideal = im.ideal_impulse_response(W, N, lags, length)
    assert (ideal[:, W:] == 0).all()
    t = torch.arange(W, dtype=torch.float64)
    assert (ideal[:, :W] - dirichlet_kernel(t[None] - lags[:, None], N, W)).abs().max() < 1e-15


@pytest.mark.parametrize("W", [7, 8, 64])
def test_impulse_response_at_full_resolution_is_the_ideal_window(W):
    lags = torch.arange(W, dtype=torch.float64)
    h = im.impulse_response(W, W, lags, 3 * W)
    assert (h - im.ideal_impulse_response(W, W, lags, 3 * W)).abs().max() < 1e-12
    assert (h[:, :W] - torch.eye(W, dtype=torch.float64)).abs().max() < 1e-12   # a delta at t = s
    lk = im.leakage(W, W, 0)
    assert lk.outside < 1e-25 and lk.inside_error < 1e-12


def test_impulse_response_is_the_slot_kernel():
    W, N, L = 32, 9, 100
    h = im.impulse_response(W, N, slot_lags(W, N), L)
    assert (h - bla_slot_kernels(W, N, None, L)).abs().max() < 1e-12


@pytest.mark.parametrize("W,N", [(64, 9), (64, 63), (16, 5)])
def test_default_response_length_covers_the_tail(W, N):
    L = im.default_response_length(W, N)
    h = im.impulse_response(W, N, [0.0], L)[0]
    assert h[-W:].abs().max() < 1e-12 * h.abs().max()


@pytest.mark.parametrize("W", [32, 64])
@pytest.mark.parametrize("frac", [0.0, 0.25, 0.5, "last"])
def test_leakage_shrinks_with_resolution(W, frac):
    lag = W - 1 if frac == "last" else frac * W
    Ns = resolution_grid(W)
    leaks = [im.leakage(W, n, lag) for n in Ns]
    outside = torch.tensor([lk.outside for lk in leaks])
    inside = torch.tensor([lk.inside_error for lk in leaks])
    assert (outside[:-1] > 1e-4).all() and (outside < 0.16).all()     # N < W always leaks
    assert (inside[:-1] > 1e-2).all() and (inside < 0.46).all()
    big = torch.tensor(Ns) >= 9                                       # from N = 9 on: monotone
    assert (outside[big][1:] < outside[big][:-1]).all()
    assert (inside[big][1:] < inside[big][:-1]).all()
    assert outside[-1] < 1e-25 and inside[-1] < 1e-12


def test_leakage_checks_its_length():
    with pytest.raises(ValueError):
        im.leakage(16, 5, 0, length=8)
    with pytest.raises(ValueError):
        im.impulse_response(16, 5, [0.0], 0)


@pytest.mark.parametrize("W,N", CONFIGS)
def test_corrected_keys_identity(W, N):
    g = torch.Generator().manual_seed(3)
    T = 3 * W + 1
    k = torch.randn(T, 4, dtype=torch.float64, generator=g)
    kp = im.corrected_keys(k, W, N)
    # (I + L) k' = k with L[t, tau] = D_N(t - tau) for tau < t
    t = torch.arange(T)
    L = torch.where(t[:, None] > t[None, :], dirichlet_kernel(t[:, None] - t[None, :], N, W), 0.0)
    assert ((torch.eye(T, dtype=torch.float64) + L) @ kp - k).abs().max() < 1e-10
    # the recurrent state is a plain sum of rotated corrected keys
    F = im.erasing_states(k, W, N)
    assert (im.states_from_corrected_keys(kp, W, N) - F).abs().max() < 1e-11
    # and k' is exactly what the recurrence writes: k_t minus the state's leaving copy
    assert (kp - (k - im.leaving_estimates(F, W, N))).abs().max() < 1e-11
