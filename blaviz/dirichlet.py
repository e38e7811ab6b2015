"""Frequency windows and the Dirichlet kernel: every fixed matrix BLA needs.

Notation follows ``BLA_SPEC.md``: window ``W`` (the period), resolution ``N`` (real frequency
coefficients kept), ``S`` slots read at lags ``s_j = j W / S``, ``z_m = exp(2 pi i m / W)``.

Real cos/sin form
-----------------
A real signal's truncated DFT ``F_m`` (``m`` in the frequency set, ``F_{-m} = conj(F_m)``) is
stored as ``N`` real numbers per feature, in this order::

    [ DC | Re F_1 .. Re F_M | Im F_1 .. Im F_M | Re F_{W/2} (only when N = W is even) ]

Two real row vectors carry all the algebra (``p`` an integer position, ``s`` any real lag):

* the *write code* ``c(p) = [1, cos(w_m p), sin(w_m p), cos(pi p)]``, i.e. ``P^p e``: where a unit
  written now sits after ``p`` rotation steps;
* the *read code* ``r(s) = [1, 2 cos(w_m s), 2 sin(w_m s), cos(pi s)] / W``, so that the
  reconstruction at lag ``s`` is ``R_s(F) = r(s) . F``.

with ``w_m = 2 pi m / W``. Then ``r(s) . c(p) = D_N(s - p)`` and ``r(s)^T P^p = r(s - p)^T``, where
``P`` is the one-step rotation ``F_m -> z_m F_m``. Every matrix of the chunked algorithm
(BLA_SPEC section 4) and of the slot-space form (section 5) is built from these codes.

Everything here is computed in float64 on the CPU and cached; callers cast with ``.to()``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

__all__ = [
    "check_config", "frequencies", "half_frequencies", "dirichlet_kernel", "dirichlet_kernel_sum",
    "slot_lags", "write_code", "read_code", "reconstruct", "rotation_matrix", "rotation_tables",
    "rotate", "swap_index", "erasure_matrix", "transition_matrix", "slot_space", "ChunkMatrices",
    "chunk_matrices", "chunk_transition", "bla_slot_kernels", "slot_start",
]


# ----------------------------------------------------------------------------- validation
def _as_int(name: str, value) -> int:
    """An integer argument; floats such as ``3.0`` pass, ``3.5``, ``True`` and strings do not."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def check_config(window, resolution, num_slots=None) -> tuple[int, int, int]:
    """Validate ``(W, N, S)`` and return them as ints (``S`` defaults to ``N``).

    Allowed: ``W >= 1``; ``1 <= N <= W`` with ``N`` odd, or ``N == W`` (either parity); ``S >= 1``.
    """
    W = _as_int("window", window)
    if W < 1:
        raise ValueError(f"window must be >= 1, got {W}")
    N = _as_int("resolution", resolution)
    if N < 1 or N > W:
        raise ValueError(f"resolution must satisfy 1 <= resolution <= window = {W}, got {N}")
    if N % 2 == 0 and N != W:
        raise ValueError(
            f"resolution must be odd or equal to window = {W} (a real frequency set is DC plus "
            f"cos/sin pairs), got even resolution {N}")
    S = N if num_slots is None else _as_int("num_slots", num_slots)
    if S < 1:
        raise ValueError(f"num_slots must be >= 1, got {S}")
    return W, N, S


# ----------------------------------------------------------------------------- frequencies
def frequencies(window: int, resolution: int) -> torch.Tensor:
    """The complex frequency set ``m`` (int64, ``[N]``), ascending.

    Odd ``N``: ``-M..M`` with ``M = (N-1)/2``. ``N = W``: ``-(ceil(W/2)-1) .. floor(W/2)``.
    """
    W, N, _ = check_config(window, resolution)
    if N == W:
        return torch.arange(-(math.ceil(W / 2) - 1), W // 2 + 1)
    M = (N - 1) // 2
    return torch.arange(-M, M + 1)


def half_frequencies(window: int, resolution: int) -> tuple[int, bool]:
    """``(M, has_nyquist)``: pairs ``m = 1..M`` and whether the real Nyquist term ``m = W/2`` exists."""
    W, N, _ = check_config(window, resolution)
    has_nyq = N == W and W % 2 == 0
    M = (N - 1 - int(has_nyq)) // 2
    return M, has_nyq


def _layout(window: int, resolution: int):
    """Per real coordinate: the frequency ``m``, whether it is a sine entry, and its read gain."""
    M, has_nyq = half_frequencies(window, resolution)
    m = [0] + list(range(1, M + 1)) * 2 + ([window // 2] if has_nyq else [])
    is_sin = [False] + [False] * M + [True] * M + ([False] if has_nyq else [])
    gain = [1.0] + [2.0] * (2 * M) + ([1.0] if has_nyq else [])
    return (torch.tensor(m, dtype=torch.float64), torch.tensor(is_sin), torch.tensor(gain, dtype=torch.float64))


# ----------------------------------------------------------------------------- the kernel
def _as_float64(x) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64)


def dirichlet_kernel_sum(x, resolution: int, window: int) -> torch.Tensor:
    """Sum form ``D_N(x) = (1/W) Re sum_m exp(2 pi i m x / W)`` (float64, shape of ``x``)."""
    W, N, _ = check_config(window, resolution)
    x = _as_float64(x)
    m = frequencies(W, N).to(torch.float64)
    return torch.cos(2 * math.pi * x[..., None] * m / W).sum(-1) / W


def dirichlet_kernel(x, resolution: int, window: int) -> torch.Tensor:
    """Closed form of the (unit DC gain) Dirichlet kernel, float64 with the shape of ``x``.

    Odd ``N``: ``sin(pi N x / W) / (W sin(pi x / W))`` with ``D_N(0) = N / W``. For ``N = W`` even,
    the symmetric part over ``|m| < W/2`` plus the Nyquist term ``cos(pi x) / W``. ``D_W`` at
    integer lags is the periodic delta.
    """
    W, N, _ = check_config(window, resolution)
    x = _as_float64(x)
    has_nyq = N == W and W % 2 == 0
    n_sym = N - 1 if has_nyq else N          # odd number of symmetric frequencies
    # With an odd number of frequencies the symmetric part has period W, so reduce x to [-W/2, W/2]
    # first: sin(pi x / W) near x = kW (k != 0) would otherwise carry the absolute rounding of a
    # large argument, and dividing by it loses digits (5e-11 on a fine grid). After the reduction
    # numerator and denominator are small together and the ratio keeps full relative precision.
    xr = x - W * torch.round(x / W)
    den = torch.sin(math.pi * xr / W)
    at_zero = den == 0                       # xr = 0 exactly: the limit n_sym
    safe = torch.where(at_zero, torch.ones_like(den), den)
    sym = torch.where(at_zero, torch.full_like(x, float(n_sym)), torch.sin(math.pi * n_sym * xr / W) / safe)
    out = sym / W
    if has_nyq:
        out = out + torch.cos(math.pi * x) / W
    return out


def slot_lags(window: int, num_slots: int) -> torch.Tensor:
    """Slot lags ``s_j = j W / S`` (float64, ``[S]``); fractional when ``S`` does not divide ``W``."""
    W = _as_int("window", window)
    S = _as_int("num_slots", num_slots)
    if W < 1 or S < 1:
        raise ValueError(f"window and num_slots must be >= 1, got window={W}, num_slots={S}")
    return torch.arange(S, dtype=torch.float64) * W / S


def slot_start(window: int, num_slots: int) -> torch.Tensor:
    """First position at which each slot is visible: ``ceil(s_j)`` (int64, ``[S]``).

    Slot ``j`` is masked while ``t < s_j``: it would read the blurry past before the sequence began.
    """
    return torch.ceil(slot_lags(window, num_slots) - 1e-9).to(torch.int64)


# ----------------------------------------------------------------------------- codes
def write_code(window: int, resolution: int, positions) -> torch.Tensor:
    """``c(p) = P^p e`` for each integer position ``p``: ``[len(p), N]`` float64."""
    m, is_sin, _ = _layout(window, resolution)
    ang = 2 * math.pi * _as_float64(positions).reshape(-1, 1) * m / window
    return torch.where(is_sin, torch.sin(ang), torch.cos(ang))


def read_code(window: int, resolution: int, lags) -> torch.Tensor:
    """``r(s)`` for each real lag ``s``: ``[len(s), N]`` float64, with ``R_s(F) = r(s) @ F``."""
    m, is_sin, gain = _layout(window, resolution)
    ang = 2 * math.pi * _as_float64(lags).reshape(-1, 1) * m / window
    return torch.where(is_sin, torch.sin(ang), torch.cos(ang)) * gain / window


def reconstruct(F: torch.Tensor, lags, window: int, resolution: int) -> torch.Tensor:
    """Blurry reconstruction ``R_s(F)`` at real lags: ``F [..., N, d] -> [..., len(lags), d]``."""
    r = read_code(window, resolution, lags).to(F.dtype).to(F.device)
    return r @ F


def swap_index(window: int, resolution: int) -> torch.Tensor:
    """Permutation exchanging each ``Re F_m`` with ``Im F_m`` (DC and Nyquist map to themselves)."""
    M, has_nyq = half_frequencies(window, resolution)
    idx = [0] + list(range(M + 1, 2 * M + 1)) + list(range(1, M + 1)) + ([2 * M + 1] if has_nyq else [])
    return torch.tensor(idx, dtype=torch.int64)


def rotation_tables(window: int, resolution: int, steps) -> tuple[torch.Tensor, torch.Tensor]:
    """Elementwise tables so that ``P^p x = cos_t * x + sin_t * x[swap_index]`` for integer ``p``.

    Returns ``(cos_t, sin_t)``, each ``[len(steps), N]`` float64. This is how a kernel rotates the
    frequency state without complex numbers or an ``N x N`` product.
    """
    m, is_sin, _ = _layout(window, resolution)
    p = _as_float64(steps).reshape(-1, 1)
    if not torch.equal(p, p.round()):
        raise ValueError("steps must be integers: the state only rotates by whole positions")
    ang = 2 * math.pi * p * m / window
    cos_t = torch.cos(ang)
    sin_t = torch.where(is_sin, torch.sin(ang), -torch.sin(ang))
    # DC has no partner and the Nyquist entry is real: only their cosine (+-1 or 1) acts.
    no_pair = m.eq(0) | (m * 2).eq(window)
    sin_t = torch.where(no_pair, torch.zeros_like(sin_t), sin_t)
    return cos_t, sin_t


def rotate(x: torch.Tensor, cos_t: torch.Tensor, sin_t: torch.Tensor, swap: torch.Tensor) -> torch.Tensor:
    """Apply ``P^p`` to coefficient vectors along the last axis, with tables from :func:`rotation_tables`."""
    return cos_t * x + sin_t * x[..., swap]


def rotation_matrix(window: int, resolution: int, steps: int = 1) -> torch.Tensor:
    """``P^steps`` as an explicit ``[N, N]`` float64 matrix (for references and the book)."""
    W, N, _ = check_config(window, resolution)
    cos_t, sin_t = rotation_tables(W, N, [steps])
    eye = torch.eye(N, dtype=torch.float64)
    # column k of P^p is P^p applied to the unit vector e_k
    return rotate(eye.T, cos_t, sin_t, swap_index(W, N)).T


# ----------------------------------------------------------------------------- erasure & slots
def erasure_matrix(window: int, resolution: int, length: int) -> torch.Tensor:
    """``(I + L)^{-1}``, ``L[t, tau] = D_N(t - tau)`` for ``tau < t``: ``[length, length]`` float64.

    This unit lower-triangular Toeplitz matrix turns keys into erasure-corrected keys ``k'``
    (BLA_SPEC section 3).
    """
    W, N, _ = check_config(window, resolution)
    idx = torch.arange(length)
    lag = idx[:, None] - idx[None, :]
    L = torch.where(lag > 0, dirichlet_kernel(lag, N, W), torch.zeros((), dtype=torch.float64))
    eye = torch.eye(length, dtype=torch.float64)
    return torch.linalg.solve_triangular(eye + L, eye, upper=False, unitriangular=True)


def transition_matrix(window: int, resolution: int) -> torch.Tensor:
    """The state transition ``A = P - e r(W-1)^T`` (real form of ``diag(z) - (1/W) 1 z^T``), ``[N, N]``."""
    W, N, _ = check_config(window, resolution)
    e = write_code(W, N, [0])[0]
    return rotation_matrix(W, N, 1) - torch.outer(e, read_code(W, N, [W - 1])[0])


def slot_space(window: int, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The GSA view with ``S = N`` slots: ``K~(t) = T K~(t-1) + w k_t^T``.

    Returns ``(T [N, N], w [N])`` float64, ``T = Phi A Phi^{-1}``, ``w_j = D_N(s_j)``, where ``Phi``
    (rows ``r(s_j)``) maps frequency coefficients to slot values.
    """
    W, N, _ = check_config(window, resolution)
    Phi = read_code(W, N, slot_lags(W, N))
    A = transition_matrix(W, N)
    T = torch.linalg.solve(Phi.T, (Phi @ A).T).T          # Phi A Phi^{-1} without forming the inverse
    w = Phi @ write_code(W, N, [0])[0]
    return T, w


def bla_slot_kernels(window: int, resolution: int, num_slots: int | None, length: int) -> torch.Tensor:
    """The fixed causal kernel through which BLA's slot ``j`` reads raw keys (the ABC view).

    ``K~_j(t) = sum_tau h_j(t - tau) k_tau`` with ``h_j = D_N(. - s_j) * g`` (causal convolution),
    ``g`` the first column of ``(I + L)^{-1}``. Returns ``h [S, length]`` float64.
    """
    W, N, S = check_config(window, resolution, num_slots)
    g = erasure_matrix(W, N, length)[:, 0]
    lags = torch.arange(length, dtype=torch.float64)
    # D[j, D, n] = D_N(D - n - s_j) for n <= D
    d = dirichlet_kernel(lags[None, :, None] - lags[None, None, :] - slot_lags(W, S)[:, None, None], N, W)
    d = torch.tril(d)
    return d @ g


# ----------------------------------------------------------------------------- chunk matrices
@dataclass(frozen=True)
class ChunkMatrices:
    """The fixed factors of the chunked algorithm (BLA_SPEC section 4) in real form.

    With ``delta = 0..C-1`` the offset inside a chunk:

    * ``read_prev [C, N]``: row ``delta`` is ``r(-(delta+1))``: reads the incoming state (Re Zpos1).
    * ``erase_inv [C, C]``: ``(I + L_C)^{-1}`` (Minv).
    * ``write_neg [C, N]``: row ``i`` is ``c(-i)`` (Zneg).
    * ``slot_read [N, S]``: column ``j`` is ``r(s_j)`` (Zslot).
    * ``write_out [N, C]``: column ``i`` is ``c(C-1-i)``: carries a chunk's writes to its end (Y).
    * ``rot_cos, rot_sin [C, N]``: tables for ``P^delta`` (``delta`` = row).
    * ``step [N, N]``: ``P``; ``chunk_rot_cos, chunk_rot_sin [N]``: tables for ``P^C``.
    * ``swap [N]``: see :func:`swap_index`; ``causal [C, C]``: ``1`` where ``j <= i``.
    * ``slot_lags [S]``: ``s_j``, for the start-of-sequence mask (kept float64 by :meth:`to`).
    """

    read_prev: torch.Tensor
    erase_inv: torch.Tensor
    write_neg: torch.Tensor
    slot_read: torch.Tensor
    write_out: torch.Tensor
    rot_cos: torch.Tensor
    rot_sin: torch.Tensor
    step: torch.Tensor
    chunk_rot_cos: torch.Tensor
    chunk_rot_sin: torch.Tensor
    swap: torch.Tensor
    causal: torch.Tensor
    slot_lags: torch.Tensor

    def to(self, device=None, dtype=None) -> "ChunkMatrices":
        def cast(t):
            if t.is_floating_point() and t is not self.slot_lags:  # lags are compared, not multiplied
                return t.to(device=device, dtype=dtype)
            return t.to(device=device)
        return ChunkMatrices(**{k: cast(v) for k, v in self.__dict__.items()})


@lru_cache(maxsize=64)
def _chunk_matrices_cpu(W: int, N: int, S: int, C: int) -> ChunkMatrices:
    delta = torch.arange(C, dtype=torch.float64)
    rot_cos, rot_sin = rotation_tables(W, N, delta)
    c_cos, c_sin = rotation_tables(W, N, [C])
    return ChunkMatrices(
        read_prev=read_code(W, N, -(delta + 1)),
        erase_inv=erasure_matrix(W, N, C),
        write_neg=write_code(W, N, -delta),
        slot_read=read_code(W, N, slot_lags(W, S)).T.contiguous(),
        write_out=write_code(W, N, C - 1 - delta).T.contiguous(),
        rot_cos=rot_cos, rot_sin=rot_sin,
        step=rotation_matrix(W, N, 1),
        chunk_rot_cos=c_cos[0], chunk_rot_sin=c_sin[0],
        swap=swap_index(W, N),
        causal=torch.tril(torch.ones(C, C, dtype=torch.float64)),
        slot_lags=slot_lags(W, S),
    )


def chunk_matrices(window: int, resolution: int, num_slots: int | None, chunk_size: int,
                   *, device=None, dtype=torch.float64) -> ChunkMatrices:
    """All fixed chunk factors for ``(W, N, S, C)``, cached, cast to ``device``/``dtype``.

    A last chunk shorter than ``C`` uses ``chunk_matrices(W, N, S, c)`` for its own length ``c``
    (whose rows/columns are the leading ones of the full chunk's, except ``write_out`` and the
    ``P^C`` tables, which depend on the chunk length).
    """
    W, N, S = check_config(window, resolution, num_slots)
    C = _as_int("chunk_size", chunk_size)
    if C < 1:
        raise ValueError(f"chunk_size must be >= 1, got {C}")
    return _chunk_matrices_cast(W, N, S, C, torch.device(device or "cpu"), dtype)


@lru_cache(maxsize=128)
def _chunk_matrices_cast(W: int, N: int, S: int, C: int, device: torch.device, dtype) -> ChunkMatrices:
    # cached per device and dtype: a host-to-GPU copy on every call would synchronise the stream
    return _chunk_matrices_cpu(W, N, S, C).to(device=device, dtype=dtype)


def chunk_transition(window: int, resolution: int, chunk_size: int) -> torch.Tensor:
    """The state map across one chunk of ``C`` tokens with no input: ``A_C = P^C - Y Minv Rprev``.

    With ``Minv K`` folded into the chunk's own contribution, ``F_next = A_C F + Y Minv K``: the
    states at chunk boundaries follow a fixed linear recurrence (a scan over chunks). ``A_C``
    equals ``A^C`` (``A`` from :func:`transition_matrix`). Returns ``[N, N]`` float64.
    """
    W, N, _ = check_config(window, resolution)
    m = _chunk_matrices_cpu(W, N, N, _as_int("chunk_size", chunk_size))
    return rotation_matrix(W, N, m.erase_inv.shape[0]) - m.write_out @ m.erase_inv @ m.read_prev
