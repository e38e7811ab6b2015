"""MQAR in the regime of Zoology and Based, and the BLA variants in it (presets ``zoology``,
``zoology_ci``, ``beyond``, ``beyond_ci``, ``gsa_check`` of the task ``zoology``; also the
``gsa_check`` preset of the task ``mqar``, which needs the lab's ``fla_gsa`` mixer).

What follows the literature (Arora et al. 2023, 2024), and what does not:

* data: Zoology's training mix, 100k examples of ``(64, 4)`` and 20k each of ``(128, 8)``,
  ``(256, 16)``, ``(256, 32)``, ``(256, 64)``; 1000 test examples per slice;
* model: one ``[BaseConv, mixer]`` pair without MLPs (``n_layers=1``, ``mlp_ratio=0``: a
  short-convolution layer, then the mixer under test), one head of width ``d_model``;
* optimisation: batch 256, 32 epochs (about 22.5k steps), learning rates
  ``{1e-3, 3.2e-3, 1e-2, 3.2e-2}``, AdamW with weight decay 0.1, warm-up then cosine (ours);
  early stop at 0.99 pooled validation accuracy;
* metrics: the pooled accuracy (all scored tokens of the five slices) and the *slice-equal mean*
  (the mean of the five slices' accuracies, as Zoology reports), both in every record.

Runs are resumable mid-run: :class:`Zoology` trains with a checkpoint per run (in
``$BLAVIZ_CHECKPOINT_DIR``, default ``~/.cache/blaviz/checkpoints``), saved every
``CHECKPOINT_EVERY`` steps and when a time budget stops the run; the next call continues there.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

from blaviz.data.mqar import MQARData, slice_name
from blaviz.experiments import fla_layers  # noqa: F401 (registers the mixer "fla_gsa")
from blaviz.experiments import mqar as _mqar
from blaviz.experiments.mqar import MQAR
from blaviz.experiments.preset import Preset
from blaviz.experiments.train import TrainConfig, train

__all__ = ["Zoology", "TASK", "PRESETS", "CHECKPOINT_EVERY", "checkpoint_path", "slice_mean"]

CHECKPOINT_EVERY = 500


def checkpoint_path(key: str) -> Path:
    """Where the run called ``key`` keeps its checkpoint."""
    root = os.environ.get("BLAVIZ_CHECKPOINT_DIR") or Path.home() / ".cache/blaviz/checkpoints"
    return Path(root) / (hashlib.sha1(key.encode()).hexdigest()[:16] + ".pt")


def slice_mean(per_slice: dict, pooled_slices) -> float:
    """The mean of the pooled slices' accuracies (each slice counts once, whatever its size)."""
    names = [slice_name(s) for s in pooled_slices]
    return sum(per_slice[n] for n in names) / len(names)


class Zoology(MQAR):
    """MQAR in Zoology's regime: resumable runs, slice-equal mean accuracy in every record."""

    name = "zoology"
    tagged_keys = True

    def record(self, spec, p, model, cfg, out):
        rec = super().record(spec, p, model, cfg, out)
        rec["slice_mean"] = slice_mean(rec["per_slice"], p.data.pooled_slices)
        return rec

    def run_one(self, spec, p, *, device="cpu", progress=True, bla_impl="auto",
                time_limit_s=None, step_budget=None):
        import torch

        device = torch.device(device)
        model = self.build_model(p, spec, bla_impl=bla_impl).to(device)
        cfg = TrainConfig(lr=spec["lr"], seed=spec["seed"], **p.train)
        desc = spec["key"].split(f"{p.name}/", 1)[-1][:48]
        out = train(model, self.task_data(p), cfg, device=device, progress=progress, desc=desc,
                    time_limit_s=time_limit_s, checkpoint=checkpoint_path(spec["key"]),
                    checkpoint_every=CHECKPOINT_EVERY, step_budget=step_budget)
        return self.record(spec, p, model, cfg, out)


TASK = Zoology()
PRESETS = TASK.presets

_LRS = (1e-3, 3.2e-3, 1e-2, 3.2e-2)
_TRAIN = dict(batch_size=256, epochs=32, eval_every=500, weight_decay=0.1, warmup_frac=0.1,
              min_lr_frac=0.0, grad_clip=1.0, early_stop=0.99)
_MODEL = dict(head_dim=None, n_layers=1, mlp_ratio=0.0)


def _swa(*windows):
    return [("swa", {"window": w}) for w in windows]


def _bla(*pairs, **kw):
    return [("bla", {"window": w, "resolution": n, **kw}) for w, n in pairs]


# Positive controls first (the literature's mixers must come off the floor here), then BLA
# against SWA over state. With one head of width d, SWA W costs 2 W d and BLA N costs 2 N d.
_CONTROLS = (("linear", {}), ("gla", {}), ("gsa", {"num_slots": 64}), ("gated_deltanet", {}),
             ("softmax", {}))
_GRID = tuple(list(_CONTROLS) + _swa(16, 32, 64, 128, 256)
              + _bla((64, 15), (128, 15), (64, 31), (128, 31), (256, 31), (128, 63), (256, 63)))

TASK.add_preset(Preset(
    task="zoology", name="zoology", data=MQARData(), widths=(64, 128, 256), lrs=_LRS,
    grid=_GRID, train=_TRAIN, **_MODEL,
    note=("Zoology/Based regime: 100k+4x20k examples, batch 256, 32 epochs, [BaseConv, mixer] "
          "without MLPs, one head of width d_model, 4 learning rates up to 3.2e-2"),
))

# zoology_controls: the positive controls of one GPU call (d_model 64, two learning rates),
# then BLA against SWA at about the same state (2 * 63 * 64 vs 2 * 64 * 64).
TASK.add_preset(replace(
    PRESETS["zoology"], name="zoology_controls", widths=(64,), lrs=(3.2e-3, 1e-2),
    grid=(("linear", {}), ("gla", {}), ("gsa", {"num_slots": 64}), ("swa", {"window": 64}),
          ("bla", {"window": 128, "resolution": 63})),
    note="zoology regime, d_model 64: do the literature's mixers come off the floor here?",
))

# gsa_check (issue 15, part 3): why is GSA at chance? fla's own GSA layer and kernels ("fla_gsa")
# beside ours under both layer recipes and GLA, d_model 64, in one GPU call: a short complete
# schedule (2000 steps of warm-up then cosine, not the regime's 22.6k) so that every run ends.
_GSA_CHECK = (("fla_gsa", {"num_slots": 64}), ("gsa", {"num_slots": 64, "recipe": "fla"}),
              ("gsa", {"num_slots": 64}), ("gla", {}))
TASK.add_preset(replace(
    PRESETS["zoology"], name="gsa_check", widths=(64,), lrs=(3.2e-3, 1e-2), grid=_GSA_CHECK,
    train=dict(_TRAIN, epochs=None, max_steps=2000, eval_every=250),
    note=("zoology data and model, d_model 64, 2000 steps: fla's GSA layer against ours "
          "(both recipes) and GLA"),
))
# The same fla layer in the book regime (task mqar; defined here, where fla_gsa is registered):
# chapter 8's data and recipe, d_model 64, the book's two learning rates.
_mqar.TASK.add_preset(replace(
    _mqar.PRESETS["book"], name="gsa_check", widths=(64,), lrs=(1e-3, 3e-3), per_width_grid=(),
    grid=(("fla_gsa", {"num_slots": 64}),),
    note="the book regime (chapter 8's data and recipe), d_model 64: fla's GSA layer, M = 64",
))

# zoology_ci: the same model pattern and metrics on a CPU in seconds (not the regime's sizes).
_CI_DATA = MQARData(train_configs=((64, 4),), train_counts=(6_000,), test_slices=((64, 4),),
                    pooled_slices=((64, 4),), n_test=128, n_val=64)
TASK.add_preset(Preset(
    task="zoology", name="zoology_ci", data=_CI_DATA, widths=(32,), lrs=(1e-2,),
    grid=(("swa", {"window": 64}), ("bla", {"window": 64, "resolution": 31}), ("linear", {})),
    train=dict(_TRAIN, batch_size=64, epochs=None, max_steps=60, eval_every=30), **_MODEL,
    note="CPU smoke preset: zoology's model pattern, d_model 32, 60 steps on one (64, 4) slice",
))

# beyond: the BLA variants at equal state per layer against SWA (d_model 64 and 128, one head of
# width d: a state of 2 * 32 * d, SWA W = 32's, unless said). Multi-resolution heads are two
# heads of d/2: an exact 16-token window beside a blurry 128-token one (2 (16 + 47) d/2). Exact
# erasure keeps a ring buffer as well (2 (31 + 128) d): a diagnostic of BLA's blurry erasure.
_BEYOND = tuple(
    _swa(16, 32, 64)
    + _bla((64, 31), (128, 31))
    + _bla((128, 31), num_slots=62) + _bla((128, 31), num_slots=128)
    + [("bla_multires", {"heads": ((16, 16), (128, 47)), "num_heads": 2}),
       ("gated_bla", {"window": 128, "resolution": 31}),
       ("gated_bla", {"window": 256, "resolution": 31}),
       ("bla_exact_erasure", {"window": 128, "resolution": 31}),
       ("swa_bla_hybrid", {"swa_window": 8, "window": 128, "resolution": 23})])
TASK.add_preset(Preset(
    task="zoology", name="beyond", data=MQARData(), widths=(64, 128), lrs=(3.2e-3, 1e-2),
    seeds=(0, 1, 2), grid=_BEYOND, train=_TRAIN, **_MODEL,
    note=("BLA variants at SWA W=32's state per layer in the zoology regime, 2 learning rates, "
          "3 seeds"),
))
TASK.add_preset(replace(
    PRESETS["zoology_ci"], name="beyond_ci",
    grid=(("swa", {"window": 16}), ("bla", {"window": 32, "resolution": 15, "num_slots": 30}),
          ("bla_multires", {"heads": ((16, 16), (32, 15)), "num_heads": 2}),
          ("gated_bla", {"window": 32, "resolution": 15}),
          ("bla_exact_erasure", {"window": 32, "resolution": 15}),
          ("swa_bla_hybrid", {"swa_window": 4, "window": 32, "resolution": 11})),
    note="CPU smoke preset of the variants: zoology_ci's data and recipe, d_model 32",
))
# beyond_cpu: the variants at CPU size, long enough to learn the one (64, 4) slice (what chapter 10
# shows as CPU-size runs; the regime's runs are the GPU preset beyond): beyond_ci's variants, then
# SWA and plain BLA over a range of states (one head of 32: SWA W keeps 64 W numbers, BLA N 64 N),
# so that each variant's accuracy can be read against SWA's curve.
_BEYOND_CPU_STATES = tuple(
    _swa(8, 24, 32, 48, 64)
    + _bla((32, 7), (32, 15), (64, 15), (64, 31))
    + _bla((64, 15), num_slots=30) + _bla((64, 31), num_slots=62)
    + [("gated_bla", {"window": 64, "resolution": 15}),
       ("gated_bla", {"window": 64, "resolution": 31})])
TASK.add_preset(replace(
    PRESETS["beyond_ci"], name="beyond_cpu", grid=PRESETS["beyond_ci"].grid + _BEYOND_CPU_STATES,
    data=replace(_CI_DATA, train_counts=(24_000,), n_test=256, n_val=128),
    train=dict(_TRAIN, batch_size=64, epochs=None, max_steps=800, eval_every=100),
    note="CPU-size variants: d_model 32, one (64, 4) slice, 800 steps of batch 64, lr 1e-2",
))
# beyond_cpu_load: the same recipe under load, 16 pairs in 128 tokens (the pairs fill the first
# 32 tokens, so a window must reach back up to 128 tokens), SWA over state against BLA at
# W = 128 with N = 63 and 31, reading with S = N and S = 2N, and gated BLA.
TASK.add_preset(replace(
    PRESETS["beyond_cpu"], name="beyond_cpu_load",
    data=replace(PRESETS["beyond_cpu"].data, train_configs=((128, 16),),
                 test_slices=((128, 16),), pooled_slices=((128, 16),)),
    grid=tuple(_swa(32, 64, 96, 128) + _bla((128, 63), (128, 31))
               + _bla((128, 63), num_slots=126) + _bla((128, 31), num_slots=62)
               + [("gated_bla", {"window": 128, "resolution": 63})]),
    note="CPU-size variants under load: d_model 32, one (128, 16) slice, 800 steps of batch 64",
))
# beyond_cpu_load_long: the closest pair under load (SWA W = 64 against BLA (128, 63), S = N and
# 2N, equal state) trained twice as long: does BLA, still learning at 800 steps, catch up? SWA
# W = 96 and 128 after them, for the ratio.
TASK.add_preset(replace(
    PRESETS["beyond_cpu_load"], name="beyond_cpu_load_long",
    grid=tuple(_swa(64) + _bla((128, 63)) + _bla((128, 63), num_slots=126) + _swa(96, 128)),
    train=dict(PRESETS["beyond_cpu_load"].train, max_steps=1600),
    note="beyond_cpu_load's closest pair at 1600 steps of batch 64",
))
# beyond_cpu_long: the easy slice (beyond_cpu's data) trained twice as long, SWA and plain BLA over
# state with S = N and S = 2N reads: does the ratio measured at 800 steps hold, as it grew under load?
TASK.add_preset(replace(
    PRESETS["beyond_cpu"], name="beyond_cpu_long",
    grid=tuple(_swa(16, 24, 32, 48, 64) + _bla((32, 15), (64, 15), (64, 31))
               + _bla((64, 15), num_slots=30) + _bla((64, 31), num_slots=62)),
    train=dict(PRESETS["beyond_cpu"].train, max_steps=1600),
    note="beyond_cpu's SWA and plain BLA over state at 1600 steps of batch 64",
))
# beyond_cpu_wide: the same runs with one head of 64 instead of 32. The read-out model predicts that
# a wider head recovers much of the recall lost at W/N = 4 (more room to keep blended keys apart):
# do trained models follow?
TASK.add_preset(replace(
    PRESETS["beyond_cpu_long"], name="beyond_cpu_wide", widths=(64,),
    note="beyond_cpu_long with d_model 64 (one head of 64)",
))
# beyond_cpu_load_wide: the loaded pair (beyond_cpu_load_long) with one head of 64: does width help
# BLA under load as it does on the easy slice?
TASK.add_preset(replace(
    PRESETS["beyond_cpu_load_long"], name="beyond_cpu_load_wide", widths=(64,),
    note="beyond_cpu_load_long with d_model 64 (one head of 64)",
))
# beyond_cpu_wider: one head of 128 on the easy slice, W/N = 2 and 4 against SWA: does the ratio
# keep rising with width, as the read-out model predicts for W/N = 4?
TASK.add_preset(replace(
    PRESETS["beyond_cpu_long"], name="beyond_cpu_wider", widths=(128,),
    grid=tuple(_swa(16, 24, 32, 48, 64) + _bla((64, 15), (64, 31))
               + _bla((64, 15), num_slots=30) + _bla((64, 31), num_slots=62)),
    note="beyond_cpu_long's W = 64 runs with d_model 128 (one head of 128)",
))
# beyond_cpu_wider_lr: at one head of 128 the S = N read stopped following the read-out model while
# S = 2N followed it; is the learning rate (1e-2 at every width) what holds S = N back? Both reads of
# (64, 15) and the SWA windows around their state at 3.2e-3.
_WIDER_READS = tuple(_bla((64, 15)) + _bla((64, 15), num_slots=30))
TASK.add_preset(replace(
    PRESETS["beyond_cpu_wider"], name="beyond_cpu_wider_lr", lrs=(3.2e-3,),
    grid=_WIDER_READS + tuple(_swa(16, 24, 32)),
    note="beyond_cpu_wider's (64, 15) reads and SWA W = 16-32 at lr 3.2e-3",
))
# beyond_cpu_wider_steps: the same two reads at lr 1e-2 trained twice as long (3,200 steps): does the
# S = N read climb towards the read-out model given more steps?
TASK.add_preset(replace(
    PRESETS["beyond_cpu_wider"], name="beyond_cpu_wider_steps",
    grid=_WIDER_READS,
    train=dict(PRESETS["beyond_cpu_wider"].train, max_steps=3200),
    note="beyond_cpu_wider's (64, 15) reads at 3200 steps of batch 64",
))
# beyond_cpu_wider_data: the same 3,200 steps on four times the training examples (96,000, about two
# epochs instead of eight): does the S = N read generalise better when it sees each example less?
# SWA W = 24 and 32, the windows around the S = 2N read's accuracy, come after the reads: is SWA's
# accuracy, bounded by its window's coverage, unchanged by the longer run on more data? Then SWA
# W = 16, the smallest window of the width table: is a small window also at its bound?
TASK.add_preset(replace(
    PRESETS["beyond_cpu_wider_steps"], name="beyond_cpu_wider_data",
    data=replace(PRESETS["beyond_cpu_wider_steps"].data, train_counts=(96_000,)),
    grid=PRESETS["beyond_cpu_wider_steps"].grid + tuple(_swa(24, 32, 16)),
    note="beyond_cpu_wider_steps with 96,000 training examples, and SWA W = 24, 32, 16",
))
# beyond_cpu_wider_temp and beyond_cpu_wider_wd: the recipe of beyond_cpu_wider_data, one knob each
# on the two (64, 15) reads. The read-out model wants sharper softmaxes than the trained logits may
# reach (slot keys average about W/N corrected keys, so their norm shrinks), and weight decay pulls
# the query and key projections towards small norms: is the logit scale what holds S = N back?
# _temp adds a learned per-head read-out temperature (not decayed); _wd trains without weight decay.
TASK.add_preset(replace(
    PRESETS["beyond_cpu_wider_data"], name="beyond_cpu_wider_temp",
    grid=tuple((m, dict(kw, learn_temperature=True)) for m, kw in _WIDER_READS),
    note="beyond_cpu_wider_data's (64, 15) reads with a learned read-out temperature",
))
TASK.add_preset(replace(
    PRESETS["beyond_cpu_wider_data"], name="beyond_cpu_wider_wd", grid=_WIDER_READS,
    train=dict(PRESETS["beyond_cpu_wider_data"].train, weight_decay=0.0),
    note="beyond_cpu_wider_data's (64, 15) reads without weight decay",
))
# beyond_cpu_wider_eight: the paper's eight-fold saving needs W/N of about 8. At one head of 128,
# BLA (64, 7) (W/N about 9, SWA W = 7's state) read with S = N and 2N slots, and SWA W = 8 at about
# the same state: does a trained read at W/N about 9 stay where the read-out model puts it, far
# below SWA at eight times its state?
TASK.add_preset(replace(
    PRESETS["beyond_cpu_wider"], name="beyond_cpu_wider_eight",
    grid=tuple(_swa(8) + _bla((64, 7)) + _bla((64, 7), num_slots=14)),
    note="beyond_cpu_wider with BLA (64, 7), S = N and 2N, and SWA W = 8",
))
# beyond_cpu_wider_eight_data: the same three configurations on beyond_cpu_wider_data's recipe
# (3,200 steps on 96,000 examples): is the read at W/N about 9 held back by training rather than
# by the blur?
TASK.add_preset(replace(
    PRESETS["beyond_cpu_wider_data"], name="beyond_cpu_wider_eight_data",
    grid=PRESETS["beyond_cpu_wider_eight"].grid,
    note="beyond_cpu_wider_eight at 3200 steps on 96,000 training examples",
))
