"""Where the book's stored results come from: one function, whatever way the notebook was opened.

A chapter reads measured data (``results/<experiment>/...``) through :func:`results_file`. It looks,
in order, at

1. the folder named by the environment variable ``BLAVIZ_RESULTS``;
2. ``results/`` of the repository this package was installed from (an editable install or a clone;
   ``BLAVIZ_RESULTS_REPO=0`` skips it, and 3, as a test of the Colab route does);
3. ``results/`` above the current working directory (a notebook run from ``book/``);
4. a local cache (``$XDG_CACHE_HOME/blaviz/results``, else ``~/.cache/...``), filled on first use
   by a download from the repository named in ``_config.yml`` (:data:`REPOSITORY_URL`): what a
   notebook opened alone on Colab, after ``pip install`` of the package, gets. The environment
   variable ``BLAVIZ_RESULTS_URL`` replaces the address of the ``results/`` folder (a mirror, or
   the local http server of ``tests/book/test_colab.py``).

Offline and with no copy anywhere, it raises :class:`FileNotFoundError` that says where it looked
and which address it tried.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

# The repository address, as written in ``_config.yml`` (``repository.url``); a test keeps the two equal.
REPOSITORY_URL = "https://github.com/blaviz/blurry-window-attention"
REPOSITORY_BRANCH = "main"


def raw_url(relpath: str, repository: str = REPOSITORY_URL, branch: str = REPOSITORY_BRANCH) -> str:
    """The download address of ``results/<relpath>``: ``$BLAVIZ_RESULTS_URL/<relpath>`` when
    that is set, else the repository's raw file on GitHub."""
    mirror = os.environ.get("BLAVIZ_RESULTS_URL")
    if mirror:
        return f"{mirror.rstrip('/')}/{relpath}"
    base = repository.rstrip("/").replace("https://github.com/", "https://raw.githubusercontent.com/")
    return f"{base}/{branch}/results/{relpath}"


def _candidates() -> list[Path]:
    roots = []
    if os.environ.get("BLAVIZ_RESULTS"):
        roots.append(Path(os.environ["BLAVIZ_RESULTS"]))
    if os.environ.get("BLAVIZ_RESULTS_REPO", "1") != "0":
        roots.append(Path(__file__).resolve().parents[2] / "results")
        here = Path.cwd().resolve()
        roots += [p / "results" for p in (here, *here.parents)]
    return roots


def cache_dir() -> Path:
    """Where downloaded results are kept: ``$XDG_CACHE_HOME/blaviz/results`` (or ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "blaviz" / "results"


def results_file(relpath: str, *, download: bool = True, url: str | None = None) -> Path:
    """The local path of ``results/<relpath>`` (e.g. ``"mqar/book/summary.json"``).

    Args:
        relpath: path inside ``results/``, with forward slashes.
        download: fetch it from the repository when no local copy exists.
        url: download address (default :func:`raw_url` of ``relpath``).
    Raises:
        FileNotFoundError: no local copy, and the download was off or failed (the message says why).
    """
    rel = Path(relpath)
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"relpath must be a path inside results/, got {relpath!r}")
    looked = []
    for root in _candidates():
        path = root / rel
        looked.append(str(path))
        if path.is_file():
            return path
    cached = cache_dir() / rel
    if cached.is_file():
        return cached
    address = url or raw_url(relpath)
    if not download:
        raise FileNotFoundError(f"results/{relpath} not found (looked in {', '.join(looked)})")
    try:
        with urllib.request.urlopen(address, timeout=30) as response:
            data = response.read()
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise FileNotFoundError(
            f"results/{relpath} is not on this machine (looked in {', '.join(looked)}) and could not be "
            f"downloaded from {address} ({err}). Clone the repository, or set BLAVIZ_RESULTS to a copy "
            "of its results/ folder.") from err
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(cached.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(cached)
    return cached
