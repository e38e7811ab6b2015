// Wires a free-slider figure on the website: range + number inputs -> traces.js -> Plotly.react.
//
// The page holds, inside one <div class="blaviz-free">, the figure drawn by blaviz.viz.free
// (an ordinary plotly div, drawn for the initial setting), a <script type="application/json"
// class="blaviz-free-spec"> with the controls and the data (keys, or q and k, as base64
// float64), and a loader that imports this module and calls mount(root). Nothing here knows
// a formula: traces.js computes, this file only reads inputs and redraws.
//
// After each redraw root.dataset.state is "W=<W> N=<N>": the site check waits on it.

import { dirichletView, effectiveWeightsView } from "./traces.js";
import { resolutionGrid, validResolution } from "./math.js";

const STYLE_ID = "blaviz-free-style";
const CSS = `
.blaviz-free-controls { display: flex; flex-direction: column; gap: .35rem; margin: .25rem 0 1.25rem;
  max-width: 44rem; color: var(--pst-color-text-base, inherit); }
.blaviz-free-row { display: flex; flex-wrap: wrap; align-items: center; gap: .35rem .75rem; }
.blaviz-free-row label { min-width: 7.5rem; white-space: nowrap; }
.blaviz-free-row input[type=range] { flex: 1 1 10rem; min-height: 2.25rem; margin: 0;
  touch-action: manipulation; accent-color: #1f77b4; }
.blaviz-free-row input[type=number] { flex: 0 0 5rem; width: 5rem; min-height: 2.25rem;
  font-size: 1rem; box-sizing: border-box; padding: .15rem .35rem; }
/* a phone: the slider takes a whole line under its label and box (finer steps by touch) */
@media (max-width: 600px) {
  .blaviz-free-row label { flex: 1 1 auto; min-width: 0; }
  .blaviz-free-row input[type=range] { order: 3; flex-basis: 100%; }
}
.blaviz-free-note { margin: 0; font-size: .85rem; opacity: .8; }
.blaviz-free-note.blaviz-free-warn { opacity: 1; color: var(--pst-color-warning, #b35900); }
`;

function injectStyle() {
  if (document.getElementById(STYLE_ID)) return;
  const el = document.createElement("style");
  el.id = STYLE_ID;
  el.textContent = CSS;
  document.head.appendChild(el);
}

/** base64 of little-endian float64 -> Float64Array */
export function decodeFloat64(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const view = new DataView(bytes.buffer);
  const out = new Float64Array(bytes.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(8 * i, true);
  return out;
}

function rows(flat, T, D) {
  return Array.from({ length: T }, (_, t) => flat.subarray(t * D, (t + 1) * D));
}

// the figure kinds: how to compute a view from (W, N), and how it changes the layout
const KINDS = {
  dirichlet(spec) {
    const keys = {};
    const keyOf = (W) => (keys[W] ??= decodeFloat64(spec.data.keys[String(W)]));
    return {
      view: (W, N) => dirichletView(keyOf(W), W, N, { oversample: spec.data.oversample }),
      layout: (layout, v) => ({ ...layout, title: { ...(layout.title || {}), text: v.layout.title } }),
    };
  },
  "effective-weights"(spec) {
    const { T, D } = spec.data;
    const q = rows(decodeFloat64(spec.data.q), T, D);
    const k = rows(decodeFloat64(spec.data.k), T, D);
    return {
      view: (W, N) => effectiveWeightsView(
        q, k, W, N, { query: spec.data.query, scale: spec.data.scale ?? undefined }),
      layout: (layout, v) => ({
        ...layout,
        title: { ...(layout.title || {}), text: v.layout.title },
        // the subplot titles that name W or N (blaviz.viz.bla.effective_weights_layout)
        annotations: (layout.annotations || []).map((a) => (
          !a.text ? a
            : a.text.startsWith("SWA") ? { ...a, text: v.layout.swaTitle }
              : a.text.startsWith("BLA") ? { ...a, text: v.layout.blaTitle } : a)),
        shapes: (layout.shapes || []).map((s) => (
          s.type === "rect" && s.x0 === -0.5 ? { ...s, x1: v.layout.windowEdge } : s)),
      }),
    };
  },
};

function whenDrawn(el) {
  return new Promise((resolve) => {
    const ready = () => el._fullLayout && Array.isArray(el.data);
    if (ready()) { resolve(); return; }
    const timer = setInterval(() => { if (ready()) { clearInterval(timer); resolve(); } }, 50);
  });
}

function control(root, c, onChange) {
  const id = `${root.id || "blaviz-free"}-${c.name}`;
  const label = document.createElement("label");
  label.htmlFor = id;
  label.innerHTML = c.label;
  const range = document.createElement("input");
  Object.assign(range, { type: "range", id, step: 1 });
  range.setAttribute("aria-label", c.name);
  const box = document.createElement("input");
  Object.assign(box, { type: "number", step: 1, inputMode: "numeric" });
  box.dataset.param = c.name;
  box.setAttribute("aria-label", `${c.name} (type a value)`);
  range.dataset.param = c.name;
  range.addEventListener("input", () => onChange(c.name, "range", range.valueAsNumber));
  box.addEventListener("change", () => onChange(c.name, "box", box.valueAsNumber));
  return { label, range, box };
}

/** Mount the controls of one free-slider figure and draw its initial setting with the module. */
export async function mount(root) {
  if (root.dataset.mounted) return;
  root.dataset.mounted = "1";
  injectStyle();
  const spec = JSON.parse(root.querySelector("script.blaviz-free-spec").textContent);
  const el = root.querySelector(".plotly-graph-div");
  const kind = KINDS[spec.kind](spec);
  const [wSpec, nSpec] = spec.controls;
  const state = { W: spec.initial.W, N: spec.initial.N };

  const panel = document.createElement("div");
  panel.className = "blaviz-free-controls";
  const note = document.createElement("p");
  note.className = "blaviz-free-note";
  const help = spec.note || "";
  const say = (text, warn) => {
    note.textContent = text || help;
    note.classList.toggle("blaviz-free-warn", !!warn);
  };

  let pending = false, busy = false;
  async function draw() {
    if (busy) { pending = true; return; }
    busy = true;
    try {
      do {
        pending = false;
        const { W, N } = state;
        const v = kind.view(W, N);
        const data = el.data.map((tr, i) => ({ ...tr, ...v.traces[i] }));
        await window.Plotly.react(el, data, kind.layout(el.layout, v));
        root.dataset.state = `W=${W} N=${N}`;
      } while (pending);
    } catch (err) {
      say(`could not redraw: ${err.message}`, true);
      throw err;
    } finally {
      busy = false;
    }
  }

  const ui = {};
  function sync() {
    const grid = resolutionGrid(state.W);
    Object.assign(ui.W.range, { min: wSpec.min, max: wSpec.max, value: state.W });
    Object.assign(ui.W.box, { min: wSpec.min, max: wSpec.max, value: state.W });
    // N's slider runs over the allowed values only (odd N, then N = W), one step each
    Object.assign(ui.N.range, { min: 0, max: grid.length - 1, value: grid.indexOf(state.N) });
    Object.assign(ui.N.box, { min: 1, max: state.W, value: state.N });
  }
  function onChange(name, from, value) {
    let warning = "";
    if (name === "W") {
      let W = Math.round(value);
      if (!Number.isFinite(value) || W < wSpec.min || W > wSpec.max) {
        W = Math.min(wSpec.max, Math.max(wSpec.min, Number.isFinite(value) ? W : state.W));
        warning = `${wSpec.name} takes ${wSpec.min} to ${wSpec.max} here: showing ${wSpec.name} = ${W}.`;
      }
      state.W = W;
      const N = validResolution(W, state.N);
      if (N !== state.N) warning ||= `N = ${state.N} is not allowed for W = ${W}: showing N = ${N}.`;
      state.N = N;
    } else {
      const grid = resolutionGrid(state.W);
      let N = from === "range" ? grid[Math.round(value)] : Math.round(value);
      if (!Number.isFinite(N) || N < 1 || N > state.W || (N % 2 === 0 && N !== state.W)) {
        const asked = Number.isFinite(value) ? String(value) : "that";
        N = validResolution(state.W, Number.isFinite(N) ? N : state.N);
        warning = `N = ${asked} is not allowed (odd, or N = W = ${state.W}): showing N = ${N}.`;
      }
      state.N = N;
    }
    sync();
    say(warning, !!warning);
    draw();
  }
  for (const c of spec.controls) ui[c.name] = control(root, c, onChange);
  for (const c of spec.controls) {
    const row = document.createElement("div");
    row.className = "blaviz-free-row";
    row.append(ui[c.name].label, ui[c.name].range, ui[c.name].box);
    panel.append(row);
  }
  panel.append(note);
  say("");
  root.appendChild(panel);
  sync();
  await whenDrawn(el);
  await draw();
}
