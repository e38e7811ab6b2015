"""How long would a sweep take? Time real training steps of a preset's models, per sequence length.

``python -m blaviz.experiments steptime --task mqar --preset book --device cuda [--concurrency K]`` builds the
first run of each mixer configuration, times ``steps`` optimiser steps on each training group (one
sequence length each), and estimates one run's training time from the preset's epochs and group
sizes (evaluations excluded). With ``--concurrency K`` the same measurement runs in ``K`` processes
at once, which shows how much throughput several processes sharing one GPU add.
"""
from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing as mp
import time

import torch


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_spec(task, preset, spec, *, device="cuda", steps: int = 10, warmup: int = 3, bla_impl="auto") -> dict:
    """Milliseconds per training step on each group, and the estimated training time of one run
    (``task``: a registered :class:`~blaviz.experiments.task.Task`)."""
    from blaviz.experiments.train import TrainConfig, param_groups

    model = task.build_model(preset, spec, bla_impl=bla_impl).to(device)
    data = task.task_data(preset)
    cfg = TrainConfig(lr=spec["lr"], **preset.train)
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                            **({"fused": True} if torch.device(device).type == "cuda" else {}))
    per_group, est = {}, 0.0
    for x, y in data.train_groups():
        xb, yb = x[:cfg.batch_size].to(device), y[:cfg.batch_size].to(device)
        for i in range(warmup + steps):
            if i == warmup:
                _sync(device)
                t0 = time.perf_counter()
            loss = data.loss(model, xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        _sync(device)
        ms = 1000 * (time.perf_counter() - t0) / steps
        per_group[f"{x.shape[1]}x{int((y[0] != -100).sum())}"] = round(ms, 2)
        est += ms / 1000 * math.ceil(x.shape[0] / cfg.batch_size) * (cfg.epochs or 1)
    return {"key": spec["key"], "ms_per_step": per_group, "est_train_s": round(est, 3),
            "state_size": model.state_size}


def _time_many(task, preset, specs, device, steps, bla_impl):
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    out = [time_spec(task, preset, s, device=device, steps=steps, bla_impl=bla_impl) for s in specs]
    return out, time.perf_counter() - t0


def steptime(task, preset, specs, *, device="cuda", steps=10, concurrency=1, bla_impl="auto") -> list[dict]:
    """Time ``specs``; with ``concurrency > 1`` run the whole list in that many processes at once
    and report each process's timings (the slow-down against one process is the sharing cost)."""
    if concurrency <= 1:
        out, wall = _time_many(task, preset, specs, device, steps, bla_impl)
        for r in out:
            r["processes"] = 1
        return out
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(concurrency, mp_context=ctx) as pool:
        futs = [pool.submit(_time_many, task, preset, specs, device, steps, bla_impl) for _ in range(concurrency)]
        results = [f.result() for f in futs]
    out = []
    for r in results[0][0]:
        r["processes"] = concurrency
        out.append(r)
    return out
