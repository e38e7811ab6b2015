"""``python -m blaviz.bench regs``: the registers and spills of BLA's kernels for sm_90, compiled on
this machine without a GPU, equal what the CUDA driver reported on the H100 and the H200.

The GPU numbers are the stored benchmark's breakdown, so a kernel change that moves registers
fails here until the benchmark runs again on a GPU: the stored table would be stale too."""
import json
import subprocess
import sys

import pytest

from blaviz.viz.results import results_file

pytest.importorskip("triton")


_COMPILED = {}


def compile_regs(tmp_path_factory, fields: dict | None = None) -> dict:
    """``python -m blaviz.bench regs [--launch ...]`` once per set of LaunchConfig ``fields`` (its
    own process: this one imported the kernels for Triton's interpreter)."""
    launch = ",".join(f"{k}={v}" for k, v in sorted((fields or {}).items()))
    if launch not in _COMPILED:
        out = tmp_path_factory.mktemp("regs") / "regs.json"
        cmd = [sys.executable, "-m", "blaviz.bench", "regs", "--out", str(out)]
        subprocess.run(cmd + (["--launch", launch] if launch else []), check=True,
                       capture_output=True, text=True, timeout=600)
        _COMPILED[launch] = json.loads(out.read_text())
    return _COMPILED[launch]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return compile_regs(tmp_path_factory)


def _same(on_gpu_kernels: dict, compiled: dict):
    on_gpu = {site: (k["n_regs"], k["n_spills"]) for site, k in on_gpu_kernels.items()}
    here = {site: (k["n_regs"], k["n_spills"]) for site, k in compiled["kernels"].items()}
    assert on_gpu == {site: here[site] for site in on_gpu}, (on_gpu, here)


@pytest.mark.parametrize("gpu_file", ["bench/h100_fla_gsa.json", "bench/h200.json"])
def test_registers_and_spills_match_the_gpu(tmp_path_factory, gpu_file):
    """Each stored breakdown, compiled here with the launch settings it was measured with."""
    bench = json.loads(results_file(gpu_file, download=False).read_text())
    row = next(r for r in bench["breakdown"] if r["T"] == 8192)
    # the H200 file predates the removal of the fused forward: its fwd_split=True is today's only path
    assert row["launch"].pop("fwd_split", True) is True
    compiled = compile_regs(tmp_path_factory, row["launch"])
    assert compiled["T"] == 8192
    assert row["launch"] == {k: compiled["launch"][k] for k in row["launch"]}
    _same(row["kernels"], compiled)


@pytest.mark.parametrize("variant", ["default", "score_bf16x3q"])
def test_variant_registers_match_the_gpu(tmp_path_factory, variant):
    """The benchmark's variants (the former default score side and today's) as the H100 compiled
    them."""
    var = json.loads(results_file("bench/h100_variants.json", download=False).read_text())
    row = next(v for v in var["variants"] if v["value"] == variant)
    from blaviz.bench.gpu import STRUCTURAL
    # the run's defaults (score side tf32x3 then) with the variant's overrides
    launch = {**{k: var["chosen_launch"][k] for k in STRUCTURAL}, "score_dot": "tf32x3",
              **row["overrides"]}
    compiled = compile_regs(tmp_path_factory, launch)
    _same(row["kernels"], compiled)


def test_every_launch_and_the_decode_kernel_are_reported(compiled):
    k = compiled["kernels"]
    assert set(k) == {"fwd_scan", "fwd_out_1", "fwd_out_2", "bwd_local_1", "bwd_local_2", "bwd_scan",
                      "decode"}
    assert all(0 < r["n_regs"] <= 255 and r["n_spills"] >= 0 and r["shared_bytes"] > 0 for r in k.values())
    assert compiled["target"] == ["cuda", 90, 32]


def test_kernel_resources_refuses_an_interpreting_process():
    import blaviz.ops.bla.triton  # noqa: F401  (imported here for the interpreter, as in every CPU test)
    from blaviz.bench.regs import _interpreting, kernel_resources
    if not _interpreting():
        pytest.skip("this process compiles kernels (a GPU machine)")
    with pytest.raises(RuntimeError, match="fresh one"):
        kernel_resources()
