"""RegBench: in-context regular languages as an experiment task, in five modules by job.

* :mod:`.data`: :class:`RegBenchSetup` (which prompts), :func:`generate`, :func:`length_groups`;
* :mod:`.metrics`: validity and TV per position, :class:`RegBenchTaskData` (what ``train`` needs);
* :mod:`.baseline_scores`: the oracle, context-free guesses, in-context n-gram models;
* :mod:`.presets`: the task :data:`TASK` (registered as ``"regbench"``) and its presets;
* :mod:`.analysis`: best learning rate per configuration, trends with state, the summary JSON.

In-context language learning (Akyürek et al. 2024): every prompt is 10-19 strings of one random
regular language (a random minimised DFA), and the model must continue it. Training and test
automata are disjoint, so the language has to be inferred from the prompt. The data, the metrics
and their conventions live in :mod:`blaviz.data.regbench`; this package only puts them behind the
:class:`~blaviz.experiments.task.Task` interface that MQAR uses, so that the same loop
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

from blaviz.experiments.regbench.analysis import (config_label, markdown_table, report, save_summary,
                                                  summarize, trend)
from blaviz.experiments.regbench.baseline_scores import baselines, ngram_logits
from blaviz.experiments.regbench.data import RegBenchSetup, generate, length_groups
from blaviz.experiments.regbench.metrics import RegBenchTaskData, position_means, position_scores
from blaviz.experiments.regbench.presets import PRESETS, TASK, RegBench

get_preset = TASK.get_preset
sweep_specs = TASK.sweep_specs
build_model = TASK.build_model
run_one = TASK.run_one
run_key = TASK.run_key
preset_hash = TASK.preset_hash

__all__ = ["RegBenchSetup", "RegBenchTaskData", "generate", "length_groups", "RegBench", "TASK", "PRESETS",
           "get_preset", "sweep_specs", "build_model", "run_one", "run_key", "preset_hash", "position_scores",
           "position_means", "ngram_logits", "baselines", "config_label", "summarize", "trend", "markdown_table",
           "report", "save_summary"]
