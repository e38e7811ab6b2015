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
* its cold weight (the bytes of every request of a first visit with an empty cache, lazy
  MathJax fonts and extensions included) exceeds ``--max-page-mb``;
* at 1280 px, a code block (input or output, folded ones opened) is wider than its box;
* at 390 px (a phone), the page is wider than the screen, or a display equation is wider than
  its box without scrolling inside it with the scroll cue (class ``blaviz-scrolls``, set by
  ``book/_static/blaviz-site.js``); the same holds for equations at 1280 px.

The whole site must stay under ``--max-site-mb``. The free sliders (chapters 2 and 4) are
compared with blaviz by ``tests/site/free_sliders.py``. Screenshots of each page at 1280 px
(``<page>.png``) and 390 px (``<page>@390.png``) go to ``--screenshots``. Exit status 1 when a
page or a site-wide check fails.
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
    cold_kb: float = 0.0
    requests: int = 0
    code_wide: int = 0        # code blocks wider than their box at 1280 px
    width_390: int = 0        # page width at 390 px
    eq_wide: int = 0          # display equations wider than their box at 390 px
    eq_leak: int = 0          # ... of which do not scroll in their own box with the cue
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


JS_OPEN_FOLDED = """() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  document.querySelectorAll('.toggle-hidden, .cell.tag_hide-input .toggle-details')
    .forEach(e => e.classList.remove('toggle-hidden'));
}"""
JS_CODE_OVERFLOW = """() => {
  const wide = [];
  document.querySelectorAll('pre').forEach(pre => {
    if (pre.closest('.plotly-graph-div')) return;
    if (pre.scrollWidth > pre.clientWidth + 1 && pre.clientWidth > 0) {
      const first = (pre.textContent.split('\\n').find(l => l.length > 0) || '');
      wide.push({extra: pre.scrollWidth - pre.clientWidth, text: first.slice(0, 60)});
    }
  });
  return wide;
}"""
JS_EQUATIONS = """() => {
  // a display equation is MathJax's container (the theme lets it scroll) inside div.math
  const out = [];
  document.querySelectorAll('mjx-container[display="true"]').forEach(c => {
    const box = c.closest('div.math') || c.parentElement;
    if (c.clientWidth === 0) return;
    const inner = c.scrollWidth > c.clientWidth + 1;
    const leaks = box.scrollWidth > box.clientWidth + 1;
    if (!inner && !leaks) return;
    const ox = getComputedStyle(c).overflowX;
    out.push({extra: Math.max(c.scrollWidth - c.clientWidth, box.scrollWidth - box.clientWidth),
              scrolls: !leaks && (ox === 'auto' || ox === 'scroll'),
              cue: c.classList.contains('blaviz-scrolls') || box.classList.contains('blaviz-scrolls'),
              text: (box.getAttribute('id') || box.textContent).slice(0, 50)});
  });
  return out;
}"""
JS_PAGE_WIDTH = """() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"""
NARROW = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 900}


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


def _guard_page(page, res: PageResult, base: str) -> dict:
    """Error, console and network hooks; returns the byte count of every finished request."""
    counter = {"bytes": 0, "n": 0}
    page.on("pageerror", lambda exc: res.errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: res.errors.append(f"console.{msg.type}: {msg.text}")
            if msg.type == "error" and "net::ERR_FAILED" not in msg.text else None)

    def on_response(resp):
        if resp.status >= 400 and urlparse(resp.url).hostname in LOCAL_HOSTS:
            res.errors.append(f"HTTP {resp.status}: {resp.url.replace(base, '/')}")
    page.on("response", on_response)

    def on_finished(request):
        if urlparse(request.url).scheme in ("data", "blob", "about"):
            return
        try:
            sizes = request.sizes()
        except Exception:  # the page was closed meanwhile
            return
        counter["bytes"] += sizes["responseBodySize"] + sizes["responseHeadersSize"]
        counter["n"] += 1
    page.on("requestfinished", on_finished)

    def on_route(route):
        url = route.request.url
        parsed = urlparse(url)
        if parsed.scheme in ("data", "blob", "about") or parsed.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            res.external.append(url)
            route.abort()
    page.route("**/*", on_route)
    return counter


def _wait_rendered(page, res: PageResult, timeout_ms: int) -> list:
    """Wait for MathJax and plotly; record math errors. Returns the plotly figures' status."""
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
    return page.evaluate(JS_PLOT_STATUS)


def _check_equations(page, res: PageResult, width: int) -> list:
    eqs = page.evaluate(JS_EQUATIONS)
    for e in eqs:
        if not (e["scrolls"] and e["cue"]):
            res.errors.append(f"at {width} px a display equation is {e['extra']} px wider than its box "
                              f"and {'has no scroll cue' if e['scrolls'] else 'does not scroll in it'}: "
                              f"{e['text']!r}")
    return eqs


def check_page(browser, base: str, root: Path, rel: Path, shots: Path, max_bytes: int,
               timeout_ms: int) -> PageResult:
    redirect = check_redirect(root, rel)
    if redirect is not None:
        return redirect
    res = PageResult(name=rel.as_posix())
    shot = shots / (rel.as_posix().replace("/", "__").removesuffix(".html") + ".png")
    url = urljoin(base, rel.as_posix())
    # 1280 px, cold: a fresh context has an empty cache, so every byte the page needs is counted
    context = browser.new_context(viewport=WIDE, service_workers="block")
    page = context.new_page()
    counter = _guard_page(page, res, base)
    t0 = time.perf_counter()
    try:
        page.goto(url, wait_until="load", timeout=timeout_ms)
        plots = _wait_rendered(page, res, timeout_ms)
        if plots:
            drawn = sum(p["drawn"] for p in plots)
            res.plots = f"{drawn}/{len(plots)}"
            for p in plots:
                if not p["drawn"]:
                    res.errors.append(f"plotly figure #{p['id']} was not drawn (no .main-svg)")
        try:  # lazy loads (MathJax fonts and extensions) settle before the bytes are read
            page.wait_for_load_state("networkidle", timeout=timeout_ms)
        except Exception:
            pass
        res.cold_kb = counter["bytes"] / 1024
        res.requests = counter["n"]
        if counter["bytes"] > max_bytes:
            res.errors.append(f"a cold visit loads {counter['bytes'] / 2**20:.2f} MB "
                              f"(> {max_bytes / 2**20:.1f} MB)")
        _check_equations(page, res, WIDE["width"])
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(shot), full_page=True, timeout=timeout_ms)
        page.evaluate(JS_OPEN_FOLDED)
        page.wait_for_timeout(100)
        wide = page.evaluate(JS_CODE_OVERFLOW)
        res.code_wide = len(wide)
        for w in wide:
            res.errors.append(f"at 1280 px a code block is {w['extra']} px wider than its box: {w['text']!r}")
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
    except Exception as exc:  # a timeout or a crash is a failure of this page, not of the run
        res.errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        res.load_s = time.perf_counter() - t0
    finally:
        context.close()
    # 390 px: a phone
    context = browser.new_context(viewport=NARROW, service_workers="block", is_mobile=True,
                                  has_touch=True, device_scale_factor=1)
    page = context.new_page()
    _guard_page(page, res, base)
    try:
        page.goto(url, wait_until="load", timeout=timeout_ms)
        _wait_rendered(page, res, timeout_ms)
        page.wait_for_timeout(200)
        res.width_390 = page.evaluate(JS_PAGE_WIDTH)
        if res.width_390 > NARROW["width"]:
            res.errors.append(f"at 390 px the page is {res.width_390} px wide")
        eqs = _check_equations(page, res, NARROW["width"])
        res.eq_wide = len(eqs)
        res.eq_leak = sum(not (e["scrolls"] and e["cue"]) for e in eqs)
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(shot.with_name(shot.stem + "@390.png")), full_page=True,
                        timeout=timeout_ms)
    except Exception as exc:
        res.errors.append(f"at 390 px: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    finally:
        context.close()
    res.size_kb = page_weight(root, rel) / 1024
    return res


def site_size(root: Path) -> int:
    """Bytes of every file of the built site."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def print_summary(results: list[PageResult]) -> None:
    headers = ("page", "status", "load s", "math", "plotly", "sliders", "html+own KB", "cold KB",
               "req", "code>box@1280", "width@390", "eq>box@390", "eq leaks", "blocked")
    rows = [(r.name, "ok" if r.ok else "FAIL", f"{r.load_s:.1f}", r.math, r.plots, r.sliders,
             f"{r.size_kb:,.0f}", f"{r.cold_kb:,.0f}", str(r.requests), str(r.code_wide),
             str(r.width_390), str(r.eq_wide), str(r.eq_leak), str(len(r.external)))
            for r in results]
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


def check_free_sliders_site(browser, base: str, timeout_ms: int) -> list[str]:
    """The free sliders (chapters 2 and 4) against blaviz: ``tests/site/free_sliders.py``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        from free_sliders import check_free_sliders
    except ImportError as exc:
        return [f"free sliders not checked: {exc}"]
    context = browser.new_context(viewport=WIDE, service_workers="block")
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    try:
        errors = list(check_free_sliders(page, base))
    except Exception as exc:
        errors = [f"free sliders: {type(exc).__name__}: {str(exc).splitlines()[0]}"]
    finally:
        context.close()
    print(f"free sliders: {'ok' if not errors else f'{len(errors)} error(s)'}")
    return [f"free sliders: {e}" for e in errors]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", type=Path, help="the built site, e.g. _build/html")
    ap.add_argument("--screenshots", type=Path, default=None,
                    help="folder for screenshots (default: <build>/../screenshots)")
    ap.add_argument("--max-page-mb", type=float, default=4.0,
                    help="bound on a page's cold weight (every request of a first visit)")
    ap.add_argument("--max-site-mb", type=float, default=20.0, help="bound on the built site")
    ap.add_argument("--pages", nargs="*", default=None,
                    help="check only these pages (paths relative to the build)")
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
    if args.pages:
        pages = [Path(p) for p in args.pages]

    from playwright.sync_api import sync_playwright

    server, base = serve(root)
    t0 = time.perf_counter()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
            results = [check_page(browser, base, root, rel, shots, int(args.max_page_mb * 2**20),
                                  int(args.timeout * 1000)) for rel in pages]
            site_errors = check_free_sliders_site(browser, base, int(args.timeout * 1000))
            browser.close()
    finally:
        server.shutdown()
    print_summary(results)
    size = site_size(root)
    print(f"\nsite size: {size / 2**20:.1f} MB (bound {args.max_site_mb:.0f} MB)")
    if size > args.max_site_mb * 2**20:
        site_errors.append(f"the site weighs {size / 2**20:.1f} MB (> {args.max_site_mb:.0f} MB)")
    for e in site_errors:
        print(f"  - {e}")
    failed = [r for r in results if not r.ok]
    print(f"\nsite check: {len(results)} pages in {time.perf_counter() - t0:.1f} s; screenshots in {shots}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed; {len(site_errors)} site-wide errors")
    return 1 if failed or site_errors else 0


if __name__ == "__main__":
    sys.exit(main())
