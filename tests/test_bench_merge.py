"""Joining benchmark JSONs that two GPUs wrote side by side (no GPU needed)."""
import json

import pytest

from blaviz.bench.gpu import merge, run


def _file(tmp_path, name, commit, rows, sections, fla=None):
    payload = dict(provenance=dict(commit=commit, wall_time_s=1.0, fla=fla, gpu="G"), config=dict(sections=sections),
                   complete=True, sections_done=sections, hbm_copy_bytes_per_s=4e12, chosen_launch={"chunk_size": 64},
                   variants=[{"C": 64}], breakdown=[{"T": 8192}], rows=rows, decode=[], gates=[{"op": sections[0]}],
                   errors=[], targets={})
    path = tmp_path / name
    path.write_text(json.dumps(payload))
    return str(path)


def test_merge_joins_rows_and_recomputes_targets(tmp_path):
    bla = dict(op="bla", T=8192, W=512, N=63, fwd_ms=2.0, fwdbwd_ms=6.0)
    gsa = dict(op="fla_gsa", T=8192, M=64, fwd_ms=4.0, fwdbwd_ms=24.0)
    a = _file(tmp_path, "a.json", "abc", [bla], ["bla"])
    b = _file(tmp_path, "b.json", "abc", [gsa], ["gsa"], fla="0.6.0")
    out = merge([a, b], str(tmp_path / "m.json"))
    assert [r["op"] for r in out["rows"]] == ["bla", "fla_gsa"] and out["sections_done"] == ["bla", "gsa"]
    assert out["provenance"]["fla"] == "0.6.0" and len(out["provenance"]["merged_from"]) == 2
    t = out["targets"]
    assert t["fwd_speedup_vs_fla_gsa_M64"]["value"] == 2.0 and not t["fwd_speedup_vs_fla_gsa_M64"]["met"]
    assert t["fwdbwd_speedup_vs_fla_gsa_M64"]["value"] == 4.0 and t["fwdbwd_speedup_vs_fla_gsa_M64"]["met"]
    assert json.loads((tmp_path / "m.json").read_text())["rows"] == out["rows"]
    c = _file(tmp_path, "c.json", "other", [gsa], ["gsa"])
    with pytest.raises(ValueError, match="different commits"):
        merge([a, c], str(tmp_path / "x.json"))


def test_run_sections_are_checked(monkeypatch):
    import blaviz.bench.gpu as g
    monkeypatch.setattr(g, "_cuda_ready", lambda: True)
    with pytest.raises(ValueError, match="sections"):
        run(sections=("bla", "warp-speed"))
