"""blaviz.testing: the metric and the float64 check that the tests, gates and probe share."""
import math

import pytest
import torch

from blaviz.testing import assert_close_rms, assert_close_to_reference, fwd_bwd_errors, rel_rms


def test_rel_rms_values():
    e = torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert rel_rms(e, e) == 0.0
    # ||(0.3, 0.4)|| / ||(3, 4)|| = 0.1, the mean over elements cancels
    assert rel_rms(e * 1.1, e) == pytest.approx(0.1, rel=1e-12)
    assert rel_rms(torch.zeros(2), e) == pytest.approx(1.0)


def test_rel_rms_is_computed_in_float64():
    # float32 squares of 1e30 overflow; the float64 computation does not
    e = torch.full((4,), 1e30, dtype=torch.float32)
    assert rel_rms(e * 1.5, e) == pytest.approx(0.5, rel=1e-6)


def test_rel_rms_non_finite_fails_every_tolerance():
    e = torch.ones(3)
    a = torch.tensor([1.0, float("nan"), 1.0])
    assert not rel_rms(a, e) <= 1e9
    assert not rel_rms(torch.tensor([1.0, float("inf"), 1.0]), e) <= 1e9


def test_rel_rms_refuses_broadcasting():
    with pytest.raises(ValueError, match="shapes differ"):
        rel_rms(torch.ones(3, 1), torch.ones(3))
    with pytest.raises(TypeError):
        rel_rms([1.0], torch.ones(1))


def test_assert_close_rms():
    e = torch.randn(5, dtype=torch.float64)
    assert_close_rms(e + 1e-14, e, 1e-12)
    with pytest.raises(AssertionError, match="relative RMS"):
        assert_close_rms(e + 1.0, e, 1e-3, what="x")
    with pytest.raises(AssertionError, match="non-finite"):
        assert_close_rms(torch.full((5,), float("nan"), dtype=torch.float64), e, 1.0)


def _inputs(dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(7, 5, generator=g, dtype=dtype), torch.randn(5, 3, generator=g, dtype=dtype)]


def test_fwd_bwd_errors_exact_function_is_zero():
    errs = fwd_bwd_errors(lambda a, b: (a @ b).tanh(), _inputs(), names=["a", "b"])
    assert set(errs) == {"output", "grad a", "grad b"}
    assert max(errs.values()) == 0.0


def test_fwd_bwd_errors_float32_against_float64():
    errs = fwd_bwd_errors(lambda a, b: (a @ b).tanh(), _inputs(torch.float32))
    assert 0.0 < max(errs.values()) < 1e-5


def test_fwd_bwd_errors_sees_a_wrong_gradient():
    class WrongGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3       # the true derivative is 2

    errs = fwd_bwd_errors(WrongGrad.apply, [torch.randn(6, dtype=torch.float64)],
                          lambda x: x * 2, names=["x"])
    assert errs["output"] == 0.0
    assert errs["grad x"] == pytest.approx(0.5)
    with pytest.raises(AssertionError, match=r"\['grad x'\]"):
        assert_close_to_reference(WrongGrad.apply, [torch.randn(6, dtype=torch.float64)],
                                  lambda x: x * 2, tol=1e-3, names=["x"])


def test_fwd_bwd_errors_reference_gets_float64_inputs():
    seen = []

    def ref(a, b):
        seen.append((a.dtype, b.dtype))
        return a @ b

    fwd_bwd_errors(lambda a, b: a @ b, _inputs(torch.float32), ref)
    assert seen == [(torch.float64, torch.float64)]


def test_fwd_bwd_errors_tuples_none_and_non_tensors():
    # a result shaped like bla_attention's (o, None) or (o, BLAState(F, G, position))
    def fn(a, b):
        return a @ b, (a.sum(0), b * 2, 7), None

    errs = fwd_bwd_errors(fn, _inputs(torch.float32))
    assert set(errs) == {"output0", "output1", "output2", "grad input0", "grad input1"}
    assert all(0.0 <= e < 1e-5 for e in errs.values())


def test_fwd_bwd_errors_unused_input_has_zero_gradient():
    errs = fwd_bwd_errors(lambda a, b: a * 2, _inputs(), lambda a, b: a * 2.001)
    assert errs["grad input1"] == 0.0
    assert errs["grad input0"] == pytest.approx(0.001 / 2.001, rel=1e-9)


def test_fwd_bwd_errors_nan_output_fails():
    errs = fwd_bwd_errors(lambda a: a / 0.0 * 0.0, [torch.randn(3)], lambda a: a)
    assert math.isnan(errs["output"])
    with pytest.raises(AssertionError):
        assert_close_to_reference(lambda a: a / 0.0 * 0.0, [torch.randn(3)], lambda a: a, tol=1.0)


def test_fwd_bwd_errors_without_backward():
    errs = fwd_bwd_errors(lambda a, b: a @ b, _inputs(), backward=False)
    assert set(errs) == {"output"}


def test_fwd_bwd_errors_mismatched_outputs():
    with pytest.raises(ValueError, match="returned"):
        fwd_bwd_errors(lambda a, b: (a, b), _inputs(), lambda a, b: a)
    with pytest.raises(ValueError, match="names"):
        fwd_bwd_errors(lambda a, b: a, _inputs(), names=["a"])
