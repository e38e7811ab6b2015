"""Check the built website in a real browser, offline.

    .venv/bin/python tests/site/check_site.py _build/html [--screenshots _build/screenshots]

Serves the build on 127.0.0.1 (http.server in a thread), drives Debian's chromium through
Playwright with every non-local request blocked, and opens every HTML page. A page fails when:

* it raises a JavaScript error (``pageerror``) or logs a console error;
* it requested anything off the site (listed), or a local file that does not exist (4xx/5xx);
* it holds math that MathJax did not render (each ``.math`` element needs an ``mjx-container``,
  and no ``mjx-merror`` may appear);
* a plotly figure is not drawn (each ``.plotly-graph-div`` needs a ``.main-svg``);
* a plotly slider, clicked with the mouse, does not change what the figure shows;
* its HTML plus its own local assets (outside the shared ``_static/``) exceed ``--max-page-mb``.

A screenshot of each page goes to ``--screenshots``. Exit status 1 when any page fails.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
SKIP_DIRS = {"_static", "_sources", "_images", "_downloads", "jupyter_execute", ".doctrees"}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
ASSET_RE = re.compile(r"""(?:src|href)\s*=\s*["']([^"'#?]+)""", re.IGNORECASE)


@dataclass
class PageResult:
    name: str
    load_s: float = 0.0
    math: str = "-"
    plots: str = "-"
    sliders: str = "-"
    size_kb: float = 0.0
    errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.external


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the summary readable
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def find_pages(root: Path) -> list[Path]:
    pages = []
    for path in sorted(root.rglob("*.html")):
        rel = path.relative_to(root)
        if not (set(rel.parts[:-1]) & SKIP_DIRS):
            pages.append(rel)
    return pages


def page_weight(root: Path, rel: Path) -> int:
    """Bytes of the page's HTML plus the local files it references outside ``_static/``."""
    html_path = root / rel
    text = html_path.read_text(encoding="utf-8", errors="replace")
    total, seen = html_path.stat().st_size, set()
    for ref in ASSET_RE.findall(text):
        if urlparse(ref).scheme or ref.startswith("//") or ref.endswith(".html") or ref.endswith("/"):
            continue
        target = (html_path.parent / unquote(ref)).resolve()
        try:
            target_rel = target.relative_to(root.resolve())
        except ValueError:
            continue
        if target_rel.parts and target_rel.parts[0] == "_static":
            continue
        if target.is_file() and target not in seen:
            seen.add(target)
            total += target.stat().st_size
    return total


# --- JavaScript run in the page ------------------------------------------------------------
JS_MATH_READY = """() => {
  const n = document.querySelectorAll('.math').length;
  if (n === 0) return true;
  return !!(window.MathJax && window.MathJax.startup && window.MathJax.startup.promise);
}"""
JS_MATH_STATUS = """async () => {
  const els = Array.from(document.querySelectorAll('.math'));
  if (els.length && window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const missing = els.filter(e => !e.querySelector('mjx-container')).length;
  return {total: els.length, rendered: els.length - missing,
          containers: document.querySelectorAll('mjx-container').length,
          // TeX errors: mjx-merror, or an undefined macro (MathJax's noundefined: red mtext)
          merrors: Array.from(document.querySelectorAll(
              'mjx-merror, mjx-assistive-mml mtext[mathcolor="red"]'))
            .map(e => e.getAttribute('data-mjx-error') || e.textContent).slice(0, 5)};
}"""
JS_PLOTS_DRAWN = """() => Array.from(document.querySelectorAll('.plotly-graph-div'))
  .every(d => d.querySelector('.main-svg'))"""
JS_PLOT_STATUS = """() => Array.from(document.querySelectorAll('.plotly-graph-div')).map(d => ({
  id: d.id, drawn: !!d.querySelector('.main-svg'),
  sliders: (d.layout && d.layout.sliders) ? d.layout.sliders.length : 0}))"""
JS_FIGURE_STATE = """(id) => {
  const gd = document.getElementById(id);
  const plot = gd.querySelector('.cartesianlayer') || gd.querySelector('.main-svg');
  const sl = gd._fullLayout && gd._fullLayout.sliders && gd._fullLayout.sliders[0];
  return {visible: JSON.stringify(gd.data.map(t => t.visible === undefined ? true : t.visible)),
          drawn: plot ? plot.innerHTML.length + ':' + plot.innerHTML.slice(0, 20000) : '',
          active: sl ? sl.active : null, nsteps: sl ? sl.steps.length : 0};
}"""


def check_slider(page, div_id: str, timeout_ms: int) -> str | None:
    """Click the first slider of a figure far from its active step; None if the figure changed."""
    before = page.evaluate(JS_FIGURE_STATE, div_id)
    if before["nsteps"] < 2:
        return f"slider of #{div_id} has {before['nsteps']} step(s)"
    rail = page.locator(f"#{div_id} .slider-rail-touch-rect").first
    rail.scroll_into_view_if_needed(timeout=timeout_ms)
    box = rail.bounding_box()
    if box is None:
        return f"slider rail of #{div_id} is not visible"
    frac = 0.9 if before["active"] < before["nsteps"] / 2 else 0.1
    page.mouse.click(box["x"] + frac * box["width"], box["y"] + box["height"] / 2)
    try:
        page.wait_for_function(
            "([id, a]) => { const s = document.getElementById(id)._fullLayout.sliders[0]; return s.active !== a; }",
            arg=[div_id, before["active"]], timeout=timeout_ms)
        page.wait_for_timeout(300)  # let the restyle draw
    except Exception:
        return f"clicking the slider of #{div_id} did not move it (active stays {before['active']})"
    after = page.evaluate(JS_FIGURE_STATE, div_id)
    if after["visible"] == before["visible"] and after["drawn"] == before["drawn"]:
        return f"slider of #{div_id} moved to step {after['active']} but the figure did not change"
    return None


REDIRECT_RE = re.compile(r'<meta[^>]+http-equiv=["\']?refresh["\']?[^>]*url=([^"\'>]+)', re.IGNORECASE)


def check_redirect(root: Path, rel: Path) -> PageResult | None:
    """A redirect stub (jupyter-book's index.html): check its target exists, nothing more."""
    text = (root / rel).read_text(encoding="utf-8", errors="replace")
    match = REDIRECT_RE.search(text)
    if not match or len(text) > 2000:
        return None
    res = PageResult(name=rel.as_posix(), math="redirect")
    target = urlparse(match.group(1).strip()).path
    if not (root / rel).parent.joinpath(unquote(target)).is_file():
        res.errors.append(f"redirects to {target}, which does not exist")
    res.size_kb = (root / rel).stat().st_size / 1024
    return res


def check_page(context, base: str, root: Path, rel: Path, shots: Path, max_bytes: int,
               timeout_ms: int) -> PageResult:
    redirect = check_redirect(root, rel)
    if redirect is not None:
        return redirect
    res = PageResult(name=rel.as_posix())
    page = context.new_page()
    page.on("pageerror", lambda exc: res.errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: res.errors.append(f"console.{msg.type}: {msg.text}")
            if msg.type == "error" and "net::ERR_FAILED" not in msg.text else None)

    def on_response(resp):
        if resp.status >= 400 and urlparse(resp.url).hostname in LOCAL_HOSTS:
            res.errors.append(f"HTTP {resp.status}: {resp.url.replace(base, '/')}")
    page.on("response", on_response)

    def on_route(route):
        url = route.request.url
        parsed = urlparse(url)
        if parsed.scheme in ("data", "blob", "about") or parsed.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            res.external.append(url)
            route.abort()
    page.route("**/*", on_route)

    t0 = time.perf_counter()
    try:
        page.goto(urljoin(base, rel.as_posix()), wait_until="load", timeout=timeout_ms)
        page.wait_for_function(JS_MATH_READY, timeout=timeout_ms)
        math = page.evaluate(JS_MATH_STATUS)
        res.math = f"{math['rendered']}/{math['total']}" if math["total"] else "-"
        if math["rendered"] < math["total"]:
            res.errors.append(f"MathJax rendered {math['rendered']} of {math['total']} math elements")
        if math["merrors"]:
            res.errors.append(f"MathJax errors: {math['merrors']}")
        try:
            page.wait_for_function(JS_PLOTS_DRAWN, timeout=timeout_ms)
        except Exception:
            pass  # reported below, figure by figure
        plots = page.evaluate(JS_PLOT_STATUS)
        if plots:
            drawn = sum(p["drawn"] for p in plots)
            res.plots = f"{drawn}/{len(plots)}"
            for p in plots:
                if not p["drawn"]:
                    res.errors.append(f"plotly figure #{p['id']} was not drawn (no .main-svg)")
            with_slider = [p for p in plots if p["drawn"] and p["sliders"]]
            if with_slider:
                moved = 0
                for p in with_slider:
                    problem = check_slider(page, p["id"], timeout_ms)
                    if problem:
                        res.errors.append(problem)
                    else:
                        moved += 1
                res.sliders = f"{moved}/{len(with_slider)}"
        res.load_s = time.perf_counter() - t0
        page.evaluate("() => window.scrollTo(0, 0)")
        shot = shots / (rel.as_posix().replace("/", "__").removesuffix(".html") + ".png")
        page.screenshot(path=str(shot), full_page=True, timeout=timeout_ms)
    except Exception as exc:  # a timeout or a crash is a failure of this page, not of the run
        res.errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        res.load_s = time.perf_counter() - t0
    finally:
        page.close()
    size = page_weight(root, rel)
    res.size_kb = size / 1024
    if size > max_bytes:
        res.errors.append(f"page weighs {size / 2**20:.2f} MB (> {max_bytes / 2**20:.1f} MB)")
    return res


def print_summary(results: list[PageResult]) -> None:
    headers = ("page", "status", "load s", "math", "plotly", "sliders", "KB", "blocked")
    rows = [(r.name, "ok" if r.ok else "FAIL", f"{r.load_s:.1f}", r.math, r.plots, r.sliders,
             f"{r.size_kb:,.0f}", str(len(r.external))) for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    for r in results:
        if not r.ok:
            print(f"\n{r.name}:")
            for e in r.errors:
                print(f"  - {e}")
            for u in sorted(set(r.external)):
                print(f"  - blocked non-local request: {u}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", type=Path, help="the built site, e.g. _build/html")
    ap.add_argument("--screenshots", type=Path, default=None,
                    help="folder for screenshots (default: <build>/../screenshots)")
    ap.add_argument("--max-page-mb", type=float, default=3.0)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per wait")
    ap.add_argument("--chromium", default=CHROMIUM)
    args = ap.parse_args(argv)

    root = args.build.resolve()
    if not (root / "index.html").is_file():
        print(f"check_site: {root}/index.html not found: build the book first (make book)")
        return 2
    if not Path(args.chromium).exists():
        print(f"check_site: {args.chromium} not found: run `make browser` (apt-get install chromium)")
        return 2
    shots = args.screenshots or root.parent / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    pages = find_pages(root)

    from playwright.sync_api import sync_playwright

    server, base = serve(root)
    t0 = time.perf_counter()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
            results = [check_page(context, base, root, rel, shots, int(args.max_page_mb * 2**20),
                                  int(args.timeout * 1000)) for rel in pages]
            browser.close()
    finally:
        server.shutdown()
    print_summary(results)
    failed = [r for r in results if not r.ok]
    print(f"\nsite check: {len(results)} pages in {time.perf_counter() - t0:.1f} s; screenshots in {shots}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
