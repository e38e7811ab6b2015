"""The Colab route: one repository address, and notebooks that run opened alone.

The tests here are quick (run with the library tests): the address in ``_config.yml``
(``repository.url``: the launch buttons use it) is the one in ``blaviz.viz.results`` and in every
notebook's Colab install cell, and ``results_file`` downloads what it cannot find locally.

Run as a script, it is the notebook run of ``make test-notebooks``: every ``book/*.ipynb`` is
copied ALONE into a temporary folder (as Colab opens it: no repository around it), the
repository's ``results/`` is served over a local http server and reachable only the way Colab
would get it (``BLAVIZ_RESULTS_URL`` points the download at the server, ``BLAVIZ_RESULTS_REPO=0``
turns the repository lookup off, the download cache is a fresh folder), and nbval runs the
copies::

    .venv/bin/python tests/book/test_colab.py [nbval/pytest options]
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
# the install cell names the address once (REPO) and pip reads it through IPython's {REPO}
INSTALL = re.compile(r'REPO = "(\S+?)"[^\n]*\n(?:[^\n]*\n)*?\s*%pip install[^\n]*"blaviz @ git\+\{REPO\}"')


def config_repository_url() -> str:
    """``repository.url`` of ``_config.yml`` (read without a YAML parser: one key, one line)."""
    text = (ROOT / "_config.yml").read_text(encoding="utf-8")
    block = re.search(r"^repository:\n((?:[ \t]+.*\n)+)", text, re.MULTILINE)
    assert block, "_config.yml has no repository: block"
    url = re.search(r"^\s+url:\s*(\S+)", block.group(1), re.MULTILINE)
    assert url, "_config.yml's repository: block has no url"
    return url.group(1)


def notebooks() -> list[Path]:
    return sorted(BOOK.glob("*.ipynb"))


def test_repository_url_is_one_setting():
    from blaviz.viz import results

    url = config_repository_url()
    assert url.startswith("https://github.com/"), url
    assert results.REPOSITORY_URL == url


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_colab_install_cell_uses_the_config_url(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    installs = [m.group(1) for src in sources for m in INSTALL.finditer(src)]
    assert installs, f"{path.name}: no Colab install cell (%pip install \"blaviz @ git+URL\")"
    assert set(installs) == {config_repository_url()}, f"{path.name}: installs from {installs}"
    first = next(i for i, src in enumerate(sources) if INSTALL.search(src))
    assert first == 0, f"{path.name}: the install cell must be the first code cell"


@contextlib.contextmanager
def serve(folder: Path):
    """Serve ``folder`` over http on 127.0.0.1; yields the base address."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def colab_env(url: str, cache: Path) -> dict:
    """Environment of a notebook opened alone: results only through the download address."""
    env = {k: v for k, v in os.environ.items() if k != "BLAVIZ_RESULTS"}
    env.update(BLAVIZ_RESULTS_URL=url, BLAVIZ_RESULTS_REPO="0", XDG_CACHE_HOME=str(cache))
    return env


def test_results_file_downloads_when_the_repository_is_out_of_reach(tmp_path, monkeypatch):
    from blaviz.viz import results

    served = tmp_path / "served"
    (served / "demo").mkdir(parents=True)
    (served / "demo" / "a.json").write_text('{"x": 1}')
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with serve(served) as url:
        for key, value in colab_env(url, tmp_path / "cache").items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("BLAVIZ_RESULTS", raising=False)
        with pytest.raises(FileNotFoundError, match="demo/missing.json"):
            results.results_file("demo/missing.json")
        path = results.results_file("demo/a.json")
        assert path == tmp_path / "cache" / "blaviz" / "results" / "demo" / "a.json"
        assert json.loads(path.read_text()) == {"x": 1}
    # the copy is cached: found again with the server gone and downloads off
    assert results.results_file("demo/a.json", download=False) == path
    # the repository lookup is really off: a file that exists in the repo is not found locally
    with pytest.raises(FileNotFoundError):
        results.results_file("README.md", download=False)


def run_notebooks_as_colab(args: list[str]) -> int:
    """Copy each notebook alone into a temporary folder and run nbval there (see module doc)."""
    with tempfile.TemporaryDirectory(prefix="blaviz-colab-") as tmp:
        tmp = Path(tmp)
        (tmp / "book").mkdir()
        for nb in notebooks():
            shutil.copy2(nb, tmp / "book" / nb.name)
        with serve(ROOT / "results") as url:
            env = colab_env(url, tmp / "cache")
            os.environ.clear()
            os.environ.update(env)  # the kernels nbval starts inherit it
            print(f"notebooks copied alone to {tmp / 'book'}; results only via {url} "
                  "(BLAVIZ_RESULTS_REPO=0)", flush=True)
            return pytest.main(["-q", "-p", "no:cacheprovider", "--rootdir", str(tmp),
                                "-c", os.devnull, "--nbval-lax", *args, str(tmp / "book")])


if __name__ == "__main__":
    sys.exit(run_notebooks_as_colab(sys.argv[1:]))
