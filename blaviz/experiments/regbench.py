"""RegBench: the task adapter, the presets (``ci``, ``book``, ``paper``), baselines and the summary.

In-context language learning (Akyürek et al. 2024): every prompt is 10-19 strings of one random
regular language (a random minimised DFA), and the model must continue it. Training and test
automata are disjoint, so the language has to be inferred from the prompt. The data, the metrics
and their conventions live in :mod:`blaviz.data.regbench`; this module only puts them behind the
:class:`~blaviz.experiments.train.Task` interface that MQAR uses, so that the same loop
(:func:`~blaviz.experiments.train.train`), the same resumable runner
(:func:`~blaviz.experiments.sweep.run_sweep`) and the same JSON lines serve both tasks.

* **Model**: :class:`blaviz.models.MixerLM` (two blocks of "BaseConv, then the mixer, then an
  MLP"), the vocabulary of 20 tokens (18 symbols, separator, padding).
* **Loss**: next-token cross-entropy on every real position, separators included (the model
  learns the prompt format).
* **Metrics** on held-out automata, at the *scored* positions (those whose target is a symbol):
  *validity accuracy*, the fraction whose argmax over the 18 symbols is a legal next symbol, and
  the *total variation distance* between the softmax over the symbols and the automaton's
  next-symbol law (uniform over the legal symbols). A record's ``accuracy`` is the validity
  accuracy (the number the sweep runner and the early stop read); ``per_slice`` splits it by
  position in the prompt (later positions have seen more of the language).
* **Lengths**: prompts average ~370 tokens and reach 949. Presets truncate to ``max_len`` (the
  ``book`` preset: 512, which keeps 93% of the prompts whole) and train on length buckets of
  ``bucket`` tokens, so a batch carries little padding.

The published recipe (their Table 3) searches widths 64-1024 and 1-12 layers, and trains for 200
or 400 epochs at batch 32 with 25k warm-up steps. That is far beyond one GPU call, so the presets
scale it down, and every scaled number is written into the preset (and so into every result line).
Each line carries the validation history (loss, validity, TV against the step), which shows how far
a run is from convergence.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from blaviz.data.regbench import (IGNORE_INDEX, NUM_SYMBOLS, VOCAB_SIZE, RegBenchData, make_regbench,
                                  tv_distance)
from blaviz.experiments.train import Task, TrainConfig, base_record, train

__all__ = ["RegBenchSetup", "RegBenchTask", "generate", "length_groups", "RegBenchPreset", "PRESETS",
           "get_preset", "sweep_specs", "build_model", "run_one", "run_key", "preset_hash", "position_scores",
           "position_means", "ngram_logits", "baselines", "config_label", "summarize", "trend", "report",
           "save_summary"]

# ---------------------------------------------------------------------------------------- data


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


class RegBenchTask(Task):
    """RegBench behind the :class:`~blaviz.experiments.train.Task` interface (data cached per process).

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


# ----------------------------------------------------------------------------------- baselines


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
    from blaviz.data.regbench import oracle_logits

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


# ------------------------------------------------------------------------------------ presets


@dataclass(frozen=True)
class RegBenchPreset:
    """A whole RegBench experiment: data, model shape, optimisation, and the grid of mixers.

    ``grid`` entries are ``(mixer, kwargs)``; a ``num_heads`` in ``kwargs`` overrides
    ``d_model // head_dim`` (how the recurrent baselines' state is varied at a fixed width).
    """

    name: str
    setup: RegBenchSetup
    widths: tuple[int, ...]
    lrs: tuple[float, ...]
    grid: tuple[tuple[str, dict], ...]
    head_dim: int = 64
    n_layers: int = 2
    mlp_ratio: float = 2.0
    conv_gated: bool = True
    seeds: tuple[int, ...] = (0,)
    train: dict = field(default_factory=dict)   # TrainConfig fields other than lr and seed
    note: str = ""
    task: str = "regbench"

    def describe(self) -> dict:
        d = asdict(self)
        d["grid"] = [[m, kw] for m, kw in self.grid]
        return d


def _heads_grid(mixer, head_dims, d_model):
    """A recurrent mixer at several head sizes (state ``d_head * d_model`` per layer)."""
    return [(mixer, {"num_heads": d_model // h}) for h in head_dims]


# Akyürek et al.'s optimiser settings, with fewer steps (so a shorter warm-up and a larger lr)
_STD_TRAIN = dict(weight_decay=0.1, betas=(0.9, 0.99), warmup_frac=0.05, min_lr_frac=0.1, grad_clip=1.0,
                  early_stop=None, batch_size=32)

PRESETS: dict[str, RegBenchPreset] = {}

# ci: a tiny model on the CPU in well under a minute; shows that the pipeline learns in context.
PRESETS["ci"] = RegBenchPreset(
    name="ci",
    setup=RegBenchSetup(num_train=1_000, num_val=32, num_test=64, max_len=128, bucket=32,
                        position_slices=(0, 32, 64, 128)),
    widths=(32,), lrs=(3e-3,), head_dim=32, n_layers=2, mlp_ratio=2.0,
    grid=(("swa", {"window": 32}), ("bla", {"window": 64, "resolution": 15})),
    train=dict(_STD_TRAIN, max_steps=500, eval_every=50, eval_batch_size=64),
    note=("CPU smoke preset: d_model 32, 1000 training automata, prompts cut to 128 tokens, "
          "500 steps at batch 32 (about 16 epochs)"),
)

_BOOK_D = 64
PRESETS["book"] = RegBenchPreset(
    name="book",
    setup=RegBenchSetup(num_train=2_500, num_val=100, num_test=500, max_len=512, bucket=64),
    widths=(_BOOK_D,), lrs=(1e-3,), head_dim=64,
    # the slow recurrent baselines first: with 12 runs at a time the call then ends sooner
    grid=tuple([("gated_deltanet", kw) for _, kw in _heads_grid("gated_deltanet", (16, 32, 64), _BOOK_D)]
               + [("gsa", {"num_slots": M}) for M in (8, 32, 128)]
               + _heads_grid("gla", (16, 32, 64), _BOOK_D)
               + [("softmax", {})]
               + [("swa", {"window": W}) for W in (8, 16, 32, 64, 128, 256)]
               + [("bla", {"window": W, "resolution": N}) for W in (128, 512) for N in (7, 15, 31, 63)]),
    train=dict(_STD_TRAIN, epochs=16, eval_every=100, eval_batch_size=100),
    note=("one-GPU-call sweep, scaled down from Akyurek et al. (200-400 epochs at batch 32, 25k "
          "warm-up steps, widths 64-1024, 1-12 layers): 2500 training automata, 16 epochs "
          "(~1300 steps) at batch 32, d_model 64, 2 layers, one learning rate, one seed; prompts "
          "truncated to 512 tokens (93% are shorter)"),
)

_PAPER_D = 128
PRESETS["paper"] = RegBenchPreset(
    name="paper",
    setup=RegBenchSetup(num_train=10_000, num_val=200, num_test=1_000, max_len=None, bucket=64,
                        position_slices=(0, 64, 128, 256, 512, 1024)),
    widths=(_PAPER_D,), lrs=(3e-4, 1e-3, 3e-3), head_dim=64, n_layers=2,
    grid=tuple([("swa", {"window": W}) for W in (8, 16, 32, 64, 128, 256, 512)]
               + [("bla", {"window": W, "resolution": N}) for W in (128, 512, 1024) for N in (3, 7, 15, 31, 63)]
               + [("softmax", {})]
               + [("gsa", {"num_slots": M}) for M in (4, 8, 16, 32, 64, 128)]
               + _heads_grid("gla", (16, 32, 64, 128), _PAPER_D)
               + _heads_grid("gated_deltanet", (16, 32, 64, 128), _PAPER_D)
               + _heads_grid("linear", (16, 32, 64, 128), _PAPER_D)),
    train=dict(_STD_TRAIN, epochs=50, eval_every=500, eval_batch_size=100),
    note=("the larger sweep: 10k training automata, whole prompts (up to 949 tokens), 50 epochs at "
          "batch 32 (the paper: 200-400), d_model 128, 3 learning rates"),
)


# ------------------------------------------------------------------------------------- sweeps


def preset_hash(p: RegBenchPreset) -> str:
    """Hash of what changes results (data, model shape, training): not the grid or the lrs."""
    d = {"task": "regbench", "setup": asdict(p.setup), "head_dim": p.head_dim, "n_layers": p.n_layers,
         "mlp_ratio": p.mlp_ratio, "conv_gated": p.conv_gated, "train": p.train}
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


def run_key(spec: dict) -> str:
    """A stable name for a run: ``regbench/<preset>/<mixer>(<kwargs>)/d../lr../s../<hash>``."""
    ident = {k: spec[k] for k in ("task", "preset", "mixer", "mixer_kwargs", "d_model", "lr", "seed", "preset_hash")}
    blob = json.dumps(ident, sort_keys=True)
    kw = ",".join(f"{k}={v}" for k, v in sorted(spec["mixer_kwargs"].items()))
    return (f"regbench/{spec['preset']}/{spec['mixer']}({kw})/d{spec['d_model']}/lr{spec['lr']:g}/s{spec['seed']}/"
            + hashlib.sha1(blob.encode()).hexdigest()[:8])


def sweep_specs(p: RegBenchPreset, *, mixers=None, widths=None, lrs=None, seeds=None) -> list[dict]:
    """Every run of a preset, in priority order: width-major, then the grid order, then lr, seed."""
    h = preset_hash(p)
    specs = []
    for width in widths or p.widths:
        for mixer, kw in p.grid:
            if mixers and mixer not in mixers:
                continue
            for lr in lrs or p.lrs:
                for seed in seeds or p.seeds:
                    spec = {"preset": p.name, "preset_hash": h, "task": "regbench", "mixer": mixer,
                            "mixer_kwargs": dict(kw), "d_model": width, "lr": lr, "seed": seed}
                    spec["key"] = run_key(spec)
                    specs.append(spec)
    return specs


def get_preset(name: str, **overrides) -> RegBenchPreset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {tuple(PRESETS)}")
    p = PRESETS[name]
    return replace(p, **overrides) if overrides else p


def build_model(p: RegBenchPreset, spec: dict, *, bla_impl: str = "auto", impl: str = "fast"):
    from blaviz.models import MixerLM

    kw = dict(spec["mixer_kwargs"])
    kw.setdefault("num_heads", max(1, spec["d_model"] // p.head_dim))
    kw["impl"] = impl
    if spec["mixer"] == "bla":
        kw.setdefault("bla_impl", bla_impl)
    if spec["mixer"] == "softmax":
        kw.setdefault("seq_len", p.setup.longest)
    torch.manual_seed(spec["seed"])
    return MixerLM(VOCAB_SIZE, spec["d_model"], spec["mixer"], kw, n_layers=p.n_layers,
                   mlp_ratio=p.mlp_ratio, conv_gated=p.conv_gated)


def run_one(spec: dict, preset: RegBenchPreset, *, device="cpu", progress=True, bla_impl="auto",
            time_limit_s=None) -> dict:
    """Train and test one run; return its JSON record (without the provenance fields the runner adds)."""
    device = torch.device(device)
    model = build_model(preset, spec, bla_impl=bla_impl)
    model.to(device)
    cfg = TrainConfig(lr=spec["lr"], seed=spec["seed"], **preset.train)
    out = train(model, RegBenchTask(preset.setup), cfg, device=device, progress=progress,
                desc=spec["key"].split("/", 2)[2][:48], time_limit_s=time_limit_s)
    test = out.pop("test_metrics")
    rec = {
        **base_record(spec, task="regbench", preset_name=preset.name, n_layers=preset.n_layers,
                      model=model, cfg=cfg, data=asdict(preset.setup)),
        "accuracy": out.pop("accuracy"), "per_slice": out.pop("per_slice"),
        "validity_accuracy": test["validity"], "tv_distance": test["tv"], "test_loss": test["loss"],
        "tv_by_position": test["tv_by_position"], "scored_positions": test["scored_positions"],
        "metric_note": ("accuracy = validity_accuracy: share of scored test positions whose argmax symbol is "
                        "legal; tv_distance: mean total variation to the automaton's next-symbol law"),
        **out,
    }
    rec["ms_per_step"] = round(1000 * rec["train_time_s"] / max(rec["steps"], 1), 2)
    return rec


# ------------------------------------------------------------------------------------ analysis

_LABEL_KEYS = (("window", "W"), ("resolution", "N"), ("num_slots", "M"), ("num_heads", "H"), ("feature_map", "phi"),
               ("recipe", "recipe"), ("learn_temperature", "T"))


def config_label(rec: dict) -> str:
    """``"W=128,N=15"`` for BLA, ``"W=32"`` for SWA, ``"M=32"`` for GSA, ``"H=4"`` for GLA/GDN (the
    RegBench grid varies the heads, so they are part of the label here)."""
    from blaviz.experiments.analysis import config_label as label

    return label(rec, _LABEL_KEYS)


def summarize(runs: list[dict]) -> list[dict]:
    """One row per ``(mixer, config, d_model)``: the learning rate with the best seed-mean validity,
    with its validity, TV distance, state size and validity by position."""
    groups = defaultdict(lambda: defaultdict(list))
    for r in runs:
        groups[(r["mixer"], config_label(r), r["d_model"])][r["lr"]].append(r)
    rows = []
    for (mixer, cfg, d), by_lr in groups.items():
        def mean(rs, k):
            return sum(r[k] for r in rs) / len(rs)
        lr, rs = max(by_lr.items(), key=lambda t: (mean(t[1], "validity_accuracy"), -t[0]))
        rows.append({
            "mixer": mixer, "config": cfg, "d_model": d, "state_size": rs[0]["state_size"],
            "validity": mean(rs, "validity_accuracy"), "tv": mean(rs, "tv_distance"),
            "best_lr": lr, "n_lrs": len(by_lr), "n_seeds": len(rs), "steps": rs[0].get("steps"),
            "per_slice": {s: sum(r["per_slice"][s] for r in rs) / len(rs) for s in rs[0]["per_slice"]},
            "validity_by_lr": {str(l): mean(v, "validity_accuracy") for l, v in sorted(by_lr.items())},
        })
    rows.sort(key=lambda r: (r["d_model"], r["mixer"], r["state_size"], r["config"]))
    return rows


#: the config entry that sets each mixer's state; the others (BLA's window) define separate families
_STATE_KNOB = {"bla": "N", "swa": "W", "gsa": "M", "gla": "H", "gated_deltanet": "H", "linear": "H"}


def _family(mixer: str, config: str) -> str:
    """``"W=128,N=15"`` -> ``"W=128"`` for BLA: the config without the entry that sets the state."""
    knob = _STATE_KNOB.get(mixer)
    return ",".join(p for p in config.split(",") if p and p.split("=")[0] != knob)


def trend(rows: list[dict], mixer: str, d_model: int | None = None) -> dict:
    """Does ``mixer`` improve as its state grows? Validity and TV from its smallest to its largest state,
    within each family of configurations that differ only in what sets the state (BLA: one family per
    window ``W``, since ``N`` sets its state; comparing ``W=512, N=7`` with ``W=128, N=63`` would mix
    the two effects). ``groups`` lists every family; ``validity_gain`` and ``tv_gain`` are the
    smallest over the families with two points or more, so a mixer counts as improving only if it
    improves in every family; ``state_range`` spans all of them."""
    pts = [r for r in rows if r["mixer"] == mixer and (d_model is None or r["d_model"] == d_model)]
    groups = []
    for fam in sorted({_family(mixer, r["config"]) for r in pts}):
        g = sorted((r["state_size"], r["validity"], r["tv"]) for r in pts if _family(mixer, r["config"]) == fam)
        if len(g) >= 2:
            (s0, v0, t0), (s1, v1, t1) = g[0], g[-1]
            groups.append({"family": fam, "points": len(g), "state_range": [s0, s1],
                           "validity_gain": v1 - v0, "tv_gain": t0 - t1})
    if not groups:
        return {"mixer": mixer, "points": len(pts)}
    states = [r["state_size"] for r in pts]
    return {"mixer": mixer, "points": len(pts), "state_range": [min(states), max(states)], "groups": groups,
            "validity_gain": min(g["validity_gain"] for g in groups), "tv_gain": min(g["tv_gain"] for g in groups)}


def markdown_table(rows: list[dict]) -> str:
    slices = list(rows[0]["per_slice"]) if rows else []
    head = ["mixer", "d_model", "config", "state/layer", "validity", "TV", "best lr"] + slices
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["mixer"], str(r["d_model"]), r["config"] or "-", str(r["state_size"]), f"{r['validity']:.3f}",
                 f"{r['tv']:.3f}", f"{r['best_lr']:g}"] + [f"{r['per_slice'][s]:.3f}" for s in slices]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(*paths) -> str:
    """A text report of ``runs.jsonl`` files: the table, then each mixer's trend with state."""
    from blaviz.experiments.analysis import load_runs

    rows = summarize(load_runs(*paths))
    if not rows:
        return "no complete runs"
    out = [markdown_table(rows), ""]
    for d in sorted({r["d_model"] for r in rows}):
        for mixer in sorted({r["mixer"] for r in rows if r["d_model"] == d}):
            t = trend(rows, mixer, d)
            for g in t.get("groups", []):
                fam = f" ({g['family']})" if g["family"] else ""
                out.append(f"d_model={d} {mixer}{fam}: state {g['state_range'][0]} -> {g['state_range'][1]}: "
                           f"validity {g['validity_gain']:+.3f}, TV {-g['tv_gain']:+.3f}")
    return "\n".join(out)


def save_summary(path_in, path_out, *, preset: str | None = None) -> dict:
    """Write the best-over-lr rows, the trends and the test-set baselines as JSON (what the book reads)."""
    from pathlib import Path

    from blaviz.experiments.analysis import load_runs, summary_provenance

    runs = load_runs(path_in)
    rows = summarize(runs)
    name = preset or (runs[0]["preset"] if runs else None)
    data = {**summary_provenance(runs, path_in, path_out), "rows": rows,
            "trends": [trend(rows, m, d) for d in sorted({r["d_model"] for r in rows})
                       for m in sorted({r["mixer"] for r in rows if r["d_model"] == d})]}
    if name in PRESETS:
        setup = RegBenchSetup(**runs[0]["data"]) if runs else PRESETS[name].setup
        data["baselines"] = baselines(setup)
        data["baselines_setup"] = asdict(setup)
    Path(path_out).write_text(json.dumps(_finite(data), indent=1, sort_keys=True))
    return data


def _finite(obj):
    """NaN -> None, recursively (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj
