"""Reference scores a trained model is read against: the automaton itself, context-free guesses,
and in-context n-gram models (the statistic Akyürek et al.'s "n-gram heads" compute)."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from blaviz.data.regbench import NUM_SYMBOLS, VOCAB_SIZE, RegBenchData, oracle_logits, tv_distance
from blaviz.experiments.regbench.data import RegBenchSetup, generate
from blaviz.experiments.regbench.metrics import position_scores

__all__ = ["ngram_logits", "baselines"]


def ngram_logits(batch: RegBenchData, n: int, *, neg: float = -1e4) -> torch.Tensor:
    """An in-context ``n``-gram model with back-off: float32 ``[N, L, VOCAB_SIZE]`` logits.

    At position ``i`` it counts, in the prompt up to ``i``, which symbols followed the last
    ``n - 1`` tokens (separators included: "after a separator" is the start state), and predicts
    those counts normalised; when that context was never seen it backs off to ``n - 2`` tokens, and
    so on down to the in-context unigram (symbol frequencies so far), then to uniform. This is the
    kind of statistic the "n-gram heads" of Akyürek et al. compute. ``log 0`` becomes ``neg``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    N, L = batch.inputs.shape
    out = np.full((N, L, VOCAB_SIZE), neg, dtype=np.float32)
    uniform = np.zeros(NUM_SYMBOLS)
    inputs = batch.inputs.numpy()
    for b in range(N):
        toks = inputs[b, :int(batch.lengths[b])].tolist()
        counts = [defaultdict(lambda: np.zeros(NUM_SYMBOLS)) for _ in range(n)]   # by context length k
        for i, tok in enumerate(toks):
            if tok < NUM_SYMBOLS:  # record tok after each context of length k < n ending at i - 1
                for k in range(n):
                    if i - k >= 0:
                        counts[k][tuple(toks[i - k:i])][tok] += 1
            p = uniform
            for k in range(min(n - 1, i + 1), -1, -1):  # the longest context with any count
                c = counts[k].get(tuple(toks[i + 1 - k:i + 1]))
                if c is not None and c.sum() > 0:
                    p = c / c.sum()
                    break
            if p is uniform:
                out[b, i, :NUM_SYMBOLS] = 0.0
            else:
                with np.errstate(divide="ignore"):
                    out[b, i, :NUM_SYMBOLS] = np.where(p > 0, np.log(np.maximum(p, 1e-30)), neg)
    return torch.from_numpy(out)


def _mean_scored(values: torch.Tensor, scored: torch.Tensor) -> float:
    return float(values[scored].double().mean()) if scored.any() else float("nan")


def baselines(setup: RegBenchSetup, *, ngrams=(1, 2, 3), test: RegBenchData | None = None) -> dict:
    """Reference numbers on the test split of ``setup`` (or on ``test``): ``{name: {"validity", "tv"}}``.

    * ``oracle``: the automaton's own law (validity 1, TV 0);
    * ``uniform guess``: a symbol drawn uniformly from the 18 (its expected validity is the mean
      share of legal symbols; its TV is that of the uniform distribution);
    * ``most frequent symbol``: always the symbol most frequent in the training prompts;
    * ``in-context n-gram``: :func:`ngram_logits` for each ``n`` in ``ngrams``.
    """
    train_set = generate(setup)[0]
    if test is None:
        test = generate(setup)[2]
    legal = test.symbol_legal()
    scored = test.score_mask
    out = {}
    ok, tv, _ = position_scores(oracle_logits(test), test)
    out["oracle"] = {"validity": _mean_scored(ok, scored), "tv": _mean_scored(tv, scored)}
    zeros = torch.zeros(*test.inputs.shape, VOCAB_SIZE)
    out["uniform guess"] = {"validity": _mean_scored(legal.double().sum(-1) / NUM_SYMBOLS, scored),
                            "tv": tv_distance(zeros, test)}
    counts = torch.bincount(train_set.inputs[train_set.inputs < NUM_SYMBOLS], minlength=NUM_SYMBOLS)
    top = int(counts.argmax())
    one_hot = zeros.clone()
    one_hot[..., top] = 1.0
    ok, tv, _ = position_scores(one_hot, test)
    out["most frequent symbol"] = {"validity": _mean_scored(ok, scored), "tv": float("nan"), "symbol": top}
    for n in ngrams:
        ok, tv, _ = position_scores(ngram_logits(test, n), test)
        out[f"in-context {n}-gram"] = {"validity": _mean_scored(ok, scored), "tv": _mean_scored(tv, scored)}
    return out
