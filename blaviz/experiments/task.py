"""One task interface: a :class:`Task` knows its presets and how a run is named, built, trained,
recorded and summarised. MQAR and RegBench are two subclasses; the sweep runner, the command line
and ``analyze`` only talk to this interface (found through :mod:`blaviz.experiments.registry`).

What a subclass fills in::

    class MyTask(Task):
        name = "mytask"
        def task_data(self, preset):          # what train() needs: a TaskData
            return MyTaskData(preset.data)
        def report(self, *paths): ...         # analyze's text
        def save_summary(self, path_in, path_out, **kw): ...   # analyze --json

Everything else (run keys, the preset hash, the list of runs, the model, one run) has a default
that a task may override.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace

import torch

from blaviz.experiments.preset import Preset
from blaviz.experiments.records import REQUIRED_FIELDS
from blaviz.experiments.train import TaskData, TrainConfig, base_record, train


def _as_tuples(v):
    """Lists (a spec read back from JSON) as the tuples a preset holds, so a key prints the same."""
    return tuple(_as_tuples(x) for x in v) if isinstance(v, (list, tuple)) else v


def short_hash(obj) -> str:
    """The first hex digits of the SHA-1 of ``obj`` as sorted JSON."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()


class Task:
    """A family of experiments (one data source, one metric) and its presets."""

    #: the task's name: the command (``python -m blaviz.experiments <name>``) and records' ``task``
    name: str = ""
    #: whether run keys start with ``<task>/`` and hash the task's name (MQAR's keys predate it)
    tagged_keys: bool = True
    #: the key under which ``preset_hash`` stores the data description
    data_hash_key: str = "data"

    def __init__(self, presets=()):
        self.presets: dict[str, Preset] = {}
        for p in presets:
            self.add_preset(p)

    # ------------------------------------------------------------------------- presets
    def add_preset(self, preset: Preset) -> Preset:
        """Register ``preset`` with this task (its ``task`` must be this task's name)."""
        if preset.task != self.name:
            raise ValueError(f"preset {preset.name!r} is for task {preset.task!r}, not {self.name!r}")
        if preset.name in self.presets:
            raise ValueError(f"task {self.name!r} already has a preset {preset.name!r}")
        self.presets[preset.name] = preset
        return preset

    def get_preset(self, name: str, **overrides) -> Preset:
        """The preset called ``name`` (``overrides`` replace fields of a copy)."""
        if name not in self.presets:
            raise ValueError(f"unknown {self.name} preset {name!r}; choose one of {tuple(self.presets)}")
        p = self.presets[name]
        return replace(p, **overrides) if overrides else p

    # -------------------------------------------------------------------- runs and keys
    def hash_fields(self, p: Preset) -> dict:
        """What changes results (data, model shape, training), not the grid, lrs or seeds.

        Fields added to :class:`Preset` after runs were stored enter only when they differ from
        their defaults, so the stored runs keep their keys."""
        d = {self.data_hash_key: asdict(p.data), "head_dim": p.head_dim, "n_layers": p.n_layers,
             "mlp_ratio": p.mlp_ratio, "conv_gated": p.conv_gated, "train": p.train}
        if self.tagged_keys:
            d["task"] = self.name
        if p.model:
            d["model"] = p.model
        return d

    def preset_hash(self, p: Preset) -> str:
        return short_hash(self.hash_fields(p))[:10]

    def run_key(self, spec: dict) -> str:
        """A stable name for a run: ``[<task>/]<preset>/<mixer>(<kwargs>)/d../lr../s../<hash>``."""
        names = ("preset", "mixer", "mixer_kwargs", "d_model", "lr", "seed", "preset_hash")
        ident = {k: spec[k] for k in (("task",) + names if self.tagged_keys else names)}
        kw = ",".join(f"{k}={_as_tuples(v)}" for k, v in sorted(spec["mixer_kwargs"].items()))
        prefix = f"{self.name}/" if self.tagged_keys else ""
        return (f"{prefix}{spec['preset']}/{spec['mixer']}({kw})/d{spec['d_model']}/lr{spec['lr']:g}/"
                f"s{spec['seed']}/" + short_hash(ident)[:8])

    def sweep_specs(self, p: Preset, *, mixers=None, widths=None, lrs=None, seeds=None) -> list[dict]:
        """Every run of a preset, in priority order: width-major, then grid order, then lr, seed.

        ``mixers`` keeps a subset of the preset's mixers (an unknown name is an error);
        ``widths``, ``lrs`` and ``seeds`` replace the preset's."""
        if mixers:
            unknown = [m for m in mixers if m not in p.mixers()]
            if unknown:
                raise ValueError(f"--mixers: {unknown} not in preset {p.name!r}; choose from {p.mixers()}")
        h = self.preset_hash(p)
        specs = []
        for width in widths or p.widths:
            for mixer, kw in p.grid_at(width):
                if mixers and mixer not in mixers:
                    continue
                for lr in lrs or p.lrs:
                    for seed in seeds or p.seeds:
                        spec = {"preset": p.name, "preset_hash": h, "task": self.name, "mixer": mixer,
                                "mixer_kwargs": dict(kw), "d_model": width, "lr": lr, "seed": seed}
                        spec["key"] = self.run_key(spec)
                        specs.append(spec)
        return specs

    # ---------------------------------------------------------------------- one run
    def task_data(self, p: Preset) -> TaskData:
        """The training data, loss and metrics of ``p`` (what :func:`train` needs)."""
        raise NotImplementedError

    def build_model(self, p: Preset, spec: dict, *, bla_impl: str = "auto", impl: str = "fast"):
        """The model of one run (seeded by the run's seed): a :class:`blaviz.models.MixerLM`."""
        from blaviz.models import MixerLM

        kw = dict(spec["mixer_kwargs"])
        kw.setdefault("num_heads", p.num_heads(spec["d_model"]))
        kw["impl"] = impl
        if spec["mixer"] == "bla":
            kw.setdefault("bla_impl", bla_impl)
        if spec["mixer"] == "softmax":
            kw.setdefault("seq_len", p.data.longest)
        torch.manual_seed(spec["seed"])
        return MixerLM(p.data.vocab_size, spec["d_model"], spec["mixer"], kw, n_layers=p.n_layers,
                       mlp_ratio=p.mlp_ratio, conv_gated=p.conv_gated, **p.model)

    def record(self, spec: dict, p: Preset, model, cfg: TrainConfig, out: dict) -> dict:
        """One run's JSON record from :func:`train`'s summary ``out`` (no provenance fields)."""
        return {**base_record(spec, task=self.name, preset_name=p.name, n_layers=p.n_layers, model=model,
                              cfg=cfg, data=asdict(p.data)),
                "accuracy": out.pop("accuracy"), "per_slice": out.pop("per_slice"), **out}

    def run_one(self, spec: dict, p: Preset, *, device="cpu", progress=True, bla_impl="auto",
                time_limit_s=None) -> dict:
        """Train and test one run; return its JSON record (the runner adds the provenance)."""
        device = torch.device(device)
        model = self.build_model(p, spec, bla_impl=bla_impl).to(device)
        cfg = TrainConfig(lr=spec["lr"], seed=spec["seed"], **p.train)
        desc = spec["key"].split(f"{p.name}/", 1)[-1][:48]
        out = train(model, self.task_data(p), cfg, device=device, progress=progress, desc=desc,
                    time_limit_s=time_limit_s)
        return self.record(spec, p, model, cfg, out)

    # --------------------------------------------------------------------- analysis
    #: fields a complete record of this task must carry, with their types (checked on reading)
    record_fields: dict = REQUIRED_FIELDS

    def report(self, *paths) -> str:
        raise NotImplementedError

    def save_summary(self, path_in, path_out, **kw) -> dict:
        raise NotImplementedError
