"""Pictures of the method, drawn as SVG from code so they stay sharp at any size.

Three diagrams (each a :class:`Diagram`; ``DIAGRAMS`` maps file names to the functions):

* :func:`overview` - one BLA step: token -> rotate, write, erase -> ``N`` coefficients ->
  ``S`` slots read by Dirichlet interpolation -> softmax over the slots -> output.
* :func:`layer` - the BLA layer: projections, heads, the BLA mixer with its state, output.
* :func:`chunk_pipeline` - the chunked form: per-chunk work in parallel, a light scan of the
  state across chunks, outputs in parallel.

Colours are CSS variables set in the SVG's own ``<style>``: a light and a dark palette chosen by
``prefers-color-scheme`` when the file is shown as an image, and by the book theme's
``html[data-theme]`` when the SVG is inlined in a page (then the background is transparent).
Text is at least 15 units high in a 540-unit-wide picture, so it stays legible on a phone.

``python -m blaviz.viz.diagrams book/figures`` writes every diagram as ``<name>.svg``.
"""
from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from blaviz.dirichlet import dirichlet_kernel

WIDTH = 540
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"

# name: (foreground, muted, background, box fill, accent, accent fill, warm, warm fill)
_LIGHT = ("#1f2328", "#57606a", "#ffffff", "#f2f4f7", "#0b62b8", "#e3eefa", "#a84f00", "#fbeee1")
_DARK = ("#e6edf3", "#9da7b3", "#161b22", "#222a33", "#6cb6ff", "#17324d", "#f0a35e", "#3d2a18")
_VARS = ("fg", "muted", "bg", "box", "acc", "accbg", "warm", "warmbg")


def _palette(colors, background=True) -> str:
    pairs = [f"--bv-{n}:{c}" for n, c in zip(_VARS, colors)]
    if not background:
        pairs[2] = "--bv-bg:transparent"
    return ";".join(pairs)


_STYLE = (
    f".bvd{{{_palette(_LIGHT)};color:var(--bv-fg)}}"
    f"@media (prefers-color-scheme: dark){{.bvd{{{_palette(_DARK)}}}}}"
    f"html[data-theme=light] .bvd{{{_palette(_LIGHT, False)}}}"
    f"html[data-theme=dark] .bvd{{{_palette(_DARK, False)}}}"
    ".bvd .bg{fill:var(--bv-bg)}"
    f".bvd text{{fill:currentColor;font-family:{FONT}}}"
    ".bvd .muted{fill:var(--bv-muted)}"
    ".bvd .box{fill:var(--bv-box);stroke:var(--bv-muted);stroke-width:1.2}"
    ".bvd .acc{fill:var(--bv-accbg);stroke:var(--bv-acc);stroke-width:1.6}"
    ".bvd .warm{fill:var(--bv-warmbg);stroke:var(--bv-warm);stroke-width:1.6}"
    ".bvd .frame{fill:none;stroke:var(--bv-muted);stroke-width:1.2;stroke-dasharray:5 4}"
    ".bvd .line{fill:none;stroke:currentColor;stroke-width:1.6}"
    ".bvd .line.acc{stroke:var(--bv-acc)}.bvd .line.warm{stroke:var(--bv-warm)}"
    ".bvd .head{fill:currentColor}.bvd .head.acc{fill:var(--bv-acc)}"
    ".bvd .head.warm{fill:var(--bv-warm)}"
    ".bvd .dash{stroke-dasharray:5 4}"
    ".bvd .curve{fill:none;stroke:var(--bv-acc);stroke-width:2.2}"
    ".bvd .dot{fill:var(--bv-acc)}.bvd .dotw{fill:var(--bv-warm)}"
    ".bvd .bar{fill:var(--bv-acc)}"
)

_MARKUP = re.compile(r"([_^])\{([^}]*)\}")


def _fmt(x: float) -> str:
    """Coordinates with one decimal, so the file is the same on every machine."""
    s = f"{x:.1f}"
    return s[:-2] if s.endswith(".0") else s


def _rich(s: str) -> str:
    """Text with ``_{sub}`` and ``^{sup}`` markup as SVG tspans (``dy`` shifts, undone after)."""
    out, pos = [], 0
    for m in _MARKUP.finditer(s):
        out.append(escape(s[pos:m.start()]))
        dy = "0.3em" if m.group(1) == "_" else "-0.45em"
        back = "-0.3em" if m.group(1) == "_" else "0.45em"
        out.append(f'<tspan dy="{dy}" font-size="72%">{escape(m.group(2))}</tspan>'
                   f'<tspan dy="{back}">\u200b</tspan>')
        pos = m.end()
    out.append(escape(s[pos:]))
    return "".join(out)


@dataclass(frozen=True)
class Diagram:
    """An SVG picture; shown inline in Jupyter and on the book's pages."""

    name: str
    svg: str

    def _repr_html_(self) -> str:
        return self.svg


class _Canvas:
    def __init__(self, height: float, title: str, desc: str):
        self.height, self.title, self.desc = height, title, desc
        self.items: list[str] = []

    def rect(self, x, y, w, h, cls="box", rx=8):
        self.items.append(f'<rect class="{cls}" x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(w)}" '
                          f'height="{_fmt(h)}" rx="{rx}"/>')

    def circle(self, x, y, r, cls="acc"):
        self.items.append(f'<circle class="{cls}" cx="{_fmt(x)}" cy="{_fmt(y)}" r="{_fmt(r)}"/>')

    def text(self, x, y, s, size=16, anchor="middle", cls="", weight=None, italic=False):
        attrs = [f'x="{_fmt(x)}"', f'y="{_fmt(y)}"', f'font-size="{size}"',
                 f'text-anchor="{anchor}"']
        if cls:
            attrs.append(f'class="{cls}"')
        if weight:
            attrs.append(f'font-weight="{weight}"')
        if italic:
            attrs.append('font-style="italic"')
        self.items.append(f'<text {" ".join(attrs)}>{_rich(s)}</text>')

    def lines(self, x, y, rows, size=16, gap=None, **kw):
        """Several centred lines, the first baseline at ``y``."""
        gap = gap or size * 1.3
        for i, row in enumerate(rows):
            self.text(x, y + i * gap, row, size=size, **kw)

    def polyline(self, pts, cls="line"):
        p = " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in pts)
        self.items.append(f'<polyline class="{cls}" points="{p}"/>')

    def arrow(self, pts, tone="", dashed=False, size=8):
        """A polyline ending in a filled arrowhead (drawn as a polygon: no markers, no ids)."""
        (x0, y0), (x1, y1) = pts[-2], pts[-1]
        ang = math.atan2(y1 - y0, x1 - x0)
        bx, by = x1 - size * math.cos(ang), y1 - size * math.sin(ang)
        cls = " ".join(c for c in ("line", tone, "dash" if dashed else "") if c)
        self.polyline([*pts[:-1], (bx, by)], cls)
        nx, ny = -math.sin(ang) * size * 0.55, math.cos(ang) * size * 0.55
        tri = [(x1, y1), (bx + nx, by + ny), (bx - nx, by - ny)]
        p = " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in tri)
        self.items.append(f'<polygon class="{" ".join(c for c in ("head", tone) if c)}" '
                          f'points="{p}"/>')

    def render(self) -> str:
        h = _fmt(self.height)
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="bvd" role="img" '
                f'viewBox="0 0 {WIDTH} {h}" width="{WIDTH}" height="{h}" '
                f'style="max-width:100%;height:auto">')
        body = [head, f"<title>{escape(self.title)}</title>", f"<desc>{escape(self.desc)}</desc>",
                f"<style>{_STYLE}</style>",
                f'<rect class="bg" x="0" y="0" width="{WIDTH}" height="{h}" rx="10"/>',
                *self.items, "</svg>"]
        return "\n".join(body) + "\n"


# ------------------------------------------------------------------------------ the overview
def overview(window: int = 16, resolution: int = 5) -> Diagram:
    """One BLA step, from the new token to the output (drawn for ``W = window``,
    ``N = S = resolution``; the slot kernel is :func:`blaviz.dirichlet.dirichlet_kernel`)."""
    W, N = window, resolution
    c = _Canvas(708, "One step of Blurry Window Attention",
                "A new key and value are written into a frequency window of N coefficients: "
                "rotate, write the new token, erase the blurry copy of the leaving token. "
                "S slots are read from it by Dirichlet interpolation; the query takes a "
                "softmax over the slots and the output mixes the slot values.")
    L, R, QX = 20, 404, 474                     # main column [L, R], query lane at QX
    mid = (L + R) / 2
    # the inputs
    c.rect(L, 14, R - L, 44, "warm")
    c.text(mid, 42, "new token t:  key k_{t}, value v_{t}", 17)
    c.rect(QX - 52, 14, 104, 44, "warm")
    c.text(QX, 42, "query q_{t}", 17)
    c.arrow([(mid, 58), (mid, 86)])
    # 1. the update
    c.rect(L, 86, R - L, 150, "frame")
    c.text(L + 10, 108, "1. update the frequency window", 16, "start", weight="600")
    steps = [("rotate", "F_{m} \u2190 z_{m} F_{m}"), ("write", "+ k_{t}"),
             ("erase", "\u2212 R_{W\u22121}(F)")]
    bw, gap = 110, 12
    for i, (name, eq) in enumerate(steps):
        x = L + 12 + i * (bw + gap)
        c.rect(x, 120, bw, 62, "acc")
        c.text(x + bw / 2, 144, name, 16, weight="600")
        c.text(x + bw / 2, 168, eq, 16)
        if i:
            c.arrow([(x - gap, 151), (x, 151)], size=6)
    c.text(mid, 206, "erase: the state no longer holds the token", 15, cls="muted")
    c.text(mid, 225, "leaving the window, so it removes a blurry copy", 15, cls="muted")
    c.arrow([(mid, 236), (mid, 262)])
    # the state: N coefficients, drawn as bars
    c.rect(L, 262, R - L, 84, "box")
    c.text(L + 10, 284, f"state: N coefficients (here N = {N})", 16, "start", weight="600")
    c.text(L + 10, 334, "F (keys), G (values): 2Nd numbers", 15, "start", cls="muted")
    heights = [22, 14, 18, 9, 12, 6, 8][:N]
    for i, hgt in enumerate(heights):
        x = R - 22 - (N - i) * 17
        c.rect(x, 318 - hgt, 11, hgt, "bar", rx=1)
    # the recurrence: the state feeds the next step's update
    c.arrow([(L, 304), (L - 8, 304), (L - 8, 161), (L + 4, 161)], tone="warm", size=6)
    c.text(L + 4, 256, "next token", 14, "start", cls="muted")
    c.arrow([(mid, 346), (mid, 372)])
    # 2. the read: slots by Dirichlet interpolation
    c.rect(L, 372, R - L, 176, "frame")
    c.text(L + 10, 394, "2. read S slots by Dirichlet interpolation", 16, "start", weight="600")
    x0, x1, base, amp = L + 24, R - 24, 492, 68
    lag = lambda s: x0 + (x1 - x0) * s / (W - 1)          # noqa: E731  (lag -> x)
    c.polyline([(x0, base), (x1, base)], "line")
    S = N
    j = 2                                                   # the slot whose kernel is drawn
    sj = j * W / S
    xs = [i / 10 for i in range(0, 10 * (W - 1) + 1)]
    ys = dirichlet_kernel([x - sj for x in xs], N, W).tolist()
    peak = N / W
    c.polyline([(lag(x), base - amp * y / peak) for x, y in zip(xs, ys)], "curve")
    for i in range(W):
        c.polyline([(lag(i), base), (lag(i), base + 5)], "line")
    for s in range(S):
        c.circle(lag(s * W / S), base, 5, "dot" if s != j else "dotw")
    c.text(x0, base + 26, "lag 0", 14, "start", cls="muted")
    c.text(x1, base + 26, f"W \u2212 1 = {W - 1}", 14, "end", cls="muted")
    c.text(lag(sj) + 10, base - amp - 4, "K\u0303_{j} = F read at lag s_{j}", 16, "start")
    c.text(mid, base + 44, "a blurry key (and value) at each slot lag s_{j}", 15, cls="muted")
    c.arrow([(mid, 548), (mid, 574)])
    # 3. the softmax over slots, and the output
    c.rect(L, 574, R - L, 50, "acc")
    c.text(mid, 605, "3. p = softmax_{j}(q_{t}\u00b7K\u0303_{j})  over the S slots", 17)
    c.arrow([(QX, 58), (QX, 599), (R, 599)], tone="warm")
    c.arrow([(mid, 624), (mid, 650)])
    c.rect(L, 650, R - L, 46, "warm")
    c.text(mid, 679, "output  o_{t} = \u03a3_{j} p_{j} V\u0303_{j}", 17)
    return Diagram("bla_overview", c.render())


# ------------------------------------------------------------------------------ the layer
def layer() -> Diagram:
    """The BLA layer (:class:`blaviz.layers.BlurryWindowAttention`): projections, heads, the
    BLA mixer and its bounded state, the output projection."""
    c = _Canvas(548, "The BLA layer",
                "The input is projected to queries, keys and values, split into heads; each head "
                "runs BLA with a state of 2Nd numbers; the heads are merged and projected back.")
    mid = 195
    c.rect(mid - 120, 14, 240, 44, "warm")
    c.text(mid, 42, "x: [B, T, d_model]", 17)
    cols = [(75, "q_proj"), (195, "k_proj"), (315, "v_proj")]
    for x, name in cols:
        c.arrow([(mid, 58), (mid, 70), (x, 70), (x, 92)])
        c.rect(x - 52, 92, 104, 44, "box")
        c.text(x, 120, name, 17)
        c.arrow([(x, 136), (x, 160)])
    c.rect(23, 160, 344, 40, "box")
    c.text(mid, 186, "split into H heads", 17)
    c.arrow([(mid, 200), (mid, 236)])
    c.text(mid + 10, 224, "q, k, v: [B, T, H, d]", 15, "start", cls="muted")
    # the mixer, with the state beside it
    c.rect(23, 236, 344, 110, "acc")
    c.text(mid, 264, "BLA mixer (per head)", 17, weight="600")
    c.lines(mid, 292, ["rotate, write, erase;", "read S slots, softmax over them"], 16)
    c.rect(392, 236, 132, 110, "warm")
    c.lines(458, 270, ["state per head", "F, G: N \u00d7 d", "= 2Nd numbers"], 15, gap=21)
    c.arrow([(367, 270), (392, 270)], tone="warm", size=6)
    c.arrow([(392, 312), (367, 312)], tone="warm", size=6)
    c.lines(458, 368, ["in: initial_state", "out: final_state"], 14, gap=18, cls="muted")
    c.arrow([(mid, 346), (mid, 382)])
    c.text(mid + 10, 370, "o: [B, T, H, d]", 15, "start", cls="muted")
    c.rect(23, 382, 344, 40, "box")
    c.text(mid, 408, "merge heads", 17)
    c.arrow([(mid, 422), (mid, 446)])
    c.rect(mid - 60, 446, 120, 40, "box")
    c.text(mid, 472, "o_proj", 17)
    c.arrow([(mid, 486), (mid, 502)])
    c.rect(mid - 120, 502, 240, 40, "warm")
    c.text(mid, 528, "y: [B, T, d_model]", 17)
    return Diagram("bla_layer", c.render())


# ------------------------------------------------------------------------------ the chunk pipeline
def chunk_pipeline(num_chunks: int = 4) -> Diagram:
    """The chunked form (:func:`blaviz.ops.bla.chunk.bla_chunk`, the Triton kernels): each
    chunk's own write in parallel, a light scan of the state across chunks, outputs in parallel."""
    n = num_chunks
    c = _Canvas(436, "The chunked form: parallel chunks, a light scan of the state",
                "The sequence is cut into chunks of C tokens. Each chunk's own write b_c is "
                "computed in parallel; a sequential scan carries the state F across chunks, "
                "F_{c+1} = A^C F_c + b_c (A^C: the one-step transition applied C times); "
                "then every chunk's outputs are computed in parallel from "
                "its queries, keys, values and the state entering it.")
    L, R = 168, 518
    cw = (R - L) / n
    cx = [L + cw * (i + 0.5) for i in range(n)]
    xs = [L + cw * i for i in range(n + 1)]
    bw = cw - 16
    rows = [(48, ["chunks of", "C tokens"]), (136, ["each chunk's", "write (parallel)"]),
            (210, ["the scan of the", "state (in order)"]), (290, ["outputs", "(parallel)"])]
    for y, (first, second) in rows:
        c.text(16, y - 6, first, 15, "start", weight="600")
        c.text(16, y + 13, second, 15, "start", weight="600")
    for i, x in enumerate(cx):
        c.rect(x - bw / 2, 20, bw, 52, "warm")
        c.text(x, 42, f"chunk {i}", 15)
        c.text(x, 62, "Q, K, V", 15)
        c.arrow([(x, 72), (x, 116)])
        c.rect(x - bw / 2, 116, bw, 40, "acc")
        c.text(x, 142, f"b_{{{i}}}", 17)
    sy = 212
    for i, x in enumerate(xs):
        c.circle(x, sy, 16, "warm")
        c.text(x, sy + 6, f"F_{{{i}}}", 16)
        if i < n:
            c.arrow([(x + 16, sy), (xs[i + 1] - 16, sy)], tone="warm")
            c.arrow([(cx[i], 156), (cx[i], sy - 2)], tone="acc", size=7)
            c.arrow([(x + 9, sy + 13), (cx[i] - 8, 268)], tone="warm", size=7)
            c.rect(cx[i] - bw / 2, 268, bw, 44, "acc")
            c.text(cx[i], 296, f"O_{{{i}}}", 17)
    c.arrow([(xs[n], sy + 16), (xs[n], 322)], tone="warm", size=7)
    c.text(xs[n] + 4, 340, "final state", 14, "end", cls="muted")
    c.text(16, 372, "b_{c} = Y M^{\u22121} K_{c}: the chunk's own write, free of the state.",
           15, "start")
    c.text(16, 394, "F_{c+1} = A^{C} F_{c} + b_{c}: an N \u00d7 N by N \u00d7 d product.",
           15, "start")
    c.text(16, 416, "The rest is matrix products inside each chunk (tensor cores).", 15, "start",
           cls="muted")
    return Diagram("bla_chunk_pipeline", c.render())


DIAGRAMS = {"bla_overview": overview, "bla_layer": layer, "bla_chunk_pipeline": chunk_pipeline}


def write_all(folder) -> list[Path]:
    """Write every diagram to ``folder/<name>.svg``; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in DIAGRAMS.items():
        path = folder / f"{name}.svg"
        path.write_text(make().svg, encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m blaviz.viz.diagrams OUTPUT_FOLDER")
    for p in write_all(sys.argv[1]):
        print(p)
