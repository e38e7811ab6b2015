"""MQAR: the task, the presets (``ci``, ``book``, ``paper``) and the sweep each defines.

The protocol follows Zoology (Arora et al. 2023) scaled down to our compute, and every number
that was scaled is written into the preset (and so into each result line):

* model: :class:`blaviz.models.MixerLM`, two blocks of "BaseConv then mixer" (+ MLP), tied embeddings;
* data: Zoology's training mix ``(64,4) (128,8) (256,16) (256,32) (256,64)`` with fewer examples
  (``train_counts``), test slices ``(64,4) ... (256,64)`` pooled (accuracy over all their scored
  tokens), and ``(512,128)`` reported separately (length extrapolation);
* optimisation: AdamW with weight decay 0.1, warm-up then cosine, a sweep of learning rates, early
  stop at 0.99 pooled validation accuracy (validation sets drawn with a different seed than the
  test sets).

A run is one ``(mixer, mixer config, d_model, lr, seed)``; its ``key`` names it in ``runs.jsonl``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

import torch

from blaviz.data.mqar import MQAR_TEST_SLICES, MQAR_TRAIN_MIX, mqar_test_slices, mqar_train_set
from blaviz.experiments.train import Task, TrainConfig, base_record, train

# --------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class MQARData:
    """Which MQAR examples a run trains and is tested on (``(seq_len, num_kv_pairs)`` pairs)."""

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


def slice_name(sl) -> str:
    return f"{sl[0]}x{sl[1]}"


@lru_cache(maxsize=4)
def _generate(data: MQARData):
    train = mqar_train_set(list(data.train_counts), seed=data.seed, vocab_size=data.vocab_size,
                           power_a=data.power_a, configs=data.train_configs)
    test = mqar_test_slices(data.n_test, seed=data.seed, vocab_size=data.vocab_size,
                            power_a=data.power_a, slices=data.test_slices)
    # validation: the pooled slices, from an independent seed (the test tag is shared, the seed is not)
    val = mqar_test_slices(data.n_val, seed=data.seed + 7_919, vocab_size=data.vocab_size,
                           power_a=data.power_a, slices=data.pooled_slices)
    return (train, {slice_name(k): v for k, v in test.items()}, {slice_name(k): v for k, v in val.items()})


class MQARTask(Task):
    """MQAR behind the :class:`~blaviz.experiments.train.Task` interface (data cached per process)."""

    name = "mqar"

    def __init__(self, data: MQARData):
        self.data = data

    def _sets(self):
        return _generate(self.data)

    def train_groups(self):
        return self._sets()[0]

    def test_sets(self):
        return self._sets()[1]

    def validation_sets(self):
        return self._sets()[2]

    def pooled_names(self, sets):
        pooled = {slice_name(s) for s in self.data.pooled_slices}
        return [k for k in sets if k in pooled]


# ------------------------------------------------------------------------------------ presets


@dataclass(frozen=True)
class Preset:
    """A whole experiment: data, model shape, optimisation, and the grid of mixers."""

    name: str
    data: MQARData
    widths: tuple[int, ...]
    lrs: tuple[float, ...]
    grid: tuple[tuple[str, dict], ...]          # (mixer, kwargs) at every width
    head_dim: int = 64                           # num_heads = d_model // head_dim (at least 1)
    n_layers: int = 2
    mlp_ratio: float = 2.0
    conv_gated: bool = True                      # Zoology's BaseConv gate (False: plain short conv)
    seeds: tuple[int, ...] = (0,)
    train: dict = field(default_factory=dict)   # TrainConfig fields other than lr and seed
    per_width_grid: tuple[tuple[int, tuple[tuple[str, dict], ...]], ...] = ()  # extra (width, grid)
    note: str = ""

    def describe(self) -> dict:
        d = asdict(self)
        d["grid"] = [[m, kw] for m, kw in self.grid]
        return d


def _bla_grid(resolutions, windows, *, full_resolution=()):
    g = [("bla", {"window": W, "resolution": N}) for N in resolutions for W in windows if N < W]
    g += [("bla", {"window": W, "resolution": W}) for W in full_resolution]
    return g


def _swa_grid(windows):
    return [("swa", {"window": W}) for W in windows]


_STD_TRAIN = dict(weight_decay=0.1, warmup_frac=0.1, min_lr_frac=0.0, grad_clip=1.0, early_stop=0.99)

PRESETS: dict[str, Preset] = {}

# ci: a tiny model on the CPU, well under a minute; shows that the pipeline learns.
PRESETS["ci"] = Preset(
    name="ci",
    data=MQARData(train_configs=((64, 4),), train_counts=(48_000,), test_slices=((64, 4), (64, 8)),
                  pooled_slices=((64, 4),), n_test=256, n_val=128),
    widths=(32,), lrs=(1e-2,), head_dim=32, mlp_ratio=0.0,
    grid=(("swa", {"window": 64}), ("bla", {"window": 64, "resolution": 64})),
    train=dict(_STD_TRAIN, batch_size=32, epochs=1, eval_every=100),
    note=("CPU smoke preset: d_model 32, one slice (64,4), at most one epoch of 48k fresh examples "
          "(1500 steps; early stop at 0.99 comes after ~800)"),
)

_BOOK_DATA = MQARData(train_counts=(20_000, 4_000, 4_000, 4_000, 4_000), n_test=500, n_val=100)
_BOOK_TRAIN = dict(_STD_TRAIN, batch_size=128, epochs=8, eval_every=100)

# book: BLA against SWA across state sizes at one width first (the 8x claim), then the others.
# SWA's pooled accuracy is capped by window coverage (W = 128 sees 77% of the pooled queries), so
# the grid reaches W = 256, the longest pooled sequence.
# The second width (d_model 128, two heads of 64) repeats a subset: the state sizes where BLA and SWA
# part ways, and one configuration of each other mixer. Run keys do not depend on the grid, so adding
# a width leaves the finished d_model 64 runs valid.
_BOOK_GRID_64 = tuple(_swa_grid((8, 16, 32, 64, 128, 256))
                      + [("bla", {"window": 32, "resolution": 3})]
                      + _bla_grid((7, 15, 31), (32, 64, 128))
                      + _bla_grid((31, 63), (256,))
                      + [("softmax", {}), ("gsa", {"num_slots": 16}), ("gsa", {"num_slots": 64}),
                         ("gla", {}), ("linear", {}), ("gated_deltanet", {})])
_BOOK_GRID_128 = tuple(_swa_grid((16, 32, 64, 128))
                       + [("bla", {"window": 32, "resolution": 15}), ("bla", {"window": 64, "resolution": 15}),
                          ("bla", {"window": 64, "resolution": 31}), ("bla", {"window": 128, "resolution": 31})]
                       + [("softmax", {}), ("gsa", {"num_slots": 16}), ("gla", {}), ("linear", {}),
                          ("gated_deltanet", {})])
PRESETS["book"] = Preset(
    name="book",
    data=_BOOK_DATA,
    widths=(64, 128), lrs=(1e-3, 3e-3), head_dim=64,
    grid=(),
    per_width_grid=((64, _BOOK_GRID_64), (128, _BOOK_GRID_128)),
    train=_BOOK_TRAIN,
    note=("GPU sweep over a few sessions: 20k+4x4k training examples (Zoology: 100k+4x20k), 8 epochs "
          "(Zoology: 64), 2 learning rates (paper preset: 4); d_model 128 repeats a subset of the grid"),
)

# long: is a weak mixer of the book sweep only under-trained? The book data and recipe with 3x the
# epochs, one learning rate (the better one at d_model 64 for most mixers), one width.
PRESETS["long"] = Preset(
    name="long",
    data=_BOOK_DATA,
    widths=(64,), lrs=(3e-3,), head_dim=64,
    grid=(("bla", {"window": 32, "resolution": 15}), ("bla", {"window": 64, "resolution": 15}),
          ("bla", {"window": 64, "resolution": 31}), ("bla", {"window": 128, "resolution": 31}),
          ("swa", {"window": 16}), ("swa", {"window": 32}), ("swa", {"window": 64}),
          ("gsa", {"num_slots": 16}), ("gsa", {"num_slots": 64}), ("linear", {}), ("gla", {}),
          ("gated_deltanet", {})),
    train=dict(_BOOK_TRAIN, epochs=24),
    note="the book recipe trained 3x longer (24 epochs), lr 3e-3, d_model 64: a check for under-training",
)

# temperature: BLA with a learned per-head read-out temperature (starting at sqrt(W/N)), the book
# recipe and data: does the flatter softmax over blurred slot keys explain part of BLA's gap?
PRESETS["temperature"] = Preset(
    name="temperature",
    data=_BOOK_DATA,
    widths=(64,), lrs=(1e-3, 3e-3), head_dim=64,
    grid=tuple(("bla", {"window": W, "resolution": N, "learn_temperature": True})
               for W, N in ((32, 15), (64, 15), (128, 15), (64, 31), (128, 31), (256, 63))),
    train=_BOOK_TRAIN,
    note="book recipe; BLA with a learned read-out temperature initialised at sqrt(W/N) (not in BLA_SPEC)",
)

# gsa_ci: the ci task with GSA under both layer recipes ("blaviz": d^-1/2 slot scale, no SiLU on v and
# o; "fla": fla's layer, scale 1), two seeds, on a CPU: does the recipe explain GSA's weak book runs?
PRESETS["gsa_ci"] = replace(
    PRESETS["ci"], name="gsa_ci", seeds=(0, 1),
    grid=(("gsa", {"num_slots": 16}), ("gsa", {"num_slots": 16, "recipe": "fla"})),
    note="ci data and recipe; GSA M=16 with the blaviz and the fla layer recipe, seeds 0 and 1 (CPU, ~6 min)")

# gsa_fla: the book's GSA points again with fla's layer recipe (a GPU call of a later session)
PRESETS["gsa_fla"] = Preset(
    name="gsa_fla",
    data=_BOOK_DATA,
    widths=(64, 128), lrs=(1e-3, 3e-3), head_dim=64,
    grid=(),
    per_width_grid=((64, (("gsa", {"num_slots": 16, "recipe": "fla"}), ("gsa", {"num_slots": 64, "recipe": "fla"}))),
                    (128, (("gsa", {"num_slots": 16, "recipe": "fla"}),))),
    train=_BOOK_TRAIN,
    note="the book's GSA configurations with fla's layer recipe (scale 1, SiLU on v and o)",
)

PRESETS["paper"] = Preset(
    name="paper",
    data=MQARData(train_counts=(50_000, 10_000, 10_000, 10_000, 10_000), n_test=1000, n_val=200),
    widths=(64, 128), lrs=(3e-4, 1e-3, 3e-3, 1e-2), head_dim=64,
    grid=tuple(_swa_grid((4, 8, 16, 32, 64, 128, 256))
               + _bla_grid((3, 7, 15, 31, 63), (16, 32, 64, 128, 256), full_resolution=(4, 8, 16))
               + [("softmax", {})]
               + [("gsa", {"num_slots": m}) for m in (4, 8, 16, 32, 64)]
               + [("gla", {}), ("linear", {}), ("linear", {"feature_map": "identity"}),
                  ("gated_deltanet", {})]),
    train=dict(_STD_TRAIN, batch_size=128, epochs=16, eval_every=200),
    note="the full sweep: half of Zoology's training examples, 16 epochs (Zoology: 64), 4 learning rates",
)


# ------------------------------------------------------------------------------------- sweeps


def run_key(spec: dict) -> str:
    """A stable name for a run: everything that defines it, hashed (readable prefix kept)."""
    ident = {k: spec[k] for k in ("preset", "mixer", "mixer_kwargs", "d_model", "lr", "seed", "preset_hash")}
    blob = json.dumps(ident, sort_keys=True)
    kw = ",".join(f"{k}={v}" for k, v in sorted(spec["mixer_kwargs"].items()))
    return (f"{spec['preset']}/{spec['mixer']}({kw})/d{spec['d_model']}/lr{spec['lr']:g}/s{spec['seed']}/"
            + hashlib.sha1(blob.encode()).hexdigest()[:8])


def preset_hash(p: Preset) -> str:
    """Hash of what changes results (data, model shape, training): not the grid or the lrs."""
    d = {"data": asdict(p.data), "head_dim": p.head_dim, "n_layers": p.n_layers,
         "mlp_ratio": p.mlp_ratio, "conv_gated": p.conv_gated, "train": p.train}
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


def sweep_specs(p: Preset, *, mixers=None, widths=None, lrs=None, seeds=None) -> list[dict]:
    """Every run of a preset, in priority order: width-major, then the grid order, then lr, seed."""
    h = preset_hash(p)
    specs = []
    for width in widths or p.widths:
        grid = list(p.grid) + [g for w, gs in p.per_width_grid if w == width for g in gs]
        for mixer, kw in grid:
            if mixers and mixer not in mixers:
                continue
            for lr in lrs or p.lrs:
                for seed in seeds or p.seeds:
                    spec = {"preset": p.name, "preset_hash": h, "task": "mqar", "mixer": mixer,
                            "mixer_kwargs": dict(kw), "d_model": width, "lr": lr, "seed": seed}
                    spec["key"] = run_key(spec)
                    specs.append(spec)
    return specs


def build_model(p: Preset, spec: dict, *, bla_impl: str = "auto", impl: str = "fast"):
    from blaviz.models import MixerLM

    kw = dict(spec["mixer_kwargs"])
    kw["num_heads"] = max(1, spec["d_model"] // p.head_dim)
    kw["impl"] = impl
    if spec["mixer"] == "bla":
        kw.setdefault("bla_impl", bla_impl)
    if spec["mixer"] == "softmax":
        kw.setdefault("seq_len", max(L for L, _ in p.data.pooled_slices))
    torch.manual_seed(spec["seed"])
    return MixerLM(p.data.vocab_size, spec["d_model"], spec["mixer"], kw, n_layers=p.n_layers,
                   mlp_ratio=p.mlp_ratio, conv_gated=p.conv_gated)


def get_preset(name: str, **overrides) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {tuple(PRESETS)}")
    p = PRESETS[name]
    return replace(p, **overrides) if overrides else p


def run_one(spec: dict, preset: Preset, *, device="cpu", progress=True, bla_impl="auto",
            time_limit_s=None) -> dict:
    """Train and test one run; return its JSON record (without the provenance fields)."""
    device = torch.device(device)
    model = build_model(preset, spec, bla_impl=bla_impl)
    model.to(device)
    cfg = TrainConfig(lr=spec["lr"], seed=spec["seed"], **preset.train)
    out = train(model, MQARTask(preset.data), cfg, device=device, progress=progress,
                desc=spec["key"].split("/", 1)[1][:48], time_limit_s=time_limit_s)
    rec = {**base_record(spec, task="mqar", preset_name=preset.name, n_layers=preset.n_layers,
                         model=model, cfg=cfg, data=asdict(preset.data)),
           "accuracy": out.pop("accuracy"), "per_slice": out.pop("per_slice"), **out}
    return rec

