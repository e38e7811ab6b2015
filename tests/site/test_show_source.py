"""blaviz.viz.show_source fits the book's code column (issue 14: nothing scrolls sideways)."""
import ast
import inspect
import textwrap

import pytest

from blaviz import dirichlet
from blaviz.analysis import impulse
from blaviz.ops import bla
from blaviz.viz.notebook import SOURCE_WIDTH, fit_width, show_source

def _code_ast(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                isinstance(getattr(body[0], "value", None), ast.Constant) and \
                isinstance(body[0].value.value, str):
            body[0] = ast.Pass()
    return ast.dump(tree)


SHOWN = [dirichlet.dirichlet_kernel, dirichlet.slot_lags, impulse.sliding_dft,
         impulse.impulse_response, bla.check_inputs, bla.bla_attention]


@pytest.mark.parametrize("obj", SHOWN, ids=lambda o: o.__name__)
@pytest.mark.parametrize("strip", [False, True])
def test_shown_source_fits_and_stays_python(obj, strip):
    kw = dict(docstring=False, checks=False) if strip else {}
    code = show_source(obj, **kw).data
    ast.parse(code)  # wrapping keeps it valid Python
    assert max(map(len, code.splitlines())) <= SOURCE_WIDTH
    if not strip:  # only line breaks were added: the same program, docstrings aside
        assert _code_ast(code) == _code_ast(textwrap.dedent(inspect.getsource(obj)))


def test_strip_drops_docstring_and_leading_checks_only():
    def f(x, n):
        """Docstring."""
        if n < 1:
            raise ValueError("n must be >= 1")
        if x is None:
            raise ValueError("x")
        y = x * n
        if y > 3:
            raise ValueError("kept: not a leading check")
        return y

    full = show_source(f).data
    bare = show_source(f, docstring=False, checks=False).data
    assert "Docstring" in full and "n must be" in full
    assert "Docstring" not in bare and "n must be" not in bare and '"x"' not in bare
    assert "kept: not a leading check" in bare and "return y" in bare
    assert "Docstring" in show_source(f, checks=False).data


def test_fit_width_breaks_comments_calls_and_strings():
    src = ("def g(a, b):\n"
           "    # " + "word " * 30 + "\n"
           "    value = some_function(argument_number_one, argument_number_two, argument_three)"
           "  # trailing\n"
           "    raise ValueError(f\"a rather long message about {a} that goes on and on, got {b} here\")\n")
    out = fit_width(src, 60)
    ast.parse(out)
    assert max(map(len, out.splitlines())) <= 60
    assert out.count("#") >= 3  # the comment became several comment lines
