"""flash-linear-attention's own layers as mixers of the harness (the baselines' cross-check).

``fla_gsa``: fla's ``GatedSlotAttention`` layer recipe around fla's own Triton kernels
(``fla.ops.gsa.chunk_gsa`` / ``fused_recurrent_gsa``), in the harness's :class:`TokenMixer`
shape (one projection each for ``q, k, v``, the slot gate, the output). fla's layer class
itself cannot be imported without ``transformers`` (``fla.layers`` pulls in its attention layer,
which needs it), so its ``forward`` is re-written here from reading
``fla/layers/gsa.py`` of flash-linear-attention 0.6.0, with fla's defaults:

* feature map ``swish`` (SiLU) on ``q`` and ``k``, SiLU on ``v``;
* slot gates ``g = logsigmoid(W_f x) / 8``, write weights ``s = 1 - exp(g)``;
* slot scores unscaled (``scale = 1``);
* no short convolutions (``use_short_conv=False``), no output gate;
* output ``W_o RMSNorm(SiLU(o))``, the RMSNorm over all heads with a learned gain;
* ``fused_recurrent`` for sequences of at most 64 tokens, ``chunk`` beyond (fla's switch).

fla is imported lazily (the library never imports it); it needs CUDA. State ``2 M d`` per head,
as :class:`blaviz.layers.GatedSlotAttention`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from blaviz.layers import register_mixer
from blaviz.layers.base import RMSNorm, TokenMixer
from blaviz.state_size import state_size

__all__ = ["FlaGatedSlotAttention", "first_calls", "fla_gsa_ops", "fla_runs", "require_cuda"]

FLA_HINT = ("pip install fla-core==0.6.0 einops (the wheels in .whl/, installed by "
            "scripts/_prologue.sh on the GPU machine)")


def fla_gsa_ops():
    """``(chunk_gsa, fused_recurrent_gsa)`` from fla, or an ImportError that says how to get it."""
    try:
        from fla.ops.gsa import chunk_gsa, fused_recurrent_gsa
    except ImportError as e:
        raise ImportError(f"the mixer 'fla_gsa' needs flash-linear-attention's kernels ({e}); "
                          f"{FLA_HINT}") from e
    return chunk_gsa, fused_recurrent_gsa


def require_cuda(x: torch.Tensor) -> None:
    """fla's kernels are Triton kernels for CUDA: a clear error for inputs elsewhere."""
    if not x.is_cuda:
        raise RuntimeError("the mixer 'fla_gsa' runs fla's Triton kernels, which need a "
                           f"CUDA device; got inputs on {x.device}")


class FlaGatedSlotAttention(TokenMixer):
    """fla's GSA layer (default recipe) on fla's kernels; ``[B, T, d_model] -> [B, T, d_model]``.

    Args:
        d_model, num_heads, head_dim: as every :class:`TokenMixer`.
        num_slots: ``M``, slots per head.
        gate_logit_normalizer: divides the log-sigmoid slot gates (fla: 8).
        norm_eps: the output RMSNorm's epsilon (fla: 1e-5).
        mode: ``"auto"`` (fla's switch at 64 tokens), ``"chunk"`` or ``"fused_recurrent"``.
    """

    name = "fla_gsa"
    MODES = ("auto", "chunk", "fused_recurrent")

    def __init__(self, d_model, num_heads=1, head_dim=None, *, num_slots: int = 64,
                 gate_logit_normalizer: float = 8.0, norm_eps: float = 1e-5,
                 mode: str = "auto", impl="fast"):
        super().__init__(d_model, num_heads, head_dim, impl=impl)
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        if int(num_slots) < 1:
            raise ValueError(f"num_slots must be a positive integer, got {num_slots!r}")
        fla_gsa_ops()  # fail at construction, not in the middle of a sweep
        self.num_slots, self.mode = int(num_slots), mode
        self.gate_logit_normalizer = gate_logit_normalizer
        self.f_proj = nn.Linear(d_model, self.num_heads * self.num_slots, bias=False)
        self.norm = RMSNorm(self.num_heads * self.head_dim, eps=norm_eps)

    def mix(self, q, k, v, x):
        require_cuda(q)
        chunk_gsa, fused_recurrent_gsa = fla_gsa_ops()
        B, T = x.shape[:2]
        g = F.logsigmoid(self.f_proj(x)).view(B, T, self.num_heads, self.num_slots)
        g = g / self.gate_logit_normalizer
        s = 1.0 - g.exp()
        q, k, v = F.silu(q), F.silu(k), F.silu(v)
        mode = self.mode
        if mode == "auto":
            mode = "fused_recurrent" if T <= 64 else "chunk"
        fn = chunk_gsa if mode == "chunk" else fused_recurrent_gsa
        o, _ = fn(q=q, k=k, v=v, s=s, g=g, scale=1.0, output_final_state=False)
        return self.norm(F.silu(o).flatten(2)).view_as(o)

    @property
    def state_size(self):
        return state_size("gsa", head_dim=self.head_dim, num_heads=self.num_heads,
                          num_slots=self.num_slots)

    def config(self):
        return {**super().config(), "num_slots": self.num_slots,
                "gate_logit_normalizer": self.gate_logit_normalizer, "mode": self.mode,
                "kernels": "fla"}


register_mixer("fla_gsa", FlaGatedSlotAttention)


def fla_runs(specs: list[dict]) -> list[dict]:
    """The runs among ``specs`` that train fla's GSA layer (whose kernels tune on first use)."""
    return [s for s in specs if s["mixer"] == FlaGatedSlotAttention.name]


def first_calls(task, preset, *, specs=None, device: str = "cuda") -> list[str]:
    """Make fla's first calls for every ``fla_gsa`` model of a preset before its runs start.

    fla 0.6.0 tunes each kernel on its first call, compiling dozens of launch configurations one
    after another (minutes), and keeps the choice in the Triton cache. Runs started side by side
    would each make that call; one process making it first lets them all find the choice instead.
    Each distinct ``fla_gsa`` model of the preset (width, mixer arguments) runs forward and
    backward once on random tokens at every training and test length, which
    covers fla's two kernels (``fused_recurrent`` up to 64 tokens, ``chunk`` beyond).

    Args:
        task: the :class:`~blaviz.experiments.task.Task` (``get_task("zoology")``).
        preset: one of its presets (``task.get_preset("gsa_check")``).
        specs: the runs to warm up for (default: all of the preset's).
    Returns the models warmed, as ``"d<width> <kwargs>: lengths"`` lines.
    """
    data = preset.data
    lengths = sorted({L for L, _ in data.train_configs} | {L for L, _ in data.test_slices})
    batch = int(preset.train.get("batch_size", 64))
    seen, done = set(), []
    for spec in fla_runs(task.sweep_specs(preset) if specs is None else specs):
        ident = (spec["d_model"], tuple(sorted(spec["mixer_kwargs"].items())))
        if ident in seen:
            continue
        seen.add(ident)
        model = task.build_model(preset, spec).to(device)
        for L in lengths:
            x = torch.randint(0, data.vocab_size, (batch, L), device=device)
            model(x).float().square().mean().backward()
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        done.append(f"d{spec['d_model']} {dict(ident[1])}: lengths {lengths}")
        del model
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()        # the caller's workers need the memory, not this process
    return done
