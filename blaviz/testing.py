"""How blaviz checks an implementation against a float64 reference.

One metric and one check, shared by the tests, the benchmark gates and the layer's Triton probe:

* :func:`rel_rms` is flash-linear-attention's relative RMS error
  ``sqrt(mean((a - e)^2)) / sqrt(mean(e^2))``, computed in float64. A non-finite ``a`` gives
  ``nan`` or ``inf``, and every comparison ``err <= tol`` with it is False: NaN fails.
* :func:`fwd_bwd_errors` runs a function on the given inputs and a reference on the same inputs
  cast to float64, pulls both back with the same random cotangent, and returns the relative RMS
  error of every output and of the gradient of every input. A benchmark gate takes their
  maximum; :func:`assert_close_to_reference` raises with all of them listed.

Only torch is imported here: this module is part of the library, not the lab.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

__all__ = ["rel_rms", "assert_close_rms", "fwd_bwd_errors", "assert_close_to_reference"]


def rel_rms(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Relative RMS error of ``actual`` against ``expected``, in float64.

    Both tensors must have the same shape (broadcasting would hide a wrong layout). An all-zero
    ``expected`` divides by ``1e-300``, so the result is then the absolute RMS error scaled up:
    any nonzero error fails.
    """
    if not isinstance(actual, torch.Tensor) or not isinstance(expected, torch.Tensor):
        raise TypeError(f"rel_rms takes two tensors, got {type(actual).__name__} and "
                        f"{type(expected).__name__}")
    if actual.shape != expected.shape:
        raise ValueError(f"rel_rms: shapes differ, {tuple(actual.shape)} vs {tuple(expected.shape)}")
    a = actual.detach().to(torch.float64)
    e = expected.detach().to(device=a.device, dtype=torch.float64)
    if a.numel() == 0:
        return 0.0
    num = (a - e).pow(2).mean().sqrt()
    den = e.pow(2).mean().sqrt().clamp_min(1e-300)
    return float(num / den)


def assert_close_rms(actual: torch.Tensor, expected: torch.Tensor, tol: float,
                     what: str = "output") -> None:
    """Assert equal shapes, finite ``actual`` and ``rel_rms(actual, expected) <= tol``."""
    assert actual.shape == expected.shape, \
        f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert torch.isfinite(actual).all(), f"{what}: non-finite values"
    err = rel_rms(actual, expected)
    assert err <= tol, f"{what}: relative RMS error {err:.3e} > {tol:.1e}"


def _tensors(result) -> list[torch.Tensor | None]:
    """The tensors of a function's result, in order: a tensor, or nested tuples/lists of them
    (a ``BLAState`` is a tuple; its integer position and ``None`` entries are kept as ``None`` so
    both sides line up)."""
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (tuple, list)):
        return [t for r in result for t in _tensors(r)]
    return [None]


def _run(fn, inputs, dtype, cotangent_seed):
    """Call ``fn`` on fresh leaves (cast to ``dtype`` when given); return outputs and gradients."""
    leaves = []
    for x in inputs:
        x = x.detach()
        if dtype is not None and x.is_floating_point():
            x = x.to(dtype)
        leaves.append(x.clone().requires_grad_(x.is_floating_point()))
    outs = _tensors(fn(*leaves))
    gen = torch.Generator(device="cpu").manual_seed(cotangent_seed)
    loss = 0.0
    for o in outs:
        if o is not None and o.is_floating_point() and o.requires_grad:
            w = torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o.device)
            loss = loss + (o.to(torch.float64) * w).sum()
    wrt = [x for x in leaves if x.requires_grad]
    if isinstance(loss, torch.Tensor):
        grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    else:                                   # nothing differentiable came out
        grads = [None] * len(wrt)
    # an input the output does not depend on has gradient zero, not "missing"
    grads = [torch.zeros_like(x) if g is None else g for x, g in zip(wrt, grads)]
    return [None if o is None else o.detach() for o in outs], grads


def fwd_bwd_errors(fn: Callable, inputs: Sequence[torch.Tensor], ref_fn: Callable | None = None, *,
                   names: Sequence[str] | None = None, backward: bool = True,
                   seed: int = 0) -> dict[str, float]:
    """Relative RMS errors of ``fn`` against ``ref_fn`` run in float64, outputs and gradients.

    Args:
        fn: called as ``fn(*inputs)``; returns a tensor or (nested) tuples of tensors. ``None``
            entries and non-tensors (e.g. a state's integer position) are skipped.
        inputs: tensors in the precision ``fn`` is to be tested in (e.g. bfloat16 on CUDA).
            Every floating input becomes a fresh leaf; its gradient is compared.
        ref_fn: the reference, called on the same values cast to float64 (default: ``fn``
            itself, for functions that compute float64 inputs exactly).
        names: one name per input for the keys of the result (default ``input0, input1, ...``).
        backward: also compare gradients, through a fixed random cotangent on every output
            (the same cotangent on both sides, drawn from ``seed``).
    Returns:
        ``{"output0": err, ..., "grad input0": err, ...}``; keys ``output`` (one output) or
        ``output{i}``, and ``grad {name}`` for every floating input. ``max(...)`` of the values
        is the gate error; a NaN value fails every ``<=`` test.
    """
    inputs = list(inputs)
    if names is None:
        names = [f"input{i}" for i in range(len(inputs))]
    if len(names) != len(inputs):
        raise ValueError(f"names has {len(names)} entries for {len(inputs)} inputs")
    ref_fn = fn if ref_fn is None else ref_fn
    ctx = torch.enable_grad() if backward else torch.no_grad()
    with ctx:
        got_o, got_g = _run(fn, inputs, None, seed)
        ref_o, ref_g = _run(ref_fn, inputs, torch.float64, seed)
    if len(got_o) != len(ref_o):
        raise ValueError(f"fn returned {len(got_o)} tensors, ref_fn {len(ref_o)}")
    errors: dict[str, float] = {}
    for i, (a, b) in enumerate(zip(got_o, ref_o)):
        if (a is None) != (b is None):
            raise ValueError(f"output {i}: one side returned None, the other a tensor")
        if a is not None:
            errors["output" if len(got_o) == 1 else f"output{i}"] = rel_rms(a, b)
    if backward:
        float_names = [n for n, x in zip(names, inputs) if x.is_floating_point()]
        for name, a, b in zip(float_names, got_g, ref_g):
            errors[f"grad {name}"] = rel_rms(a, b)
    return errors


def assert_close_to_reference(fn: Callable, inputs: Sequence[torch.Tensor],
                              ref_fn: Callable | None = None, *, tol: float,
                              names: Sequence[str] | None = None, backward: bool = True,
                              seed: int = 0, what: str = "") -> dict[str, float]:
    """:func:`fwd_bwd_errors`, then assert every error is ``<= tol``; returns the errors.

    The message lists every error, so one failing gradient is seen next to the passing ones.
    """
    errors = fwd_bwd_errors(fn, inputs, ref_fn, names=names, backward=backward, seed=seed)
    bad = {k: e for k, e in errors.items() if not e <= tol}
    if bad:
        listing = ", ".join(f"{k} {e:.3e}" for k, e in errors.items())
        raise AssertionError(f"{what + ': ' if what else ''}relative RMS error above {tol:.1e} "
                             f"in {sorted(bad)} ({listing})")
    return errors
