"""Explorable figures: a plotly chart whose controls select frames that klkit computed when the report was built.

An explorable is a grid over its controls' steps. For every combination of steps the section computes, in
Python with klkit, what the chart shows (trace updates) and the numbers the reader reads (already formatted
text). The page's script only looks up the frame of the controls' current steps and hands it to plotly
(``Plotly.restyle`` / ``Plotly.relayout``): no information-theory arithmetic runs in the browser.

Controls are native ``<input type="range">`` sliders rather than plotly's own sliders because an explorable
has up to four of them that combine (P and Q, a mean and a width), and each plotly slider step jumps to one
absolute frame. plotly.js itself is written into the report once (:func:`plotly_script`), so pages open
offline.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Control", "Explorable", "fmt_nats", "frame", "number", "plotly_script", "rounded"]

# One generic script per page: reads each explorable's frames and wires its sliders (lookup only, no arithmetic).
RUNTIME_JS = """
function klkitExplorable(root) {
  var spec = JSON.parse(root.querySelector('script.klkit-frames').textContent);
  var plot = root.querySelector('.klkit-plot');
  var inputs = Array.prototype.slice.call(root.querySelectorAll('input.klkit-control'));
  var readouts = root.querySelectorAll('[data-readout]');
  function show() {
    var key = inputs.map(function (el) { return el.value; }).join('-');
    inputs.forEach(function (el) {
      root.querySelector('output[data-for="' + el.name + '"]').textContent = spec.labels[el.name][el.value];
    });
    var frame = spec.frames[key];
    root.setAttribute('data-key', key);
    if (!frame) {
      readouts.forEach(function (el) { el.textContent = '—'; });
      root.querySelector('.klkit-note').textContent = spec.missing;
      root.setAttribute('data-state', 'missing');
      return Promise.resolve();
    }
    root.querySelector('.klkit-note').textContent = frame.note || '';
    Object.keys(frame.readout).forEach(function (name) {
      root.querySelector('[data-readout="' + name + '"]').textContent = frame.readout[name];
    });
    var done = frame.restyle.map(function (r) { return Plotly.restyle(plot, r[0], r[1]); });
    if (frame.relayout) { done.push(Plotly.relayout(plot, frame.relayout)); }
    root.setAttribute('data-state', 'shown');
    return Promise.all(done);
  }
  inputs.forEach(function (el) { el.addEventListener('input', show); });
  root.klkitShow = show;
  return Plotly.newPlot(plot, spec.figure.data, spec.figure.layout, {displayModeBar: false, responsive: true})
    .then(show).then(function () { root.setAttribute('data-ready', 'yes'); });
}
window.addEventListener('load', function () {
  var roots = document.querySelectorAll('.klkit-explorable');
  if (typeof Plotly === 'undefined') {
    roots.forEach(function (r) { r.setAttribute('data-ready', 'no-plotly'); });
    return;
  }
  window.klkitReady = Promise.all(Array.prototype.map.call(roots, klkitExplorable));
});
"""


def plotly_script() -> str:
    """plotly.js (minified, offline) and the explorables' runtime, as one ``<script>`` block for a page's head."""
    from plotly.offline import get_plotlyjs

    return f"<script>{get_plotlyjs()}</script>\n<script>{RUNTIME_JS}</script>"


def rounded(values: Iterable[float], digits: int = 4) -> list[float | None]:
    """Values rounded to ``digits`` significant digits for a frame (``None`` for a non-finite value: a gap).

    Examples
    --------
    >>> rounded([0.123456, float("inf"), 12345.6])
    [0.1235, None, 12350.0]
    """
    return [float(f"{v:.{digits}g}") if math.isfinite(v) else None for v in map(float, values)]


def number(value: float, digits: int = 4) -> str:
    """A measured number as the page shows it: ``+∞`` for infinity.

    Examples
    --------
    >>> number(0.5108256), number(float("inf"))
    ('0.5108', '+∞')
    """
    value = float(value)
    if math.isinf(value):
        return "+∞" if value > 0 else "−∞"
    return f"{value:.{digits}f}"


def fmt_nats(value: float, digits: int = 4) -> str:
    """A value in nats with its equivalent in bits, 1 nat = 1/ln 2 bits.

    Examples
    --------
    >>> import math
    >>> fmt_nats(math.log(2))
    '0.6931 nats = 1.0000 bits'
    """
    value = float(value)
    if math.isinf(value):
        return "+∞ nats = +∞ bits"
    return f"{number(value, digits)} nats = {number(value / math.log(2), digits)} bits"


@dataclass(frozen=True)
class Control:
    """One slider: its name, its label and the text shown for each of its steps (the step index is the value).

    Attributes
    ----------
    name : str
        Identifier (letters, digits, ``_``), unique within the explorable.
    label : str
        What the slider moves, e.g. ``"P(outcome 1)"``.
    steps : sequence of str
        What each step means, shown next to the slider, e.g. ``["0.00", "0.05", ...]``.
    start : int
        The step shown when the page opens.
    """

    name: str
    label: str
    steps: Sequence[str]
    start: int = 0


@dataclass
class Explorable:
    """A plotly figure, its sliders, and one precomputed frame per combination of slider steps.

    Attributes
    ----------
    key : str
        Identifier used in the page (``id="explore-<key>"``).
    title : str
        Heading shown above the sliders.
    figure : plotly.graph_objects.Figure
        The chart at its first frame (trace order fixed: frames restyle traces by index).
    controls : list of Control
        The sliders, in the order of the frame keys.
    readouts : list of (str, str)
        ``(name, label)`` of each number shown under the chart.
    frames : dict
        ``"i-j-..."`` (the controls' step indices) → ``{"restyle": [[update, trace_indices], ...],
        "relayout": {...} (optional), "readout": {name: text}, "note": text (optional)}``.
    missing : str
        What to show for a combination of steps without a frame (e.g. "p₁ + p₂ > 1: not a distribution").
    caption : str
        What to notice (shown under the explorable).

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> steps = {str(i): frame([({"y": [[p, 1 - p]]}, [0])], {"p": f"({p}, {1 - p})"}) for i, p in enumerate([.5, 1.])}
    >>> demo = Explorable(
    ...     "demo", "a coin", go.Figure(go.Bar(y=[0.5, 0.5])), [Control("p", "P(heads)", ["0.5", "1.0"])],
    ...     [("p", "P")], steps, caption="Move P: the bars follow.")
    >>> page = demo.html()
    >>> 'type="range" name="p" min="0" max="1"' in page, 'data-readout="p">(0.5, 0.5)<' in page
    (True, True)
    """

    key: str
    title: str
    figure: Any
    controls: list[Control]
    readouts: list[tuple[str, str]]
    frames: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: str = ""
    caption: str = ""

    def html(self) -> str:
        """The explorable as an HTML fragment (needs :func:`plotly_script` once in the page)."""
        import plotly.io as pio

        if not self.caption:
            raise ValueError(f"explorable `{self.key}` needs a caption that says what to notice; found none")
        start = "-".join(str(c.start) for c in self.controls)
        if start not in self.frames:
            raise ValueError(f"explorable `{self.key}` has no frame for its starting steps {start!r}")
        spec = {
            "figure": json.loads(pio.to_json(self.figure, validate=False)),
            "labels": {c.name: list(c.steps) for c in self.controls},
            "frames": self.frames,
            "missing": self.missing,
        }
        payload = json.dumps(spec, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
        sliders = "".join(
            f'<label class="klkit-slider" style="display:inline-block;margin:0.2em 1.4em 0.2em 0">'
            f"{html.escape(c.label)} "
            f'<input class="klkit-control" type="range" name="{html.escape(c.name)}" min="0" '
            f'max="{len(c.steps) - 1}" step="1" value="{c.start}"> '
            f'<output data-for="{html.escape(c.name)}">{html.escape(c.steps[c.start])}</output></label>'
            for c in self.controls
        )
        rows = "".join(
            f'<tr><th>{html.escape(label)}</th><td class="num" data-readout="{html.escape(name)}">'
            f"{html.escape(self.frames[start]['readout'].get(name, ''))}</td></tr>"
            for name, label in self.readouts
        )
        return (
            f'<figure class="klkit-explorable" id="explore-{html.escape(self.key)}" data-ready="no">'
            f'<p class="explore-title"><strong>Explore: {html.escape(self.title)}</strong></p>'
            f'<div class="klkit-sliders">{sliders}</div>'
            f'<div class="klkit-plot"></div>'
            f'<p class="klkit-note"></p>'
            f'<table class="klkit-readouts">{rows}</table>'
            f"<figcaption>{html.escape(self.caption)}</figcaption>"
            f'<script type="application/json" class="klkit-frames">{payload}</script>'
            "</figure>"
        )


def frame(
    restyle: Sequence[tuple[Mapping[str, Any], Sequence[int]]],
    readout: Mapping[str, str],
    *,
    relayout: Mapping[str, Any] | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One frame: trace updates (``Plotly.restyle(update, traces)`` each), layout updates, readout text.

    Examples
    --------
    >>> frame([({"y": [[0.5, 0.5]]}, [0])], {"h": "0.6931 nats = 1.0000 bits"})
    {'restyle': [[{'y': [[0.5, 0.5]]}, [0]]], 'readout': {'h': '0.6931 nats = 1.0000 bits'}}
    """
    out: dict[str, Any] = {"restyle": [[dict(u), list(t)] for u, t in restyle], "readout": dict(readout)}
    if relayout:
        out["relayout"] = dict(relayout)
    if note:
        out["note"] = note
    return out
