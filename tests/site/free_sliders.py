"""The website's free sliders (chapters 2 and 4) against blaviz, in a real browser.

Called by ``tests/site/check_site.py`` (``check_free_sliders_site``)::

    from free_sliders import check_free_sliders
    errors = check_free_sliders(page, base_url)   # a Playwright page; base_url ends with "/"

It opens ``book/02_dirichlet.html`` and ``book/04_bla.html`` under ``base_url``, finds each
free-slider figure (``div.blaviz-free``, written by :mod:`blaviz.viz.free`), sets settings that
are no step of any precomputed slider through its number boxes (one through the range
sliders), waits until the module has redrawn (``data-state``), and compares the drawn trace data
(``div.data[i].x/.y/.z``) with blaviz's float64 numbers to 1e-6. It also types a value that is
not allowed and expects the module to show the allowed one and say so, and taps the W slider on
a 390 px touch screen (a second browser context). Returns a list of error strings (empty when
everything matches).

Run alone on a built site (serves it, takes screenshots at 1280 and 390 px)::

    .venv/bin/python tests/site/free_sliders.py _build/html --screenshots /tmp/free_shots
"""
from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import numpy as np

TOL = 1e-6
PAGES = {"dirichlet": "book/02_dirichlet.html", "effective-weights": "book/04_bla.html"}
# (W, N) set through the number boxes; the last one through the range sliders. None is a step of
# a precomputed slider (chapter 2 has W in {16, 64}, chapter 4 W = 16); N = W is included.
CASES = {
    "dirichlet": [(37, 11), (50, 50), (61, 7)],
    "effective-weights": [(37, 11), (30, 30), (41, 7)],
}

JS_DRAWN = """root => {
  const el = root.querySelector('.plotly-graph-div');
  const arr = v => (v == null ? null : Array.from(v, r => (r != null && typeof r === 'object') ? Array.from(r) : r));
  return {state: root.dataset.state || null,
          title: (el.layout.title && el.layout.title.text) || '',
          note: (root.querySelector('.blaviz-free-note') || {}).textContent || '',
          boxes: Array.from(root.querySelectorAll('input[type=number]'), b => b.value),
          data: el.data.map(t => ({x: arr(t.x), y: arr(t.y), z: arr(t.z), name: t.name || ''}))};
}"""


def _decode(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f8")


def _compare(errors: list, what: str, got, want) -> None:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        errors.append(f"{what}: drawn shape {got.shape}, blaviz {want.shape}")
        return
    err = float(np.abs(got - want).max()) if got.size else 0.0
    if not err <= TOL:
        errors.append(f"{what}: max |drawn - blaviz| = {err:.3g} > {TOL:g}")


def _expected(kind: str, spec: dict, W: int, N: int) -> list[tuple[str, str, np.ndarray]]:
    """blaviz's numbers for one setting: ``(trace index, key, values)`` triples."""
    import torch

    if kind == "dirichlet":
        from blaviz.analysis.impulse import sample_key_channel
        from blaviz.viz.kernels import dirichlet_traces

        seed = spec["data"]["seed"]
        keys = _decode(spec["data"]["keys"][str(W)])
        if not np.array_equal(keys, sample_key_channel(W, seed=seed).numpy()):
            raise AssertionError(f"the page's keys for W = {W} are not sample_key_channel({W}, seed={seed})")
        traces = dirichlet_traces(W, N, seed=seed, oversample=spec["data"]["oversample"])
        return [(i, key, np.asarray(getattr(tr, key), dtype=np.float64))
                for i, tr in enumerate(traces) for key in ("x", "y")]
    from blaviz.analysis.weights import swa_attention_weights, weights_by_lag
    from blaviz.ops.bla import bla_attention_weights

    d = spec["data"]
    q, k = (torch.from_numpy(_decode(d[n]).copy()).reshape(1, d["T"], 1, d["D"]) for n in ("q", "k"))
    A = bla_attention_weights(q, k, W, N)[0, 0]
    S = swa_attention_weights(q, k, W)[0, 0]
    t = d["query"] + d["T"] if d["query"] < 0 else d["query"]
    return [(0, "z", A.numpy()), (1, "z", S.numpy()),
            (2, "y", weights_by_lag(S, t).numpy()), (3, "y", weights_by_lag(A, t).numpy()),
            (3, "x", np.arange(t + 1, dtype=np.float64))]


def _set(page, root, W: int, N: int, *, via_range: bool, timeout_ms: int) -> dict:
    if via_range:
        root.locator("input[type=range][data-param=W]").fill(str(W))
        # N's slider runs over the allowed values 1, 3, 5, .., then W: N's index
        from blaviz.analysis.weights import resolution_grid
        root.locator("input[type=range][data-param=N]").fill(str(resolution_grid(W).index(N)))
    else:
        for name, value in (("W", W), ("N", N)):
            box = root.locator(f"input[type=number][data-param={name}]")
            box.fill(str(value))
            box.dispatch_event("change")
    page.wait_for_function("([r, s]) => r.dataset.state === s", arg=[root.element_handle(), f"W={W} N={N}"],
                           timeout=timeout_ms)
    return root.evaluate(JS_DRAWN)


def check_free_sliders(page, base_url: str, *, timeout_ms: int = 30_000) -> list[str]:
    """Set values that are no precomputed step and compare the drawn numbers with blaviz's."""
    errors: list[str] = []
    for kind, rel in PAGES.items():
        page.goto(base_url + rel, wait_until="load", timeout=timeout_ms)
        roots = page.locator(f"div.blaviz-free[data-blaviz-free='{kind}']")
        if roots.count() != 1:
            errors.append(f"{rel}: expected one free-slider figure '{kind}', found {roots.count()}")
            continue
        root = roots.first
        try:
            page.wait_for_function("r => !!r.dataset.state || !!r.dataset.error", arg=root.element_handle(),
                                   timeout=timeout_ms)
        except Exception:
            errors.append(f"{rel}: the free-slider module did not draw within {timeout_ms} ms")
            continue
        if root.get_attribute("data-error"):
            errors.append(f"{rel}: the free-slider module failed to load: {root.get_attribute('data-error')}")
            continue
        spec = json.loads(root.locator("script.blaviz-free-spec").text_content())
        cases = CASES[kind]
        for i, (W, N) in enumerate(cases):
            via_range = i == len(cases) - 1
            got = _set(page, root, W, N, via_range=via_range, timeout_ms=timeout_ms)
            how = "range sliders" if via_range else "number boxes"
            if got["boxes"] != [str(W), str(N)]:
                errors.append(f"{rel}: after W = {W}, N = {N} ({how}) the boxes show {got['boxes']}")
            for idx, key, want in _expected(kind, spec, W, N):
                _compare(errors, f"{rel} W={W} N={N} ({how}) trace {idx}.{key}", got["data"][idx][key], want)
            if f"W = {W}, N = {N}" not in got["title"]:
                errors.append(f"{rel}: title {got['title']!r} does not name W = {W}, N = {N}")
        # a value that is not allowed: even N < W is shown as the allowed N below it, with a note
        W, N = cases[0]
        _set(page, root, W, N, via_range=False, timeout_ms=timeout_ms)
        box = root.locator("input[type=number][data-param=N]")
        box.fill(str(N + 1))
        box.dispatch_event("change")
        page.wait_for_timeout(200)
        got = root.evaluate(JS_DRAWN)
        if got["boxes"] != [str(W), str(N)] or "not allowed" not in got["note"]:
            errors.append(f"{rel}: typing N = {N + 1} for W = {W} shows boxes {got['boxes']} and the "
                          f"note {got['note']!r} (want N = {N} and a note saying why)")
    errors += check_touch(page.context.browser, base_url, timeout_ms=timeout_ms)
    return errors


def check_touch(browser, base_url: str, *, timeout_ms: int = 30_000) -> list[str]:
    """On a 390 px touch screen: a tap on the W slider moves it and redraws; nothing is wider
    than the screen; the slider takes the whole line (at least 300 px: fine steps by touch)."""
    errors = []
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    try:
        page = context.new_page()
        for kind, rel in PAGES.items():
            page.goto(base_url + rel, wait_until="load", timeout=timeout_ms)
            root = page.locator(f"div.blaviz-free[data-blaviz-free='{kind}']").first
            page.wait_for_function("r => !!r.dataset.state", arg=root.element_handle(), timeout=timeout_ms)
            before = root.get_attribute("data-state")
            rng = root.locator("input[type=range][data-param=W]")
            rng.scroll_into_view_if_needed()
            box = rng.bounding_box()
            if box is None or box["width"] < 300:
                errors.append(f"{rel} at 390 px: the W slider is {box and round(box['width'])} px wide (< 300)")
                continue
            page.touchscreen.tap(box["x"] + 0.85 * box["width"], box["y"] + box["height"] / 2)
            try:
                page.wait_for_function("([r, s]) => r.dataset.state !== s", arg=[root.element_handle(), before],
                                       timeout=timeout_ms)
            except Exception:
                errors.append(f"{rel} at 390 px: tapping the W slider did not redraw (state {before})")
            width = page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
            if width > 390:
                errors.append(f"{rel} at 390 px: the page is {width} px wide")
    finally:
        context.close()
    return errors


def main(argv=None) -> int:
    import argparse

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from check_site import CHROMIUM, CHROMIUM_ARGS, NARROW, WIDE, serve
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description="free sliders of a built site against blaviz")
    ap.add_argument("root", type=Path)
    ap.add_argument("--chromium", default=CHROMIUM)
    ap.add_argument("--screenshots", type=Path, default=None)
    args = ap.parse_args(argv)
    server, base = serve(args.root)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=WIDE)
            js_errors = []
            page.on("pageerror", lambda exc: js_errors.append(f"pageerror: {exc}"))
            # (chromium logs the favicon's 404 as a console error; check_site checks resources)
            page.on("console", lambda m: js_errors.append(f"console.{m.type}: {m.text}")
                    if m.type in ("error", "warning") and "Failed to load resource" not in m.text else None)
            errors = check_free_sliders(page, base) + js_errors
            if args.screenshots:
                args.screenshots.mkdir(parents=True, exist_ok=True)
                for kind, rel in PAGES.items():
                    for size, tag in ((WIDE, ""), (NARROW, "@390")):
                        page.set_viewport_size(size)
                        page.goto(base + rel, wait_until="load")
                        root = page.locator(f"div.blaviz-free[data-blaviz-free='{kind}']").first
                        page.wait_for_function("r => !!r.dataset.state", arg=root.element_handle())
                        root.scroll_into_view_if_needed()
                        root.screenshot(path=str(args.screenshots / f"{kind}{tag}.png"))
            browser.close()
    finally:
        server.shutdown()
    for e in errors:
        print("-", e)
    print("free sliders:", "ok" if not errors else f"{len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
