"""Every number in the documentation's prose is computed when the docs build, written by a script in
benchmarks/, or asserted by a test that names its sentence with ``@pytest.mark.doc_claim(FILE, FRAGMENT)``.

What counts as a number and what is exempt is defined (and explained) in ``tests/_doc_numbers.py``.
"""

from __future__ import annotations

import re

import pytest

from _doc_numbers import NOT_CLAIMS, ROOT, claims, doc_files, fragment_spans, generated_regions, numbers, scrub


def _covered() -> dict[str, list[tuple[int, int]]]:
    spans: dict[str, list[tuple[int, int]]] = {}
    for claim in claims():
        text = (ROOT / claim.file).read_text(encoding="utf-8")
        spans.setdefault(claim.file, []).extend(fragment_spans(text, claim.fragment))
    return spans


def test_every_number_in_the_docs_is_generated_or_asserted():
    """List each number with neither a generating script nor a test naming its sentence."""
    spans = _covered()
    uncovered = [
        n
        for path in doc_files()
        for n in numbers(path)
        if not any(a <= n.start and n.end <= b for a, b in spans.get(n.file, []))
    ]
    rules = "\n".join(f"  - {rule}" for rule in NOT_CLAIMS)
    assert not uncovered, (
        f"{len(uncovered)} number(s) in the docs are neither generated nor asserted. For each: write a test with "
        "@pytest.mark.doc_claim(FILE, FRAGMENT) that computes the value (tests/test_doc_claims_*.py), have a "
        "script in benchmarks/ write the region, or drop the number. Exempt forms:\n"
        f"{rules}\n" + "\n".join(map(str, uncovered))
    )


@pytest.mark.parametrize("claim", claims(), ids=lambda c: f"{c.test}:{c.fragment[:40]}")
def test_each_claim_names_a_sentence_that_exists_and_holds_a_number(claim):
    path = ROOT / claim.file
    assert path.is_file(), f"{claim.test} names {claim.file}, which does not exist"
    text = path.read_text(encoding="utf-8")
    found = fragment_spans(text, claim.fragment)
    assert found, (
        f"{claim.test}: {claim.file} does not contain {claim.fragment!r}; the sentence changed, update the test"
    )
    scrubbed = scrub(text, generated_regions(claim.file))
    assert any(re.search(r"\d|[½⅓¼¾⅛]", scrubbed[a:b]) for a, b in found), (
        f"{claim.test}: {claim.fragment!r} holds no number of the prose, so the marker covers nothing"
    )


def test_generated_regions_have_their_script():
    """A region is skipped only when a benchmarks/ script writes it; an orphan region's numbers are claims."""
    for path in doc_files():
        regions = generated_regions(path.relative_to(ROOT).as_posix())
        for name in re.findall(r"<!-- begin: ([A-Za-z0-9_.-]+) -->", path.read_text(encoding="utf-8")):
            assert name in regions, f"{path.relative_to(ROOT)}: no script in benchmarks/ writes the region {name!r}"


def test_the_scanner_finds_numbers_and_skips_what_it_should(tmp_path):
    """The scanner on a made-up page: what it reports and what it leaves out."""
    page = tmp_path / "probe.md"
    page.write_text(
        "Trained 250 epochs at lr 1e-3 on 4,000 images, within 1% on 10⁶ tokens, below |d| = ½.\n"
        "Kingma et al. 2014; Python 3.11; float32 and CartPole-v1; KL ≥ 0; `x = 7`; [a](p/9.md); $e^{42}$.\n"
        "```python\n>>> 17\n```\n<!-- begin: nobody-writes-this -->\n33\n<!-- end: nobody-writes-this -->\n",
        encoding="utf-8",
    )
    found = [n.text for n in numbers(page, regions=set())]
    assert found == ["250", "1e-3", "4,000", "1", "10⁶", "½", "33"]
    # a fragment matches across line breaks, and covers exactly its own span
    assert fragment_spans("trained 250\n  epochs here", "250 epochs") == [(8, 20)]
