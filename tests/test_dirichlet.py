"""BLA_SPEC section 6, identity 1, and the real cos/sin machinery against the complex definitions."""
import math

import pytest
import torch

from blaviz import dirichlet as d

CONFIGS = [(16, 5), (16, 7), (9, 9), (8, 8), (12, 1), (64, 15)]


def complex_state(W, N, D=3, gen=None):
    """A random conjugate-symmetric complex F over the frequency set, and its real layout."""
    m = d.frequencies(W, N)
    M, has_nyq = d.half_frequencies(W, N)
    a = torch.randn(M, D, dtype=torch.float64, generator=gen)
    b = torch.randn(M, D, dtype=torch.float64, generator=gen)
    dc = torch.randn(1, D, dtype=torch.float64, generator=gen)
    ny = torch.randn(int(has_nyq), D, dtype=torch.float64, generator=gen)
    Fc = torch.zeros(len(m), D, dtype=torch.complex128)
    for i, mm in enumerate(m.tolist()):
        if mm == 0:
            Fc[i] = dc[0]
        elif has_nyq and mm == W // 2:
            Fc[i] = ny[0]
        elif mm > 0:
            Fc[i] = torch.complex(a[mm - 1], b[mm - 1])
        else:
            Fc[i] = torch.complex(a[-mm - 1], -b[-mm - 1])
    return m, Fc, torch.cat([dc, a, b, ny])


def test_frequency_sets():
    assert d.frequencies(16, 5).tolist() == [-2, -1, 0, 1, 2]
    assert d.frequencies(8, 8).tolist() == [-3, -2, -1, 0, 1, 2, 3, 4]
    assert d.frequencies(9, 9).tolist() == list(range(-4, 5))
    for W, N in CONFIGS:
        assert len(d.frequencies(W, N)) == N
        assert d.write_code(W, N, [0]).shape == (1, N)


@pytest.mark.parametrize("W", [7, 8, 9, 16])
def test_full_resolution_is_periodic_delta(W):
    x = torch.arange(-3 * W, 3 * W + 1)
    want = (x % W == 0).to(torch.float64)
    assert torch.allclose(d.dirichlet_kernel(x, W, W), want, atol=1e-12)
    assert torch.allclose(d.dirichlet_kernel_sum(x, W, W), want, atol=1e-12)


@pytest.mark.parametrize("W,N", CONFIGS)
def test_unit_dc_gain_and_closed_equals_sum(W, N):
    x = torch.arange(W)
    assert abs(float(d.dirichlet_kernel(x, N, W).sum()) - 1.0) < 1e-12
    # real lags, including some within 1e-9 .. 1e-300 of multiples of W where the closed form is 0/0:
    # the closed form reduces x to one period first, so it keeps full precision there too
    near = torch.tensor([1e-300, 1e-12, 1e-9, 1e-6], dtype=torch.float64)
    xr = torch.cat([torch.linspace(-2.5 * W, 2.5 * W, 997, dtype=torch.float64),
                    torch.tensor([0.0, W, -W, 2 * W], dtype=torch.float64),
                    near, -near, W - near, W + near, -2 * W + near])
    err = (d.dirichlet_kernel(xr, N, W) - d.dirichlet_kernel_sum(xr, N, W)).abs().max()
    assert err < 1e-13
    assert abs(float(d.dirichlet_kernel(0, N, W)) - N / W) < 1e-15


def test_closed_form_matches_textbook_formula():
    W, N = 32, 9
    x = torch.tensor([0.3, 1.0, 2.7, 13.0])
    want = torch.sin(math.pi * N * x / W) / (W * torch.sin(math.pi * x / W))
    assert torch.allclose(d.dirichlet_kernel(x, N, W), want.to(torch.float64), atol=1e-7)


@pytest.mark.parametrize("W,N", CONFIGS)
def test_real_codes_match_complex_definitions(W, N):
    g = torch.Generator().manual_seed(W * 100 + N)
    m, Fc, Fr = complex_state(W, N, gen=g)
    z = torch.exp(2j * math.pi * m.to(torch.float64) / W)
    # reconstruction at real lags: R_s(F) = Re (1/W) sum_m z_m^{-s} F_m
    s = torch.tensor([0.0, 1.0, 2.5, W - 1.0, -3.25], dtype=torch.float64)
    zs = torch.exp(-2j * math.pi * s[:, None] * m.to(torch.float64) / W)
    want = (zs @ Fc).real / W
    assert torch.allclose(d.reconstruct(Fr, s, W, N), want, atol=1e-12)
    # rotation: F_m -> z_m^p F_m, compared through reconstruction (the layout's meaning)
    for p in (1, 3, -2, W + 1):
        rotated = d.rotation_matrix(W, N, p) @ Fr
        want_p = (zs @ (Fc * z[:, None] ** p)).real / W
        assert torch.allclose(d.reconstruct(rotated, s, W, N), want_p, atol=1e-12)
        cos_t, sin_t = d.rotation_tables(W, N, [p])
        assert torch.allclose(d.rotate(Fr.T, cos_t, sin_t, d.swap_index(W, N)).T, rotated, atol=1e-13)
    # r(s) . c(p) = D_N(s - p) for integer p
    for p in (0, 2, 5):
        got = d.read_code(W, N, s) @ d.write_code(W, N, [p])[0]
        assert torch.allclose(got, d.dirichlet_kernel(s - p, N, W), atol=1e-12)


def test_rotation_group_properties():
    W, N = 10, 10
    P = d.rotation_matrix(W, N, 1)
    assert torch.allclose(torch.linalg.matrix_power(P, W), torch.eye(N, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(P @ P.T, torch.eye(N, dtype=torch.float64), atol=1e-12)


def test_transition_eigenvalues():
    # strictly inside the unit circle below full resolution (about 0.98 for W = 64)
    rho = torch.linalg.eigvals(d.transition_matrix(64, 15)).abs().max()
    assert 0.95 < rho < 0.999
    for N in (1, 5, 31):
        assert torch.linalg.eigvals(d.transition_matrix(64, N)).abs().max() < 1
    # at N = W: a shift register (nilpotent: A^W = 0)
    A = d.transition_matrix(8, 8)
    assert torch.allclose(torch.linalg.matrix_power(A, 8), torch.zeros(8, 8, dtype=torch.float64), atol=1e-12)


def test_slot_space_full_resolution_is_ring_buffer():
    for W in (6, 7):
        T, w = d.slot_space(W, W)
        shift = torch.diag(torch.ones(W - 1, dtype=torch.float64), -1)
        assert torch.allclose(T, shift, atol=1e-12)
        assert torch.allclose(w, torch.eye(W, dtype=torch.float64)[0], atol=1e-12)


def test_erasure_and_chunk_matrices():
    W, N, S, C = 16, 5, 7, 6
    m = d.chunk_matrices(W, N, S, C)
    L = torch.tril(d.dirichlet_kernel(torch.arange(C)[:, None] - torch.arange(C)[None, :], N, W), -1)
    assert torch.allclose(m.erase_inv @ (torch.eye(C, dtype=torch.float64) + L), torch.eye(C, dtype=torch.float64), atol=1e-12)
    short = d.chunk_matrices(W, N, S, 4)
    # a short last chunk uses the leading rows and columns
    for name in ("read_prev", "write_neg", "rot_cos", "rot_sin"):
        assert torch.equal(getattr(short, name), getattr(m, name)[:4])
    assert torch.allclose(short.erase_inv, m.erase_inv[:4, :4])
    assert torch.allclose(m.slot_read.T, d.read_code(W, N, d.slot_lags(W, S)))
    assert m.to(dtype=torch.float32).write_out.dtype == torch.float32


def test_slot_lags_and_start():
    assert d.slot_lags(8, 3).tolist() == pytest.approx([0, 8 / 3, 16 / 3])
    assert d.slot_start(8, 3).tolist() == [0, 3, 6]
    assert d.slot_start(8, 4).tolist() == [0, 2, 4, 6]


@pytest.mark.parametrize("kwargs,match", [
    (dict(window=16, resolution=4), "resolution must be odd"),
    (dict(window=16, resolution=17), "resolution must satisfy"),
    (dict(window=16, resolution=0), "resolution must satisfy"),
    (dict(window=0, resolution=1), "window must be >= 1"),
    (dict(window=16, resolution=5, num_slots=0), "num_slots must be >= 1"),
    (dict(window=16.5, resolution=5), "window must be an integer"),
    (dict(window=16, resolution="5"), "resolution must be an integer"),
    (dict(window=16, resolution=True), "resolution must be an integer"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        d.check_config(**kwargs)
    with pytest.raises(ValueError, match=match):
        d.chunk_matrices(kwargs["window"], kwargs["resolution"], kwargs.get("num_slots"), 8)


def test_bad_kernel_args():
    with pytest.raises(ValueError, match="resolution"):
        d.dirichlet_kernel(1.0, 6, 16)
    with pytest.raises(ValueError, match="chunk_size"):
        d.chunk_matrices(16, 5, None, 0)
    with pytest.raises(ValueError, match="steps must be integers"):
        d.rotation_tables(16, 5, [0.5])


@pytest.mark.parametrize("W,N,C", [(16, 5, 8), (8, 8, 3), (64, 15, 64), (9, 9, 20)])
def test_chunk_transition_is_power_of_one_step(W, N, C):
    A = d.transition_matrix(W, N)
    assert torch.allclose(d.chunk_transition(W, N, C), torch.linalg.matrix_power(A, C), atol=1e-11)
