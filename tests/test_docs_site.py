"""The documentation site in a real browser: every page opened from disk with the network cut off.

Run by ``make test-docs`` (after ``make docs``, with ``SNNLAB_DOCS_HTML=docs/_build/html``); without that variable
the site is built here into a temporary folder. Needs the docs requirements (requirements-docs.txt) and Debian's
Chromium (``/usr/bin/chromium``); where they are missing the tests are skipped, unless ``SNNLAB_REQUIRE_BROWSER=1``
(what ``make test-docs``, and so CI, sets) turns that into a failure.
"""
from __future__ import annotations

import math
import os
import pathlib
import shutil
import subprocess
import sys
import urllib.parse

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SNNLAB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions"]
EXPLORER_PAGES = {"notebooks/01_surrogate_gradients.html": "surrogate",
                  "notebooks/02_chi_efficient_surrogates.html": "chi",
                  "notebooks/04_flat_minima.html": "landscape"}


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
        import sphinx  # noqa: F401
    except ImportError as e:
        return f"the docs requirements are not installed ({e}); pip install -r requirements-docs.txt"
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set SNNLAB_CHROMIUM)"
    return None


if (why := _missing()) is not None:
    if os.environ.get("SNNLAB_REQUIRE_BROWSER") == "1":
        raise RuntimeError(f"SNNLAB_REQUIRE_BROWSER=1 but {why}")
    pytest.skip(why, allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> pathlib.Path:
    given = os.environ.get("SNNLAB_DOCS_HTML")
    if given:
        out = (ROOT / given).resolve() if not os.path.isabs(given) else pathlib.Path(given)
        assert (out / "docs" / "index.html").exists(), f"SNNLAB_DOCS_HTML={given} holds no built site (make docs)"
        return out
    out = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-c", "docs", ".",
                    str(out)], cwd=ROOT, check=True)
    return out


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Page:
    """A page opened from disk, with every console error, page error, failed or non-file request recorded."""

    def __init__(self, browser, path: pathlib.Path, query: str = "", typeset: bool = True):
        self.context = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))
        self.context.route(lambda url: not url.startswith(("file:", "data:", "blob:", "about:")),
                           lambda route: (self.errors.append(f"network request: {route.request.url}"), route.abort()))
        self.page.goto(path.as_uri() + query)
        self.page.wait_for_load_state("load")
        if typeset and self.page.evaluate("() => !!(window.MathJax && MathJax.startup && MathJax.startup.promise)"):
            self.page.evaluate("() => MathJax.startup.promise")

    def close(self):
        self.context.close()


def _pages(site: pathlib.Path) -> list[pathlib.Path]:
    """Every page of the site but the root index.html, which only redirects (tested on its own)."""
    pages = sorted(p for p in site.rglob("*.html")
                   if "_static" not in p.parts and "_sources" not in p.parts and p != site / "index.html")
    assert len(pages) >= 10, pages
    return pages


def test_root_index_leads_to_the_start_page(site, browser):
    pg = Page(browser, site / "index.html", typeset=False)
    pg.page.wait_for_url("**/docs/index.html")
    pg.page.wait_for_load_state("load")
    assert pg.page.title().startswith("snnlab") and not pg.errors, pg.errors
    pg.close()


def test_site_has_every_notebook_solution_and_reference_page(site):
    rel = {p.relative_to(site).as_posix() for p in _pages(site)}
    assert (site / "index.html").exists()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"notebooks/{nb.stem}.html" in rel
    for nb in sorted((ROOT / "solutions").glob("*.ipynb")):
        assert f"solutions/{nb.stem}.html" in rel
    assert {"README.html", "docs/index.html", "docs/papers.html", "docs/api.html", "search.html"} <= rel


def _check_links(hrefs: list[str]) -> list[str]:
    """The links (as the browser resolved them: absolute URLs) into the site that name no existing file."""
    bad = []
    for href in hrefs:
        parsed = urllib.parse.urlparse(href)
        if parsed.scheme != "file":
            continue                       # links out of the site (papers, GitHub) are not checked offline
        target = pathlib.Path(urllib.parse.unquote(parsed.path))
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            bad.append(f"{href} -> {target}")
    return bad


def test_every_page_renders_offline_without_errors(site, browser):
    """No console or page error, no request off the disk, every image loaded, every equation typeset by MathJax
    (no raw TeX left, no MathJax error), and every link into the site names a file that exists."""
    problems, math_pages = [], 0
    for path in _pages(site):
        pg = Page(browser, path)
        rel = path.relative_to(site).as_posix()
        problems += [f"{rel}: {e}" for e in pg.errors]
        images = pg.page.evaluate("""() => Array.from(document.images).map(i => [i.getAttribute('src') || '',
                                       i.complete && i.naturalWidth > 0])""")
        problems += [f"{rel}: image not loaded: {src[:80]}" for src, ok in images if not ok]
        maths = pg.page.evaluate("""() => Array.from(document.querySelectorAll('.math')).map(m =>
                                   [m.querySelectorAll('mjx-container svg').length > 0, m.textContent.slice(0, 60)])""")
        math_pages += bool(maths)
        problems += [f"{rel}: equation not rendered: {tex!r}" for ok, tex in maths if not ok]
        if pg.page.locator("mjx-merror").count():
            problems.append(f"{rel}: MathJax error")
        hrefs = pg.page.evaluate("() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        problems += [f"{rel}: dead link {b}" for b in _check_links(hrefs)]
        pg.close()
    assert not problems, "\n".join(problems[:40])
    assert math_pages >= 5           # the notebooks and the papers' notes carry equations


def test_search_works_from_disk(site, browser):
    pg = Page(browser, site / "search.html", "?q=surrogate")
    pg.page.wait_for_selector("#search-results li a", timeout=15000)
    hits = pg.page.evaluate("() => Array.from(document.querySelectorAll('#search-results li a')).map(a => a.href)")
    assert any("01_surrogate_gradients" in h for h in hits), hits[:10]
    assert not pg.errors, pg.errors
    pg.close()


def _figure(pg, root) -> str:
    return pg.page.evaluate("(r) => r.querySelector('svg.snnlab-figure').outerHTML", root)


def _move(pg, control) -> None:
    """Move a control: a slider one step (down at its top end), a select to another option."""
    pg.page.evaluate("""(c) => {
        if (c.tagName === 'SELECT') { c.selectedIndex = (c.selectedIndex + 1) % c.options.length; }
        else { const v = +c.value, s = +c.step; c.value = (v + s <= +c.max) ? v + s : v - s; }
        c.dispatchEvent(new Event('input', {bubbles: true})); c.dispatchEvent(new Event('change', {bubbles: true}));
    }""", control)


@pytest.mark.parametrize("page,kind", sorted(EXPLORER_PAGES.items()))
def test_each_explorer_is_drawn_at_open_and_every_control_changes_its_figure(site, browser, page, kind):
    pg = Page(browser, site / page)
    roots = pg.page.query_selector_all(f"div.snnlab-explorer[data-kind={kind}]")
    assert roots, f"no {kind} explorer on {page}"
    for root in roots:
        assert pg.page.evaluate("(r) => r.dataset.ready", root) == "1"
        before = _figure(pg, root)          # drawn at open: no button to press first
        assert any(f"<{mark}" in before for mark in ("polyline", "rect", "line"))   # something is drawn
        controls = root.query_selector_all("select, input[type=range]")
        assert controls
        for control in controls:
            _move(pg, control)
            after = _figure(pg, root)
            name = pg.page.evaluate("(c) => c.name", control)
            assert after != before, f"moving {name!r} of the {kind} explorer on {page} did not change the figure"
            before = after
    assert not pg.errors, pg.errors
    pg.close()


def test_page_maths_matches_snnlab_surrogate_and_lif(site, browser):
    """The surrogate explorer computes in the page: its JavaScript g(x), effective domain and LIF trace, evaluated
    in Chromium on a grid of inputs, agree with snnlab.surrogate and snnlab.neurons.LIF."""
    from snnlab import surrogate
    from snnlab.neurons import LIF

    pg = Page(browser, site / "notebooks/01_surrogate_gradients.html")
    js = pg.page.evaluate("() => window.snnlabExplorers.SHAPES")
    assert js == list(surrogate.FAMILY)
    xs = torch.linspace(-4, 4, 161, dtype=torch.float64)
    xs = torch.cat([xs, torch.tensor([0.025, -0.05, 0.5, -1.0, 2.0], dtype=torch.float64)])   # support edges
    worst = 0.0
    for shape in surrogate.FAMILY:
        for width in (0.05, 0.1, 0.37, 1.0, 2.5, 5.0):
            sg = surrogate.get(shape, width)
            got = torch.tensor(pg.page.evaluate("([s, w, x]) => window.snnlabExplorers.surrogateGrad(s, w, x)",
                                                [shape, width, xs.tolist()]), dtype=torch.float64)
            ref = sg.grad(xs)
            worst = max(worst, float(((got - ref).abs() / ref.abs().clamp(min=1e-12)).max()))
            assert torch.allclose(got, ref, rtol=1e-12, atol=1e-300), (shape, width)
            dom = pg.page.evaluate("([s, w]) => window.snnlabExplorers.effectiveDomain(s, w)", [shape, width])
            assert math.isclose(dom, sg.effective_domain(), rel_tol=1e-9), (shape, width, dom)
    gen = torch.Generator().manual_seed(0)
    for tau, v_th in ((0.5, 1.0), (0.05, 0.7), (0.9, 1.3), (1.0, 1.0)):
        current = torch.rand(80, 1, generator=gen, dtype=torch.float64) * 1.6 - 0.2
        spk, mem = LIF(tau=tau, v_th=v_th).simulate(current)
        out = pg.page.evaluate("([i, t, v]) => window.snnlabExplorers.lif(i, t, v)", [current[:, 0].tolist(), tau, v_th])
        assert out["spk"] == spk[:, 0].tolist(), (tau, v_th)
        assert torch.allclose(torch.tensor(out["mem"], dtype=torch.float64), mem[:, 0], rtol=0, atol=1e-12)
        assert 0 < sum(out["spk"]) < 80     # the trace both fires and stays silent: the reset is exercised
    assert worst < 1e-12
    pg.close()


def test_api_reference_documents_every_public_name(site):
    """Every class and function in the ``__all__`` of every module the API page lists has an entry (autodoc's
    anchor, with its signature) on it. Constants are left to their modules' docstrings."""
    import importlib
    import re

    page = (site / "docs" / "api.html").read_text()
    api_source = (ROOT / "docs" / "api.md").read_text()
    modules = re.findall(r"^\.\. automodule:: (\S+)", api_source, re.M)
    for contract in ("snnlab.surrogate", "snnlab.neurons", "snnlab.losses", "snnlab.chi", "snnlab.dsr",
                     "snnlab.landscape", "snnlab.data", "snnlab.train", "snnlab.explorers"):
        assert contract in modules
    missing = []
    for name in modules:
        mod = importlib.import_module(name)
        excluded = {m.strip() for group in re.findall(rf"automodule:: {re.escape(name)}\n   :exclude-members: (.+)",
                                                      api_source) for m in group.split(",")}
        for member in getattr(mod, "__all__", []):
            obj = getattr(mod, member)
            if not callable(obj) or member in excluded:
                continue       # constants, submodules; re-exports named in :exclude-members: are documented elsewhere
            if f'id="{name}.{member}"' not in page:
                missing.append(f"{name}.{member}")
    assert not missing, missing
