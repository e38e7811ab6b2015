"""How long would a sweep take? Time real training steps of a preset's models, per sequence length.

``python -m blaviz.experiments steptime --task mqar --preset book --device cuda [--concurrency K]`` builds the
first run of each mixer configuration, times ``steps`` optimiser steps on each training group (one
sequence length each), and estimates one run's training time from the preset's epochs and group
sizes (evaluations excluded). With ``--concurrency K`` the same measurement runs in ``K`` processes
at once, which shows how much throughput several processes sharing one GPU add. ``--cuda-graph``
times the steps :func:`~blaviz.experiments.train.train` takes with ``TrainConfig.cuda_graph``
(graphs captured before the clock starts).
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


def time_spec(task, preset, spec, *, device="cuda", steps: int = 10, warmup: int = 3, bla_impl="auto",
              cuda_graph: bool = False, data=None) -> dict:
    """Milliseconds per training step on each group, and the estimated training time of one run
    (``task``: a registered :class:`~blaviz.experiments.task.Task`)."""
    from blaviz.experiments.train import (StaticSteps, TaskData, TrainConfig, gathered_loss,
                                          label_positions, param_groups)

    model = task.build_model(preset, spec, bla_impl=bla_impl).to(device)
    data = data or task.task_data(preset)
    cfg = TrainConfig(lr=spec["lr"], **preset.train)
    cuda = torch.device(device).type == "cuda"
    if cuda_graph and not cuda:
        raise ValueError(f"cuda_graph needs a CUDA device, got device={device}")
    lr = torch.tensor(cfg.lr, device=device) if cuda_graph else cfg.lr
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=lr,
                            **({"fused": True, "capturable": cuda_graph} if cuda else {}))
    per_group, est = {}, 0.0
    for x, y in data.train_groups():
        xb, yb = x[:cfg.batch_size].to(device), y[:cfg.batch_size].to(device)
        pos = label_positions(yb) if type(data).loss is TaskData.loss else None

        def loss_fn(_, idx, xb=xb, yb=yb, pos=pos):       # what train() computes
            if pos is None:
                return data.loss(model, xb[idx], yb[idx])
            return gathered_loss(model, xb[idx], yb[idx], pos[idx])

        static = StaticSteps(model, opt, loss_fn, [(xb, yb)], batch_size=xb.shape[0],
                             grad_clip=1.0, capture=cuda_graph)
        idx = torch.arange(xb.shape[0], device=device)
        for i in range(warmup + steps):
            if i == warmup:
                _sync(device)
                t0 = time.perf_counter()
            static.step(0, idx)
        _sync(device)
        ms = 1000 * (time.perf_counter() - t0) / steps
        per_group[f"{x.shape[1]}x{int((y[0] != -100).sum())}"] = round(ms, 2)
        est += ms / 1000 * math.ceil(x.shape[0] / cfg.batch_size) * (cfg.epochs or 1)
    return {"key": spec["key"], "ms_per_step": per_group, "est_train_s": round(est, 3),
            "state_size": model.state_size, "cuda_graph": cuda_graph}


def _time_many(task, preset, specs, device, steps, bla_impl, cuda_graph=False):
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    data = task.task_data(preset)                             # once: generating it takes seconds
    out = [time_spec(task, preset, s, device=device, steps=steps, bla_impl=bla_impl,
                     cuda_graph=cuda_graph, data=data) for s in specs]
    return out, time.perf_counter() - t0


def steptime(task, preset, specs, *, device="cuda", steps=10, concurrency=1, bla_impl="auto",
             cuda_graph: bool = False) -> list[dict]:
    """Time ``specs``; with ``concurrency > 1`` run the whole list in that many processes at once
    and report each process's timings (the slow-down against one process is the sharing cost)."""
    if concurrency <= 1:
        out, wall = _time_many(task, preset, specs, device, steps, bla_impl, cuda_graph)
        for r in out:
            r["processes"] = 1
        return out
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(concurrency, mp_context=ctx) as pool:
        futs = [pool.submit(_time_many, task, preset, specs, device, steps, bla_impl, cuda_graph)
                for _ in range(concurrency)]
        results = [f.result() for f in futs]
    out = []
    for r in results[0][0]:
        r["processes"] = concurrency
        out.append(r)
    return out
