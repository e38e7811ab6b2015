"""Which RegBench prompts a run sees (:class:`RegBenchSetup`), their splits and length groups."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from blaviz.data.regbench import VOCAB_SIZE, RegBenchData, make_regbench

__all__ = ["RegBenchSetup", "generate", "length_groups"]


@dataclass(frozen=True)
class RegBenchSetup:
    """Which RegBench prompts a run trains, validates and is tested on.

    ``num_val`` and ``num_test`` automata are drawn together, disjoint from the ``num_train``
    training automata and from each other (:func:`blaviz.data.regbench.make_regbench` deduplicates
    by language). ``max_len`` truncates prompts (``None``: keep them whole); ``bucket`` is the
    granularity of the training length groups; ``position_slices`` are the edges of the position
    ranges the validity accuracy is also reported on.
    """

    num_train: int = 2_500
    num_val: int = 100
    num_test: int = 500
    max_len: int | None = 512
    bucket: int = 64
    num_strings_range: tuple[int, int] = (10, 19)
    string_len_range: tuple[int, int] = (1, 49)
    num_states_range: tuple[int, int] = (4, 12)
    alphabet_size_range: tuple[int, int] = (4, 18)
    edges_per_state: tuple[int, int] = (1, 3)
    position_slices: tuple[int, ...] = (0, 64, 128, 256, 512)
    seed: int = 0

    def __post_init__(self):  # lists (e.g. from JSON) become tuples, so the data cache can hash them
        for name in ("num_strings_range", "string_len_range", "num_states_range", "alphabet_size_range",
                     "edges_per_state", "position_slices"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))

    @property
    def vocab_size(self) -> int:
        """The token vocabulary (18 symbols, separator, padding), the same for every setup."""
        return VOCAB_SIZE

    @property
    def longest(self) -> int:
        """The longest prompt this setup can produce (after truncation)."""
        lo, hi = self.string_len_range
        full = self.num_strings_range[1] * (hi + 1) - 1
        return full if self.max_len is None else min(full, self.max_len)

    def dfa_kwargs(self) -> dict:
        return {"num_states_range": self.num_states_range, "alphabet_size_range": self.alphabet_size_range,
                "edges_per_state": self.edges_per_state}


@lru_cache(maxsize=4)
def generate(setup: RegBenchSetup) -> tuple[RegBenchData, RegBenchData, RegBenchData]:
    """``(train, val, test)`` splits of ``setup`` (cached per process)."""
    train_set, held_out = make_regbench(setup.num_train, setup.num_val + setup.num_test, seed=setup.seed,
                                        num_strings_range=setup.num_strings_range,
                                        string_len_range=setup.string_len_range, max_len=setup.max_len,
                                        dfa_kwargs=setup.dfa_kwargs())
    return train_set, held_out[:setup.num_val], held_out[setup.num_val:]


def length_groups(data: RegBenchData, bucket: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Training groups ``[(inputs [n, L_b], targets [n, L_b]), ...]``: prompts whose length rounds up
    to the same multiple ``L_b`` of ``bucket`` (cut to the padded width), shortest group first."""
    width = data.inputs.shape[1]
    cut = torch.clamp(((data.lengths + bucket - 1) // bucket) * bucket, max=width)
    groups = []
    for L in sorted(set(cut.tolist())):
        idx = torch.nonzero(cut == L).squeeze(1)
        groups.append((data.inputs[idx, :L].contiguous(), data.targets[idx, :L].contiguous()))
    return groups
