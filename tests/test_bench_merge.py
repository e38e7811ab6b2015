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
    """BLA timed on one GPU, flex-attention SWA on the other: the merged file holds both rows, and
    the targets that compare them exist only after the merge."""
    bla = dict(op="bla", T=8192, W=512, N=63, fwd_ms=2.0, fwdbwd_ms=6.0)
    flex = dict(op="flex_swa", T=8192, W=512, fwd_ms=1.0, fwdbwd_ms=8.0)
    a = _file(tmp_path, "a.json", "abc", [bla], ["bla"])
    b = _file(tmp_path, "b.json", "abc", [flex], ["flex"], fla="0.6.0")
    out = merge([a, b], str(tmp_path / "m.json"))
    assert [r["op"] for r in out["rows"]] == ["bla", "flex_swa"] and out["sections_done"] == ["bla", "flex"]
    assert out["provenance"]["fla"] == "0.6.0" and len(out["provenance"]["merged_from"]) == 2
    t = out["targets"]
    assert t["fwd_N63_over_flex_W512"]["value"] == 2.0 and not t["fwd_N63_over_flex_W512"]["met"]
    assert t["fwdbwd_N63_over_flex_W512"]["value"] == 0.75 and t["fwdbwd_N63_over_flex_W512"]["met"]
    assert json.loads((tmp_path / "m.json").read_text())["rows"] == out["rows"]
    c = _file(tmp_path, "c.json", "other", [flex], ["flex"])
    with pytest.raises(ValueError, match="different commits"):
        merge([a, c], str(tmp_path / "x.json"))


def test_run_sections_are_checked(monkeypatch):
    import blaviz.bench.gpu as g
    monkeypatch.setattr(g, "_cuda_ready", lambda: True)
    with pytest.raises(ValueError, match="sections"):
        run(sections=("bla", "warp-speed"))
