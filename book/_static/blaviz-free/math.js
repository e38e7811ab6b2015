// The formulas of blaviz, in float64 (JS numbers), for figures that recompute in the browser.
//
// Each function mirrors a named blaviz function (same conventions, same order of operations
// where that is cheap); tests/viz/test_free_js.py runs this file under node and compares it
// with blaviz to 1e-6 (in practice ~1e-13). Notation as in BLA_SPEC.md: window W, resolution N
// (odd, or N = W), slot lags s_j = j W / S, lags p = 0 .. W-1 with p = 0 the newest sample.
// Matrices are arrays of rows; vectors are plain arrays or Float64Arrays.

const TWO_PI = 2 * Math.PI;

/** blaviz.dirichlet.check_config (with S = N): throws naming the argument, like the Python. */
export function checkConfig(W, N) {
  if (!Number.isInteger(W) || W < 1) throw new RangeError(`window must be an integer >= 1, got ${W}`);
  if (!Number.isInteger(N) || N < 1 || N > W) {
    throw new RangeError(`resolution must satisfy 1 <= resolution <= window = ${W}, got ${N}`);
  }
  if (N % 2 === 0 && N !== W) {
    throw new RangeError(`resolution must be odd or equal to window = ${W}, got even resolution ${N}`);
  }
}

/** blaviz.analysis.weights.valid_resolution: the allowed N closest to `n` from below. */
export function validResolution(W, n) {
  let N = Math.max(1, Math.min(Math.trunc(n), W));
  if (N % 2 === 0 && N !== W) N -= 1;
  return N;
}

/** blaviz.analysis.weights.resolution_grid: the odd N < W, then N = W. */
export function resolutionGrid(W) {
  if (W <= 1) return [1];
  const grid = [];
  for (let n = 1; n < W; n += 2) grid.push(n);
  grid.push(W);
  return grid;
}

/** blaviz.dirichlet.frequencies: the complex frequency set m, ascending. */
export function frequencies(W, N) {
  checkConfig(W, N);
  const lo = N === W ? -(Math.ceil(W / 2) - 1) : -(N - 1) / 2;
  const hi = N === W ? Math.floor(W / 2) : (N - 1) / 2;
  const m = [];
  for (let i = lo; i <= hi; i++) m.push(i);
  return m;
}

// torch.round rounds half to even; Math.round rounds half up
function roundHalfEven(v) {
  const r = Math.round(v);
  return (r - v === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

/**
 * blaviz.dirichlet.dirichlet_kernel: the closed form of D_N at real lags x (a number or an array).
 * The argument is reduced to one period first, as in the Python (keeps full relative precision
 * near x = kW); N = W even adds the Nyquist term cos(pi x) / W on the unreduced x.
 */
export function dirichletKernel(x, N, W) {
  checkConfig(W, N);
  const hasNyq = N === W && W % 2 === 0;
  const nSym = hasNyq ? N - 1 : N;
  const one = (xv) => {
    const xr = xv - W * roundHalfEven(xv / W);
    const den = Math.sin(Math.PI * xr / W);
    let out = (den === 0 ? nSym : Math.sin(Math.PI * nSym * xr / W) / den) / W;
    if (hasNyq) out += Math.cos(Math.PI * xv) / W;
    return out;
  };
  if (typeof x === "number") return one(x);
  return Array.from(x, one);
}

/** torch.linspace(start, end, steps) in float64 (torch fills the second half from the end). */
export function linspace(start, end, steps) {
  if (steps === 1) return [start];
  const step = (end - start) / (steps - 1);
  const half = Math.floor(steps / 2);
  const out = new Array(steps);
  for (let i = 0; i < steps; i++) out[i] = i < half ? start + step * i : end - step * (steps - 1 - i);
  return out;
}

// the real cos/sin layout of blaviz.dirichlet: per coordinate, frequency m, sine?, read gain
function layout(W, N) {
  checkConfig(W, N);
  const hasNyq = N === W && W % 2 === 0;
  const M = (N - 1 - (hasNyq ? 1 : 0)) / 2;
  const m = [0], isSin = [false], gain = [1];
  for (let i = 1; i <= M; i++) { m.push(i); isSin.push(false); gain.push(2); }
  for (let i = 1; i <= M; i++) { m.push(i); isSin.push(true); gain.push(2); }
  if (hasNyq) { m.push(W / 2); isSin.push(false); gain.push(1); }
  return { m, isSin, gain };
}

/** blaviz.analysis.impulse.window_coefficients for one channel: F = sum_p c(p) x_p, [N]. */
export function windowCoefficients(x, W, N) {
  if (x.length !== W) throw new RangeError(`a window holds W = ${W} samples, got ${x.length}`);
  const { m, isSin } = layout(W, N);
  return m.map((mi, i) => {
    let acc = 0;
    for (let p = 0; p < W; p++) {
      const ang = TWO_PI * p * mi / W;
      acc += (isSin[i] ? Math.sin(ang) : Math.cos(ang)) * x[p];
    }
    return acc;
  });
}

/** blaviz.analysis.impulse.reconstruct_window: R_s = r(s) . F at real lags (default 0 .. W-1). */
export function reconstructWindow(x, W, N, lags) {
  const F = windowCoefficients(x, W, N);
  const { m, isSin, gain } = layout(W, N);
  const s = lags ?? Array.from({ length: W }, (_, p) => p);
  return Array.from(s, (sv) => {
    let acc = 0;
    for (let i = 0; i < m.length; i++) {
      const ang = TWO_PI * sv * m[i] / W;
      acc += (isSin[i] ? Math.sin(ang) : Math.cos(ang)) * gain[i] / W * F[i];
    }
    return acc;
  });
}

/** blaviz.analysis.impulse.reconstruction_error for one N: ||R(x) - x|| / ||x|| at integer lags. */
export function reconstructionError(x, W, N) {
  const r = reconstructWindow(x, W, N);
  let num = 0, den = 0;
  for (let p = 0; p < W; p++) { num += (r[p] - x[p]) ** 2; den += x[p] ** 2; }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-300);
}

/** |F_m| for every m of frequencies(W, W): the whole spectrum of a window of W samples. */
export function spectrumMagnitude(x, W) {
  return frequencies(W, W).map((m) => {
    let re = 0, im = 0;
    for (let p = 0; p < W; p++) {
      const ang = TWO_PI * p * m / W;
      re += Math.cos(ang) * x[p];
      im += Math.sin(ang) * x[p];
    }
    return Math.hypot(re, im);
  });
}

// Python's round() (half to even) for the grid size of mainLobeHalfwidth
const pyRound = roundHalfEven;

/**
 * blaviz.analysis.impulse.main_lobe_halfwidth: the first positive zero of D_N, found by the same
 * scan-and-zoom as the Python (W / N for odd N >= 3; Infinity for N = 1).
 */
export function mainLobeHalfwidth(W, N) {
  checkConfig(W, N);
  if (N === 1) return Infinity;
  let step = Math.min(W / N, 1) / 64;
  let lo = 0, hi = W / 2;
  for (let it = 0; it < 9; it++) {
    const n = pyRound((hi - lo) / step);
    let found = -1, prev = lo, cur = lo;
    for (let i = 1; i <= n; i++) {
      cur = i * step + lo;
      if (dirichletKernel(cur, N, W) <= 0) { found = i - 1; break; }
      prev = cur;
    }
    if (found < 0) return Infinity;
    [lo, hi] = [found > 0 ? prev : lo, cur];
    step = (hi - lo) / 64;
  }
  return 0.5 * (lo + hi);
}

// ----------------------------------------------------------------------------- attention weights
// q, k: one batch and head, [T][D] arrays of rows.

function softmaxInPlace(v) {
  let mx = -Infinity;
  for (const a of v) if (a > mx) mx = a;
  let sum = 0;
  for (let i = 0; i < v.length; i++) {
    v[i] = v[i] === -Infinity ? 0 : Math.exp(v[i] - mx);
    sum += v[i];
  }
  for (let i = 0; i < v.length; i++) v[i] /= sum;
  return v;
}

function dot(a, b) {
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc += a[i] * b[i];
  return acc;
}

/**
 * First column g of the erasure matrix (I + L)^{-1}, L[t, tau] = D_N(t - tau) for tau < t
 * (blaviz.dirichlet.erasure_matrix): the matrix is lower-triangular Toeplitz, (I + L)^{-1}[t, tau]
 * = g[t - tau], and forward substitution on the unit vector gives g.
 */
export function erasureColumn(W, N, T) {
  const d = dirichletKernel(Array.from({ length: T }, (_, i) => i), N, W);
  const g = new Float64Array(T);
  g[0] = 1;
  for (let t = 1; t < T; t++) {
    let acc = 0;
    for (let tau = 0; tau < t; tau++) acc += d[t - tau] * g[tau];
    g[t] = -acc;
  }
  return g;
}

/**
 * blaviz.ops.bla.bla_attention_weights for one head, S = N: A [T][T] with o = A v.
 * A = (sum_j p_tj D_N(t - tau - s_j)) (I + L)^{-1}, p_t the softmax over the slots of the scores
 * of q_t against the slot keys read from the erasure-corrected keys k' = (I + L)^{-1} k; slot j
 * is masked while s_j > t. `scale` defaults to D^-1/2.
 */
export function blaAttentionWeights(q, k, W, N, scale) {
  checkConfig(W, N);
  const T = q.length, D = q[0].length;
  const sc = scale ?? D ** -0.5;
  const S = N;
  const g = erasureColumn(W, N, T);
  // corrected keys k'[t] = sum_{tau <= t} g[t - tau] k[tau]
  const kp = Array.from({ length: T }, (_, t) => {
    const row = new Float64Array(D);
    for (let tau = 0; tau <= t; tau++) {
      const w = g[t - tau];
      for (let i = 0; i < D; i++) row[i] += w * k[tau][i];
    }
    return row;
  });
  const lags = Array.from({ length: S }, (_, j) => j * W / S);
  // the slot read kernels by lag Delta = t - tau >= 0: dl[j][Delta] = D_N(Delta - s_j)
  const dl = lags.map((s) => dirichletKernel(Array.from({ length: T }, (_, i) => i - s), N, W));
  const A = [];
  for (let t = 0; t < T; t++) {
    const qk = new Float64Array(t + 1);
    for (let tau = 0; tau <= t; tau++) qk[tau] = dot(q[t], kp[tau]);
    const scores = new Float64Array(S);
    for (let j = 0; j < S; j++) {
      if (lags[j] > t) { scores[j] = -Infinity; continue; }   // reads before the first token
      let acc = 0;
      for (let tau = 0; tau <= t; tau++) acc += qk[tau] * dl[j][t - tau];
      scores[j] = acc * sc;
    }
    const p = softmaxInPlace(scores);
    // weights on the corrected values, then through (I + L)^{-1} onto the raw values
    const wc = new Float64Array(t + 1);
    for (let j = 0; j < S; j++) {
      if (p[j] === 0) continue;
      for (let tau = 0; tau <= t; tau++) wc[tau] += p[j] * dl[j][t - tau];
    }
    const row = new Float64Array(T);
    for (let tau = 0; tau <= t; tau++) {
      let acc = 0;
      for (let u = tau; u <= t; u++) acc += wc[u] * g[u - tau];
      row[tau] = acc;
    }
    A.push(row);
  }
  return A;
}

/**
 * blaviz.analysis.weights.swa_attention_weights for one head: softmax of scale q_t . k_tau over
 * the W keys t - W < tau <= t (fewer at the start), zero elsewhere. A [T][T].
 */
export function swaAttentionWeights(q, k, W, scale) {
  if (!Number.isInteger(W) || W < 1) throw new RangeError(`window must be an integer >= 1, got ${W}`);
  const T = q.length, D = q[0].length;
  const sc = scale ?? D ** -0.5;
  return Array.from({ length: T }, (_, t) => {
    const row = new Float64Array(T);
    const lo = Math.max(0, t - W + 1);
    const s = Array.from({ length: t - lo + 1 }, (_, i) => sc * dot(q[t], k[lo + i]));
    softmaxInPlace(s).forEach((v, i) => { row[lo + i] = v; });
    return row;
  });
}

/** blaviz.analysis.weights.weights_by_lag: row t of A by lag, out[Delta] = A[t][t - Delta]. */
export function weightsByLag(A, t) {
  return Array.from({ length: t + 1 }, (_, d) => A[t][t - d]);
}
