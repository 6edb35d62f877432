"""The lab's claims as a gallery, and the registry's pair table, both made at build time.

The gallery is not written by hand and not a copy of an old report: on every build this
extension runs the lab itself (:func:`klkit.lab.run_lab`, quick mode) into ``<build>/lab``
and writes one page per section of :data:`klkit.lab.sections.SECTIONS` from what the run
returned, in the report's order and shape: the idea, a worked example, the claim, its figures
with their captions, its explorable figures (plotly.js served once from the site's ``_static``),
its tables, then its verification (how it is checked, every check with its measured numbers).
A section added to the lab appears here on the next build; a failing section fails the build
(its page says which check failed).

``KLKIT_DOCS_GALLERY=surprise,coin`` runs only those sections (the test suite's fast build);
unset, every section runs.

The directive ``.. klkit-pairs-table::`` renders :func:`klkit.cli.pairs.pairs_table` (the same
table ``klkit pairs`` prints); the role ``:klkit-pairs:`finite``` etc. a count from it;
``.. klkit-toctree-present::`` is a toctree that leaves out documents that do not exist
(the reports other scripts write).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.directives.other import TocTree
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

GALLERY_ENV = "KLKIT_DOCS_GALLERY"
FIGURES = "_figures"  # inside gallery/, git-ignored
EXPLORE_JS = "klkit-explore.js"  # plotly.js + the explorables' runtime, in the site's _static when a page explores


# ------------------------------------------------------------------ small docutils helpers


def _table(header: list[str], rows: list[list[Any]], widths: list[int] | None = None) -> nodes.table:
    """A docutils table of plain text (or ready-made nodes) cells."""
    table = nodes.table(classes=["klkit-table"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for width in widths or [1] * len(header):
        group += nodes.colspec(colwidth=width)

    def row(cells: list[Any]) -> nodes.row:
        out = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += cell if isinstance(cell, nodes.Node) else nodes.paragraph(text=str(cell))
            out += entry
        return out

    head = nodes.thead()
    head += row(header)
    group += head
    body = nodes.tbody()
    for r in rows:
        body += row(r)
    group += body
    return table


def _page_links(fragment: str) -> str:
    """The report's in-page section links (``href="#fitting"``) as links to the gallery's pages."""
    import re

    from klkit.lab.sections import SECTIONS

    return re.sub(
        r'href="#(\w+)"', lambda m: f'href="{m.group(1)}.html"' if m.group(1) in SECTIONS else m.group(0), fragment
    )


def _teaching(label: str, text: str, cls: str) -> nodes.raw:
    """A paragraph of the lab's teaching text, with its ``[label](#section)`` links pointing at gallery pages."""
    from klkit.lab.report import teaching_html

    return nodes.raw(
        "", f'<p class="klkit-{cls}"><strong>{label}</strong> {_page_links(teaching_html(text))}</p>', format="html"
    )


def _para(label: str, text: str) -> nodes.paragraph:
    para = nodes.paragraph()
    para += nodes.strong(text=label)
    para += nodes.Text(" " + text)
    return para


# ------------------------------------------------------------------ the registry's table


def _pairs() -> dict[str, Any]:
    from klkit.cli.pairs import pairs_table

    return pairs_table()


class PairsTable(SphinxDirective):
    """``.. klkit-pairs-table::`` — the registered KL pairs, from the registry itself."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        table = _pairs()
        rows = []
        for r in table["pairs"]:
            torch_has = {True: "yes", False: "no (klkit only)", None: "?"}[r["in_torch"]]
            rows.append([r["p"], r["q"], "formula" if r["finite"] else "+inf", torch_has])
        return [_table(["p", "q", "KL(p‖q)", "in torch.distributions"], rows, [25, 25, 15, 25])]


def pairs_role(
    name: str, rawtext: str, text: str, lineno: int, inliner: Any, options: Any = None, content: Any = None
) -> tuple[list[nodes.Node], list[Any]]:
    """``:klkit-pairs:`finite``` — a count from the registry, inline."""
    table = _pairs()
    counts = {
        "finite": table["finite_pairs"],
        "infinite": table["infinite_pairs"],
        "klkit_only": sum(1 for r in table["pairs"] if r["finite"] and r["in_torch"] is False),
        "entropies": len(table["entropies"]),
    }
    if text not in counts:
        msg = inliner.reporter.error(f"klkit-pairs takes one of {', '.join(counts)}; found {text!r}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    return [nodes.inline(rawtext, str(counts[text]))], []


class PresentTocTree(TocTree):
    """A toctree that lists only the documents that exist (reports written by other scripts)."""

    def run(self) -> list[nodes.Node]:
        kept = [line for line in self.content if not line.strip() or self.env.doc2path(line.strip()).exists()]
        self.content = StringList(kept, source=self.content.source(0) if self.content else "")
        return super().run()


class SeeAlsoPresent(SphinxDirective):
    """``.. klkit-see-also-present:: doc [doc ...]`` — a "see also" to the documents that exist, or nothing."""

    required_arguments = 1
    final_argument_whitespace = True

    def run(self) -> list[nodes.Node]:
        from sphinx.addnodes import pending_xref, seealso
        from sphinx.util import docname_join

        present = [
            d for d in self.arguments[0].split() if self.env.doc2path(docname_join(self.env.docname, d)).exists()
        ]
        if not present:
            return []
        para = nodes.paragraph()
        for i, doc in enumerate(present):
            if i:
                para += nodes.Text(", ")
            ref = pending_xref(
                "", refdomain="std", reftype="doc", reftarget=doc, refexplicit=False, refdoc=self.env.docname
            )
            ref += nodes.inline(text=doc)
            para += ref
        box = seealso()
        box += para
        return [box]


# ------------------------------------------------------------------ the gallery


def _selected_sections() -> list[str]:
    from klkit.lab.sections import SECTIONS

    raw = os.environ.get(GALLERY_ENV, "").strip()
    if not raw:
        return list(SECTIONS)
    wanted = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in SECTIONS]
    if unknown:
        raise ValueError(
            f"`{GALLERY_ENV}` must name lab sections; found {', '.join(unknown)}. Choose from: {', '.join(SECTIONS)}."
        )
    return [name for name in SECTIONS if name in wanted]


def _rst_escape(text: str) -> str:
    for char in "\\`*_|[]<>":
        text = text.replace(char, "\\" + char)
    return text


def run_gallery(srcdir: Path, lab_dir: Path) -> dict[str, Any]:
    """Run the lab (quick) into ``lab_dir``, copy its figures and write ``gallery/<key>.rst`` pages."""
    from klkit.lab import run_lab

    keys = _selected_sections()
    logger.info(f"[klkit] running the lab (quick) for the gallery: {', '.join(keys)}")
    report = run_lab(lab_dir, quick=True, only=keys, seed=0, show_progress=False)
    gallery = srcdir / "gallery"
    figures = gallery / FIGURES
    shutil.rmtree(figures, ignore_errors=True)
    figures.mkdir(parents=True)
    data: dict[str, Any] = {"quick": True, "seed": 0, "duration_s": round(report.duration_s, 1), "sections": []}
    for section in report.sections:
        copied = []
        for figure in section.figures:
            target = figures / f"{section.key}-{Path(figure).name}"
            shutil.copyfile(figure, target)
            copied.append(target.name)
        data["sections"].append(
            {
                "key": section.key,
                "title": section.title,
                "claim": section.claim,
                "how": section.how,
                "passed": section.passed,
                "duration_s": round(report.durations.get(section.key, 0.0), 1),
                "checks": [{"name": c.name, "measured": c.measured, "passed": bool(c.passed)} for c in section.checks],
                "figures": copied,
                "captions": {f"{section.key}-{name}": text for name, text in section.captions.items()},
                "intuition": section.intuition,
                "example": section.example,
                "tables_html": list(section.tables_html),
                "interactive_html": list(section.interactive_html),
            }
        )
        if not section.passed:
            logger.warning(
                f"[klkit] lab section {section.key!r} failed: {report.why_failed().get(section.key, 'no checks')}",
                type="klkit",
                subtype="lab",
            )
    light = {**data, "sections": [{**x, "interactive_html": len(x["interactive_html"])} for x in data["sections"]]}
    (lab_dir / "gallery.json").write_text(json.dumps(light, indent=1), encoding="utf-8")
    if any(x["interactive_html"] for x in data["sections"]):  # plotly.js and the sliders' runtime, once, offline
        from plotly.offline import get_plotlyjs

        from klkit.lab.explore import RUNTIME_JS

        static = lab_dir / "_static"
        static.mkdir(exist_ok=True)
        (static / EXPLORE_JS).write_text(f"{get_plotlyjs()}\n{RUNTIME_JS}", encoding="utf-8")
        data["static"] = str(static)
    from klkit.lab.sections import SECTIONS, TITLES

    data["not_run"] = [key for key in SECTIONS if key not in keys]
    for stale in gallery.glob("*.rst"):
        stale.unlink()
    for key in SECTIONS:  # every section has a page, so links to one hold in a partial build
        ran = next((s for s in data["sections"] if s["key"] == key), None)
        title = _rst_escape(ran["title"] if ran else TITLES.get(key, key))
        body = (
            f".. klkit-lab-section:: {key}"
            if ran
            else f"Not run in this build ({GALLERY_ENV} left it out); ``make docs`` runs every section."
        )
        (gallery / f"{key}.rst").write_text(f"{title}\n{'=' * len(title)}\n\n{body}\n", encoding="utf-8")
    index = [
        "The lab's claims",
        "================",
        "",
        ".. klkit-lab-summary::",
        "",
        ".. toctree::",
        "   :hidden:",
        "",
    ]
    from klkit.lab.lesson import report_order

    index += [f"   {key}" for _, keys in report_order(list(SECTIONS)) for key in keys]
    (gallery / "index.rst").write_text("\n".join(index) + "\n", encoding="utf-8")
    return data


_GALLERY: dict[str, Any] = {}  # what this build's lab run returned (see run_gallery)


def _gallery_data(env: Any) -> dict[str, Any]:
    return _GALLERY


class LabSection(SphinxDirective):
    """``.. klkit-lab-section:: KEY`` — one section's claim, checks, tables and figures."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        sections = {s["key"]: s for s in _gallery_data(self.env)["sections"]}
        if self.arguments[0] not in sections:
            raise self.error(f"no lab results for section {self.arguments[0]!r}")
        s = sections[self.arguments[0]]
        verdict = "PASS" if s["passed"] else "FAIL"
        out: list[nodes.Node] = []
        status = nodes.paragraph(classes=[f"klkit-{verdict.lower()}"])
        status += nodes.strong(text=verdict)
        status += nodes.Text(" — section ")
        status += nodes.literal(text=s["key"])
        status += nodes.Text(
            f" of the lab in quick mode, seed 0, {s['duration_s']} s on the machine that built these pages. Reproduce: "
        )
        status += nodes.literal(text=f"klkit lab --quick --only {s['key']}")
        out.append(status)
        for label, text, cls in (
            ("The idea.", s["intuition"], "intuition"),
            ("Worked example.", s["example"], "example"),
        ):
            if text:
                out.append(_teaching(label, text, cls))
        if s["claim"]:
            out.append(_teaching("Claim.", s["claim"], "claim"))
        for name in s["figures"]:
            figure = nodes.figure()
            caption = s["captions"].get(name, "")
            figure += nodes.image(uri=f"{FIGURES}/{name}", alt=caption or f"{s['title']}: {name}")
            if caption:
                figure += nodes.caption(text=caption)
            out.append(figure)
        for fragment in s["interactive_html"]:
            out.append(nodes.raw("", _page_links(fragment), format="html"))
        for fragment in s["tables_html"]:
            out.append(nodes.raw("", f'<div class="klkit-lab-table">{fragment}</div>', format="html"))
        checks = nodes.section(ids=[f"checks-{s['key']}"])
        checks += nodes.title(text="Checks: how the claim is verified")
        if s["how"]:
            checks += _para("How it is checked.", s["how"])
        rows = [[c["name"], c["measured"], "pass" if c["passed"] else "FAIL"] for c in s["checks"]]
        checks += _table(["check", "measured", "result"], rows, [55, 35, 10])
        out.append(checks)
        return out


class LabSummary(SphinxDirective):
    """``.. klkit-lab-summary::`` — the gallery's index table."""

    def run(self) -> list[nodes.Node]:
        data = _gallery_data(self.env)
        intro = nodes.paragraph(
            text=(
                "Each page below was produced while these docs were built: the build ran `klkit lab --quick` "
                f"(seed {data['seed']}, {data['duration_s']} s in all) and wrote one page per section from "
                "what the lab returned. Nothing on these pages is typed by hand."
            )
        )
        from klkit.lab.lesson import report_order

        by_key = {s["key"]: s for s in data["sections"]}
        rows = []
        for part, keys in report_order(list(by_key)):  # the lesson's order, then the parts beyond it
            for key in keys:
                s = by_key[key]
                ref = nodes.paragraph()
                ref += self._link(s)
                passed = sum(c["passed"] for c in s["checks"])
                where = "the lesson" if part.key == "lesson" else "beyond the lesson"
                rows.append([ref, where, f"{passed}/{len(s['checks'])}", "PASS" if s["passed"] else "FAIL"])
        return [intro, _table(["claim", "part", "checks passed", "status"], rows, [60, 15, 13, 12])]

    def _link(self, s: dict[str, Any]) -> nodes.Node:
        from sphinx.addnodes import pending_xref

        ref = pending_xref(
            "", refdomain="std", reftype="doc", reftarget=s["key"], refexplicit=True, refdoc=self.env.docname
        )
        ref += nodes.inline(text=s["title"])
        return ref


def _on_config_inited(app: Sphinx, config: Any) -> None:
    lab_dir = Path(app.outdir).parent / "lab"
    _GALLERY.clear()
    _GALLERY.update(run_gallery(Path(app.srcdir), lab_dir))
    if "static" in _GALLERY:
        config.html_static_path = [*config.html_static_path, _GALLERY["static"]]
        app.add_js_file(EXPLORE_JS)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("klkit-pairs-table", PairsTable)
    app.add_role("klkit-pairs", pairs_role)
    app.add_directive("klkit-toctree-present", PresentTocTree)
    app.add_directive("klkit-see-also-present", SeeAlsoPresent)
    app.add_directive("klkit-lab-section", LabSection)
    app.add_directive("klkit-lab-summary", LabSummary)
    app.connect("config-inited", _on_config_inited)  # before Sphinx looks for source files
    return {"parallel_read_safe": False, "parallel_write_safe": True, "version": "1"}
