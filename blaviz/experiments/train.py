"""The training loop every task shares (MQAR, RegBench, ...).

Task-specific parts sit behind :class:`TaskData`: the training data (groups of equal-length
sequences), the evaluation sets, the loss and the metrics. :func:`train` knows only models,
optimisers and schedules:

* AdamW (``betas = (0.9, 0.98)``), weight decay on matrices only (not on norms, biases, gains);
* linear warm-up over ``warmup_frac`` of the steps, then a cosine decay to ``min_lr_frac * lr``;
* gradient clipping at ``grad_clip``;
* evaluation on the validation sets every ``eval_every`` steps and at the end, stopping early once
  the pooled validation accuracy reaches ``early_stop``; ``history`` records, at each evaluation,
  the mean training loss since the previous one (``train_loss``) and the validation accuracy;
* a final evaluation on the test sets (plus a task's extra ``metrics``, if it reports any).

Batches hold examples of one length (one group), in a shuffled order each epoch: no padding work.

The step never waits on the host: the labelled positions of each group are found once before
training (:func:`label_positions`) and gathered on the device, the epoch's batch indices travel to
the device once per epoch, and the training loss is summed on the device. With
``TrainConfig.cuda_graph`` each full batch of a group replays one captured CUDA graph of the whole
step (forward, backward, clipping, AdamW); see :class:`StaticSteps`.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

from pathlib import Path

import torch
import torch.nn.functional as F

from blaviz.experiments.checkpoint import load_checkpoint, save_checkpoint

IGNORE_INDEX = -100
_GRAPH_DEVICES = ("cuda",)                                    # where TrainConfig.cuda_graph may run


@dataclass
class TrainConfig:
    """Optimisation hyper-parameters of one run. Give ``epochs`` or ``max_steps`` (or both: the
    smaller wins)."""

    lr: float
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.98)
    batch_size: int = 64
    epochs: float | None = None
    max_steps: int | None = None
    warmup_frac: float = 0.1
    min_lr_frac: float = 0.0
    grad_clip: float = 1.0
    eval_every: int = 200
    early_stop: float | None = 0.99
    eval_batch_size: int = 256
    seed: int = 0
    cuda_graph: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


class TaskData:
    """What :func:`train` needs from a task: its data, loss and metrics. Subclass and fill in the
    data; the defaults score
    next-token prediction at the labelled positions (``labels != -100``, no further shift)."""

    name = "task"

    def train_groups(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``[(inputs [n, L], labels [n, L]), ...]``: one group per sequence length (CPU tensors)."""
        raise NotImplementedError

    def validation_sets(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def test_sets(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def pooled_names(self, sets: dict) -> list[str]:
        """Which sets enter the pooled accuracy (default: all)."""
        return list(sets)

    def loss(self, model, inputs, labels) -> torch.Tensor:
        """Cross-entropy at the labelled positions only (logits computed only there)."""
        hidden = model(inputs)
        mask = labels != IGNORE_INDEX
        return F.cross_entropy(model.logits(hidden[mask]).float(), labels[mask])

    @torch.no_grad()
    def correct(self, model, inputs, labels) -> tuple[int, int]:
        """``(correct, scored)`` predictions (argmax over the whole vocabulary) at labelled positions."""
        hidden = model(inputs)
        mask = labels != IGNORE_INDEX
        pred = model.logits(hidden[mask]).argmax(-1)
        return int((pred == labels[mask]).sum()), int(mask.sum())

    @torch.no_grad()
    def evaluate(self, model, sets: dict, *, device, batch_size: int = 256) -> dict:
        """``{"pooled": acc over the pooled sets' scored tokens, "per_slice": {name: acc}}``.

        A task may add ``"metrics": {name: value}`` (e.g. RegBench's TV distance): :func:`train`
        then records its numbers in ``history`` (as ``val_<name>``) and returns the test set's
        as ``test_metrics``."""
        was_training = model.training
        model.eval()
        per, counts = {}, {}
        for name, (x, y) in sets.items():
            c = n = 0
            for i in range(0, x.shape[0], batch_size):
                ci, ni = self.correct(model, x[i:i + batch_size].to(device), y[i:i + batch_size].to(device))
                c, n = c + ci, n + ni
            per[name], counts[name] = c / max(n, 1), (c, n)
        pooled = self.pooled_names(sets)
        c = sum(counts[k][0] for k in pooled)
        n = sum(counts[k][1] for k in pooled)
        model.train(was_training)
        return {"pooled": c / max(n, 1), "per_slice": per}


def label_positions(labels: torch.Tensor) -> torch.Tensor | None:
    """``[n, L]`` labels -> ``[n, k]`` positions of each row's labelled tokens, in increasing
    order, ``k`` the most any row has. A row with fewer is padded with unlabelled positions, which
    the loss ignores (their label is ``-100``). ``None`` when no row has a label."""
    mask = labels != IGNORE_INDEX
    k = int(mask.sum(1).max()) if labels.numel() else 0
    if k == 0:
        return None
    # a stable sort puts each row's labelled positions first, in their order
    return torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices[:, :k]


def gathered_loss(model, inputs, labels, pos) -> torch.Tensor:
    """:meth:`TaskData.loss` without boolean indexing: ``pos [B, k]`` (:func:`label_positions`)
    names the labelled positions, so no shape depends on the data. The same tokens in the same
    order as the boolean mask (padding positions are ignored), hence the same mean
    cross-entropy."""
    hidden = model(inputs)                                    # [B, L, D]
    d = hidden.shape[-1]
    h = hidden.gather(1, pos.unsqueeze(-1).expand(-1, -1, d))
    y = labels.gather(1, pos)
    return F.cross_entropy(model.logits(h.reshape(-1, d)).float(), y.reshape(-1))


class StaticSteps:
    """Training steps on static buffers, replayed as CUDA graphs (one per group).

    Each group's full batches share one buffer of example indices (``[batch_size]``, on the
    device); the graph gathers the batch from the group's tensors, runs forward, backward,
    clipping and the optimiser (AdamW with ``capturable=True`` and a tensor learning rate that the
    schedule fills in place). Gradients stay allocated between steps (zeroed, never set to
    ``None``): the graphs read and write them at fixed addresses. A batch of another size (the
    last partial batch of a group) runs eagerly on the same tensors.

    ``capture=False`` runs every step eagerly on the same code path (what a CPU can test).
    """

    def __init__(self, model, opt, loss_fn, groups, *, batch_size: int, grad_clip: float,
                 capture: bool, warmup: int = 2):
        self.model, self.opt, self.loss_fn, self.groups = model, opt, loss_fn, groups
        self.batch_size, self.grad_clip, self.capture, self.warmup = batch_size, grad_clip, capture, warmup
        self.params = [p for g in opt.param_groups for p in g["params"]]
        self.graphs = {}                                      # group -> (graph, idx buffer, loss)

    def _body(self, gi, idx):
        self.opt.zero_grad(set_to_none=False)
        loss = self.loss_fn(gi, idx)
        loss.backward()
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.opt.step()
        return loss.detach()

    def _mixer_names(self) -> str:
        return ", ".join(sorted({type(m).__name__ for m in getattr(self.model, "mixers", [])})) or "?"

    def _capture_all(self, device):
        """Warm up every group on a side stream (compiles and autotunes kernels, allocates the
        gradients and the optimiser state), restore the exact state from before, then capture."""
        model, opt = self.model, self.opt
        snap = [t.detach().clone() for t in model.state_dict().values()]
        had_state = {p: {k: v.clone() for k, v in opt.state[p].items()} for p in opt.state}
        lr_snap = [g["lr"].clone() for g in opt.param_groups]
        rng = torch.cuda.get_rng_state(device)
        bufs = {gi: torch.zeros(self.batch_size, dtype=torch.long, device=device)
                for gi, (x, _) in enumerate(self.groups) if x.shape[0] >= self.batch_size}
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for gi, buf in bufs.items():
                for _ in range(self.warmup):
                    self._body(gi, buf)
        torch.cuda.current_stream(device).wait_stream(side)
        with torch.no_grad():                                 # back to the state before warm-up
            for t, s in zip(model.state_dict().values(), snap):
                t.copy_(s)
            for p, st in opt.state.items():
                for k, v in st.items():
                    if torch.is_tensor(v):
                        v.copy_(had_state[p][k]) if p in had_state else v.zero_()
            for g, lr in zip(opt.param_groups, lr_snap):
                g["lr"].copy_(lr)
        torch.cuda.set_rng_state(rng, device)
        for gi, buf in bufs.items():
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph):
                    loss = self._body(gi, buf)
            except Exception as e:
                raise RuntimeError(f"CUDA graph capture of the training step failed for the mixer(s) "
                                   f"{self._mixer_names()} (group {gi}): {e}; train without "
                                   f"cuda_graph") from e
            self.graphs[gi] = (graph, buf, loss)

    def step(self, gi, idx) -> torch.Tensor:
        """One optimiser step on examples ``idx`` (device tensor) of group ``gi``; the loss (a
        device scalar, valid until this group's next step)."""
        if self.capture and idx.shape[0] == self.batch_size:
            if not self.graphs:
                self._capture_all(idx.device)
            graph, buf, loss = self.graphs[gi]
            buf.copy_(idx)
            graph.replay()
            return loss
        return self._body(gi, idx)


def keep_lr_tensors(opt, lr_tensors) -> None:
    """Put the learning-rate tensors the graphs read back into ``opt``'s groups, holding the
    group's current value (a schedule or ``load_state_dict`` that replaced them)."""
    with torch.no_grad():
        for g, t in zip(opt.param_groups, lr_tensors):
            if g["lr"] is not t:
                t.fill_(float(g["lr"]))
                g["lr"] = t


def param_groups(model, weight_decay: float) -> list[dict]:
    """Weight decay on parameters with two or more dimensions (matrices, embeddings, conv kernels)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_lambda(total_steps: int, warmup_frac: float, min_lr_frac: float):
    """Linear warm-up then cosine decay: the multiplier of the base learning rate at each step."""
    warmup = max(1, int(round(warmup_frac * total_steps)))

    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_lr_frac + (1 - min_lr_frac) * 0.5 * (1 + math.cos(math.pi * progress))

    return f


def _epoch_batches(groups, batch_size: int, gen: torch.Generator) -> list[tuple[int, torch.Tensor]]:
    """Shuffled ``(group index, example indices)`` batches covering every group once."""
    batches = []
    for gi, (x, _) in enumerate(groups):
        perm = torch.randperm(x.shape[0], generator=gen)
        batches += [(gi, perm[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]
    order = torch.randperm(len(batches), generator=gen).tolist()
    return [batches[i] for i in order]


def _scalar_metrics(result: dict) -> dict:
    """A task's optional extra evaluation numbers (``result["metrics"]``) for a history row,
    prefixed ``val_`` (only plain numbers: per-slice dictionaries stay out of the history)."""
    return {f"val_{k}": v for k, v in result.get("metrics", {}).items() if isinstance(v, (int, float))}


def train(model, task: TaskData, cfg: TrainConfig, *, device="cpu", progress: bool = True,
          desc: str = "train", time_limit_s: float | None = None, checkpoint=None,
          checkpoint_every: int | None = None, step_budget: int | None = None) -> dict:
    """Train ``model`` on ``task``; return a JSON-ready summary (validation history, test metrics).

    ``time_limit_s`` is a safety stop (the summary then says ``"stopped": "time_limit"``).
    ``checkpoint`` (a path) makes the run resumable (:mod:`blaviz.experiments.checkpoint`): it
    continues from the file when one exists, saves every ``checkpoint_every`` steps and whenever it
    stops early (time limit, or ``step_budget`` steps taken in this call: ``"stopped":
    "step_budget"``), and deletes the file once the run is complete.
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.to(device).train()
    groups = [(x.to(device), y.to(device)) for x, y in task.train_groups()]
    val_sets = task.validation_sets()
    n_per_epoch = sum(math.ceil(x.shape[0] / cfg.batch_size) for x, _ in groups)
    limits = []
    if cfg.epochs is not None:
        limits.append(int(math.ceil(cfg.epochs * n_per_epoch)))
    if cfg.max_steps is not None:
        limits.append(int(cfg.max_steps))
    if not limits:
        raise ValueError("TrainConfig needs epochs or max_steps")
    total = min(limits)
    if cfg.cuda_graph and device.type not in _GRAPH_DEVICES:
        raise ValueError(f"TrainConfig.cuda_graph needs a CUDA device, got device={device}")
    opt_kw = {"fused": True} if device.type == "cuda" else {}
    lr = cfg.lr
    if cfg.cuda_graph:                                        # the graphs read lr from a tensor
        opt_kw.update(capturable=device.type == "cuda")
        lr = torch.tensor(cfg.lr, dtype=torch.float32, device=device)
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=lr, betas=cfg.betas, **opt_kw)
    lr_tensors = [g["lr"] for g in opt.param_groups] if cfg.cuda_graph else None
    for g in opt.param_groups:
        g["initial_lr"] = cfg.lr                              # a float: the schedule computes floats
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(total, cfg.warmup_frac, cfg.min_lr_frac))
    positions = [label_positions(y) if type(task).loss is TaskData.loss else None for _, y in groups]

    def batch_loss(gi, idx):
        x, y = groups[gi]
        if positions[gi] is None:                             # a task's own loss
            return task.loss(model, x[idx], y[idx])
        return gathered_loss(model, x[idx], y[idx], positions[gi][idx])

    steps = StaticSteps(model, opt, batch_loss, groups, batch_size=cfg.batch_size,
                        grad_clip=cfg.grad_clip, capture=device.type == "cuda") if cfg.cuda_graph else None

    history, step, stopped, best_val = [], 0, "steps", 0.0
    t0 = time.perf_counter()
    loss_sum, loss_n = torch.zeros((), device=device), 0      # summed on the device: no sync per step
    skip = 0                                                  # batches of this epoch already done
    resumed = checkpoint and load_checkpoint(checkpoint, model=model, opt=opt, sched=sched,
                                             cfg=cfg.to_dict())
    if resumed:
        step, history, best_val = resumed["step"], resumed["history"], resumed["best_val"]
        loss_sum += resumed["loss_sum"]
        loss_n, skip = resumed["loss_n"], resumed["batches_done"]
        gen.set_state(resumed["gen_epoch_state"])
        t0 -= resumed["elapsed_s"]
    if cfg.cuda_graph:                                        # loading replaced lr and the flags
        keep_lr_tensors(opt, lr_tensors)
        for g in opt.param_groups:
            g["capturable"] = opt_kw["capturable"]
    step_at_start = step

    def save(batches_done):
        save_checkpoint(checkpoint, model=model, opt=opt, sched=sched, gen_epoch_state=epoch_state,
                        batches_done=batches_done, step=step, history=history, best_val=best_val,
                        loss_sum=float(loss_sum), loss_n=loss_n,
                        elapsed_s=time.perf_counter() - t0, cfg=cfg.to_dict())

    bar = tqdm(total=total, initial=step, desc=desc, disable=not progress, leave=False,
               dynamic_ncols=True)
    done = step >= total
    while not done:
        epoch_state = gen.get_state()
        batches = _epoch_batches(groups, cfg.batch_size, gen)
        # the epoch's indices reach the device in one copy (one wait per epoch, not per step)
        flat = torch.cat([idx for _, idx in batches]).to(device)
        starts = [0]
        for _, idx in batches:
            starts.append(starts[-1] + idx.shape[0])
        for bi, (gi, _) in enumerate(batches):
            if bi < skip:
                continue
            idx = flat[starts[bi]:starts[bi + 1]]
            if steps is not None:
                loss = steps.step(gi, idx)
            else:
                loss = batch_loss(gi, idx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
            sched.step()
            if lr_tensors is not None:
                keep_lr_tensors(opt, lr_tensors)
            loss_sum += loss.detach()
            loss_n += 1
            step += 1
            bar.update(1)
            last = step == total
            if step % cfg.eval_every == 0 or last:
                loss_val = float(loss_sum) / max(loss_n, 1)
                loss_sum.zero_()
                loss_n = 0
                val = task.evaluate(model, val_sets, device=device, batch_size=cfg.eval_batch_size)
                best_val = max(best_val, val["pooled"])
                history.append({"step": step, "train_loss": loss_val, "val_pooled": val["pooled"],
                                "time_s": round(time.perf_counter() - t0, 2), **_scalar_metrics(val)})
                bar.set_postfix(loss=f"{loss_val:.3f}", val=f"{val['pooled']:.3f}")
                if cfg.early_stop is not None and val["pooled"] >= cfg.early_stop:
                    stopped, done = "early_stop", True
                    break
            if last:
                done = True
                break
            if checkpoint and checkpoint_every and step % checkpoint_every == 0:
                save(bi + 1)
            if time_limit_s is not None and time.perf_counter() - t0 > time_limit_s:
                stopped, done = "time_limit", True
            if step_budget is not None and step - step_at_start >= step_budget:
                stopped, done = "step_budget", True
            if done:
                if checkpoint:
                    save(bi + 1)
                break
        skip = 0
    bar.close()
    if checkpoint and stopped not in ("time_limit", "step_budget") and Path(checkpoint).exists():
        Path(checkpoint).unlink()                             # complete: nothing to resume
    train_time = time.perf_counter() - t0
    test = task.evaluate(model, task.test_sets(), device=device, batch_size=cfg.eval_batch_size)
    extra = {"test_metrics": test["metrics"]} if "metrics" in test else {}
    return {
        **extra,
        "steps": step,
        "planned_steps": total,
        "steps_per_epoch": n_per_epoch,
        "epochs_done": step / n_per_epoch,
        "stopped": stopped,
        "final_loss": history[-1]["train_loss"] if history else None,
        "val_pooled": history[-1]["val_pooled"] if history else None,
        "best_val_pooled": best_val,
        "history": history,
        "accuracy": test["pooled"],
        "per_slice": test["per_slice"],
        "train_time_s": round(train_time, 3),
    }



def base_record(spec: dict, *, task: str, preset_name: str, n_layers: int, model, cfg: TrainConfig,
                data: dict) -> dict:
    """The fields every task's JSON line shares: the run, the mixer, its state, the training setup.

    Call it after training: a BLA mixer resolves its implementation (``auto``) at its first call.
    """
    mixer = model.mixers[0]
    rec = {
        "key": spec["key"], "task": task, "preset": preset_name, "preset_hash": spec["preset_hash"],
        "mixer": spec["mixer"], "mixer_kwargs": spec["mixer_kwargs"], "mixer_config": mixer.config(),
        "d_model": spec["d_model"], "n_layers": n_layers, "num_heads": mixer.num_heads,
        "head_dim": mixer.head_dim, "state_size": model.state_size,
        "state_size_convention": "per layer, all heads, real numbers (BLA_SPEC section 7)",
        "n_params": model.num_params(), "lr": spec["lr"], "seed": spec["seed"],
        "train_config": cfg.to_dict(), "data": data,
    }
    if spec["mixer"] == "bla":
        rec["bla_impl"] = mixer.resolved_impl
    return rec
