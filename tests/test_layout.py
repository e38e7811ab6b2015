"""The layout rule, read from the source (AST, nothing imported): the core never imports the lab,
and no blaviz modules import each other in a circle.

Core: ``blaviz.{dirichlet, ops, layers, models, data, analysis, state_size, cost, testing}``.
Lab: ``blaviz.{experiments, bench, viz}``. Every ``import`` counts, also one inside a function:
a deferred import still ties the two modules together.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ("dirichlet", "ops", "layers", "models", "data", "analysis", "state_size", "cost", "testing")
LAB = ("experiments", "bench", "viz")


def module_names(root: Path) -> dict[str, Path]:
    """``{"blaviz.ops.bla.naive": path, "blaviz.ops.bla": .../__init__.py, ...}``."""
    out = {}
    for path in sorted((root / "blaviz").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, modules: dict) -> set[str]:
    """The blaviz modules ``name`` imports (``from pkg import sub`` counts as importing ``pkg.sub``
    when ``sub`` is a module, else ``pkg``)."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:          # "blaviz.x.func" -> "blaviz.x"
                t = t.rpartition(".")[0]
            if t.startswith("blaviz") and t != name:
                found.add(t)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def _part(module: str) -> str:
    """``"blaviz.ops.bla"`` -> ``"ops"``; the package itself (the public API) counts as core."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "dirichlet"


def core_to_lab(graph) -> list[str]:
    return sorted(f"{a} imports {b}" for a, deps in graph.items() if _part(a) in CORE
                  for b in deps if _part(b) in LAB)


def unclassified(graph) -> list[str]:
    return sorted({m for m in graph if _part(m) not in CORE + LAB})


def cycles(graph) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index, low, stack, on_stack, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def test_the_graph_sees_deferred_and_relative_imports(tmp_path):
    pkg = tmp_path / "blaviz"
    (pkg / "ops").mkdir(parents=True)
    (pkg / "viz").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "ops" / "__init__.py").write_text("from .a import f\n")
    (pkg / "ops" / "a.py").write_text("def f():\n    from blaviz.viz.fig import g\n")
    (pkg / "viz" / "__init__.py").write_text("")
    (pkg / "viz" / "fig.py").write_text("from blaviz.ops import a\n")
    g = import_graph(tmp_path)
    assert g["blaviz.ops"] == {"blaviz.ops.a"} and g["blaviz.viz.fig"] == {"blaviz.ops.a"}
    assert core_to_lab(g) == ["blaviz.ops.a imports blaviz.viz.fig"]
    assert cycles(g) == [["blaviz.ops.a", "blaviz.viz.fig"]]


def test_the_core_never_imports_the_lab():
    assert core_to_lab(import_graph()) == []


def test_every_module_is_core_or_lab():
    assert unclassified(import_graph()) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []
