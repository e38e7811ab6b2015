"""Notebook conventions shared by every chapter: setup cell, device choice, library source."""
from __future__ import annotations

import inspect
import os
from pathlib import Path

from IPython.display import Code

from .plotly_html import setup_plotly

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def pick_device():
    """``cuda`` when a CUDA GPU is usable, else ``cpu``; ``BLAVIZ_DEVICE=cpu`` forces a device."""
    import torch

    forced = os.environ.get("BLAVIZ_DEVICE")
    if forced:
        return torch.device(forced)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def by_device(*, cpu, gpu, device=None):
    """Pick a size by device: ``T = by_device(cpu=256, gpu=8192)``.

    CPU sizes keep a chapter at a few seconds on a laptop (and in the book build); GPU sizes
    are what the experiments use. ``device`` defaults to :func:`pick_device`.
    """
    import torch

    device = pick_device() if device is None else torch.device(device)
    return gpu if device.type == "cuda" else cpu


def setup_notebook(*, seed: int = 0, verbose: bool = True):
    """The first cell of every chapter: plotly renderer, seed, device. Returns the device.

    Without CUDA it also sets ``TRITON_INTERPRET=1`` (before any ``@triton.jit`` runs, i.e.
    before importing a kernel module), so Triton kernels run in the interpreter on a CPU.
    """
    import torch

    setup_plotly()
    device = pick_device()
    if device.type != "cuda":
        os.environ.setdefault("TRITON_INTERPRET", "1")
    torch.manual_seed(seed)
    if verbose:
        where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU sizes"
        print(f"device: {device} ({where}), torch {torch.__version__}, seed {seed}")
    return device


class SourceCode(Code):
    """Library source shown in a notebook: a fenced Markdown code block.

    ``IPython.display.Code`` writes HTML with a global ``<style>`` block; as Markdown the code
    is highlighted by the website's own theme (light and dark) and by Jupyter's.
    """

    def __init__(self, data: str, title: str = ""):
        super().__init__(data=data, language="python")
        self.title = title

    def _repr_html_(self):  # let the Markdown form win everywhere
        return None

    def _repr_latex_(self):
        return None

    def _repr_markdown_(self):
        fence = "`" * max(3, _longest_backtick_run(self.data) + 1)
        head = f"{self.title}\n\n" if self.title else ""
        return f"{head}{fence}python\n{self.data.rstrip()}\n{fence}\n"


def _longest_backtick_run(text: str) -> int:
    best = run = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        best = max(best, run)
    return best


def show_source(*objs) -> SourceCode:
    """Show the source of library functions/classes (one source of truth: the book never copies).

    >>> from blaviz.state_size import state_size
    >>> show_source(state_size)   # doctest: +SKIP
    """
    if not objs:
        raise ValueError("show_source needs at least one object")
    parts, where = [], []
    for obj in objs:
        lines, start = inspect.getsourcelines(obj)
        path = Path(inspect.getsourcefile(obj)).resolve()
        try:
            path = path.relative_to(_PACKAGE_ROOT)
        except ValueError:
            pass
        where.append(f"`{path}` (line {start})")
        parts.append("".join(lines).rstrip())
    return SourceCode("\n\n\n".join(parts) + "\n", title="From " + ", ".join(where) + ":")


def md_table(rows, headers, *, align: str | None = None):
    """A Markdown table (rendered by Jupyter and, as MyST, by the website).

    ``rows`` are sequences of cells (formatted with ``str``); ``align`` has one character per
    column, ``l``/``r``/``c`` (default: first column left, the others right).
    """
    from IPython.display import Markdown

    headers = [str(h) for h in headers]
    align = align or "l" + "r" * (len(headers) - 1)
    if len(align) != len(headers):
        raise ValueError(f"align={align!r} needs one letter per column ({len(headers)})")
    rule = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(rule[a] for a in align) + "|"]
    for row in rows:
        cells = [str(c).replace("|", "\\|") for c in row]
        if len(cells) != len(headers):
            raise ValueError(f"row {row!r} has {len(cells)} cells, expected {len(headers)}")
        lines.append("| " + " | ".join(cells) + " |")
    return Markdown("\n".join(lines))
