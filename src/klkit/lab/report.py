"""The lab's HTML report: one self-contained file (figures embedded as data URIs, no network)."""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from klkit.lab.base import SectionResult

__all__ = ["render_html", "write_html"]

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
nav ol { columns: 2; } .claim { font-size: 1.05em; } .how { color: #333; }
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


def _figure(path: Path, index: int, key: str) -> str:
    path = Path(path)
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"figure `{path.name}` must be PNG, SVG or JPEG; found suffix {path.suffix!r}")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    alt = html.escape(f"{key} figure {index + 1}: {path.stem}")
    return (
        f'<figure><img class="figure" id="fig-{html.escape(key)}-{index}" alt="{alt}" '
        f'src="data:{mime};base64,{data}"><figcaption>{html.escape(path.name)}</figcaption></figure>'
    )


def _section(s: SectionResult, duration: float) -> str:
    status = _status(s)
    key = html.escape(s.key)
    parts = [
        f'<section id="section-{key}" class="lab-section {status}" data-status="{status}">',
        f'<h2>{html.escape(s.title)}<span class="badge {status}">{_LABEL[status]}</span></h2>',
    ]
    if s.claim:
        parts.append(f'<p class="claim"><strong>Claim.</strong> {html.escape(s.claim)}</p>')
    if s.how:
        parts.append(f'<p class="how"><strong>How it is checked.</strong> {html.escape(s.how)}</p>')
    if s.checks:
        rows = "".join(
            f"<tr><td>{html.escape(c.name)}</td><td>{html.escape(c.measured)}</td>"
            f'<td class="{"ok" if c.passed else "bad"}">{"pass" if c.passed else "FAIL"}</td></tr>'
            for c in s.checks
        )
        parts.append(f'<table class="checks"><tr><th>Check</th><th>Measured</th><th>Result</th></tr>{rows}</table>')
    parts.extend(s.tables_html)
    parts.extend(_figure(Path(f), i, s.key) for i, f in enumerate(s.figures))
    parts.append(f'<p class="meta">Section time: {duration:.1f} s.</p>')
    if "traceback" in s.numbers:
        parts.append(f"<pre>{html.escape(str(s.numbers['traceback']))}</pre>")
    parts.append("</section>")
    return "\n".join(parts)


def render_html(sections: Sequence[SectionResult], durations: dict[str, float], meta: dict[str, Any]) -> str:
    """The report as one HTML string (figures read from disk and embedded)."""
    n_pass = sum(s.passed for s in sections)
    n_fail = len(sections) - n_pass
    verdict = "all sections pass" if n_fail == 0 else f"{n_fail} section(s) FAIL"
    left_out = list(meta.get("left_out") or [])
    not_run = (
        f'<p class="meta">Not run (left out with --only): {html.escape(", ".join(left_out))}.</p>' if left_out else ""
    )
    toc = "".join(
        f'<li><a href="#section-{html.escape(s.key)}">{html.escape(s.title)}</a> — {_LABEL[_status(s)]}</li>'
        for s in sections
    )
    mode = "quick" if meta.get("quick") else "full"
    meta_line = html.escape(
        f"klkit {meta.get('klkit_version', '?')} · {mode} run · seed {meta.get('seed')} · "
        f"{meta.get('created', '')} · {meta.get('duration_s', 0):.1f} s · Python {meta.get('python', '?')} · "
        f"{meta.get('machine', '')}"
    )
    body = "\n".join(_section(s, durations.get(s.key, 0.0)) for s in sections)
    summary = json.dumps({"pass": n_pass, "fail": n_fail, "left_out": len(left_out)})
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>klkit lab report</title>
<style>{_CSS}</style>
<script>{_SCRIPT}</script>
</head>
<body data-summary='{html.escape(summary)}'>
<h1>klkit lab report</h1>
<p class="meta">{meta_line}</p>
<p><strong>{html.escape(verdict)}</strong>: {n_pass} pass, {n_fail} fail.
Each section states a claim about entropy, cross-entropy or KL divergence, how the lab checks it,
the numbers it measured and whether they meet the bar; a section that could not run fails.</p>
{not_run}
<nav><ol>{toc}</ol></nav>
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
