// What the free-slider figures draw for one setting: trace data and layout changes, no DOM.
//
// dirichletView mirrors blaviz.viz.kernels.dirichlet_traces and its title (chapter 2);
// effectiveWeightsView mirrors blaviz.viz.bla.effective_weights_traces and its layout
// (chapter 4). Both return {traces: [per-trace changes], layout: {...}, label}; mount.js merges
// the changes into the figure the page drew first, so styles stay those set in Python.

import {
  blaAttentionWeights, dirichletKernel, frequencies, linspace, mainLobeHalfwidth,
  reconstructWindow, reconstructionError, spectrumMagnitude, swaAttentionWeights, weightsByLag,
} from "./math.js";

/** Python's format(v, ".{digits}g"), for titles that read the same as the Python ones. */
export function formatG(v, digits) {
  if (!Number.isFinite(v)) return v > 0 ? "inf" : v < 0 ? "-inf" : "nan";
  if (v === 0) return "0";
  const [mant, expStr] = v.toExponential(digits - 1).split("e");
  const exp = Number(expStr);
  const strip = (s) => (s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s);
  if (exp < -4 || exp >= digits) {
    const e = Math.abs(exp) < 10 ? `0${Math.abs(exp)}` : `${Math.abs(exp)}`;
    return `${strip(mant)}e${exp < 0 ? "-" : "+"}${e}`;
  }
  return strip(v.toFixed(Math.max(0, digits - 1 - exp)));
}

/** blaviz.viz.kernels._title */
export function dirichletTitle(W, N, err, lobe) {
  const lobeTxt = lobe === Infinity ? "none (constant)" : `±${formatG(lobe, 3)} lags`;
  return `W = ${W}, N = ${N}: ${N} of ${W} numbers kept,<br>main lobe ${lobeTxt}, `
    + `reconstruction error ${formatG(err, 2)}`;
}

/**
 * Chapter 2 for one (W, N): keys `x` ([W], lag order) are the window's samples.
 * Traces: [dropped |F_m|, kept |F_m|, D_N at real lags, D_N at integer lags, keys, R_s].
 */
export function dirichletView(x, W, N, { oversample = 8 } = {}) {
  const mAll = frequencies(W, W);
  const kept = new Set(frequencies(W, N));
  const mag = spectrumMagnitude(x, W);
  const drop = { x: [], y: [] }, keep = { x: [], y: [] };
  mAll.forEach((m, i) => { const b = kept.has(m) ? keep : drop; b.x.push(m); b.y.push(mag[i]); });
  const lagFine = linspace(-W / 2, W / 2, oversample * W + 1);
  const lagInt = [];
  for (let i = -Math.floor(W / 2); i <= Math.floor(W / 2); i++) lagInt.push(i);
  const sFine = linspace(0, W - 1, oversample * (W - 1) + 1);
  const err = reconstructionError(x, W, N);
  return {
    label: `W = ${W}, N = ${N}`,
    traces: [
      drop,
      { ...keep, name: `kept |F<sub><i>m</i></sub>| (${N})` },
      { x: lagFine, y: dirichletKernel(lagFine, N, W) },
      { x: lagInt, y: dirichletKernel(lagInt, N, W) },
      { x: Array.from({ length: W }, (_, p) => p), y: Array.from(x) },
      { x: sFine, y: reconstructWindow(x, W, N, sFine) },
    ],
    layout: { title: dirichletTitle(W, N, err, mainLobeHalfwidth(W, N)) },
  };
}

/**
 * Chapter 4 for one (W, N): q, k are [T][D] rows of one head; `query` the row drawn by lag
 * (negative counts from the end). Traces: [BLA heatmap, SWA heatmap, SWA by lag, BLA by lag].
 */
export function effectiveWeightsView(q, k, W, N, { query = -1, scale } = {}) {
  const T = q.length;
  const t = query < 0 ? query + T : query;
  const A = blaAttentionWeights(q, k, W, N, scale);
  const swa = swaAttentionWeights(q, k, W, scale);
  // one colour scale for both, set past the start of the sequence (where weights are largest)
  let lim = 0;
  for (let r = Math.min(W, T - 1); r < T; r++) {
    for (let c = 0; c < T; c++) lim = Math.max(lim, Math.abs(A[r][c]), Math.abs(swa[r][c]));
  }
  const lags = Array.from({ length: t + 1 }, (_, i) => i);
  const z = (M) => M.map((row) => Array.from(row));
  return {
    label: `W = ${W}, N = ${N}`,
    traces: [
      { z: z(A), zmin: -lim, zmax: lim, name: `BLA, N = ${N}` },
      { z: z(swa), zmin: -lim, zmax: lim, name: `SWA, W = ${W}` },
      { x: lags, y: weightsByLag(swa, t), name: `SWA, W = ${W}` },
      { x: lags, y: weightsByLag(A, t), name: `BLA, N = ${N}` },
    ],
    layout: {
      blaTitle: `BLA, <i>N</i> = ${N}`, swaTitle: `SWA, <i>W</i> = ${W}`, windowEdge: W - 0.5,
      title: `W = ${W}, N = ${N}`,
    },
  };
}
