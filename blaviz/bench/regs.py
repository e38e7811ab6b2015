"""Registers and spills of BLA's Triton kernels on an H100/H200 (sm_90), measured without a GPU.

Register pressure bounds the training kernels (chapter 7, ``results/bench/DECISIONS.md``), and a
GPU is scarce, so a kernel change can be screened here first. Triton compiles for any target
with the ``ptxas`` it ships; ``cuobjdump -res-usage`` then reads from the binary the registers
per thread and the stack, which is what the CUDA driver reports on the GPU (Triton's
``n_spills`` is that stack in 4-byte words). This module installs a Triton driver that claims an
sm_90 device and whose launches do nothing, runs the library's launch helpers once on CPU
tensors, and records each kernel when Triton loads it. Nothing is computed: the outputs are
uninitialised memory, never read.

It needs a process where Triton's interpreter is off, since the interpreter never compiles:
:func:`kernel_resources` refuses one that imported the kernels for the interpreter (run
``python -m blaviz.bench regs``, a fresh process, instead).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

from blaviz.ops.triton_env import interpreting as _interpreting

#: the target: compute capability 9.0 (H100 and H200), 32 threads per warp
TARGET = ("cuda", 90, 32)


def _cuobjdump() -> str:
    import triton
    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")


def resource_usage(cubin: bytes) -> dict:
    """``{"n_regs", "n_spills"}`` of a compiled kernel, read by ``cuobjdump`` (spills: stack plus
    local memory in 4-byte words, as the driver counts them for Triton)."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([_cuobjdump(), "-res-usage", f.name], capture_output=True, text=True,
                             check=True).stdout
    fields = dict(re.findall(r"([A-Z]+):(\d+)", out.split("Function", 1)[-1]))
    missing = {"REG", "STACK", "LOCAL"} - set(fields)
    if missing:
        raise RuntimeError(f"cuobjdump gave no {sorted(missing)}: {out!r}")
    return dict(n_regs=int(fields["REG"]), n_spills=(int(fields["STACK"]) + int(fields["LOCAL"])) // 4)


class _CompileOnlyDriver:
    """A Triton driver for an sm_90 device that is not there: kernels compile, loading one
    records its resources, launching does nothing."""

    def __init__(self):
        self.loaded: list[tuple[str, dict]] = []
        driver = self

        class Utils:
            def load_binary(self, name, kernel, shared, device):
                res = dict(resource_usage(kernel), shared_bytes=int(shared))   # Triton's dynamic shared
                driver.loaded.append((name, res))
                return None, None, res["n_regs"], res["n_spills"], 1024

            def get_device_properties(self, device):
                return {"max_shared_mem": 232448, "multiprocessor_count": 132}

        class Launcher:
            def __init__(self, src, metadata):
                pass

            def __call__(self, *args, **kwargs):
                pass

        self.utils, self.launcher_cls = Utils(), Launcher

    def get_current_target(self):
        from triton.backends.compiler import GPUTarget
        return GPUTarget(*TARGET)

    def get_current_device(self):
        return 0

    def get_current_stream(self, device=None):
        return 0

    def get_active_torch_device(self):
        import torch
        return torch.device("cpu")


def _compile_mode() -> None:
    """Turn Triton's interpreter off before the kernels are imported, or refuse if they already
    were for the interpreter (it is read when a kernel is defined)."""
    if "blaviz.ops.bla.triton" not in sys.modules:
        os.environ["TRITON_INTERPRET"] = "0"
    elif _interpreting():
        raise RuntimeError("kernel_resources compiles kernels, and this process imported them for "
                           "Triton's interpreter: run it in a fresh one (python -m blaviz.bench regs)")


def kernel_resources(W: int = 512, N: int = 63, T: int = 8192, C: int = 64, H: int = 16, D: int = 64,
                     launch=None, decode_batch: int = 64) -> dict:
    """Compile every BLA kernel of one training step (bf16, ``[1, T, H, D]``, window ``W``,
    resolution ``N``, chunk ``C``, ``launch`` a :class:`LaunchConfig`) and of one decoding step
    (batch ``decode_batch``) for sm_90, and return ``{launch site: {"n_regs", "n_spills",
    "shared_bytes"}}`` with the sites named as in the GPU benchmark's breakdown, plus ``decode``."""
    _compile_mode()
    import torch
    from triton.runtime import driver
    drv, previous = _CompileOnlyDriver(), driver._active   # no public getter; None means "the default"
    driver.set_active(drv)
    try:
        from blaviz.bench.gpu import training_step_launches
        from blaviz.ops.bla.triton import DEFAULT_LAUNCH, bla_step_triton, chunk_plan, kernel_stats
        q, k, v, do = (torch.randn(1, T, H, D, dtype=torch.bfloat16) for _ in range(4))
        plan = chunk_plan(W, N, N, C, T, torch.bfloat16, q.device, launch or DEFAULT_LAUNCH)
        kernel_stats(clear=True)
        training_step_launches(q, k, v, do, plan, D ** -0.5)
        out = kernel_stats(clear=True)
        before = len(drv.loaded)
        qd, kd, vd = (torch.randn(decode_batch, H, D, dtype=torch.bfloat16) for _ in range(3))
        bla_step_triton(qd, kd, vd, None, W, N)
        (name, res), = drv.loaded[before:]          # one fused kernel
        out["decode"] = res
        return out
    finally:
        driver._active = previous       # reset_active() would look for a real GPU driver


def main(argv=None) -> int:
    """``python -m blaviz.bench regs [--W 512] [--N 63] [--launch "out_warps=8"] [--out JSON]``."""
    import argparse
    import dataclasses
    import json
    ap = argparse.ArgumentParser(prog="python -m blaviz.bench regs", description=__doc__.split("\n")[0])
    ap.add_argument("--W", type=int, default=512)
    ap.add_argument("--N", type=int, default=63)
    ap.add_argument("--T", type=int, default=8192)
    ap.add_argument("--launch", default=None, help='LaunchConfig fields, "score_dot=tf32rn,out_warps=8"')
    ap.add_argument("--out", default=None, help="also write the table as JSON here")
    args = ap.parse_args(argv)
    _compile_mode()                             # before --launch imports the kernels
    launch = None
    if args.launch:
        from blaviz.bench.gpu import parse_launch
        launch = parse_launch(args.launch)
    res = kernel_resources(W=args.W, N=args.N, T=args.T, launch=launch)
    from blaviz.bench._common import table
    from blaviz.ops.bla.triton import DEFAULT_LAUNCH, decode_warps
    from blaviz.viz.bench import programs_per_sm
    lc = launch or DEFAULT_LAUNCH
    warps = dict(fwd_scan=lc.scan_warps, bwd_scan=lc.scan_warps, fwd_out=lc.out_warps,
                 bwd_local=lc.bwd_warps, decode=decode_warps(args.N, 64, 64))
    rows = [dict(kernel=name, regs=r["n_regs"], spills=r["n_spills"], shared=r["shared_bytes"],
                 programs_per_sm=programs_per_sm(r["n_regs"], warps[re.sub(r"_\d$", "", name)]))
            for name, r in res.items()]
    print(f"sm_90, W={args.W}, N={args.N}, T={args.T}, launch {lc}")
    print(table(rows, ["kernel", "regs", "spills", "shared", "programs_per_sm"]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(target=list(TARGET), W=args.W, N=args.N, T=args.T,
                           launch=dataclasses.asdict(lc), kernels=res), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
