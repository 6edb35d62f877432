"""The lab report in a real browser: headless Chromium loads index.html with the network cut off.

Two things are read back from the browser. The page's own inline script marks each figure
``data-loaded="yes"`` when it decoded (``naturalWidth > 0``) and counts them on ``<body>``; Chromium's
``--dump-dom`` prints the DOM after that. For the explorable figures, a copy of the page gets a driver script
(test code, not part of the report) that moves every slider through its steps the way a reader's input does (set
the value, fire ``input``), waits for plotly, and writes what the page then shows — the readouts' text and the
plotted trace data — into the DOM as JSON. The test recomputes each shown number with klkit for the shown step.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import klkit
from klkit.lab import runner as lab_runner
from klkit.lab.base import Check, SectionResult
from klkit.lab.lesson import OBJECTIVES
from klkit.lab.report import write_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI installs Debian's `chromium`)")

# every section that runs in a few seconds in quick mode (all but fitting, losses and distill), every explorable
CHEAP = [
    "surprise",
    "entropy",
    "coin",
    "differential",
    "decomposition",
    "nonnegativity",
    "jensen",
    "asymmetry",
    "relatives",
    "modes",
    "vae",
    "trpo",
    "ppo",
    "rlhf",
]
OFFLINE = [
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]

# Moves every slider of every explorable through all its steps (the others at their start), then a few
# combinations, and records what the page shows after each move. Test code: the report has no such script.
DRIVER = """
<script>
window.addEventListener('load', function () {
  (window.klkitReady || Promise.resolve()).then(async function () {
    var log = [];
    var roots = document.querySelectorAll('.klkit-explorable');
    for (var r = 0; r < roots.length; r++) {
      var root = roots[r];
      var inputs = Array.prototype.slice.call(root.querySelectorAll('input.klkit-control'));
      var start = inputs.map(function (el) { return el.value; });
      var plot = root.querySelector('.klkit-plot');
      async function record() {
        var shown = {};
        root.querySelectorAll('[data-readout]').forEach(function (el) {
          shown[el.getAttribute('data-readout')] = el.textContent;
        });
        var steps = {};
        inputs.forEach(function (el) {
          steps[el.name] = root.querySelector('output[data-for="' + el.name + '"]').textContent;
        });
        log.push({explorable: root.id, key: root.getAttribute('data-key'), state: root.getAttribute('data-state'),
                  steps: steps, shown: shown, note: root.querySelector('.klkit-note').textContent,
                  traces: plot.data.map(function (t) { return {x: t.x, y: t.y}; })});
      }
      async function move(el, value) {
        el.value = String(value);
        el.dispatchEvent(new Event('input', {bubbles: true}));
        await root.klkitShow();
        await record();
      }
      for (var i = 0; i < inputs.length; i++) {
        for (var v = 0; v <= Number(inputs[i].max); v++) { await move(inputs[i], v); }
        await move(inputs[i], start[i]);
      }
      for (var k = 0; k < 6; k++) {  // a few combinations: every slider off its start at once
        for (var i = 0; i < inputs.length; i++) {
          await move(inputs[i], (Number(start[i]) + 2 * k + i) % (Number(inputs[i].max) + 1));
        }
      }
    }
    var pre = document.createElement('pre');
    pre.id = 'driver-log';
    pre.textContent = JSON.stringify(log);
    document.body.appendChild(pre);
  });
});
</script>
"""


def _dump_dom(page: Path, tmp_path: Path, budget_ms: int = 5000) -> str:
    profile = tmp_path / "chromium-profile"
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
        *OFFLINE,
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={budget_ms}",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "<body" in done.stdout, done.stderr[-2000:]
    return done.stdout


def _figures(dom: str) -> tuple[int, int, list[str]]:
    total = int(re.search(r'data-figures-total="(\d+)"', dom).group(1))
    loaded = int(re.search(r'data-figures-loaded="(\d+)"', dom).group(1))
    marks = re.findall(r'<img [^>]*data-loaded="(yes|no)"', dom)
    return total, loaded, marks


def _text(dom: str) -> str:
    """What a reader sees: the DOM without scripts, styles and tags."""
    dom = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", " ", dom, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab")
    report = lab_runner.run_lab(out, quick=True, only=CHEAP, seed=0, show_progress=False)
    return report, out


@pytest.fixture(scope="module")
def dom(lab, tmp_path_factory):
    report, _ = lab
    return _dump_dom(report.index_html, tmp_path_factory.mktemp("chromium"))


@pytest.fixture(scope="module")
def moves(lab, tmp_path_factory):
    report, out = lab
    page = out / "driven.html"
    page.write_text(report.index_html.read_text().replace("</body>", DRIVER + "</body>"))
    dom = _dump_dom(page, tmp_path_factory.mktemp("chromium"), budget_ms=60_000)
    found = re.search(r'<pre id="driver-log">(.*?)</pre>', dom, flags=re.S)
    assert found is not None, "the driver never finished: an explorable did not become ready"
    return json.loads(html.unescape(found.group(1)))


def test_report_renders_offline_with_every_figure_section_and_explorable(lab, dom):
    report, _ = lab
    assert report.passed, report.why_failed()
    expected_figures = sum(len(s.figures) for s in report.sections)
    total, loaded, marks = _figures(dom)
    assert total == expected_figures > 0
    assert loaded == total and marks == ["yes"] * total
    for key in CHEAP:
        section = re.search(rf'<section id="{key}"[^>]*data-status="(\w+)"', dom)
        assert section is not None, f"section {key} missing from the rendered page"
        assert section.group(1) == "pass"
    ready = re.findall(r'class="klkit-explorable" id="explore-(\w+)" data-ready="([\w-]+)"', dom)
    assert sorted(k for k, _ in ready) == ["coding", "modes", "pq2", "pq3"]
    assert all(state == "yes" for _, state in ready), ready  # plotly.js came from the page itself: no network
    assert dom.count('class="main-svg"') >= 4  # plotly drew


def test_every_figure_has_a_caption_that_says_what_to_notice(lab, dom):
    report, _ = lab
    captions = re.findall(r'<img class="figure"[^>]*>\s*<figcaption([^>]*)>(.*?)</figcaption>', dom, flags=re.S)
    assert len(captions) == sum(len(s.figures) for s in report.sections)
    names = {Path(f).name for s in report.sections for f in s.figures} | {
        Path(f).stem for s in report.sections for f in s.figures
    }
    for attrs, text in captions:
        text = _text(text).strip()
        assert "caption-missing" not in attrs, text
        assert text not in names and len(text.split()) >= 8, text
    explorable_captions = re.findall(r'class="klkit-explorable".*?<figcaption>(.*?)</figcaption>', dom, flags=re.S)
    assert len(explorable_captions) == 4 and all(len(_text(c).split()) >= 8 for c in explorable_captions)


def test_no_placeholder_is_left_in_the_page(dom):
    text = _text(dom)
    assert not re.search(r"\{[A-Za-z_][A-Za-z0-9_.]*\}", text), re.findall(r".{40}\{[A-Za-z_][\w.]*\}.{20}", text)
    assert "…}" not in text and "{…" not in text


def test_every_objective_in_the_map_links_to_a_passing_section(lab, dom):
    report, _ = lab
    ran = {s.key for s in report.sections}
    rows = re.findall(r'<tr data-section="(\w+)">(.*?)</tr>', dom, flags=re.S)
    assert [key for key, _ in rows] == [o.section for o in OBJECTIVES]
    for key, row in rows:
        if key not in ran:
            assert "not run" in row
            continue
        link = re.search(r'<a class="objective-link" href="#(\w+)">', row)
        assert link is not None and link.group(1) == key, row
        assert re.search(rf'<section id="{key}"[^>]*data-status="pass"', dom), key
        assert "PASS" in row


def _nats(text: str) -> float:
    """The first number of a readout such as '0.5108 nats = 0.7370 bits' ('+∞' is inf)."""
    if text.startswith("+∞"):
        return math.inf
    return float(re.match(r"-?\d+\.\d+", text).group(0))


def _close(shown: str, value: float, digits: int = 4) -> bool:
    value = float(value)
    return math.isinf(value) if math.isinf(value) else abs(_nats(shown) - value) <= 0.6 * 10**-digits


def _of(moves: list[dict], key: str) -> list[dict]:
    found = [m for m in moves if m["explorable"] == f"explore-{key}"]
    assert found, key
    return found


def test_pq_explorers_show_klkits_values_after_every_move(moves):
    for key in ("pq2", "pq3"):
        records = _of(moves, key)
        keys = {m["key"] for m in records}
        assert len(keys) > 20, key  # the sliders really moved through many steps
        shown_frames = [m for m in records if m["state"] == "shown"]
        for m in shown_frames:
            steps = {k: float(v) for k, v in m["steps"].items()}
            if key == "pq2":
                p = np.array([steps["p1"], 1 - steps["p1"]])
                q = np.array([steps["q1"], 1 - steps["q1"]])
            else:
                p = np.array([steps["p1"], steps["p2"], 1 - steps["p1"] - steps["p2"]])
                q = np.array([steps["q1"], steps["q2"], 1 - steps["q1"] - steps["q2"]])
            p, q = np.round(p, 10), np.round(q, 10)  # 1 − 0.7 − 0.3 is 0, not 5.6e-17
            s = m["shown"]
            assert s["p"] == "(" + ", ".join(f"{x:.2f}" for x in p) + ")", m
            assert _close(s["h"], klkit.entropy(p)), m
            assert _close(s["ce"], klkit.cross_entropy(p, q)), m
            assert _close(s["kl_pq"], klkit.kl_divergence(p, q)), m
            assert _close(s["kl_qp"], klkit.kl_divergence(q, p)), m
            assert np.allclose(m["traces"][0]["y"], p) and np.allclose(m["traces"][1]["y"], q)  # the bars moved
            if math.isinf(float(klkit.kl_divergence(p, q))):
                assert "+∞" in s["kl_pq"] and "Q gives probability 0" in m["note"]
        assert any("+∞" in m["shown"].get("kl_pq", "") for m in shown_frames), key  # the infinite case is reached
    missing = [m for m in _of(moves, "pq3") if m["state"] == "missing"]
    assert missing and all(m["shown"]["kl_pq"] == "—" and "not a distribution" in m["note"] for m in missing)


def _gaussian_vs_bimodal(mean: float, sigma: float) -> tuple[float, float]:
    """klkit's forward and reverse KL between N(mean, σ²) and ½N(−3, 1) + ½N(3, 1), from masses on a fine grid
    (written here from scratch: not the section's code)."""
    from scipy import stats
    from scipy.special import logsumexp

    x = np.linspace(-40.0, 40.0, 8001)
    lp = np.logaddexp(stats.norm.logpdf(x, -3, 1), stats.norm.logpdf(x, 3, 1))
    lq = stats.norm.logpdf(x, mean, sigma)
    lp, lq = lp - logsumexp(lp), lq - logsumexp(lq)
    forward = klkit.kl_divergence(lp, lq, kind="log_probs")
    reverse = klkit.kl_divergence(lq, lp, kind="log_probs")
    return float(forward), float(reverse)


def test_modes_explorer_shows_klkits_values_after_every_move(moves):
    records = _of(moves, "modes")
    assert len({m["key"] for m in records}) > 20
    for m in records:
        mean, sigma = float(m["steps"]["mean"]), float(m["steps"]["sigma"])
        forward, reverse = _gaussian_vs_bimodal(mean, sigma)
        assert m["shown"]["q"] == f"N({mean:g}, {sigma:g}²)"
        assert _close(m["shown"]["forward"], forward) and _close(m["shown"]["reverse"], reverse), m
        assert m["traces"][6]["x"] == [mean] and m["traces"][6]["y"] == [sigma]  # the marker on the landscape moved
        assert m["traces"][9]["x"] == [mean] and m["traces"][9]["y"] == [sigma]


def test_coding_explorer_shows_klkits_values_after_every_move(moves):
    p = np.array([0.5, 0.25, 0.125, 0.125])
    records = _of(moves, "coding")
    assert len({m["key"] for m in records}) == 15
    for m in records:
        lam = float(m["steps"]["lam"].split()[0])
        q = p**lam / np.sum(p**lam)
        ce, kl = klkit.cross_entropy(p, q, base=2), klkit.kl_divergence(p, q, base=2)
        assert _close(m["shown"]["ce"], ce) and _close(m["shown"]["kl"], kl), m
        assert _close(m["shown"]["h"], 1.75)
        assert abs(_nats(m["shown"]["rate"]) - ce) <= 0.02 and "decoded back exactly" in m["shown"]["rate"]
        assert np.allclose(m["traces"][1]["y"], klkit.surprise(q, base=2), atol=1e-9)  # Q's code-length bars moved


def test_a_broken_figure_is_detected(tmp_path):
    """Negative control: the check must be able to fail."""
    good = tmp_path / "good.png"
    good.write_bytes(
        base64.b64decode(  # a 1x1 PNG
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
        )
    )
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    sections = [
        SectionResult(key="demo", title="demo", claim="c", how="h", checks=[Check("x", "1", True)], figures=[good, bad])
    ]
    page = write_html(tmp_path / "index.html", sections, {"demo": 0.0}, {"seed": 0})
    total, loaded, marks = _figures(_dump_dom(page, tmp_path))
    assert (total, loaded, marks) == (2, 1, ["yes", "no"])


def test_the_network_is_really_cut_off(tmp_path):
    """Negative control for the offline runs: a page that fetches plotly.js from a CDN gets no plotly."""
    import plotly.graph_objects as go

    from klkit.lab.explore import RUNTIME_JS, Control, Explorable, frame

    explorable = Explorable(
        "pq2",
        "a coin",
        go.Figure(go.Bar(y=[0.5, 0.5])),
        [Control("p", "P", ["0.5"])],
        [("h", "H")],
        {"0": frame([({"y": [[0.5, 0.5]]}, [0])], {"h": "0.6931 nats"})},
        caption="what to notice",
    )
    page = tmp_path / "cdn.html"
    page.write_text(
        '<!DOCTYPE html><html><head><script src="https://cdn.plot.ly/plotly-2.35.2.min.js"></script>'
        f"<script>{RUNTIME_JS}</script></head><body>{explorable.html()}</body></html>"
    )
    dom = _dump_dom(page, tmp_path)
    assert 'id="explore-pq2" data-ready="no-plotly"' in dom
