"""State size of each token mixer: the x-axis of the state-efficiency experiments.

Convention (BLA_SPEC section 7): the number of real numbers a mixer must keep per layer to
process the next token, summed over heads, counting keys and values but not the position
counter. For one head of head dimension ``d``:

========================  =====================  ==========================================
mixer                     per head               why
========================  =====================  ==========================================
``bla``                   ``2 * N * d``          N real frequency coefficients for K and V
``swa``                   ``2 * W * d``          the last W keys and values
``gsa`` / ``abc``         ``2 * S * d``          S key slots and S value slots
``linear``, ``gla``,      ``d_k * d_v``          one outer-product memory
``gated_deltanet``
``mamba2``                ``d_state * d_head``   the SSM state (conv cache not counted)
``softmax`` (full)        ``2 * T * d``          the whole KV cache at sequence length T
========================  =====================  ==========================================

The MQAR literature (Zoology, Based) reports state per layer; so does :func:`state_size`.
Short convolutions' caches are not counted for any mixer (they are the same for all).
"""
from __future__ import annotations

MIXERS = ("bla", "swa", "gsa", "abc", "linear", "gla", "gated_deltanet", "mamba2", "softmax")


def _positive_int(name: str, value) -> int:
    if value is None or isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def state_size_per_head(mixer: str, *, head_dim: int, window: int | None = None,
                        resolution: int | None = None, num_slots: int | None = None,
                        value_dim: int | None = None, seq_len: int | None = None,
                        d_state: int | None = None) -> int:
    """Real numbers of recurrent state one head keeps (see the module table).

    ``head_dim`` is ``d`` (``d_k``); ``value_dim`` is ``d_v`` (defaults to ``head_dim``).
    """
    d = _positive_int("head_dim", head_dim)
    dv = d if value_dim is None else _positive_int("value_dim", value_dim)
    if mixer == "bla":
        return _positive_int("resolution", resolution) * (d + dv)
    if mixer == "swa":
        return _positive_int("window", window) * (d + dv)
    if mixer in ("gsa", "abc"):
        return _positive_int("num_slots", num_slots) * (d + dv)
    if mixer in ("linear", "gla", "gated_deltanet"):
        return d * dv
    if mixer == "mamba2":
        return _positive_int("d_state", d_state) * dv
    if mixer == "softmax":
        return _positive_int("seq_len", seq_len) * (d + dv)
    raise ValueError(f"mixer must be one of {MIXERS}, got {mixer!r}")


def state_size(mixer: str, *, head_dim: int, num_heads: int = 1, **kwargs) -> int:
    """State per layer (all heads): ``num_heads * state_size_per_head(mixer, ...)``.

    >>> state_size("bla", head_dim=64, num_heads=2, resolution=16)
    4096
    >>> state_size("swa", head_dim=64, num_heads=2, window=128)
    32768
    """
    return _positive_int("num_heads", num_heads) * state_size_per_head(mixer, head_dim=head_dim, **kwargs)
