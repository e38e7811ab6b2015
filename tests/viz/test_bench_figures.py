"""Figure and table builders of chapter 7 (blaviz.viz.bench): the stored GPU benchmark, the launch
table, and the tf32 rounding emulation."""
import json

import numpy as np
import pytest
import torch

from blaviz.ops.bla.triton.chunk_fwd import _rn_tf32  # sets TRITON_INTERPRET=1 first when there is no CUDA
from blaviz.viz import figure_html
from blaviz.viz.bench import (breakdown_rows, equal_state_rows, emulate_tf32, find_target, kernel_table,
                              launch_rows, load_bench, missing_rows, programs_per_sm, provenance_rows,
                              rounding_figure, rounding_traces, scan_rounding_error, state_figure,
                              state_rows, target_rows)

MAX_HTML = 1_000_000   # bytes per figure on a page


def _row(op, T, fwd, fb=None, **cfg):
    r = dict(op=op, T=T, B=65536 // T, fwd_ms=fwd, **cfg)
    if fb is not None:
        r["fwdbwd_ms"] = fb
    return r


@pytest.fixture
def bench():
    """A small file in the schema the stored h200.json has (renamed keys, invalid rows, a failed gate)."""
    rows = [_row("bla", T, 2.0 + N / 100, 10.0 + N / 10, W=W, N=N)
            for N in (15, 63) for W in (128, 512) for T in (2048, 8192, 32768)]
    rows += [_row("flex_swa", 2048, 0.5, 2.4, W=512), _row("flex_swa", 8192, 0.6, 2.6, W=512),
             dict(op="flex_swa", W=512, T=32768, B=2, invalid="eager fallback. More text."),
             dict(op="flex_swa", W=2048, T=8192, B=8, invalid="eager fallback"),
             _row("cudnn_causal", 2048, 0.7, 2.8), _row("cudnn_causal", 8192, 2.4),
             dict(op="cudnn_causal", T=32768, B=2)]
    return dict(
        provenance=dict(gpu="NVIDIA H200", torch="2.11", triton="3.6.0", date="2026-11-28", command="python -m x"),
        config=dict(H=16, D=64, tokens=65536, dtype="bfloat16", lengths=[2048, 8192, 32768]),
        hbm_copy_bytes_per_s=4.2e12,
        variants_N63_W512=[dict(C=64, out_warps=4, bwd_warps=4, T=8192, fwd_ms=7.6, fwdbwd_ms=25.2),
                           dict(scan_bd=16, C=64, T=32768, fwd_ms=7.61, fwdbwd_ms=25.0), dict(C=32)],
        breakdown_plain_tf32=dict(note="plain tf32", rows=[dict(T=8192, B=8, fwd_scan_ms=0.4, fwd_out_ms=1.7,
                                                                 bwd_local_ms=5.3, bwd_scan_ms=0.9)]),
        rows=rows,
        decode=[dict(op="bla_decode", W=512, N=15, batch=64, us=15.7, state_MiB=7.5, frac_hbm=0.24),
                dict(op="bla_decode", W=512, N=63, batch=64, us=31.8, state_MiB=31.5, frac_hbm=0.49),
                dict(op="fla_gsa_decode", M=64, batch=64, us=23.7), dict(op="bla_decode", N=31)],
        gates=[dict(op="bla", W=512, N=63, C=64, rel_rms=2.4e-3, tol=5e-3, passed=True),
               dict(op="fla_gsa", M=16, rel_rms=5.35e-3, tol=5e-3, passed=False)],
        errors=["time flex_swa {'W': 512} T=32768: OutOfMemoryError: CUDA out of memory. Tried 128 GiB."],
        targets={"fwd_T8192_N63_ms": dict(value=7.58, target=1.2, met=False),
                 "fwdbwd_T8192_N63_ms": dict(value=25.3, target=4.3, met=False),
                 "fwd_throughput_T32768_over_T8192": dict(value=1.001, target=0.85, met=True),
                 "decode_us_N63_batch64": dict(value=31.8, target=20.0, met=False)},
    )


def _visible(fig, step):
    vis = fig.layout.sliders[0].steps[step].args[0]["visible"]
    return [tr for tr, v in zip(fig.data, vis) if v]


# ----------------------------------------------------------------------------- reading the file
def test_load_bench_missing_file_is_empty(tmp_path):
    assert load_bench(tmp_path / "nope.json") == {}
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"rows": []}))
    assert load_bench(p) == {"rows": []}


def test_tables_read_both_schemas(bench):
    rows, note = breakdown_rows(bench)
    assert note == "plain tf32" and rows == [(8192, 8, "0.40", "1.70", "5.30", "0.90", "8.30")]
    # the schema blaviz.bench.gpu writes: plain lists under "breakdown" and "variants"
    new = dict(breakdown=bench["breakdown_plain_tf32"]["rows"], variants=bench["variants_N63_W512"])
    assert breakdown_rows(new) == (rows, "")
    assert breakdown_rows({}) == ([], "")
    # a run that timed the output kernel storing the slot weights (as training runs it) sums that one
    split = [dict(bench["breakdown_plain_tf32"]["rows"][0], fwd_out_store_p_ms=1.5)]
    assert breakdown_rows(dict(breakdown=split))[0] == [(8192, 8, "0.40", "1.50", "5.30", "0.90", "8.10")]


def test_provenance_and_targets(bench):
    prov = dict(provenance_rows(bench))
    assert prov["gpu"] == "NVIDIA H200" and prov["HBM copy bandwidth (same run)"] == "4.20 TB/s"
    assert "tokens=65536" in prov["shapes"]
    targets = {r[0]: r for r in target_rows(bench)}
    assert targets["fwd_T8192_N63_ms"][1:] == ("7.58 ms", "≤ 1.2 ms", "no (6.3x over)")
    assert targets["fwd_throughput_T32768_over_T8192"][1:] == ("1.00x", "≥ 0.85x", "yes")
    assert targets["decode_us_N63_batch64"][1:] == ("31.8 µs", "≤ 20 µs", "no (1.6x over)")
    assert find_target(bench, "fwdbwd_T8192")["name"] == "fwdbwd_T8192_N63_ms"
    assert find_target(bench, "nothing") is None


def test_missing_rows_says_what_failed(bench):
    missing = dict(missing_rows(bench))
    assert missing["flex_swa (W=512, T=32768)"] == "eager fallback."          # first sentence only
    assert "flex_swa (W=2048, T=8192)" in missing
    assert missing["cudnn_causal (T=32768)"] == "no timing in the file"
    assert "gate failed" in missing["fla_gsa (M=16)"]
    # an error message whose "what" part holds ": " (a dict) is split at the exception type
    assert missing["time flex_swa {'W': 512} T=32768"] == "OutOfMemoryError: CUDA out of memory."


# ----------------------------------------------------------------------------- figures
def test_stored_file_builds_every_figure():
    bench = load_bench()
    if not bench:
        pytest.skip("no stored results/bench/h200.json")
    fig = state_figure(bench)
    for tr in fig.data:                                  # nothing invalid reaches the figure
        assert len(tr.y) and all(np.isfinite(np.asarray(tr.y, dtype=float)))
    assert len(figure_html(fig)) < MAX_HTML
    assert launch_rows(bench, 8192) and target_rows(bench) and provenance_rows(bench)



def test_state_rows_and_figure(bench):
    bench = dict(bench, rows=bench["rows"] + [_row("fla_gsa", 8192, 2.6, 7.2, M=16)])
    rows = state_rows(bench, seq_len=8192, window=512)
    # BLA at W=512 only (its time does not depend on W), valid flex rows, GSA; state = 2 x size x d
    assert all(r["source"] is None for r in rows)
    assert [(r["op"], r["label"], r["state"]) for r in rows] == [
        ("bla", "N = 15", 2 * 15 * 64), ("bla", "N = 63", 2 * 63 * 64),
        ("flex_swa", "W = 512", 2 * 512 * 64), ("fla_gsa", "M = 16", 2 * 16 * 64)]
    fig = state_figure(bench)
    names = {tr.name for tr in fig.data}
    assert names == {"BLA (Triton), W = 512", "flex-attention SWA", "fla GSA"}
    assert len(fig.data) == 6 and fig.layout.legend.y < 0                  # two panels; legend below
    fwd = {tr.name: list(tr.y) for tr in fig.data if tr.xaxis == "x"}
    assert np.allclose(fwd["BLA (Triton), W = 512"], [2.15, 2.63], rtol=1e-3)
    bla = next(tr for tr in fig.data if tr.name.startswith("BLA"))
    assert list(bla.textposition) == ["bottom center", "top center"]      # neighbours never collide
    carried = dict(bench, rows=[dict(r, source="archive/x.json") if r["op"] == "flex_swa" else r
                                for r in bench["rows"]])
    assert "flex-attention SWA (earlier run)" in {tr.name for tr in state_figure(carried).data}
    cudnn = dict(bench, rows=[r for r in bench["rows"] if r["op"] != "bla"])
    with pytest.raises(ValueError, match="no BLA rows"):
        state_figure(cudnn)


def test_programs_per_sm():
    assert programs_per_sm(255, 4) == 2 and programs_per_sm(128, 4) == 4 and programs_per_sm(255, 8) == 1
    assert programs_per_sm(32, 1, registers=1024) == 1


def test_launch_rows_reads_times_and_registers():
    bd = dict(T=8192, B=8, fwd_scan_ms=0.5, fwd_out_store_p_ms=2.0, bwd_local_ms=2.5, bwd_scan_ms=1.0,
              kernels=dict(fwd_scan=dict(n_regs=128, n_spills=0), fwd_out_0_store_p=dict(n_regs=255, n_spills=80),
                           bwd_local_1=dict(n_regs=255, n_spills=90), bwd_local_2=dict(n_regs=200, n_spills=0)))
    rows = launch_rows(dict(breakdown=[bd], chosen_launch=dict(out_warps=8)), 8192)
    assert rows[0] == ("forward scan", "0.50", "8%", "128", "0", "4")
    assert rows[1] == ("forward outputs", "2.00", "33%", "255", "80", "1")       # 8 warps recorded
    assert rows[2][3:] == ("255 / 200", "90 / 0", "2 / 2")
    assert rows[3] == ("backward scan", "1.00", "17%", "-", "-", "-")             # no record: dashes
    assert launch_rows(dict(breakdown=[bd]), 2048) == [] and launch_rows({}) == []
    # the names the kernels record today: the output kernel storing p is preferred to the one without
    bd2 = dict(bd, kernels=dict(fwd_out=dict(n_regs=200, n_spills=0),
                                fwd_out_store_p=dict(n_regs=255, n_spills=186)))
    assert launch_rows(dict(breakdown=[bd2]), 8192)[1][3:5] == ("255", "186")


# ----------------------------------------------------------------------------- launch table
def test_kernel_table_counts_programs(monkeypatch):
    from blaviz.ops.bla.triton import DEFAULT_LAUNCH
    rows = kernel_table(batch=8, seq_len=8192, heads=16, head_dim=64, resolution=63, chunk_size=64)
    by = {r[0]: r for r in rows}
    scan = by["`_fwd_scan_kernel`"]
    tiles = 2 * (-(-64 // DEFAULT_LAUNCH.scan_bd))
    assert scan[2].endswith(f"= (128, {tiles})") and scan[3] == f"{128 * tiles:,}"
    assert by["`_fwd_out_kernel`"][3] == "16,384"                               # 128 chunks x 128 (batch, head)
    assert by["`_decode_kernel`"][3] == "128"
    assert "[64, 64]" in by["`_fwd_out_kernel`"][4]                             # N = 63 pads to 64
    assert "[32, " in kernel_table(1, 100, 1, 16, 15, chunk_size=16)[0][4]     # N = 15 pads to 32
    names = [r[0] for r in kernel_table(1, 100, 1, 16, 15, chunk_size=16)]
    assert "`_bwd_local_kernel (PART 2)`" in names and len(names) == 6


# ----------------------------------------------------------------------------- tf32 rounding
def test_emulate_tf32_truncates_or_rounds():
    ulp = 2.0 ** -10                                     # tf32 spacing at 1.0 (10 mantissa bits)
    x = torch.tensor([1 + 0.75 * ulp, 1 + 0.25 * ulp, -(1 + 0.75 * ulp), 3.0])
    assert emulate_tf32(x, "trunc").tolist() == [1.0, 1.0, -1.0, 3.0]
    assert emulate_tf32(x, "rn").tolist() == [1 + ulp, 1.0, -(1 + ulp), 3.0]
    assert emulate_tf32(x, "fp32").dtype == torch.float64
    with pytest.raises(ValueError, match="mode"):
        emulate_tf32(x, "tf32")


def test_emulate_tf32_matches_the_kernels_rounding():
    """The emulation and the kernel's ``_rn_tf32`` give the same bits (interpreter on a CPU)."""
    import triton
    import triton.language as tl

    @triton.jit                                          # resolves _rn_tf32 from this module's globals
    def _round_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
        offs = tl.arange(0, BLOCK)
        x = tl.load(x_ptr + offs, mask=offs < n, other=0.0)
        tl.store(y_ptr + offs, _rn_tf32(x), mask=offs < n)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(256, generator=g) * 10.0 ** torch.randint(-3, 4, (256,), generator=g)).to(device)
    y = torch.empty_like(x)
    _round_kernel[(1,)](x, y, x.numel(), BLOCK=256)
    assert torch.equal(y.cpu().double(), emulate_tf32(x.cpu(), "rn"))


def test_scan_rounding_error_orders_the_modes():
    threads = torch.get_num_threads()
    res = scan_rounding_error(64, 15, chunk_size=16, head_dim=16, num_chunks=24)
    assert torch.get_num_threads() == threads            # the one-thread setting is undone
    assert set(res) == {"trunc", "rn", "tf32x3"}
    rel = {m: r[0] for m, r in res.items()}
    assert all(r.shape == (24,) for r in rel.values())
    assert rel["tf32x3"][-1] < 1e-5 < rel["rn"][-1] < rel["trunc"][-1]
    assert res["trunc"][1] < 0                           # truncation shrinks the state


def test_rounding_figure_and_traces():
    fig = rounding_figure(64, resolutions=(7, 15), chunk_size=16, head_dim=16, num_chunks=10)
    assert [s.label for s in fig.layout.sliders[0].steps] == ["7", "15"] and len(fig.data) == 6
    assert fig.layout.yaxis.type == "log"
    traces = rounding_traces(64, 15, chunk_size=16, head_dim=16, num_chunks=10)
    assert [len(t.x) for t in traces] == [10, 10, 10] and "bias" in traces[0].name
    assert len(figure_html(fig)) < MAX_HTML


# ----------------------------------------------------------------------------- chapter 6's figures
def test_chunk_matrix_figure_has_colorbars_and_math_titles():
    from blaviz.viz.chunked import COST_LAYOUT, chunk_matrix_figure
    fig = chunk_matrix_figure(window=16, resolutions=(3, 16), chunk_size=8, active=0)
    bars = [tr.colorbar.x for tr in fig.data if tr.showscale]
    assert len(bars) == len(fig.data) and len(set(bars)) == 2           # one colorbar per panel
    titles = [a.text for a in fig.layout.annotations]
    assert "<sub>C</sub>)<sup>−1</sup>" in titles[0] and "$" not in "".join(titles)  # HTML math
    assert all(tr.colorbar.title.text for tr in fig.data)                  # colorbars name it
    assert COST_LAYOUT["legend"]["x"] > 1                                # legend off the plot


def test_equal_state_rows_pair_bla_with_gsa_of_one_run():
    bench = {"rows": [
        {"op": "bla", "N": 63, "T": 8192, "fwd_ms": 3.0, "fwdbwd_ms": 6.0},
        {"op": "bla", "N": 63, "T": 32768, "fwd_ms": 3.3, "fwdbwd_ms": 6.6},
        {"op": "bla", "N": 15, "T": 8192, "fwd_ms": 1.0, "fwdbwd_ms": 2.0},
        {"op": "fla_gsa", "M": 64, "T": 8192, "fwd_ms": 4.0, "fwdbwd_ms": 12.0},
        {"op": "fla_gsa", "M": 16, "T": 8192, "fwd_ms": 2.0, "fwdbwd_ms": float("nan")},
        {"op": "fla_gsa", "M": 32, "T": 8192, "fwd_ms": 2.0, "fwdbwd_ms": 3.0}]}
    rows = equal_state_rows(bench)
    # M = 16 has no valid backward, M = 32 no BLA partner, T = 32768 no GSA row
    assert rows == [(8192, 63, 64, 3.0, 6.0, 4.0, 12.0, 0.75, 0.5)]
    assert equal_state_rows({}) == []
