"""The RegBench task (:data:`TASK`, registered as ``"regbench"``) and its presets ``ci``, ``book``,
``paper``: Akyürek et al.'s recipe scaled down, every scaled number written into the preset."""
from __future__ import annotations

from blaviz.experiments.preset import Preset
from blaviz.experiments.regbench import analysis
from blaviz.experiments.regbench.data import RegBenchSetup
from blaviz.experiments.regbench.metrics import RegBenchTaskData
from blaviz.experiments.task import Task

__all__ = ["RegBench", "TASK", "PRESETS"]


class RegBench(Task):
    """In-context regular languages: a record's ``accuracy`` is the validity accuracy, and it
    also carries the TV distance, the test loss and both metrics by position."""

    name = "regbench"
    data_hash_key = "setup"     # as RegBench's preset hashes were first computed

    def task_data(self, p: Preset) -> RegBenchTaskData:
        return RegBenchTaskData(p.data)

    def record(self, spec, p, model, cfg, out) -> dict:
        test = out.pop("test_metrics")
        rec = super().record(spec, p, model, cfg, out)
        rec.update({
            "validity_accuracy": test["validity"], "tv_distance": test["tv"], "test_loss": test["loss"],
            "tv_by_position": test["tv_by_position"], "scored_positions": test["scored_positions"],
            "metric_note": ("accuracy = validity_accuracy: share of scored test positions whose argmax symbol "
                            "is legal; tv_distance: mean total variation to the automaton's next-symbol law"),
        })
        rec["ms_per_step"] = round(1000 * rec["train_time_s"] / max(rec["steps"], 1), 2)
        return rec

    record_fields = analysis.RECORD_FIELDS

    def report(self, *paths) -> str:
        return analysis.report(*paths)

    def save_summary(self, path_in, path_out, **kw) -> dict:
        return analysis.save_summary(path_in, path_out, presets=self.presets, **kw)


TASK = RegBench()
PRESETS = TASK.presets

def _heads_grid(mixer, head_dims, d_model):
    """A recurrent mixer at several head sizes (state ``d_head * d_model`` per layer)."""
    return [(mixer, {"num_heads": d_model // h}) for h in head_dims]


# Akyürek et al.'s optimiser settings, with fewer steps (so a shorter warm-up and a larger lr)
_STD_TRAIN = dict(weight_decay=0.1, betas=(0.9, 0.99), warmup_frac=0.05, min_lr_frac=0.1, grad_clip=1.0,
                  early_stop=None, batch_size=32)

# ci: a tiny model on the CPU in well under a minute; shows that the pipeline learns in context.
TASK.add_preset(Preset(
    task="regbench", name="ci",
    data=RegBenchSetup(num_train=1_000, num_val=32, num_test=64, max_len=128, bucket=32,
                        position_slices=(0, 32, 64, 128)),
    widths=(32,), lrs=(3e-3,), head_dim=32, n_layers=2, mlp_ratio=2.0,
    grid=(("swa", {"window": 32}), ("bla", {"window": 64, "resolution": 15})),
    train=dict(_STD_TRAIN, max_steps=500, eval_every=50, eval_batch_size=64),
    note=("CPU smoke preset: d_model 32, 1000 training automata, prompts cut to 128 tokens, "
          "500 steps at batch 32 (about 16 epochs)"),
))

_BOOK_D = 64
TASK.add_preset(Preset(
    task="regbench", name="book",
    data=RegBenchSetup(num_train=2_500, num_val=100, num_test=500, max_len=512, bucket=64),
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
))

_PAPER_D = 128
TASK.add_preset(Preset(
    task="regbench", name="paper",
    data=RegBenchSetup(num_train=10_000, num_val=200, num_test=1_000, max_len=None, bucket=64,
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
))

# regbench_seeds: seeds 1 and 2 of the points behind chapter 9's trend claim (validity rises with
# state for SWA and BLA, stays flat for GLA and Gated DeltaNet): each family's smallest and largest
# state. Same setup and recipe as "book" (same preset hash: the analysis pools them with its seed 0),
# in priority order: SWA and BLA W=128 first (cheap), then GLA and Gated DeltaNet, BLA W=512, GSA.
_BOOK = PRESETS["book"]
TASK.add_preset(Preset(
    task="regbench", name="regbench_seeds",
    data=_BOOK.data, widths=_BOOK.widths, lrs=_BOOK.lrs, seeds=(1, 2), head_dim=_BOOK.head_dim,
    grid=(("swa", {"window": 8}), ("swa", {"window": 256}),
          ("bla", {"window": 128, "resolution": 7}), ("bla", {"window": 128, "resolution": 63}),
          ("gla", {"num_heads": 4}), ("gla", {"num_heads": 1}),
          ("gated_deltanet", {"num_heads": 4}), ("gated_deltanet", {"num_heads": 1}),
          ("bla", {"window": 512, "resolution": 7}), ("bla", {"window": 512, "resolution": 63}),
          ("gsa", {"num_slots": 8}), ("gsa", {"num_slots": 128})),
    train=_BOOK.train,
    note=("seeds 1 and 2 of each book family's smallest and largest state (the trend claim); same "
          "setup and recipe as book (same preset hash)"),
))
