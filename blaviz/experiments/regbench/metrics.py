"""RegBench's metrics at every scored position, and the task behind :func:`train`'s interface.

*Validity*: the argmax over the 18 symbols is a legal next symbol; *TV*: the total variation
distance between the softmax over the symbols and the automaton's next-symbol law. Both are
averaged over the scored positions, pooled and by position range (``"pos 0-63"``, ...).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from blaviz.data.regbench import IGNORE_INDEX, NUM_SYMBOLS, RegBenchData
from blaviz.experiments.regbench.data import RegBenchSetup, generate, length_groups
from blaviz.experiments.train import TaskData

__all__ = ["position_scores", "position_means", "RegBenchTaskData"]


def _slice_names(edges) -> list[str]:
    return [f"pos {a}-{b - 1}" for a, b in zip(edges[:-1], edges[1:])]


def position_scores(logits: torch.Tensor, batch: RegBenchData) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-position metrics: ``(legal [B, L] bool, tv [B, L] float64, scored [B, L] bool)``.

    ``legal``: the argmax over the 18 symbol logits is a legal next symbol; ``tv``:
    ``0.5 * sum |softmax(symbol logits) - p_dfa|``. Their means over ``scored`` are
    :func:`~blaviz.data.regbench.validity_accuracy` and :func:`~blaviz.data.regbench.tv_distance`.
    """
    sym = logits[..., :NUM_SYMBOLS]
    legal_sym = batch.symbol_legal()
    ok = legal_sym.gather(-1, sym.argmax(-1, keepdim=True)).squeeze(-1)
    p_model = torch.softmax(sym.double(), dim=-1)
    p_dfa = legal_sym.double() / legal_sym.double().sum(-1, keepdim=True).clamp_min(1.0)
    tv = 0.5 * (p_model - p_dfa).abs().sum(-1)
    return ok, tv, batch.score_mask


def position_means(values: torch.Tensor, scored: torch.Tensor, edges) -> dict[str, float]:
    """Means of per-position ``values [B, L]`` over ``scored`` positions in each range of ``edges``
    (named as in a record's ``per_slice``: ``"pos 0-63"``, ...)."""
    pos = torch.arange(values.shape[1], device=values.device)
    out = {}
    for name, a, b in zip(_slice_names(edges), edges[:-1], edges[1:]):
        m = scored & (pos >= a) & (pos < b)
        out[name] = float(values[m].double().mean()) if m.any() else float("nan")
    return out


class RegBenchTaskData(TaskData):
    """RegBench behind the :class:`~blaviz.experiments.train.TaskData` interface (data cached per process).

    The pooled number :func:`train` follows (history, early stop) is the validity accuracy;
    ``evaluate`` also reports TV distance and the loss under ``metrics``.
    """

    name = "regbench"

    def __init__(self, setup: RegBenchSetup):
        self.setup = setup

    def splits(self):
        return generate(self.setup)

    def train_groups(self):
        return length_groups(self.splits()[0], self.setup.bucket)

    def validation_sets(self):
        return {"val": self.splits()[1]}

    def test_sets(self):
        return {"test": self.splits()[2]}

    @torch.no_grad()
    def evaluate(self, model, sets: dict, *, device, batch_size: int = 256) -> dict:
        """Validity, TV distance and loss over all prompts of ``sets`` (pooled), by position too."""
        was_training = model.training
        model.eval()
        edges = self.setup.position_slices
        n_slices = len(edges) - 1
        ok_sum = tv_sum = n_sum = 0.0
        loss_sum = loss_n = 0.0
        sl_ok, sl_tv, sl_n = np.zeros(n_slices), np.zeros(n_slices), np.zeros(n_slices)
        for data in sets.values():
            for i in range(0, len(data), batch_size):
                batch = data[i:i + batch_size]
                L = int(batch.lengths.max())
                batch = _trim(batch, L).to(device)
                logits = model.logits(model(batch.inputs)).float()
                labelled = batch.targets != IGNORE_INDEX
                loss_sum += float(F.cross_entropy(logits[labelled], batch.targets[labelled], reduction="sum"))
                loss_n += int(labelled.sum())
                ok, tv, scored = position_scores(logits, batch)
                ok_sum += float(ok[scored].sum())
                tv_sum += float(tv[scored].sum())
                n_sum += int(scored.sum())
                pos = torch.arange(L, device=logits.device)
                for j in range(n_slices):
                    m = scored & (pos >= edges[j]) & (pos < edges[j + 1])
                    sl_ok[j] += float(ok[m].sum())
                    sl_tv[j] += float(tv[m].sum())
                    sl_n[j] += int(m.sum())
        model.train(was_training)
        names = _slice_names(edges)
        nan = float("nan")
        validity = ok_sum / n_sum if n_sum else nan
        return {
            "pooled": validity,
            "per_slice": {k: (float(sl_ok[j] / sl_n[j]) if sl_n[j] else nan) for j, k in enumerate(names)},
            "metrics": {
                "validity": validity,
                "tv": tv_sum / n_sum if n_sum else nan,
                "loss": loss_sum / loss_n if loss_n else nan,
                "scored_positions": int(n_sum),
                "tv_by_position": {k: (float(sl_tv[j] / sl_n[j]) if sl_n[j] else nan) for j, k in enumerate(names)},
            },
        }


def _trim(batch: RegBenchData, L: int) -> RegBenchData:
    """The first ``L`` positions of every prompt (evaluation pads a batch only to its longest prompt)."""
    return replace(batch, **{name: getattr(batch, name)[:, :L]
                             for name in ("inputs", "targets", "mask", "score_mask", "states")})
