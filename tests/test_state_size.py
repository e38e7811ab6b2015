"""State sizes per BLA_SPEC section 7, per head and per layer, and their argument checks."""
import pytest

from blaviz.state_size import MIXERS, state_size, state_size_per_head


@pytest.mark.parametrize("mixer,kwargs,want", [
    ("bla", dict(resolution=15), 2 * 15 * 64),
    ("swa", dict(window=128), 2 * 128 * 64),
    ("gsa", dict(num_slots=32), 2 * 32 * 64),
    ("abc", dict(num_slots=32), 2 * 32 * 64),
    ("linear", {}, 64 * 64),
    ("gla", {}, 64 * 64),
    ("gated_deltanet", {}, 64 * 64),
    ("mamba2", dict(d_state=128), 128 * 64),
    ("softmax", dict(seq_len=2048), 2 * 2048 * 64),
])
def test_per_head_and_per_layer(mixer, kwargs, want):
    assert state_size_per_head(mixer, head_dim=64, **kwargs) == want
    assert state_size(mixer, head_dim=64, num_heads=4, **kwargs) == 4 * want


def test_value_dim_and_full_resolution():
    assert state_size_per_head("bla", head_dim=64, value_dim=32, resolution=5) == 5 * 96
    assert state_size("bla", head_dim=64, resolution=128) == state_size("swa", head_dim=64, window=128)
    assert set(MIXERS) >= {"bla", "swa", "gsa", "softmax"}


@pytest.mark.parametrize("call,match", [
    (lambda: state_size("mamba3", head_dim=64), "mixer must be one of"),
    (lambda: state_size("bla", head_dim=64), "resolution must be a positive integer"),
    (lambda: state_size("swa", head_dim=0, window=8), "head_dim must be a positive integer"),
    (lambda: state_size("swa", head_dim=64, window=8.5), "window must be a positive integer"),
    (lambda: state_size("swa", head_dim=64, num_heads=True, window=8), "num_heads must be a positive integer"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
