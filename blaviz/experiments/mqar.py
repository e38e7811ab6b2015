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
The task is :data:`TASK` (registered as ``"mqar"``); the module-level ``get_preset``,
``sweep_specs``, ``build_model``, ``run_one``, ``run_key`` and ``preset_hash`` are its methods.
"""
from __future__ import annotations

from dataclasses import replace

from blaviz.data.mqar import MQARData, mqar_sets, slice_name
from blaviz.experiments.preset import Preset
from blaviz.experiments.task import Task
from blaviz.experiments.train import TaskData

__all__ = ["MQARTaskData", "MQAR", "TASK", "PRESETS", "get_preset", "sweep_specs", "build_model", "run_one",
           "run_key", "preset_hash"]


class MQARTaskData(TaskData):
    """MQAR behind the :class:`~blaviz.experiments.train.TaskData` interface (data cached per process)."""

    name = "mqar"

    def __init__(self, data: MQARData):
        self.data = data

    def train_groups(self):
        return mqar_sets(self.data)[0]

    def test_sets(self):
        return mqar_sets(self.data)[1]

    def validation_sets(self):
        return mqar_sets(self.data)[2]

    def pooled_names(self, sets):
        pooled = {slice_name(s) for s in self.data.pooled_slices}
        return [k for k in sets if k in pooled]


class MQAR(Task):
    """The MQAR task: accuracy on the pooled test slices, the others reported by slice."""

    name = "mqar"
    tagged_keys = False     # MQAR's run keys and preset hashes predate the task tag

    def task_data(self, p: Preset) -> MQARTaskData:
        return MQARTaskData(p.data)

    def report(self, *paths, thresholds=(0.5, 0.8, 0.9)) -> str:
        from blaviz.experiments.analysis import report

        return report(*paths, thresholds=thresholds)

    def save_summary(self, path_in, path_out, thresholds=(0.5, 0.8, 0.9)) -> dict:
        from blaviz.experiments.analysis import save_summary

        return save_summary(path_in, path_out, thresholds=thresholds)

    def sweep_specs(self, p: Preset, *, mixers=None, widths=None, lrs=None, seeds=None) -> list[dict]:
        """The preset's runs; a preset with a run plan (:data:`RUN_PLANS`) keeps only the planned
        ``(width, mixer, kwargs, lr)`` points, in the plan's order (seeds innermost)."""
        specs = super().sweep_specs(p, mixers=mixers, widths=widths, lrs=lrs, seeds=seeds)
        plan = RUN_PLANS.get(p.name)
        if plan is None or lrs:
            return specs
        rank = {_plan_id(w, m, kw, lr): i for i, (w, m, kw, lr) in enumerate(plan)}
        planned = [s for s in specs if _plan_id(s["d_model"], s["mixer"], s["mixer_kwargs"], s["lr"]) in rank]
        return sorted(planned, key=lambda s: rank[_plan_id(s["d_model"], s["mixer"], s["mixer_kwargs"],
                                                           s["lr"])])


def _plan_id(width, mixer, kw, lr) -> tuple:
    return (width, mixer, tuple(sorted(kw.items())), float(lr))


TASK = MQAR()
PRESETS = TASK.presets

# ------------------------------------------------------------------------------------ presets


def _bla_grid(resolutions, windows, *, full_resolution=()):
    g = [("bla", {"window": W, "resolution": N}) for N in resolutions for W in windows if N < W]
    g += [("bla", {"window": W, "resolution": W}) for W in full_resolution]
    return g


def _swa_grid(windows):
    return [("swa", {"window": W}) for W in windows]


_STD_TRAIN = dict(weight_decay=0.1, warmup_frac=0.1, min_lr_frac=0.0, grad_clip=1.0, early_stop=0.99)


# ci: a tiny model on the CPU, well under a minute; shows that the pipeline learns.
TASK.add_preset(Preset(
    task="mqar", name="ci",
    data=MQARData(train_configs=((64, 4),), train_counts=(48_000,), test_slices=((64, 4), (64, 8)),
                  pooled_slices=((64, 4),), n_test=256, n_val=128),
    widths=(32,), lrs=(1e-2,), head_dim=32, mlp_ratio=0.0,
    grid=(("swa", {"window": 64}), ("bla", {"window": 64, "resolution": 64})),
    train=dict(_STD_TRAIN, batch_size=32, epochs=1, eval_every=100),
    note=("CPU smoke preset: d_model 32, one slice (64,4), at most one epoch of 48k fresh examples "
          "(1500 steps; early stop at 0.99 comes after ~800)"),
))

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
TASK.add_preset(Preset(
    task="mqar", name="book",
    data=_BOOK_DATA,
    widths=(64, 128), lrs=(1e-3, 3e-3), head_dim=64,
    grid=(),
    per_width_grid=((64, _BOOK_GRID_64), (128, _BOOK_GRID_128)),
    train=_BOOK_TRAIN,
    note=("GPU sweep over a few sessions: 20k+4x4k training examples (Zoology: 100k+4x20k), 8 epochs "
          "(Zoology: 64), 2 learning rates (paper preset: 4); d_model 128 repeats a subset of the grid"),
))

# long: is a weak mixer of the book sweep only under-trained? The book data and recipe with 3x the
# epochs, one learning rate (the better one at d_model 64 for most mixers), one width.
TASK.add_preset(Preset(
    task="mqar", name="long",
    data=_BOOK_DATA,
    widths=(64,), lrs=(3e-3,), head_dim=64,
    grid=(("bla", {"window": 32, "resolution": 15}), ("bla", {"window": 64, "resolution": 15}),
          ("bla", {"window": 64, "resolution": 31}), ("bla", {"window": 128, "resolution": 31}),
          ("swa", {"window": 16}), ("swa", {"window": 32}), ("swa", {"window": 64}),
          ("gsa", {"num_slots": 16}), ("gsa", {"num_slots": 64}), ("linear", {}), ("gla", {}),
          ("gated_deltanet", {})),
    train=dict(_BOOK_TRAIN, epochs=24),
    note="the book recipe trained 3x longer (24 epochs), lr 3e-3, d_model 64: a check for under-training",
))

# temperature: BLA with a learned per-head read-out temperature (starting at sqrt(W/N)), the book
# recipe and data: does the flatter softmax over blurred slot keys explain part of BLA's gap?
TASK.add_preset(Preset(
    task="mqar", name="temperature",
    data=_BOOK_DATA,
    widths=(64,), lrs=(1e-3, 3e-3), head_dim=64,
    grid=tuple(("bla", {"window": W, "resolution": N, "learn_temperature": True})
               for W, N in ((32, 15), (64, 15), (128, 15), (64, 31), (128, 31), (256, 63))),
    train=_BOOK_TRAIN,
    note="book recipe; BLA with a learned read-out temperature initialised at sqrt(W/N) (not in BLA_SPEC)",
))

# gsa_ci: the ci task with GSA under both layer recipes ("blaviz": d^-1/2 slot scale, no SiLU on v and
# o; "fla": fla's layer, scale 1), two seeds, on a CPU: does the recipe explain GSA's weak book runs?
TASK.add_preset(replace(
    PRESETS["ci"], name="gsa_ci", seeds=(0, 1),
    grid=(("gsa", {"num_slots": 16}), ("gsa", {"num_slots": 16, "recipe": "fla"})),
    note="ci data and recipe; GSA M=16 with the blaviz and the fla layer recipe, seeds 0 and 1 (CPU, ~6 min)"))

# gsa_fla: the book's GSA points again with fla's layer recipe (a GPU call of a later session)
TASK.add_preset(Preset(
    task="mqar", name="gsa_fla",
    data=_BOOK_DATA,
    widths=(64, 128), lrs=(1e-3, 3e-3), head_dim=64,
    grid=(),
    per_width_grid=((64, (("gsa", {"num_slots": 16, "recipe": "fla"}), ("gsa", {"num_slots": 64, "recipe": "fla"}))),
                    (128, (("gsa", {"num_slots": 16, "recipe": "fla"}),))),
    train=_BOOK_TRAIN,
    note="the book's GSA configurations with fla's layer recipe (scale 1, SiLU on v and o)",
))

# book_seeds: seeds 1 and 2 of the book points chapter 8 compares, each at its best learning rate
# of the seed-0 book sweep (results/mqar/book/summary.json; a test checks the two agree). Same data,
# model and recipe as "book", so the same preset hash: the analysis pools these runs with the book's
# seed 0. The plan is in priority order, so a call cut by its budget still leaves the key points
# seeded: (1) the d_model 64 BLA and SWA points that define a state-efficiency ratio, (2) the same
# at d_model 128, (3) the strong bounded-state baselines and full attention, (4) the points at chance.
_B, _S = 3e-3, 1e-3
_BOOK_SEEDS_PLAN = (
    # (1) d_model 64: BLA and SWA where a ratio is defined
    (64, "bla", {"window": 64, "resolution": 31}, _B), (64, "swa", {"window": 32}, _B),
    (64, "swa", {"window": 64}, _B), (64, "bla", {"window": 32, "resolution": 15}, _B),
    (64, "swa", {"window": 16}, _B), (64, "bla", {"window": 64, "resolution": 15}, _B),
    (64, "bla", {"window": 32, "resolution": 31}, _B), (64, "bla", {"window": 128, "resolution": 31}, _B),
    # (2) d_model 128: the same comparison
    (128, "bla", {"window": 64, "resolution": 31}, _B), (128, "bla", {"window": 128, "resolution": 31}, _B),
    (128, "swa", {"window": 32}, _B), (128, "swa", {"window": 64}, _B),
    (128, "bla", {"window": 32, "resolution": 15}, _B), (128, "bla", {"window": 64, "resolution": 15}, _B),
    (128, "swa", {"window": 16}, _B),
    # (3) the other mixers that learn, and the points above every BLA one
    (64, "gated_deltanet", {}, _B), (128, "gated_deltanet", {}, _S), (64, "gla", {}, _B),
    (128, "gla", {}, _S), (64, "softmax", {}, _B), (128, "softmax", {}, _S),
    (64, "swa", {"window": 128}, _B), (128, "swa", {"window": 128}, _S),
    (64, "bla", {"window": 256, "resolution": 63}, _B),
    # (4) near chance in the book sweep
    (64, "gsa", {"num_slots": 16}, _S), (128, "gsa", {"num_slots": 16}, _S), (64, "linear", {}, _B),
    (128, "linear", {}, _B), (64, "gsa", {"num_slots": 64}, _S),
)
TASK.add_preset(Preset(
    task="mqar", name="book_seeds",
    data=_BOOK_DATA,
    widths=(64, 128), lrs=(_S, _B), seeds=(1, 2), head_dim=64,
    grid=(),
    per_width_grid=tuple((w, tuple((m, kw) for pw, m, kw, _ in _BOOK_SEEDS_PLAN if pw == w)) for w in (64, 128)),
    train=_BOOK_TRAIN,
    note=("seeds 1 and 2 of the book points chapter 8 compares, each at its best seed-0 learning rate; "
          "same data and recipe as book (same preset hash), in priority order"),
))

#: presets whose runs are an explicit plan of ``(width, mixer, kwargs, lr)`` points, in run order
RUN_PLANS = {"book_seeds": _BOOK_SEEDS_PLAN}

TASK.add_preset(Preset(
    task="mqar", name="paper",
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
))


# ------------------------------------------------------------------------------- the task

get_preset = TASK.get_preset
sweep_specs = TASK.sweep_specs
build_model = TASK.build_model
run_one = TASK.run_one
run_key = TASK.run_key
preset_hash = TASK.preset_hash
