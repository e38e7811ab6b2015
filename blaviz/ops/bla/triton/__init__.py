"""Triton kernels for BLA: chunked training (forward + backward) and fused
decoding.

* ``_consts``: fixed tables from :mod:`blaviz.dirichlet`, padded, cached per
  device.
* ``chunk_fwd``: state scan over chunks + per-chunk outputs (BLA_SPEC
  section 4).
* ``chunk_bwd``: per-chunk local gradients + adjoint scan.
* ``function``: :func:`bla_triton` (``torch.autograd.Function``),
  :class:`LaunchConfig`, the launch helpers and :func:`kernel_stats`.
* ``decode``: :func:`bla_step_triton`, one fused kernel per decoding step.

Without CUDA the kernels run in Triton's interpreter (slow; for tests and
reading): ``TRITON_INTERPRET=1`` is set here, before any ``@triton.jit`` runs,
unless the caller set it.
"""

import os

import torch

from blaviz.ops.triton_env import interpreting

if not torch.cuda.is_available():  # pragma: no branch - depends on the machine
    os.environ.setdefault("TRITON_INTERPRET", "1")


def _interpreter_numpy2_fix() -> None:
    """Triton 3.6's interpreter turns a scalar kernel argument into a 1-element
    numpy array and calls ``int()`` on it inside ``range(...)``; numpy >= 2.4
    refuses that. Patch the one ``__index__`` it installs to read the element
    with ``.item()`` (interpreter only).
    """
    try:
        from triton.runtime import interpreter as _interp
    except ImportError:  # pragma: no cover
        return
    orig = getattr(_interp, "_patch_lang_tensor", None)
    if orig is None or getattr(orig, "_blaviz_fixed", False):
        return

    def patched(tensor, scope):
        orig(tensor, scope)
        scope.set_attr(
            tensor,
            "__index__",
            lambda self: (
                int(self.handle.data.reshape(-1)[0])
                if self.handle.data.size == 1
                else int(self.handle.data)
            ),
        )

    patched._blaviz_fixed = True
    _interp._patch_lang_tensor = patched


if interpreting():
    _interpreter_numpy2_fix()

from blaviz.ops.bla.triton._consts import (  # noqa: E402
    DOT_TABLES,
    ChunkConsts,
    chunk_consts,
    pow2_at_least_16,
    pow2_at_least_32,
    round_tf32,
    step_consts,
)
from blaviz.ops.bla.triton.decode import (  # noqa: E402
    DECODE_BLOCK_D,
    bla_step_triton,
    decode_warps,
)
from blaviz.ops.bla.triton.function import (  # noqa: E402
    DEFAULT_LAUNCH,
    MAX_HEAD_DIM,
    ChunkPlan,
    LaunchConfig,
    bla_triton,
    bwd_local,
    bwd_scan,
    chunk_plan,
    fwd_out,
    fwd_scan,
    kernel_stats,
)

__all__ = [
    "bla_triton",
    "bla_step_triton",
    "LaunchConfig",
    "DEFAULT_LAUNCH",
    "MAX_HEAD_DIM",
    "ChunkPlan",
    "chunk_plan",
    "fwd_scan",
    "fwd_out",
    "bwd_local",
    "bwd_scan",
    "kernel_stats",
    "ChunkConsts",
    "chunk_consts",
    "step_consts",
    "round_tf32",
    "DOT_TABLES",
    "pow2_at_least_16",
    "pow2_at_least_32",
    "decode_warps",
    "DECODE_BLOCK_D",
]
