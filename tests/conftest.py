"""Shared test helpers: fla-style relative-RMS comparison, NaN-poisoned allocations, seeds."""
import os

import pytest
import torch

# Triton makes its own @jit helpers (tl.zeros, ...) for the interpreter only if the interpreter is
# on when Triton is first imported; the kernel package turns it on where there is no GPU, so it
# is imported here, before any test module imports Triton, whatever order they are collected in.
import blaviz.ops.bla.triton  # noqa: E402,F401

# the metric lives in the library; re-exported for the tests that import it from here
from blaviz.testing import assert_close_rms, rel_rms  # noqa: F401


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(int(os.environ.get("BLAVIZ_TEST_SEED", "0")))
    yield


@pytest.fixture
def nan_poisoned_empty(monkeypatch):
    """Make torch.empty / empty_like return NaN-filled memory, so unwritten outputs fail loudly."""
    real_empty, real_empty_like = torch.empty, torch.empty_like

    def empty(*args, **kwargs):
        t = real_empty(*args, **kwargs)
        if t.is_floating_point():
            t.fill_(float("nan"))
        return t

    def empty_like(*args, **kwargs):
        t = real_empty_like(*args, **kwargs)
        if t.is_floating_point():
            t.fill_(float("nan"))
        return t

    monkeypatch.setattr(torch, "empty", empty)
    monkeypatch.setattr(torch, "empty_like", empty_like)
    yield


@pytest.fixture
def one_thread():
    """One intra-op thread: tiny float64 matrices only lose time to extra threads (a lot on a loaded machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
