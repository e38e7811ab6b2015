"""Synthetic-task experiments: the shared training loop (:mod:`.train`), MQAR presets and sweeps
(:mod:`.mqar`), the resumable runner (:mod:`.sweep`), step timing (:mod:`.timing`) and the analysis
of ``runs.jsonl`` (:mod:`.analysis`). Command line: ``python -m blaviz.experiments --help``."""
