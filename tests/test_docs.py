"""The documentation site: it builds with warnings as errors, its pages render in a real browser, and
the examples in its guide pages run and print what they say.

The site is built once per session, from a copy of ``docs/`` (the build writes its generated API and
gallery sources into the source folder), with the gallery limited to two fast lab sections
(``KLKIT_DOCS_GALLERY``); ``make docs`` builds every section. The browser checks reuse the approach of
``test_lab_browser.py``: headless Chromium's ``--dump-dom`` prints the DOM after the load event, and a
probe script added to a copy of each page records what the browser actually decoded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from _markdown_doctest import run_markdown_doctest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GALLERY_SECTIONS = "surprise,coin"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _have_sphinx() -> bool:
    try:
        import myst_parser  # noqa: F401
        import numpydoc  # noqa: F401
        import pydata_sphinx_theme  # noqa: F401
        import sphinx  # noqa: F401
    except ImportError:
        return False
    return True


def _build(root: Path) -> tuple[int, str]:
    source = root / "docs"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns("_build", "api", "gallery"))
    shutil.copy(ROOT / "CHANGELOG.md", root / "CHANGELOG.md")  # docs/changelog.md includes ../CHANGELOG.md
    env = {**os.environ, "KLKIT_DOCS_GALLERY": GALLERY_SECTIONS, "CI": "true"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-b",
            "html",
            "-W",
            "--keep-going",
            "-n",
            "-q",
            str(source),
            str(source / "_build" / "html"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    return done.returncode, f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}"


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """Build the site once (``-W --keep-going -n``) and return its HTML folder.

    Under pytest-xdist every worker would build its own: the first one builds into the session's shared
    temporary folder under a file lock, the others wait and reuse it.
    """
    if not _have_sphinx():
        pytest.skip("Sphinx and the docs extra are not installed: pip install -e '.[docs]' (make test installs it)")
    from filelock import FileLock  # torch's dependency, so present wherever the lab (and so the docs) can run

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    root = shared / "klkit-docs-build"
    with FileLock(str(shared / "klkit-docs-build.lock")):
        result = root / "result.txt"
        if not result.exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            code, output = _build(root)
            result.write_text(f"{code}\n{output}", encoding="utf-8")
        code, output = result.read_text(encoding="utf-8").split("\n", 1)
    assert code == "0", f"sphinx-build failed:\n{output}"
    return root / "docs" / "_build" / "html"


def test_build_has_every_part(site):
    for page in [
        "index.html",
        "api/index.html",
        "api/klkit.html",
        "api/klkit.distributions.html",
        "guide/registry.html",
        "guide/coming-from.html",
        "guide/cli.html",
        "gallery/index.html",
        "gallery/surprise.html",
        "benchmarks.html",
        "changelog.html",
        "searchindex.js",
    ]:
        assert (site / page).is_file(), f"{page} missing from the built site"


def test_every_public_name_has_an_entry(site):
    """Each name of klkit's top-level ``__all__`` is documented (an anchor with its full name)."""
    import klkit

    page = (site / "api" / "klkit.html").read_text(encoding="utf-8")
    missing = [name for name in klkit.__all__ if not name.startswith("__") and f'id="klkit.{name}"' not in page]
    assert not missing, f"no API entry for {missing}"


def test_doctest_examples_are_shown(site):
    page = (site / "api" / "klkit.html").read_text(encoding="utf-8")
    assert "Examples" in page and "&gt;&gt;&gt;" in page


def test_pair_table_is_the_registry(site):
    """The registry page's counts and rows are the registry's own (``klkit pairs``), not typed by hand."""
    from klkit.cli.pairs import pairs_table

    table = pairs_table()
    text = " ".join(re.sub(r"<[^>]+>", "", (site / "guide" / "registry.html").read_text(encoding="utf-8")).split())
    klkit_only = sum(1 for r in table["pairs"] if r["finite"] and r["in_torch"] is False)
    assert f"lists {table['finite_pairs']} finite closed forms, {klkit_only} of them missing from" in text
    assert f"and {table['infinite_pairs']} pairs registered as +inf" in text
    assert text.count("no (klkit only)") == sum(1 for r in table["pairs"] if r["in_torch"] is False)


def test_gallery_page_shows_the_lab_run(site):
    page = (site / "gallery" / "surprise.html").read_text(encoding="utf-8")
    assert "PASS" in page and "Checks" in page
    assert re.search(r'<img[^>]+src="[^"]*_images/surprise-[^"]+\.png"', page), "no figure on the gallery page"
    left_out = (site / "gallery" / "ppo.html").read_text(encoding="utf-8")
    assert "Not run in this build" in left_out  # a section outside KLKIT_DOCS_GALLERY keeps its page


def test_cli_page_is_every_command_help(site):
    text = (site / "guide" / "cli.html").read_text(encoding="utf-8")
    for command in ["klkit measure", "klkit pairs", "klkit lab", "klkit train vae", "klkit train ppo", "klkit eval"]:
        assert command in text, f"{command} missing from the CLI page"


@pytest.mark.parametrize("page", [*sorted(p.name for p in (DOCS / "guide").glob("*.md")), "../index.md"])
def test_guide_examples_run(page):
    """The guide's ``>>>`` examples print what the page says."""
    run_markdown_doctest((DOCS / "guide" / page).resolve())


# ------------------------------------------------------------------ in a real browser

_PROBE = """
<script>
window.addEventListener('load', function () {
  setTimeout(function () {
    var imgs = Array.from(document.images);
    var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
    var sheets = Array.from(document.querySelectorAll('link[rel="stylesheet"]'));
    var css = sheets.filter(function (l) { return l.sheet !== null; }).length;
    var hits = document.querySelectorAll('#search-results li').length;
    var math = document.querySelectorAll('mjx-container').length;
    document.body.setAttribute('data-probe', [imgs.length, ok, sheets.length, css, hits, math].join(','));
  }, 1500);
});
</script>
"""


def _probe(page: Path, tmp_path: Path, query: str = "") -> dict[str, int]:
    """Open a copy of ``page`` (same folder, so its links resolve) with the probe; return what it saw."""
    probe = page.with_name(f".probe-{page.name}")
    html = page.read_text(encoding="utf-8")
    probe.write_text(html.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-extensions",
        "--allow-file-access-from-files",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        probe.resolve().as_uri() + query,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    probe.unlink()
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'data-probe="(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)"', done.stdout)
    assert found, f"the probe did not run on {page.name}: {done.stdout[:500]} {done.stderr[-1000:]}"
    names = ("images", "images_loaded", "stylesheets", "stylesheets_loaded", "search_hits", "formulas_rendered")
    return dict(zip(names, map(int, found.groups()), strict=True))


browser = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI installs Debian's `chromium`)")


@browser
@pytest.mark.parametrize("page", ["index.html", "api/klkit.html", "gallery/surprise.html"])
def test_page_renders_with_its_images_and_styles(site, tmp_path, page):
    seen = _probe(site / page, tmp_path)
    assert seen["stylesheets"] > 0 and seen["stylesheets_loaded"] == seen["stylesheets"], seen
    assert seen["images_loaded"] == seen["images"], seen
    if page.startswith("gallery/"):
        assert seen["images"] > 0, seen
    if page.startswith("api/"):  # MathJax ships with the site (no network): formulas are typeset
        assert seen["formulas_rendered"] > 0, seen


@browser
def test_search_index_loads(site, tmp_path):
    seen = _probe(site / "search.html", tmp_path, query="?q=kl_divergence")
    assert seen["search_hits"] > 0, seen


@browser
def test_a_broken_image_is_detected(site, tmp_path):
    """Negative control: the probe must be able to see an image that did not load."""
    page = site / "gallery" / "surprise.html"
    broken = page.with_name("broken.html")
    broken.write_text(
        page.read_text(encoding="utf-8").replace('src="../_images/', 'src="../_no_such_images/'), encoding="utf-8"
    )
    try:
        seen = _probe(broken, tmp_path)
    finally:
        broken.unlink()
    assert seen["images"] > 0 and seen["images_loaded"] < seen["images"], seen
