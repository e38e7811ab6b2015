"""The GPU benchmark's side-by-side first calls of fla's GSA (``compile_fla_gsa``): every slot count
gets its own process and its exit code is reported, never swallowed. Here the processes fail (no
GPU, or no fla), which is the path a machine without them takes."""
import pytest

from blaviz.bench.gpu import compile_fla_gsa


def test_each_slot_count_reports_its_own_exit_code():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("on a GPU machine these calls would compile for minutes")
    res = compile_fla_gsa((16, 32), lengths=(256,), timeout_s=300)
    assert set(res["exit_codes"]) == {"16", "32"}
    assert all(code not in (0, None) for code in res["exit_codes"].values()), res
    assert res["wall_s"] >= 0
