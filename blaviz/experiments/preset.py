"""One experiment as data: :class:`Preset`, the same type for every task.

A preset says which task it belongs to, the data (the task's own frozen dataclass, e.g.
:class:`blaviz.data.MQARData`), the model shape, the optimisation and the grid of runs::

    Preset(name="ci", task="mqar", data=MQARData(...),
           widths=(32,), lrs=(1e-2,), seeds=(0, 1),            # the grid: width x mixer x lr x seed
           grid=(("swa", {"window": 64}), ("bla", {"window": 64, "resolution": 64})),
           head_dim=32, n_layers=2, mlp_ratio=0.0,              # the model (head_dim=None: one head)
           model={"conv_kernel": 4},                            # further MixerLM keywords
           train=dict(batch_size=32, epochs=1, eval_every=100)) # TrainConfig fields but lr and seed

A run is one ``(width, mixer, mixer kwargs, lr, seed)``. Fields are checked when the preset is
made, so a typo in ``train`` or a negative learning rate fails at import, not after a GPU call.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from blaviz.experiments.train import TrainConfig

#: ``TrainConfig`` fields a preset's ``train`` may set (``lr`` and ``seed`` come from the grid)
TRAIN_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name not in ("lr", "seed"))


@dataclass(frozen=True)
class Preset:
    """A whole experiment: task, data, model shape, optimisation, and the grid of runs.

    Attributes:
        name: the preset's name (unique within its task; part of every run key).
        task: the registered task that runs it (``"mqar"``, ``"regbench"``, ...).
        data: the task's data description (a frozen dataclass with ``vocab_size`` and
            ``longest``, the longest sequence a full-attention mixer must accept).
        widths, lrs, seeds: the grid's ``d_model`` values, learning rates and seeds.
        grid: ``(mixer, kwargs)`` pairs run at every width; ``kwargs`` go to the mixer (a
            ``num_heads`` there overrides ``d_model // head_dim``).
        per_width_grid: ``(width, grid)`` pairs: extra mixers run only at that width.
        head_dim: heads are ``d_model // head_dim`` (at least 1); ``None``: one head of ``d_model``.
        n_layers, mlp_ratio, conv_gated: the :class:`blaviz.models.MixerLM` stack
            (``mlp_ratio=0``: no MLPs, Zoology's ``[BaseConv, mixer]`` pattern).
        model: further keyword arguments of the task's model builder (MixerLM by default).
        train: :class:`~blaviz.experiments.train.TrainConfig` fields other than ``lr`` and ``seed``
            (``batch_size``, ``epochs`` or ``max_steps``, ``eval_every``, ``early_stop`` ...).
        note: one sentence on what the preset is for and what was scaled down.
    """

    name: str
    task: str
    data: Any
    widths: tuple[int, ...]
    lrs: tuple[float, ...]
    grid: tuple[tuple[str, dict], ...] = ()
    per_width_grid: tuple[tuple[int, tuple[tuple[str, dict], ...]], ...] = ()
    seeds: tuple[int, ...] = (0,)
    head_dim: int | None = 64
    n_layers: int = 2
    mlp_ratio: float = 2.0
    conv_gated: bool = True
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    note: str = ""

    def __post_init__(self):
        where = f"preset {self.task}:{self.name}"
        for name in ("widths", "lrs", "seeds"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        check_widths(self.widths, where + " widths")
        check_lrs(self.lrs, where + " lrs")
        check_seeds(self.seeds, where + " seeds")
        if self.head_dim is not None and not _is_int(self.head_dim, 1):
            raise ValueError(f"{where}: head_dim must be a positive int or None, got {self.head_dim!r}")
        if not _is_int(self.n_layers, 1):
            raise ValueError(f"{where}: n_layers must be a positive int, got {self.n_layers!r}")
        unknown = set(self.train) - set(TRAIN_FIELDS)
        if unknown:
            raise ValueError(f"{where}: unknown train fields {sorted(unknown)}; allowed: {TRAIN_FIELDS}")
        if self.train.get("epochs") is None and self.train.get("max_steps") is None:
            raise ValueError(f"{where}: train needs epochs or max_steps")
        for mixer, kw in self.all_grid_entries():
            if not isinstance(mixer, str) or not isinstance(kw, dict):
                raise ValueError(f"{where}: grid entries are (mixer name, kwargs dict), got {(mixer, kw)!r}")

    def all_grid_entries(self) -> list[tuple[str, dict]]:
        """Every ``(mixer, kwargs)`` of the grid and of the per-width grids."""
        return list(self.grid) + [g for _, gs in self.per_width_grid for g in gs]

    def grid_at(self, width: int) -> list[tuple[str, dict]]:
        """The ``(mixer, kwargs)`` pairs run at ``width``: the grid, then that width's extras."""
        return list(self.grid) + [g for w, gs in self.per_width_grid if w == width for g in gs]

    def mixers(self) -> list[str]:
        """The mixer names this preset runs, in grid order."""
        return list(dict.fromkeys(m for m, _ in self.all_grid_entries()))

    def num_heads(self, d_model: int) -> int:
        return 1 if self.head_dim is None else max(1, d_model // self.head_dim)

    def describe(self) -> dict:
        """JSON-ready fields (what a provenance record stores)."""
        d = asdict(self)
        d["grid"] = [[m, kw] for m, kw in self.grid]
        return d


# ------------------------------------------------------------------------- value checks
# shared by the presets and the command line, so both refuse the same values the same way

def _is_int(v, minimum: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def check_widths(values, what: str = "--widths") -> tuple[int, ...]:
    if not values or not all(_is_int(v, 1) for v in values):
        raise ValueError(f"{what} must be positive ints, got {values!r}")
    return tuple(values)


def check_lrs(values, what: str = "--lrs") -> tuple[float, ...]:
    ok = values and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                        and math.isfinite(v) and v > 0 for v in values)
    if not ok:
        raise ValueError(f"{what} must be finite positive numbers, got {values!r}")
    return tuple(float(v) for v in values)


def check_seeds(values, what: str = "--seeds") -> tuple[int, ...]:
    if not values or not all(_is_int(v, 0) for v in values):
        raise ValueError(f"{what} must be non-negative ints, got {values!r}")
    return tuple(values)
