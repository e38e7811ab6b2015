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


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("regs") / "regs.json"
    # its own process: this one imported the kernels for Triton's interpreter
    subprocess.run([sys.executable, "-m", "blaviz.bench", "regs", "--out", str(out)], check=True,
                   capture_output=True, text=True, timeout=600)
    return json.loads(out.read_text())


@pytest.mark.parametrize("gpu_file", ["bench/h100_fla_gsa.json", "bench/h200.json"])
def test_registers_and_spills_match_the_gpu(compiled, gpu_file):
    bench = json.loads(results_file(gpu_file, download=False).read_text())
    row = next(r for r in bench["breakdown"] if r["T"] == compiled["T"])
    # the H200 file predates the removal of the fused forward: its fwd_split=True is today's only path
    assert row["launch"].pop("fwd_split", True) is True
    assert row["launch"] == {k: compiled["launch"][k] for k in row["launch"]}
    on_gpu = {site: (k["n_regs"], k["n_spills"]) for site, k in row["kernels"].items()}
    here = {site: (k["n_regs"], k["n_spills"]) for site, k in compiled["kernels"].items()}
    assert on_gpu == {site: here[site] for site in on_gpu}, (on_gpu, here)


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
