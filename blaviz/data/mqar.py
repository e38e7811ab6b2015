"""Multi-query associative recall (MQAR) with Zoology's semantics.

Layout of one example (``C = 2 * num_kv_pairs``)::

    position : 0   1   2   3  ...  C-2  C-1 | C ... seq_len-1
    inputs   : k1  v1  k2  v2 ...  kN   vN  | filler, with every key ki re-presented once,
                                            |   immediately followed by its value vi
    labels   : -100 everywhere, except labels[i] = vj at the position i holding the query key kj

* **Vocabulary.**  Token 0 is reserved (Zoology's placeholder: it is never a key).  Keys are
  drawn from the lower half ``[1, vocab_size // 2)``, values from the upper half
  ``[vocab_size // 2, vocab_size)``.  Within one example keys are distinct and values are
  distinct (both sampled without replacement, as in Zoology).
* **Queries.**  The query region ``[C, seq_len)`` is cut into ``space = (seq_len - C) // 2``
  two-token slots; slot ``j`` holds a query key at position ``C + 2j`` and its answer at
  ``C + 2j + 1``.  Each example draws ``num_kv_pairs`` distinct slots with the power-law weights
  ``p_j ∝ (j + 1) ** (power_a - 1)`` (Zoology's ``multiquery_ar``; ``power_a = 1`` is uniform,
  small ``power_a`` favours slots right after the context).  As in Zoology, key ``i`` (the i-th
  pair of the context) goes to the i-th slot drawn.
* **Label convention (standard causal LM, no further shift).**  ``labels[b, i]`` is the token the
  model must predict from ``inputs[b, :i + 1]``, i.e. train with
  ``F.cross_entropy(logits[:, i], labels[:, i], ignore_index=-100)`` where ``logits[:, i]`` is
  the model's output at input position ``i``.  At a query key position ``i`` the label is that
  key's value; with ``answers_in_input=True`` (default) the value is also written at
  ``inputs[b, i + 1]``, so ``labels[b, i] == inputs[b, i + 1]`` at every labelled position.
  (Zoology leaves a filler token there instead; ``answers_in_input=False`` reproduces that.
  A causal model never sees ``inputs[i + 1]`` when predicting at ``i``, so the choice does not
  change the difficulty of any single query.)
* **Filler.**  Every other position holds a uniform random token from ``[0, vocab_size)`` when
  ``random_non_queries`` (Zoology's default; it may coincide with a key, acting as a distractor
  that is not scored), else 0.

Randomness comes only from a ``torch.Generator`` seeded with ``seed`` (never the global RNG),
so outputs are a pure function of the arguments.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch

__all__ = [
    "IGNORE_INDEX",
    "MQARConfig",
    "MQARData",
    "MQARSlices",
    "MQAR_TRAIN_MIX",
    "MQAR_TRAIN_COUNTS",
    "MQAR_TEST_SLICES",
    "make_mqar",
    "mqar_train_set",
    "mqar_sets",
    "mqar_test_slices",
    "pad_and_concat",
    "slice_name",
]

IGNORE_INDEX = -100

# Zoology's standard MQAR training mix (seq_len, num_kv_pairs) and the example counts it uses
# per config (100k for the short config, 20k for each of the others).
MQAR_TRAIN_MIX: tuple[tuple[int, int], ...] = ((64, 4), (128, 8), (256, 16), (256, 32), (256, 64))
MQAR_TRAIN_COUNTS: tuple[int, ...] = (100_000, 20_000, 20_000, 20_000, 20_000)
# Evaluation slices (seq_len, num_kv_pairs); (512, 128) tests length extrapolation.
MQAR_TEST_SLICES: tuple[tuple[int, int], ...] = ((64, 4), (64, 8), (64, 16), (128, 32), (256, 64), (512, 128))

# Split tags mixed into the derived seeds so the train and test streams never coincide, even for
# a slice that appears in both (e.g. (64, 4)) under the same user seed.
_TRAIN_TAG, _TEST_TAG = 0x7A11, 0x7E57
# Rows generated per chunk: bounds the [rows, vocab_size // 2] scratch used for key sampling.
_CHUNK_ELEMS = 1 << 22


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _validate(num_examples, seq_len, num_kv_pairs, vocab_size, power_a) -> None:
    _check_int("num_examples", num_examples, 1)
    _check_int("num_kv_pairs", num_kv_pairs, 1)
    _check_int("seq_len", seq_len, 1)
    _check_int("vocab_size", vocab_size, 4)
    # Context (2 tokens per pair) plus one two-token slot (key, answer) per query.
    if seq_len < 4 * num_kv_pairs:
        raise ValueError(
            f"seq_len={seq_len} too short for num_kv_pairs={num_kv_pairs}: need seq_len >= "
            f"4 * num_kv_pairs = {4 * num_kv_pairs} (2 tokens per context pair + 2 per query)"
        )
    if vocab_size % 2:
        raise ValueError(f"vocab_size must be even (keys/values split it in halves), got {vocab_size}")
    if vocab_size // 2 - 1 < num_kv_pairs:
        raise ValueError(
            f"vocab_size={vocab_size} too small: {vocab_size // 2 - 1} distinct keys available "
            f"(token 0 reserved), need num_kv_pairs={num_kv_pairs}"
        )
    if not (isinstance(power_a, (int, float)) and np.isfinite(power_a) and power_a > 0):
        raise ValueError(f"power_a must be a finite float > 0, got {power_a!r}")


def _sample_distinct(gen: torch.Generator, rows: int, pool: int, k: int) -> torch.Tensor:
    """k distinct indices in [0, pool) per row, in uniformly random order. Shape [rows, k]."""
    # The indices of the k largest of `pool` iid uniforms form a uniform random ordered k-subset.
    return torch.rand(rows, pool, generator=gen).topk(k, dim=1).indices


def _sample_power_law_slots(gen: torch.Generator, rows: int, space: int, k: int, power_a: float) -> torch.Tensor:
    """k distinct slots in [0, space) per row, drawn sequentially without replacement with weights
    (j + 1) ** (power_a - 1). Shape [rows, k]; column i is the i-th draw.

    Gumbel-top-k: the top-k of log w + Gumbel noise, in descending order, has exactly the law of
    k successive draws without replacement (numpy's ``choice(replace=False, p=...)``), vectorised.
    """
    logw = (power_a - 1.0) * torch.log(torch.arange(1, space + 1, dtype=torch.float64))
    u = torch.rand(rows, space, generator=gen, dtype=torch.float64).clamp_min(1e-300)
    gumbel = -torch.log(-torch.log(u))
    return (logw + gumbel).topk(k, dim=1).indices  # sorted=True: descending = draw order


def make_mqar(
    num_examples: int,
    seq_len: int,
    num_kv_pairs: int,
    *,
    vocab_size: int = 8192,
    power_a: float = 0.01,
    seed: int = 0,
    random_non_queries: bool = True,
    answers_in_input: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate MQAR examples (see the module docstring for layout and conventions).

    Args:
        num_examples: number of sequences N (>= 1).
        seq_len: sequence length L; must satisfy ``L >= 4 * num_kv_pairs``.
        num_kv_pairs: key-value pairs per sequence; every key is queried exactly once.
        vocab_size: even vocabulary size V with ``V // 2 - 1 >= num_kv_pairs``.
        power_a: power-law parameter a > 0 for the query-slot distribution (Zoology's).
        seed: seeds a private ``torch.Generator``; same arguments -> identical tensors.
        random_non_queries: filler tokens uniform in [0, V) if True, else 0.
        answers_in_input: write each value right after its query key in ``inputs``.

    Returns:
        ``(inputs, labels)``, both int64 ``[N, L]``.  ``labels`` is -100 except at the
        ``num_kv_pairs`` query-key positions ``i``, where it holds the value to predict from
        ``logits[:, i]`` (no further shift).
    """
    _validate(num_examples, seq_len, num_kv_pairs, vocab_size, power_a)
    gen = torch.Generator().manual_seed(int(seed))
    ctx = 2 * num_kv_pairs
    space = (seq_len - ctx) // 2
    half = vocab_size // 2

    inputs = torch.empty(num_examples, seq_len, dtype=torch.long)
    labels = torch.full((num_examples, seq_len), IGNORE_INDEX, dtype=torch.long)
    chunk = max(1, _CHUNK_ELEMS // max(half, space))
    for start in range(0, num_examples, chunk):
        stop = min(start + chunk, num_examples)
        rows = stop - start
        keys = _sample_distinct(gen, rows, half - 1, num_kv_pairs) + 1  # skip reserved token 0
        values = _sample_distinct(gen, rows, half, num_kv_pairs) + half
        slots = _sample_power_law_slots(gen, rows, space, num_kv_pairs, float(power_a))

        x = inputs[start:stop]
        if random_non_queries:
            x.copy_(torch.randint(0, vocab_size, (rows, seq_len), generator=gen))
        else:
            x.zero_()
        x[:, 0:ctx:2] = keys
        x[:, 1:ctx:2] = values
        qpos = ctx + 2 * slots  # [rows, num_kv_pairs]; key i is queried at qpos[:, i]
        x.scatter_(1, qpos, keys)
        if answers_in_input:
            x.scatter_(1, qpos + 1, values)
        labels[start:stop].scatter_(1, qpos, values)
    return inputs, labels


@dataclass(frozen=True)
class MQARConfig:
    """One MQAR slice: everything but the example count and the seed.

    ``cfg.make(n, seed=s)`` is ``make_mqar(n, cfg.seq_len, cfg.num_kv_pairs, ...)``.
    """

    seq_len: int
    num_kv_pairs: int
    vocab_size: int = 8192
    power_a: float = 0.01
    random_non_queries: bool = True
    answers_in_input: bool = True

    @property
    def key(self) -> tuple[int, int]:
        return (self.seq_len, self.num_kv_pairs)

    def make(self, num_examples: int, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        return make_mqar(
            num_examples,
            self.seq_len,
            self.num_kv_pairs,
            vocab_size=self.vocab_size,
            power_a=self.power_a,
            seed=seed,
            random_non_queries=self.random_non_queries,
            answers_in_input=self.answers_in_input,
        )


def _derive_seed(seed: int, tag: int, seq_len: int, num_kv_pairs: int) -> int:
    """Independent 63-bit seed per (user seed, split, slice), so slices and splits never share a stream."""
    _check_int("seed", seed, 0)
    state = np.random.SeedSequence([int(seed), tag, int(seq_len), int(num_kv_pairs)]).generate_state(2)
    return int((int(state[0]) << 31) ^ int(state[1]))


def mqar_train_set(
    num_examples: int | Sequence[int],
    *,
    seed: int,
    vocab_size: int = 8192,
    power_a: float = 0.01,
    configs: Sequence[tuple[int, int]] = MQAR_TRAIN_MIX,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Zoology's MQAR training mix.

    Args:
        num_examples: examples per config (an int for all, or one count per config; Zoology uses
            ``MQAR_TRAIN_COUNTS``).
        seed: non-negative user seed; each config gets its own derived seed (train tag).
        configs: ``(seq_len, num_kv_pairs)`` pairs, default ``MQAR_TRAIN_MIX``.

    Returns:
        list aligned with ``configs`` of ``(inputs, labels)``, each ``[n_j, seq_len_j]``.  Use
        :func:`pad_and_concat` to merge them into one right-padded tensor pair.
    """
    configs = list(configs)
    counts = [num_examples] * len(configs) if isinstance(num_examples, (int, np.integer)) else list(num_examples)
    if len(counts) != len(configs):
        raise ValueError(f"num_examples has {len(counts)} counts for {len(configs)} configs")
    return [
        make_mqar(n, L, kv, vocab_size=vocab_size, power_a=power_a, seed=_derive_seed(seed, _TRAIN_TAG, L, kv))
        for n, (L, kv) in zip(counts, configs)
    ]


def mqar_test_slices(
    num_examples_per_slice: int,
    *,
    seed: int,
    vocab_size: int = 8192,
    power_a: float = 0.01,
    slices: Sequence[tuple[int, int]] = MQAR_TEST_SLICES,
) -> dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]]:
    """Evaluation slices: ``{(seq_len, num_kv_pairs): (inputs, labels)}``, each ``[n, seq_len]``.

    Seeds are derived with a test tag, so for the same user ``seed`` the test sequences differ
    from those of :func:`mqar_train_set` (including the shared (64, 4) slice).
    """
    return {
        (L, kv): make_mqar(
            num_examples_per_slice, L, kv, vocab_size=vocab_size, power_a=power_a,
            seed=_derive_seed(seed, _TEST_TAG, L, kv),
        )
        for (L, kv) in slices
    }


@dataclass(frozen=True)
class MQARSlices:
    """The train mix and test slices as one object (defaults: Zoology's)."""

    train: tuple[tuple[int, int], ...] = MQAR_TRAIN_MIX
    train_counts: tuple[int, ...] = MQAR_TRAIN_COUNTS
    test: tuple[tuple[int, int], ...] = MQAR_TEST_SLICES
    vocab_size: int = 8192
    power_a: float = 0.01

    def train_set(self, *, seed: int, num_examples: int | Sequence[int] | None = None):
        """:func:`mqar_train_set` with these configs (``num_examples=None`` -> ``train_counts``)."""
        n = self.train_counts if num_examples is None else num_examples
        return mqar_train_set(n, seed=seed, vocab_size=self.vocab_size, power_a=self.power_a, configs=self.train)

    def test_slices(self, num_examples_per_slice: int, *, seed: int):
        return mqar_test_slices(
            num_examples_per_slice, seed=seed, vocab_size=self.vocab_size, power_a=self.power_a, slices=self.test
        )


def pad_and_concat(
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    seq_len: int | None = None,
    pad_token: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate ``(inputs, labels)`` pairs of different lengths into ``[sum n_j, seq_len]``.

    Shorter sequences are right-padded with ``pad_token`` in ``inputs`` and -100 in ``labels``;
    for a causal model right padding cannot affect earlier positions, so the padded examples
    keep their meaning.  ``seq_len`` defaults to the longest input.
    """
    if not batches:
        raise ValueError("batches must be non-empty")
    longest = max(x.shape[1] for x, _ in batches)
    seq_len = longest if seq_len is None else seq_len
    if seq_len < longest:
        raise ValueError(f"seq_len={seq_len} shorter than the longest batch ({longest})")
    xs, ys = [], []
    for x, y in batches:
        pad = seq_len - x.shape[1]
        xs.append(torch.nn.functional.pad(x, (0, pad), value=pad_token))
        ys.append(torch.nn.functional.pad(y, (0, pad), value=IGNORE_INDEX))
    return torch.cat(xs), torch.cat(ys)


# ----------------------------------------------------------------------------- experiment data
def slice_name(sl) -> str:
    """``(64, 4) -> "64x4"``: how a ``(seq_len, num_kv_pairs)`` slice is named in results."""
    return f"{sl[0]}x{sl[1]}"


@dataclass(frozen=True)
class MQARData:
    """Which MQAR examples a run trains, validates and is tested on.

    ``train_configs`` and ``test_slices`` are ``(seq_len, num_kv_pairs)`` pairs; ``train_counts``
    gives the number of training examples of each config; ``pooled_slices`` are the test slices
    whose scored tokens form the pooled accuracy. Validation sets are the pooled slices, ``n_val``
    examples each, drawn from ``seed + 7919`` (never the test examples).
    """

    train_configs: tuple[tuple[int, int], ...] = MQAR_TRAIN_MIX
    train_counts: tuple[int, ...] = (100_000, 20_000, 20_000, 20_000, 20_000)
    test_slices: tuple[tuple[int, int], ...] = MQAR_TEST_SLICES
    pooled_slices: tuple[tuple[int, int], ...] = MQAR_TEST_SLICES[:5]
    n_test: int = 1000
    n_val: int = 200
    vocab_size: int = 8192
    power_a: float = 0.01
    seed: int = 0

    def __post_init__(self):  # lists (e.g. from JSON) become tuples, so the data cache can hash them
        for name in ("train_configs", "test_slices", "pooled_slices"):
            object.__setattr__(self, name, tuple(tuple(int(v) for v in s) for s in getattr(self, name)))
        object.__setattr__(self, "train_counts", tuple(int(n) for n in self.train_counts))
        if len(self.train_counts) != len(self.train_configs):
            raise ValueError(f"train_counts has {len(self.train_counts)} entries for "
                             f"{len(self.train_configs)} train_configs")
        if not set(self.pooled_slices) <= set(self.test_slices):
            raise ValueError(f"pooled_slices {self.pooled_slices} must be among test_slices {self.test_slices}")

    @property
    def longest(self) -> int:
        """The longest sequence a run is validated on (a full-attention mixer's ``seq_len``)."""
        return max(L for L, _ in self.pooled_slices)


@lru_cache(maxsize=4)
def mqar_sets(data: MQARData):
    """``(train, test, val)`` of ``data`` (cached per process): ``train`` as
    :func:`mqar_train_set` returns it, ``test`` and ``val`` as ``{slice name: (inputs, labels)}``."""
    train = mqar_train_set(list(data.train_counts), seed=data.seed, vocab_size=data.vocab_size,
                           power_a=data.power_a, configs=data.train_configs)
    test = mqar_test_slices(data.n_test, seed=data.seed, vocab_size=data.vocab_size,
                            power_a=data.power_a, slices=data.test_slices)
    # validation: the pooled slices, from an independent seed (the test tag is shared, the seed is not)
    val = mqar_test_slices(data.n_val, seed=data.seed + 7_919, vocab_size=data.vocab_size,
                           power_a=data.power_a, slices=data.pooled_slices)
    return (train, {slice_name(k): v for k, v in test.items()}, {slice_name(k): v for k, v in val.items()})
