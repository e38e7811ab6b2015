"""Frequency windows, their blur, and what sliding them with bounded memory does: the numbers
behind chapters 2 and 3 of the book (no plotting; the figures are in :mod:`blaviz.viz.kernels`
and :mod:`blaviz.viz.window`).

Conventions (``BLA_SPEC.md``): a window of ``W`` samples is indexed by *lag* ``p = 0 .. W-1``
(``p = 0`` the newest sample); its frequency window in the real cos/sin layout is
``F = sum_p c(p) x_p`` with the write code ``c(p)`` of :func:`blaviz.dirichlet.write_code`, i.e.
``F_m = sum_p z_m^p x_p`` with ``z_m = exp(2 pi i m / W)``; the reconstruction at a real lag ``s``
is ``R_s(F) = r(s) . F = sum_p D_N(s - p) x_p``.

Chapter 2 (a window at rest)
    :func:`sample_key_channel`, :func:`window_coefficients`, :func:`complex_coefficients`,
    :func:`reconstruct_window`, :func:`reconstruction_error`, :func:`main_lobe_halfwidth`.
Chapter 3 (a window that slides)
    :func:`sliding_dft` (the sliding DFT, which needs a ``W``-sample buffer),
    :func:`erasing_states` (BLA's update, which erases the leaving sample from the state),
    :func:`leaving_estimates`, :func:`impulse_response`, :func:`ideal_impulse_response`,
    :func:`leakage`, :func:`corrected_keys`, :func:`states_from_corrected_keys`.

Signals are float64 tensors ``[T]`` (one channel) or ``[T, d]`` (``d`` channels); states come
back as ``[T, N]`` or ``[T, N, d]``. Everything is a small, readable float64 reference.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from blaviz.dirichlet import (check_config, dirichlet_kernel, erasure_matrix, half_frequencies,
                              read_code, rotation_matrix, transition_matrix, write_code)

from .weights import spectral_radius

__all__ = [
    "sample_key_channel", "window_coefficients", "complex_coefficients", "reconstruct_window",
    "reconstruction_error", "main_lobe_halfwidth", "sliding_dft", "erasing_states",
    "leaving_estimates", "impulse_response", "ideal_impulse_response", "Leakage", "leakage",
    "default_response_length", "corrected_keys", "states_from_corrected_keys",
]


def _as_signal(x) -> tuple[torch.Tensor, tuple]:
    """``x`` as float64 ``[T, d]`` plus the trailing shape to restore (``()`` for a 1-d signal)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.ndim not in (1, 2):
        raise ValueError(f"a signal is [T] or [T, d], got shape {tuple(x.shape)}")
    if x.shape[0] < 1:
        raise ValueError("a signal needs at least one sample")
    return x.reshape(x.shape[0], -1), tuple(x.shape[1:])


# ----------------------------------------------------------------------------- chapter 2
def sample_key_channel(length: int, *, seed: int = 0, num_spikes: int = 3,
                       period: int | None = None) -> torch.Tensor:
    """A made-up key channel: a smooth curve (three slow cosines) plus ``num_spikes`` spikes.

    The cosines make 0.4 to 3 cycles per ``period`` samples (default ``length``, i.e. one window),
    so a small resolution already draws them; each spike is broadband, so only a resolution close
    to ``W`` keeps it sharp. The cosines are not periodic over the window: its two ends do not
    meet, as for real keys. Returns float64 ``[length]``, the same for the same arguments.
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    period = length if period is None else int(period)
    g = torch.Generator().manual_seed(seed)
    p = torch.arange(length, dtype=torch.float64)
    cycles = 0.4 + 2.6 * torch.rand(3, generator=g, dtype=torch.float64)     # 0.4 .. 3 periods
    amp = torch.tensor([1.0, 0.6, 0.35], dtype=torch.float64)
    phase = 2 * math.pi * torch.rand(3, generator=g, dtype=torch.float64)
    x = (amp[:, None] * torch.cos(2 * math.pi * cycles[:, None] * p / period + phase[:, None])).sum(0)
    if num_spikes > 0:
        where = torch.randperm(length, generator=g)[:num_spikes]
        sign = torch.where(torch.rand(num_spikes, generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
        height = 1.5 + torch.rand(num_spikes, generator=g, dtype=torch.float64)
        x[where] += sign * height
    return x


def window_coefficients(x, window: int, resolution: int) -> torch.Tensor:
    """The real frequency window of ``W`` samples in lag order: ``F = sum_p c(p) x_p``.

    ``x``: ``[W]`` or ``[W, d]`` with ``x[p]`` the sample ``p`` steps ago. Returns ``[N]`` or
    ``[N, d]`` float64 in the layout ``[DC | Re F_1..F_M | Im F_1..F_M | Nyquist]``.
    """
    W, N, _ = check_config(window, resolution)
    xs, tail = _as_signal(x)
    if xs.shape[0] != W:
        raise ValueError(f"a window holds W = {W} samples, got {xs.shape[0]}")
    F = write_code(W, N, torch.arange(W)).T @ xs
    return F.reshape(N, *tail)


def complex_coefficients(F: torch.Tensor, window: int, resolution: int) -> torch.Tensor:
    """The complex coefficients ``F_m`` behind a real layout, for ``m`` in ``frequencies(W, N)``.

    ``F``: ``[N]`` or ``[N, d]`` real. Returns complex128 of the same shape, ordered by ascending
    ``m``; ``F_{-m} = conj(F_m)`` (a real signal's spectrum is conjugate-symmetric).
    """
    W, N, _ = check_config(window, resolution)
    F = torch.as_tensor(F, dtype=torch.float64)
    if F.shape[0] != N:
        raise ValueError(f"F must have N = {N} rows, got shape {tuple(F.shape)}")
    M, has_nyq = half_frequencies(W, N)
    pos = torch.complex(F[1:M + 1], F[M + 1:2 * M + 1])              # m = 1 .. M
    parts = [pos.flip(0).conj(), F[:1].to(torch.complex128), pos]
    if has_nyq:
        parts.append(F[2 * M + 1:].to(torch.complex128))
    return torch.cat(parts)


def reconstruct_window(x, window: int, resolution: int, lags=None) -> torch.Tensor:
    """The blurry reconstruction ``R_s`` of a window of ``W`` samples (lag order) at real lags.

    Equals ``sum_p D_N(s - p) x_p``. ``lags`` defaults to the integer lags ``0 .. W-1``. Returns
    ``[len(lags)]`` or ``[len(lags), d]`` float64.
    """
    W, N, _ = check_config(window, resolution)
    lags = torch.arange(W, dtype=torch.float64) if lags is None else torch.as_tensor(lags, dtype=torch.float64)
    F = window_coefficients(x, W, N)
    return read_code(W, N, lags.reshape(-1)) @ F


def reconstruction_error(x, window: int, resolutions) -> torch.Tensor:
    """Relative RMS error ``||R(x) - x|| / ||x||`` at the integer lags, for each resolution.

    At integer lags the reconstruction is the orthogonal projection of ``x`` on the kept
    frequencies, so the error never grows with ``N`` and is 0 at ``N = W``. Returns float64
    ``[len(resolutions)]``.
    """
    xs, _ = _as_signal(x)
    norm = xs.norm().clamp_min(1e-300)
    errs = [(reconstruct_window(xs, window, n) - xs).norm() / norm for n in resolutions]
    return torch.stack(errs) if errs else torch.zeros(0, dtype=torch.float64)


def main_lobe_halfwidth(window: int, resolution: int) -> float:
    """The first positive zero of ``D_N``, found numerically: the half-width of the main lobe.

    For odd ``N >= 3`` it is ``W / N`` exactly (the closed form's numerator vanishes there), so
    the blur spans about ``2 W / N`` lags. ``N = 1`` is a constant kernel: ``inf``.
    """
    W, N, _ = check_config(window, resolution)
    if N == 1:
        return math.inf
    # scan (0, W/2] on a grid finer than the lobe, then zoom into the first sign change
    step = min(W / N, 1.0) / 64
    lo, hi = 0.0, W / 2
    for _ in range(9):
        x = torch.arange(1, int(round((hi - lo) / step)) + 1, dtype=torch.float64) * step + lo
        idx = torch.nonzero(dirichlet_kernel(x, N, W) <= 0)
        if len(idx) == 0:                   # cannot happen for N >= 2 (D_N changes sign)
            return math.inf
        i = int(idx[0])
        lo, hi = (float(x[i - 1]) if i > 0 else lo), float(x[i])
        step = (hi - lo) / 64
    return 0.5 * (lo + hi)


# ----------------------------------------------------------------------------- chapter 3
def sliding_dft(x, window: int, resolution: int) -> torch.Tensor:
    """The sliding DFT with its buffer (Jacobsen and Lyons): ``F(t) = P F(t-1) + e (x_t - x_{t-W})``.

    ``P`` rotates every coefficient by one step (``F_m -> z_m F_m``), ``e = c(0)`` writes at lag 0.
    The leaving sample ``x_{t-W}`` comes from a buffer of the last ``W`` samples (zero before the
    sequence starts). Returns every state, ``[T, N]`` or ``[T, N, d]``: ``F(t)`` is exactly the
    frequency window of ``x_t, x_{t-1}, ..., x_{t-W+1}``.
    """
    W, N, _ = check_config(window, resolution)
    xs, tail = _as_signal(x)
    P, e = rotation_matrix(W, N, 1), write_code(W, N, [0])[0]
    F = xs.new_zeros(N, xs.shape[1])
    states = []
    for t in range(xs.shape[0]):
        leaving = xs[t - W] if t >= W else torch.zeros_like(xs[t])     # read from the buffer
        F = P @ F + e[:, None] * (xs[t] - leaving)[None, :]
        states.append(F)
    return torch.stack(states).reshape(xs.shape[0], N, *tail)


def erasing_states(x, window: int, resolution: int) -> torch.Tensor:
    """BLA's update of one frequency window: erase the leaving sample *from the state itself*.

    ``x_old = R_{W-1}(F(t-1))`` (a blurry copy of ``x_{t-W}``), then
    ``F(t) = P F(t-1) + e (x_t - x_old)``, i.e. ``F(t) = A F(t-1) + e x_t`` with
    ``A = P - e r(W-1)^T`` (:func:`blaviz.dirichlet.transition_matrix`). No buffer: the memory is
    the ``N`` coefficients. Returns every state, ``[T, N]`` or ``[T, N, d]``.
    """
    W, N, _ = check_config(window, resolution)
    xs, tail = _as_signal(x)
    P, e, r_old = rotation_matrix(W, N, 1), write_code(W, N, [0])[0], read_code(W, N, [W - 1])[0]
    F = xs.new_zeros(N, xs.shape[1])
    states = []
    for t in range(xs.shape[0]):
        x_old = r_old @ F                                               # read from the state
        F = P @ F + e[:, None] * (xs[t] - x_old)[None, :]
        states.append(F)
    return torch.stack(states).reshape(xs.shape[0], N, *tail)


def leaving_estimates(states: torch.Tensor, window: int, resolution: int) -> torch.Tensor:
    """What a sequence of states says about the sample leaving the window at each step.

    ``out[t] = R_{W-1}(F(t-1))`` (``0`` at ``t = 0``): the state's copy of ``x_{t-W}``, the value
    :func:`erasing_states` subtracts. ``states``: ``[T, N]`` or ``[T, N, d]``; returns ``[T]`` or
    ``[T, d]``.
    """
    W, N, _ = check_config(window, resolution)
    r_old = read_code(W, N, [W - 1])[0]
    reads = torch.einsum("n,tn...->t...", r_old, states.to(torch.float64))
    return torch.cat([torch.zeros_like(reads[:1]), reads[:-1]])


def default_response_length(window: int, resolution: int, *, floor: float = 1e-13) -> int:
    """A length after which BLA's impulse response is below ``floor`` (relative), for sums.

    ``2 W`` at ``N = W`` (the response ends at ``t = W - 1``); otherwise ``W`` plus the steps the
    slowest mode of ``A`` needs to decay by ``floor``.
    """
    W, N, _ = check_config(window, resolution)
    if N == W:
        return 2 * W
    return W + int(math.ceil(math.log(floor) / math.log(spectral_radius(W, N))))


def impulse_response(window: int, resolution: int, lags, length: int) -> torch.Tensor:
    """BLA's impulse response: feed ``x_0 = 1`` (then zeros), read ``R_s(F(t))`` for ``t >= 0``.

    ``h_s(t) = r(s)^T A^t e``. Returns float64 ``[len(lags), length]``.
    """
    W, N, _ = check_config(window, resolution)
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    A, e = transition_matrix(W, N), write_code(W, N, [0])[0]
    # states F(t) = A^t e: the first B one step at a time, then B steps at a time (A^B @ block)
    B = max(1, min(length, math.isqrt(length)))
    cols = [e]
    for _ in range(B - 1):
        cols.append(A @ cols[-1])
    blocks = [torch.stack(cols, dim=1)]                               # [N, B]: t = 0 .. B-1
    A_B = torch.linalg.matrix_power(A, B)
    while len(blocks) * B < length:
        blocks.append(A_B @ blocks[-1])
    states = torch.cat(blocks, dim=1)[:, :length]                      # [N, length]
    lags = torch.as_tensor(lags, dtype=torch.float64).reshape(-1)
    return read_code(W, N, lags) @ states


def ideal_impulse_response(window: int, resolution: int, lags, length: int) -> torch.Tensor:
    """The sliding DFT's impulse response (exact erasure from a buffer): ``D_N(t - s) [t < W]``.

    The impulse sits at lag ``t`` inside the window for ``t < W`` and is gone after. Returns
    float64 ``[len(lags), length]``.
    """
    W, N, _ = check_config(window, resolution)
    lags = torch.as_tensor(lags, dtype=torch.float64).reshape(-1)
    t = torch.arange(length, dtype=torch.float64)
    return dirichlet_kernel(t[None, :] - lags[:, None], N, W) * (t < W)


class Leakage(NamedTuple):
    """How far BLA's impulse response at one lag strays from the ideal window.

    * ``outside``: energy of the response at ``t >= W`` over its total energy (0 for the ideal).
    * ``inside_error``: ``||h - ideal||`` over ``||ideal||`` on ``t < W``.
    """

    outside: float
    inside_error: float


def leakage(window: int, resolution: int, lag: float = 0.0, *, length: int | None = None) -> Leakage:
    """:class:`Leakage` of the impulse response at lag ``s`` over ``length`` steps.

    ``length`` defaults to :func:`default_response_length` (the tail beyond it is negligible).
    """
    W, N, _ = check_config(window, resolution)
    length = default_response_length(W, N) if length is None else int(length)
    if length < W:
        raise ValueError(f"length must cover the window (>= W = {W}), got {length}")
    h = impulse_response(W, N, [lag], length)[0]
    ideal = ideal_impulse_response(W, N, [lag], W)[0]
    total = float((h ** 2).sum())
    outside = float((h[W:] ** 2).sum()) / max(total, 1e-300)
    inside = float((h[:W] - ideal).norm() / ideal.norm().clamp_min(1e-300))
    return Leakage(outside, inside)


def corrected_keys(k, window: int, resolution: int) -> torch.Tensor:
    """Erasure-corrected keys ``k' = (I + L)^{-1} k`` (BLA_SPEC section 3), ``L[t, tau] = D_N(t - tau)``
    for ``tau < t``. ``k``: ``[T]`` or ``[T, d]``; same shape back.

    ``k'_t`` is what BLA actually writes at step ``t``: ``k_t`` minus the blurry leaving copy.
    """
    ks, tail = _as_signal(k)
    kp = erasure_matrix(window, resolution, ks.shape[0]) @ ks
    return kp.reshape(ks.shape[0], *tail)


def states_from_corrected_keys(kp, window: int, resolution: int) -> torch.Tensor:
    """``F(t) = sum_{tau <= t} c(t - tau) k'_tau`` for every ``t``: plain writes of the corrected
    keys, rotated, with no erasure at all. ``kp``: ``[T]`` or ``[T, d]``; returns ``[T, N(, d)]``.
    """
    W, N, _ = check_config(window, resolution)
    ks, tail = _as_signal(kp)
    T = ks.shape[0]
    t = torch.arange(T)
    lag = (t[:, None] - t[None, :]).clamp_min(0)                      # [T, T]
    codes = write_code(W, N, lag.reshape(-1)).reshape(T, T, N)        # c(t - tau)
    codes = codes * (t[:, None] >= t[None, :])[..., None]             # causal: tau <= t
    F = torch.einsum("abn,bd->and", codes, ks)
    return F.reshape(T, N, *tail)
