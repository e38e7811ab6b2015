"""Provenance records: the commit, versions and run counts every result file carries."""
import json

import pytest

from blaviz.experiments import provenance as pv


def test_git_state_in_this_checkout_and_override(tmp_path, monkeypatch):
    monkeypatch.delenv("BLAVIZ_GIT_COMMIT", raising=False)
    state = pv.git_state()
    assert len(state["git_commit"]) == 40 and isinstance(state["git_dirty"], bool)
    assert pv.git_state(tmp_path) == {"git_commit": "unknown", "git_dirty": "unknown"}   # no .git there
    monkeypatch.setenv("BLAVIZ_GIT_COMMIT", "abc1234")
    monkeypatch.setenv("BLAVIZ_GIT_DIRTY", "0")
    assert pv.git_state(tmp_path) == {"git_commit": "abc1234", "git_dirty": "0"}
    # the caller's word wins over a .git that may be older than the working tree
    assert pv.git_state() == {"git_commit": "abc1234", "git_dirty": "0"}


def test_cli_writes_counts_and_preset(tmp_path):
    runs = tmp_path / "runs.jsonl"
    runs.write_text("\n".join(json.dumps(r) for r in [{"key": "a"}, {"key": "b", "stopped": "time_limit"}]) + "\n")
    out = tmp_path / "sub" / "provenance.json"
    pv.main(["--out", str(out), "--command", "python -m x", "--script", "s.sh", "--wall", "12",
             "--runs", str(runs), "--preset", "regbench:ci"])
    info = json.loads(out.read_text())
    assert info["command"] == "python -m x" and info["wall_time_s"] == 12
    assert (info["runs_lines"], info["runs_complete"], info["runs_time_limited"]) == (2, 1, 1)
    assert info["preset"]["name"] == "ci"
    for key in ("date", "commit", "git_commit", "python", "torch", "triton", "cpu", "gpu"):
        assert key in info


def test_bad_preset_spec(tmp_path):
    with pytest.raises(ValueError, match=r"TASK:NAME \(e.g. mqar:book\), got 'book'"):
        pv.main(["--out", str(tmp_path / "p.json"), "--command", "c", "--preset", "book"])
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        pv.main(["--out", str(tmp_path / "p.json"), "--command", "c", "--preset", "nope:book"])
