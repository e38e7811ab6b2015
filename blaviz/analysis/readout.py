"""A read-out model of in-window recall: how well can BLA's slots answer an ideal query?

The MQAR task asks a model to return the value stored with a key seen earlier. Take the best
case for the mixer: the query is the target key itself, keys and values are random unit
vectors, and the only loss is what the read kernels do. Items (a key and its value) sit on every
second token, as in MQAR; slot ``j`` reads them through BLA's fixed kernel ``h_j`` (the ABC
view, :func:`blaviz.dirichlet.bla_slot_kernels`)::

    K~_j = sum_i h_j(D_i) k_i,     V~_j = sum_i h_j(D_i) v_i          (D_i = 0, 2, 4, ...)
    p = softmax_j(beta k* . K~_j),   o = sum_j p_j V~_j
    recalled = argmax_c (u_c . o) over the value vocabulary u_1..u_V (the true value among them)

``beta`` is a temperature; the *ideal* query uses the one (from a grid, ``inf`` = hard argmax
over slots) that maximises the mean recall of the configuration. The recall at lag ``D`` is
the chance that the target written ``D`` tokens ago comes back; *in-window recall* is its mean
over the item lags ``0, 2, .., W-2``.

What it predicts, in the book's quantities: a slot mixes about ``W/N`` neighbouring items
(the main lobe of the Dirichlet kernel), so a key competes with its neighbours' keys in the
score and its value with theirs in the output. With ``N = W`` (SWA) the slots are the items
and recall is 1; it falls as ``W/N`` grows, rises with the head width ``d`` (random keys
collide less), and with more slots ``S`` than ``N`` (reads between the peaks).

``erasure="exact"`` uses the truncated kernels of :mod:`blaviz.ops.exact_erasure` instead
(what BLA would read if it could erase the leaving token exactly).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from blaviz.dirichlet import bla_slot_kernels, check_config
from blaviz.ops.exact_erasure import truncated_dirichlet_kernels

__all__ = ["ReadoutRecall", "read_kernels", "readout_recall", "readout_trial",
           "DEFAULT_TEMPERATURES"]

DEFAULT_TEMPERATURES = (4.0, 8.0, 16.0, 32.0, 64.0, 128.0, math.inf)
ERASURES = ("periodic", "exact")


class ReadoutRecall(NamedTuple):
    """The prediction for one configuration.

    * ``recall``: in-window recall at the best temperature (a float in ``[0, 1]``).
    * ``temperature``: that temperature ``beta`` (``inf``: hard argmax over slots).
    * ``per_lag``: ``[W']`` recall at item lags ``lags`` (best temperature).
    * ``lags``: ``[W']`` the item lags ``0, 2, ..`` inside the window.
    * ``per_temperature``: ``{beta: in-window recall}`` for every temperature tried.
    """

    recall: float
    temperature: float
    per_lag: torch.Tensor
    lags: torch.Tensor
    per_temperature: dict


def read_kernels(window: int, resolution: int, num_slots: int | None, length: int,
                 erasure: str = "periodic") -> torch.Tensor:
    """Slot ``j``'s weight on the raw token at lag ``D``: ``[S, length]`` float64.

    ``periodic``: BLA's kernels (periodic Dirichlet over erasure-corrected keys);
    ``exact``: the truncated Dirichlet kernels of exact erasure.
    """
    if erasure not in ERASURES:
        raise ValueError(f"erasure must be one of {ERASURES}, got {erasure!r}")
    if erasure == "exact":
        return truncated_dirichlet_kernels(window, resolution, num_slots, length)
    return bla_slot_kernels(window, resolution, num_slots, length)


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def readout_trial(weights: torch.Tensor, target: torch.Tensor, head_dim: int,
                  num_candidates: int, temperatures,
                  gen: torch.Generator) -> torch.Tensor:
    """One random draw of the read-out model: which targets come back.

    ``weights [S, I]``: slot ``j``'s weight on item ``i``; ``target``: the
    items asked for. Returns ``hits [len(temperatures), len(target)]``.
    """
    unit = torch.nn.functional.normalize
    n_items = weights.shape[1]
    keys = unit(torch.randn(n_items, head_dim, generator=gen), dim=-1)
    vocab = unit(torch.randn(num_candidates, head_dim, generator=gen), dim=-1)
    which = torch.randint(num_candidates, (n_items,), generator=gen)
    slot_keys = weights @ keys                             # K~_j  [S, d]
    slot_logits = (weights @ vocab[which]) @ vocab.T       # u_c . V~_j  [S, V]
    scores = keys[target] @ slot_keys.T                    # k* . K~_j
    hits = []
    for beta in temperatures:
        if math.isinf(beta):                               # hard argmax
            logits = slot_logits[scores.argmax(-1)]
        else:
            logits = torch.softmax(beta * scores, dim=-1) @ slot_logits
        hits.append((logits.argmax(-1) == which[target]).float())
    return torch.stack(hits)


def readout_recall(window: int, resolution: int, num_slots: int | None = None,
                   head_dim: int = 64, *, num_candidates: int = 4096,
                   context: int | None = None, trials: int = 32,
                   temperatures=DEFAULT_TEMPERATURES, erasure: str = "periodic",
                   seed: int = 0) -> ReadoutRecall:
    """Predicted in-window recall of one BLA read-out (see the module docstring).

    Args:
        window, resolution, num_slots: ``W, N, S`` (``S`` defaults to ``N``).
        head_dim: ``d``, the width of keys, values and the query.
        num_candidates: size of the value vocabulary the answer is chosen from.
        context: tokens of history behind the query (default ``4 W``): items beyond the window
            still leak in through the kernels' tails.
        trials: random draws of keys, values and vocabulary.
        temperatures: the grid for ``beta`` (positive; ``inf`` allowed).
        erasure: ``periodic`` (BLA) or ``exact``.
        seed: for the random draws (the result is deterministic given the seed).
    Returns:
        :class:`ReadoutRecall`.
    """
    W, N, S = check_config(window, resolution, num_slots)
    d = _positive_int("head_dim", head_dim)
    V = _positive_int("num_candidates", num_candidates)
    trials = _positive_int("trials", trials)
    L = 4 * W if context is None else _positive_int("context", context)
    if L < W:
        raise ValueError(f"context must be >= window = {W}, got {L}")
    betas = tuple(float(b) for b in temperatures)
    if not betas or any(not b > 0 for b in betas):
        raise ValueError(f"temperatures must be a non-empty list of positive numbers, got "
                         f"{temperatures!r}")
    h = read_kernels(W, N, S, L, erasure)
    lags = torch.arange(0, L, 2)
    hl = h[:, lags].float()                                      # [S, I] slot weights on items
    target = (lags < W).nonzero().squeeze(1)                     # items inside the window
    gen = torch.Generator().manual_seed(seed)
    hits = sum(readout_trial(hl, target, d, V, betas, gen) for _ in range(trials))
    per = hits.double() / trials                                 # [betas, targets]
    mean = per.mean(-1)
    best = int(mean.argmax())
    return ReadoutRecall(recall=float(mean[best]), temperature=betas[best], per_lag=per[best],
                         lags=lags[target], per_temperature=dict(zip(betas, mean.tolist())))
