"""Notebook conventions shared by every chapter: setup cell, device choice, library source."""
from __future__ import annotations

import ast
import inspect
import io
import os
import textwrap
import tokenize
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


#: the widest line that fits the book's code column at 1280 px (the site's CSS: ~87 characters)
SOURCE_WIDTH = 84


def _drop_lines(lines: list[str], spans) -> list[str]:
    drop = set()
    for first, last in spans:
        drop.update(range(first - 1, last))
    return [line for i, line in enumerate(lines) if i not in drop]


def _strip(source: str, *, docstring: bool, checks: bool) -> str:
    """Remove docstrings and/or leading argument checks (``if ...: raise ...``) of every
    function and class in ``source``."""
    tree = ast.parse(textwrap.dedent(source))
    spans = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        body = list(node.body)
        if not docstring and body and isinstance(body[0], ast.Expr) and \
                isinstance(getattr(body[0], "value", None), ast.Constant) and \
                isinstance(body[0].value.value, str):
            spans.append((body[0].lineno, body[0].end_lineno))
            body = body[1:]
        if not checks:
            leading = []
            for stmt in body:
                if isinstance(stmt, ast.If) and not stmt.orelse and \
                        all(isinstance(s, ast.Raise) for s in stmt.body):
                    leading.append((stmt.lineno, stmt.end_lineno))
                else:
                    break
            spans += leading[:-1] if len(leading) == len(body) else leading  # never an empty body
    return "".join(_drop_lines(source.splitlines(keepends=True), spans))


def _line_states(source: str) -> tuple[dict, set]:
    """Bracket depth at the start of each line (1-based), and the lines inside a multi-line
    string (from Python's tokenizer)."""
    depth_at, in_string, depth, line = {}, set(), 0, 1
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            while line <= tok.start[0]:
                depth_at[line] = depth
                line += 1
            if tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
                in_string.update(range(tok.start[0] + 1, tok.end[0] + 1))
            if tok.type == tokenize.STRING and tok.string.lstrip("rRbBuU")[:3] in ('"""', "\'\'\'") \
                    and not tok.line[: tok.start[1]].strip():
                in_string.add(tok.start[0])  # a docstring's first line is text too
            elif tok.type == tokenize.OP and tok.string in "([{":
                depth += 1
            elif tok.type == tokenize.OP and tok.string in ")]}":
                depth -= 1
    except (tokenize.TokenError, IndentationError):
        pass
    return depth_at, in_string


def _open_brackets(code: str) -> int:
    """Bracket depth at the end of one line of code, strings skipped."""
    depth, quote = 0, None
    for ch in code:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
    return depth


def _outside_strings(code: str) -> bool:
    return code.count('"') % 2 == 0 and code.count("'") % 2 == 0


def _wrap_line(line: str, width: int, depth: int, in_string: bool) -> list[str]:
    """Break one long line (the last resort): comments become more comment lines, text inside a
    multi-line string more text lines; code breaks after a comma or space outside strings,
    continued inside brackets or with a backslash."""
    indent = line[: len(line) - len(line.lstrip())]
    if in_string or line.lstrip().startswith("#"):
        mark = "# " if not in_string else ""
        text = line.lstrip()[1:].strip() if mark else line.strip()
        body = textwrap.wrap(text, width - len(indent) - len(mark)) or [""]
        return [f"{indent}{mark}{b}" for b in body]
    hashes = [i for i, ch in enumerate(line) if ch == "#" and _outside_strings(line[:i])]
    if hashes and line[: hashes[0]].strip():  # a trailing comment goes on its own line above
        comment = _wrap_line(indent + line[hashes[0]:], width, depth, False)
        return comment + _wrap_line(line[: hashes[0]].rstrip(), width, depth, False)
    out, rest, pos = [], line, 0
    while len(rest) > width:
        cuts = [i + 1 for i in range(width - 2, len(indent) + 8, -1)
                if rest[i] == " " and _outside_strings(rest[:i])]
        if not cuts:  # split a long string literal in two (implicit concatenation)
            split = _split_string(rest, width, len(indent) + 8)
            if split is None:
                break  # nowhere to break: leave it long
            head, tail = split
            out.append(head)
            rest = indent + "    " + tail
            continue
        cut = next((c for c in cuts if rest[c - 2] == ","), cuts[0])
        head = rest[:cut].rstrip()
        pos += _open_brackets(head)
        out.append(head if depth + pos > 0 else head + " \\")
        rest = indent + "    " + rest[cut:].lstrip()
    return out + [rest]


def _split_string(line: str, width: int, start: int):
    """``(head, tail)``: ``line`` cut at a space inside a one-line string literal before
    ``width``, each part a complete literal (same prefix and quote); None if there is none."""
    for i in range(width - 3, start, -1):
        if line[i] != " " or _outside_strings(line[:i]):
            continue
        j = max(k for k in range(i) if line[k] in "\"'" and _outside_strings(line[:k]))
        quote, k = line[j], j
        while k > 0 and line[k - 1] in "rRbBfFuU":
            k -= 1
        prefix, inner = line[k:j], line[j + 1:i + 1]
        if line[j:j + 3] == quote * 3 or inner.count("{") != inner.count("}"):
            continue
        return line[:i + 1] + quote, prefix + quote + line[i + 1:]
    return None


def fit_width(source: str, width: int = SOURCE_WIDTH) -> str:
    """Wrap lines longer than ``width`` characters (see :func:`_wrap_line`)."""
    depth_at, in_string = _line_states(source)
    out = []
    for number, line in enumerate(source.splitlines(), start=1):
        if len(line) > width:
            out += _wrap_line(line, width, depth_at.get(number, 0), number in in_string)
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def show_source(*objs, docstring: bool = True, checks: bool = True,
                width: int | None = SOURCE_WIDTH) -> SourceCode:
    """Show the source of library functions/classes (one source of truth: the book never copies).

    ``docstring=False`` drops docstrings and ``checks=False`` the argument checks at the top of
    each function (``if ...: raise ...``), when the page explains those in its text. Lines longer
    than ``width`` characters (the book's code column) are wrapped as a last resort; ``None``
    keeps them.

    >>> from blaviz.state_size import state_size
    >>> show_source(state_size, docstring=False)   # doctest: +SKIP
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
        source = textwrap.dedent("".join(lines))  # a method is shown from column 0
        if not (docstring and checks):
            source = _strip(source, docstring=docstring, checks=checks)
        if width is not None:
            source = fit_width(source, width)
        parts.append(source.rstrip())
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
