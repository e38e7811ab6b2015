"""Checkpoints that let a training run stop anywhere and continue as if it never stopped.

A checkpoint holds everything :func:`blaviz.experiments.train.train` needs to take the next step
exactly as an uninterrupted run would: the model, the optimiser and the learning-rate schedule,
the data position (the shuffling generator's state at the start of the current epoch and how many
of that epoch's batches are done), the global RNG states, and the run's history so far (the
evaluations, the running training loss, the best validation accuracy, the time spent).

Written atomically (a temporary file, then a rename): a process killed while saving leaves the
previous checkpoint intact.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

FORMAT = 1


def save_checkpoint(path, *, model, opt, sched, gen_epoch_state, batches_done: int, step: int,
                    history: list, best_val: float, loss_sum: float, loss_n: int,
                    elapsed_s: float, cfg: dict) -> None:
    """Write a checkpoint to ``path`` (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format": FORMAT, "model": model.state_dict(), "opt": opt.state_dict(),
        "sched": sched.state_dict(), "gen_epoch_state": gen_epoch_state,
        "batches_done": batches_done, "step": step, "history": history, "best_val": best_val,
        "loss_sum": loss_sum, "loss_n": loss_n, "elapsed_s": elapsed_s, "cfg": cfg,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _run_fields(cfg: dict) -> dict:
    """The configuration that defines the run: how the steps execute (``cuda_graph``) does not."""
    return {k: v for k, v in cfg.items() if k != "cuda_graph"}


def load_checkpoint(path, *, model, opt, sched, cfg: dict) -> dict | None:
    """Restore ``model``, ``opt``, ``sched`` and the RNGs from ``path``; return the rest of the
    saved state, or ``None`` when there is no checkpoint. A checkpoint of a different training
    configuration is an error (it would silently mix two runs)."""
    path = Path(path)
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("format") != FORMAT:
        raise ValueError(f"checkpoint {path} has format {state.get('format')!r}, expected {FORMAT}")
    if _run_fields(state["cfg"]) != _run_fields(cfg):
        raise ValueError(f"checkpoint {path} was written for another training configuration: "
                         f"{state['cfg']} != {cfg}")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state
