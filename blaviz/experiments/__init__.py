"""The lab's experiment harness (it uses the library's public API; the library never imports it).

* :mod:`.preset`: :class:`~.preset.Preset`, one experiment as data, the same type for every task;
* :mod:`.task`: :class:`~.task.Task`, what a task knows (presets, run keys, model, one run, analysis);
* :mod:`.registry`: the registered tasks (``get_task("mqar")``, ``register_task``);
* :mod:`.mqar`, :mod:`.regbench`: the two tasks and their presets;
* :mod:`.train`: the training loop every task shares (a task's data behind :class:`~.train.TaskData`);
* :mod:`.sweep`, :mod:`.records`: the resumable runner and its ``runs.jsonl``;
* :mod:`.analysis`: best learning rate per configuration, state efficiency;
* :mod:`.timing`: step times, to size a sweep; :mod:`.provenance`: how a result was made.

Command line: ``python -m blaviz.experiments --help``.
"""
