"""The lab's HTML report: one self-contained file (figures embedded as data URIs, plotly.js inline, no network).

It follows the lesson (:mod:`klkit.lab.lesson`): a map from each objective to its section, then the lesson's part
and the part beyond it. Each section teaches first (idea, worked example, figures with captions, explorables,
tables) and folds its verification (how it is checked, the checks) below.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from klkit.lab.base import SectionResult
from klkit.lab.explore import plotly_script
from klkit.lab.lesson import OBJECTIVES, PARTS, Part, report_order
from klkit.lab.sections import TITLES

__all__ = ["render_html", "teaching_html", "write_html"]

_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1000px; margin: 2em auto;
       padding: 0 1em; color: #1b1b1b; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } .meta { color: #555; font-size: 0.9em; }
section { border: 1px solid #ddd; border-left: 6px solid #999; border-radius: 6px; padding: 0.6em 1.2em;
          margin: 1.4em 0; }
section.pass { border-left-color: #2e7d32; } section.fail { border-left-color: #c62828; }
.badge { display: inline-block; padding: 0.1em 0.6em; border-radius: 1em; font-size: 0.8em; font-weight: 600;
         color: white; vertical-align: middle; margin-left: 0.5em; }
.badge.pass { background: #2e7d32; } .badge.fail { background: #c62828; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.ok { color: #2e7d32; font-weight: 600; } td.bad { color: #c62828; font-weight: 600; }
figure { margin: 0.8em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
.claim { font-size: 1.05em; } .how { color: #333; }
h2.part { margin-top: 2em; border-bottom: 2px solid #444; } .units { background: #f4f7fb; padding: 0.5em 0.8em; }
.intuition, .example { font-size: 1.02em; } .example { background: #fbf8ef; padding: 0.4em 0.8em; }
figcaption { font-size: 0.92em; color: #333; margin-top: 0.3em; } .caption-missing { color: #c62828; }
details.verification { margin: 0.8em 0; background: #fafafa; padding: 0.3em 0.8em; border-radius: 4px; }
details.verification summary { cursor: pointer; font-weight: 600; }
.klkit-explorable { border: 1px solid #cdd; border-radius: 6px; padding: 0.5em; margin: 1em 0; }
.klkit-slider { display: inline-block; margin: 0.2em 1.2em 0.2em 0; } .klkit-slider input { vertical-align: middle; }
.klkit-slider output { font-variant-numeric: tabular-nums; font-weight: 600; } .klkit-note { color: #c62828; }
.klkit-plot { width: 100%; min-height: 380px; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
"""

# Marks each figure as loaded (naturalWidth > 0) once the page has loaded; the browser test reads the marks.
_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img.figure');
  var ok = 0;
  imgs.forEach(function (img) {
    var loaded = img.complete && img.naturalWidth > 0;
    img.setAttribute('data-loaded', loaded ? 'yes' : 'no');
    if (loaded) { ok += 1; } else { img.insertAdjacentHTML('afterend', '<p class="bad">figure failed to load</p>'); }
  });
  document.body.setAttribute('data-figures-total', String(imgs.length));
  document.body.setAttribute('data-figures-loaded', String(ok));
});
"""


def _status(s: SectionResult) -> str:
    return "pass" if s.passed else "fail"


_LABEL = {"pass": "PASS", "fail": "FAIL"}


_LINK = re.compile(r"\[([^\]]+)\]\(#([A-Za-z0-9_-]+)\)")


def teaching_html(text: str) -> str:
    """Plain teaching text as HTML: escaped, with ``[label](#section)`` turned into a link to that section.

    Examples
    --------
    >>> teaching_html("see [the fitting section](#fitting) & more")
    'see <a href="#fitting">the fitting section</a> &amp; more'
    """
    return _LINK.sub(r'<a href="#\2">\1</a>', html.escape(text, quote=False))


def _figure(path: Path, index: int, key: str, caption: str) -> str:
    path = Path(path)
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"figure `{path.name}` must be PNG, SVG or JPEG; found suffix {path.suffix!r}")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    alt = html.escape(f"{key} figure {index + 1}: {caption or path.stem}")
    if caption:
        text = f"<figcaption>{teaching_html(caption)}</figcaption>"
    else:  # shown, and caught by the report's tests: a figure must say what to notice
        text = f'<figcaption class="caption-missing">No caption for {html.escape(path.name)}.</figcaption>'
    return (
        f'<figure><img class="figure" id="fig-{html.escape(key)}-{index}" alt="{alt}" '
        f'src="data:{mime};base64,{data}">{text}</figure>'
    )


def _verification(s: SectionResult, duration: float) -> str:
    """How the section is checked and its checks table, folded (open when a check fails)."""
    status = _status(s)
    n_pass = sum(c.passed for c in s.checks)
    summary = f"Verification: {n_pass} of {len(s.checks)} checks pass" if s.checks else "Verification: no checks"
    rows = "".join(
        f"<tr><td>{html.escape(c.name)}</td><td>{html.escape(c.measured)}</td>"
        f'<td class="{"ok" if c.passed else "bad"}">{"pass" if c.passed else "FAIL"}</td></tr>'
        for c in s.checks
    )
    parts = [f'<details class="verification"{" open" if status == "fail" else ""}>', f"<summary>{summary}</summary>"]
    if s.how:
        parts.append(f'<p class="how"><strong>How it is checked.</strong> {html.escape(s.how)}</p>')
    if s.checks:
        parts.append(f'<table class="checks"><tr><th>Check</th><th>Measured</th><th>Result</th></tr>{rows}</table>')
    parts.append(f'<p class="meta">Section time: {duration:.1f} s.</p>')
    if "traceback" in s.numbers:
        parts.append(f"<pre>{html.escape(str(s.numbers['traceback']))}</pre>")
    parts.append("</details>")
    return "\n".join(parts)


def _section(s: SectionResult, duration: float) -> str:
    status = _status(s)
    key = html.escape(s.key)
    parts = [
        f'<section id="{key}" class="lab-section {status}" data-status="{status}">',
        f'<h3>{html.escape(s.title)}<span class="badge {status}">{_LABEL[status]}</span></h3>',
    ]
    if s.intuition:
        parts.append(f'<p class="intuition"><strong>The idea.</strong> {teaching_html(s.intuition)}</p>')
    if s.example:
        parts.append(f'<p class="example"><strong>Worked example.</strong> {teaching_html(s.example)}</p>')
    if s.claim:
        parts.append(f'<p class="claim"><strong>Claim.</strong> {teaching_html(s.claim)}</p>')
    parts.extend(_figure(Path(f), i, s.key, s.captions.get(Path(f).name, "")) for i, f in enumerate(s.figures))
    parts.extend(s.interactive_html)
    parts.extend(f'<div class="lab-table">{t}</div>' for t in s.tables_html)
    parts.append(_verification(s, duration))
    parts.append("</section>")
    return "\n".join(parts)


def _objective_map(by_key: dict[str, SectionResult]) -> str:
    """The map: each objective of the lesson, the section that teaches and checks it, and its verdict."""
    rows = []
    for i, objective in enumerate(OBJECTIVES, start=1):
        s = by_key.get(objective.section)
        if s is None:
            where, verdict = html.escape(TITLES.get(objective.section, objective.section)), "not run"
        else:
            where = f'<a class="objective-link" href="#{html.escape(s.key)}">{html.escape(s.title)}</a>'
            verdict = f"{_LABEL[_status(s)]} ({sum(c.passed for c in s.checks)}/{len(s.checks)} checks)"
        rows.append(
            f'<tr data-section="{html.escape(objective.section)}"><td class="num">{i}</td>'
            f"<td>{html.escape(objective.text)}</td><td>{where}</td><td>{verdict}</td></tr>"
        )
    beyond = [k for part in PARTS[1:] for k in part.sections if k in by_key]
    after = ", ".join(f'<a href="#{html.escape(k)}">{html.escape(by_key[k].title)}</a>' for k in beyond)
    return (
        '<table class="map" id="map"><tr><th>#</th><th>The lesson says / asks you to</th><th>Section</th>'
        f"<th>Verdict</th></tr>{''.join(rows)}</table>"
        + (f'<p class="map-beyond">Beyond the lesson (Part II): {after}.</p>' if after else "")
    )


def _part(part: Part, keys: list[str], by_key: dict[str, SectionResult], durations: dict[str, float]) -> str:
    body = "\n".join(_section(by_key[k], durations.get(k, 0.0)) for k in keys)
    links = ", ".join(f'<a href="#{html.escape(k)}">{html.escape(by_key[k].title)}</a>' for k in keys)
    return (
        f'<h2 class="part" id="part-{html.escape(part.key)}">{html.escape(part.title)}</h2>'
        f'<p class="part-blurb">{html.escape(part.blurb)}</p><p class="part-toc">In this part: {links}.</p>\n{body}'
    )


_UNITS = (
    "Units. A logarithm to base e measures information in nats, to base 2 in bits: 1 nat = 1/ln 2 ≈ 1.4427 bits "
    "(1 bit = ln 2 ≈ 0.6931 nats). Numbers are in nats unless a section says bits; where the lesson gives both "
    "(the coins, the coding costs), so does the report."
)
_READING = (
    "Each section opens with the idea and a worked example you can check by hand, then its figures (each with "
    "what to notice) and, where there is one, a figure you can move. Every number on the page, the moving ones "
    "included, was computed when the report was built, by klkit and by the independent references each section "
    "names; the page's script only picks precomputed frames. Below the teaching, folded, is how the section "
    "checks its claim and the table of checks, each with the number it measured; a check that fails fails the "
    "section."
)


def render_html(sections: Sequence[SectionResult], durations: dict[str, float], meta: dict[str, Any]) -> str:
    """The report as one HTML string (figures read from disk and embedded; plotly.js once if a section explores)."""
    n_pass = sum(s.passed for s in sections)
    n_fail = len(sections) - n_pass
    verdict = "all sections pass" if n_fail == 0 else f"{n_fail} section(s) FAIL"
    left_out = list(meta.get("left_out") or [])
    not_run = (
        f'<p class="meta">Not run (left out with --only): {html.escape(", ".join(left_out))}.</p>' if left_out else ""
    )
    by_key = {s.key: s for s in sections}
    mode = "quick" if meta.get("quick") else "full"
    meta_line = html.escape(
        f"klkit {meta.get('klkit_version', '?')} · {mode} run · seed {meta.get('seed')} · "
        f"{meta.get('created', '')} · {meta.get('duration_s', 0):.1f} s · Python {meta.get('python', '?')} · "
        f"{meta.get('machine', '')}"
    )
    body = "\n".join(_part(part, keys, by_key, durations) for part, keys in report_order([s.key for s in sections]))
    summary = json.dumps({"pass": n_pass, "fail": n_fail, "left_out": len(left_out)})
    explore = plotly_script() if any(s.interactive_html for s in sections) else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>klkit lab: KL divergence and cross-entropy, shown and checked</title>
<style>{_CSS}</style>
<script>{_SCRIPT}</script>
{explore}
</head>
<body data-summary='{html.escape(summary)}'>
<h1>KL divergence and cross-entropy, shown and checked</h1>
<p class="meta">{meta_line}</p>
<p><strong>{html.escape(verdict)}</strong>: {n_pass} pass, {n_fail} fail. {html.escape(_READING)}</p>
<p class="units" id="units">{html.escape(_UNITS)}</p>
{not_run}
<h2 id="map-title">Map of the lesson</h2>
{_objective_map(by_key)}
{body}
</body>
</html>
"""


def write_html(
    path: str | os.PathLike[str], sections: Sequence[SectionResult], durations: dict[str, float], meta: dict[str, Any]
) -> Path:
    """Write :func:`render_html` to ``path`` atomically; returns the path."""
    path = Path(path)
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_html(sections, durations, meta), encoding="utf-8")
    os.replace(tmp, path)
    return path
