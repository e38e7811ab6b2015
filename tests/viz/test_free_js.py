"""The free sliders' JavaScript (book/_static/blaviz-free) against blaviz, under node.

The module recomputes chapter 2's and chapter 4's figures in the browser for any ``(W, N)``;
here node runs the same files on settings that are no step of any precomputed slider, and every
number must match blaviz's float64 to 1e-6 (it matches to ~1e-12). Skipped only without node
(the site check, tests/site/free_sliders.py, repeats the comparison in chromium).
"""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from blaviz.analysis.impulse import main_lobe_halfwidth, sample_key_channel
from blaviz.analysis.weights import swa_attention_weights, weights_by_lag
from blaviz.dirichlet import dirichlet_kernel, erasure_matrix
from blaviz.ops.bla import bla_attention_weights
from blaviz.viz import kernels as K
from blaviz.viz.bla import effective_weights_traces, random_qk

FREE = Path(__file__).resolve().parents[2] / "book" / "_static" / "blaviz-free"
NODE = shutil.which("node")
TOL = 1e-6

pytestmark = [pytest.mark.skipif(NODE is None, reason="node is not installed"),
              pytest.mark.usefixtures("one_thread")]

# (W, N): none is a step of DEFAULT_RESOLUTIONS (W in {16, 64}); odd and even W, N = W, N = 1
DIRICHLET_CASES = [(37, 11), (50, 50), (61, 7), (61, 61), (24, 1), (100, 33), (5, 5), (4, 4), (4, 1),
                   (128, 127), (128, 128)]   # and the ends of the website's range
# (T, W, N) for the effective weights (the chapter draws T = 48, W = 16)
WEIGHT_CASES = [(48, 37, 11), (50, 50, 50), (61, 61, 7), (48, 13, 13), (30, 7, 1), (45, 16, 5),
                (48, 2, 2), (48, 2, 1), (48, 48, 47)]

_RUNNER = """
import { readFileSync } from "node:fs";
const m = await import(process.argv[1] + "/math.js");
const v = await import(process.argv[1] + "/traces.js");
const input = JSON.parse(readFileSync(0, "utf8"));
const out = input.map((c) => {
  if (c.kind === "dirichlet") return v.dirichletView(c.x, c.W, c.N);
  if (c.kind === "weights") return v.effectiveWeightsView(c.q, c.k, c.W, c.N, { query: c.query });
  if (c.kind === "kernel") return m.dirichletKernel(c.x, c.N, c.W);
  if (c.kind === "lobe") return String(m.mainLobeHalfwidth(c.W, c.N));
  if (c.kind === "erasure") return Array.from(m.erasureColumn(c.W, c.N, c.T));
  if (c.kind === "valid") return [m.validResolution(c.W, c.n), m.resolutionGrid(c.W)];
  if (c.kind === "format") return v.formatG(c.v, c.digits);
  if (c.kind === "bad") { try { m.checkConfig(c.W, c.N); return "accepted"; } catch (e) { return e.message; } }
  throw new Error("unknown case " + c.kind);
});
process.stdout.write(JSON.stringify(out));
"""


def run_js(cases: list[dict]) -> list:
    proc = subprocess.run([NODE, "--input-type=module", "-e", _RUNNER, FREE.as_uri()],
                          input=json.dumps(cases), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def close(got, want, what):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    err = float(np.abs(got - want).max()) if got.size else 0.0
    assert err <= TOL, f"{what}: max |JS - blaviz| = {err:.3g}"
    return err


def test_dirichlet_view_matches_blaviz():
    cases = [dict(kind="dirichlet", W=W, N=N, x=sample_key_channel(W, seed=0).tolist())
             for W, N in DIRICHLET_CASES]
    worst = 0.0
    for (W, N), got in zip(DIRICHLET_CASES, run_js(cases)):
        want = K.dirichlet_traces(W, N, seed=0)
        assert len(got["traces"]) == len(want) == 6
        for i, (g, w) in enumerate(zip(got["traces"], want)):
            worst = max(worst, close(g["x"], w.x, f"W={W} N={N} trace {i} x"))
            worst = max(worst, close(g["y"], w.y, f"W={W} N={N} trace {i} y"))
        assert got["traces"][1]["name"] == want[1].name
        if N < W:   # at N = W the error is rounding noise, its digits differ
            assert got["layout"]["title"] == K.dirichlet_figure(W, N).layout.title.text
    assert worst < 1e-10


def test_effective_weights_view_matches_blaviz():
    cases, want = [], []
    for T, W, N in WEIGHT_CASES:
        q, k = random_qk(T, 16, seed=T + W + N)
        cases.append(dict(kind="weights", W=W, N=N, query=-1, q=q[0, :, 0].tolist(),
                          k=k[0, :, 0].tolist()))
        want.append(effective_weights_traces(q, k, W, N))
    worst = 0.0
    for (T, W, N), got, w, c in zip(WEIGHT_CASES, run_js(cases), want, cases):
        q = torch.tensor(c["q"], dtype=torch.float64)[None, :, None]
        k = torch.tensor(c["k"], dtype=torch.float64)[None, :, None]
        A = bla_attention_weights(q, k, W, N)[0, 0]
        S = swa_attention_weights(q, k, W)[0, 0]
        tr = got["traces"]
        worst = max(worst, close(tr[0]["z"], A, f"T={T} W={W} N={N} BLA"))
        worst = max(worst, close(tr[1]["z"], S, f"T={T} W={W} N={N} SWA"))
        worst = max(worst, close(tr[2]["y"], weights_by_lag(S, T - 1), "SWA by lag"))
        worst = max(worst, close(tr[3]["y"], weights_by_lag(A, T - 1), "BLA by lag"))
        close(tr[3]["x"], w[3].x, "lags")
        assert tr[0]["zmax"] == pytest.approx(w[0].zmax, abs=1e-12)
        assert [t["name"] for t in tr] == [t.name for t in w]
        assert got["layout"]["windowEdge"] == W - 0.5
    assert worst < 1e-10


def test_kernel_pieces_match_blaviz():
    xs = np.concatenate([np.linspace(-200.0, 200.0, 4001), [0.0, 37.0, -18.5, 18.5, 1e-9]])
    kern = [(11, 37), (50, 50), (7, 61), (1, 8), (9, 9), (64, 64)]
    lobes = [(37, 11), (50, 50), (61, 61), (64, 3), (16, 1)]
    cases = ([dict(kind="kernel", x=xs.tolist(), N=N, W=W) for N, W in kern]
             + [dict(kind="lobe", W=W, N=N) for W, N in lobes]
             + [dict(kind="erasure", W=37, N=11, T=90), dict(kind="erasure", W=12, N=12, T=30)])
    got = run_js(cases)
    for (N, W), g in zip(kern, got):
        close(g, dirichlet_kernel(torch.tensor(xs), N, W), f"D_{N} W={W}")
    for (W, N), g in zip(lobes, got[len(kern):]):
        assert float(g) == pytest.approx(main_lobe_halfwidth(W, N), abs=1e-12, rel=1e-12)
    for c, g in zip(cases[-2:], got[-2:]):
        close(g, erasure_matrix(c["W"], c["N"], c["T"])[:, 0], f"erasure W={c['W']} N={c['N']}")


def test_resolutions_formats_and_bad_input():
    from blaviz.analysis.weights import resolution_grid, valid_resolution

    valid = [(37, 12), (50, 50), (50, 49), (9, 100), (8, 0), (1, 1)]
    formats = [(0.123456, 2), (1.5e-15, 2), (4.0, 3), (12.3456, 3), (1234.5, 3), (0.0001234, 2)]
    bad = [(16, 4), (16, 17), (0, 1), (16, 2.5)]
    got = run_js([dict(kind="valid", W=W, n=n) for W, n in valid]
                 + [dict(kind="format", v=v, digits=d) for v, d in formats]
                 + [dict(kind="bad", W=W, N=N) for W, N in bad])
    for (W, n), (N, grid) in zip(valid, got):
        assert N == valid_resolution(W, n) and grid == resolution_grid(W)
    for (v, d), s in zip(formats, got[len(valid):]):
        assert s == format(v, f".{d}g")
    msgs = got[len(valid) + len(formats):]
    assert "odd" in msgs[0] and "resolution" in msgs[1] and "window" in msgs[2] and "window" in msgs[3]
