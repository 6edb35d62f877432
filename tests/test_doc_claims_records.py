"""The records of long runs in the docs are rendered from their raw numbers, never typed by hand: each region
``benchmarks/records.py`` owns equals its rendering of ``benchmarks/records/*.json``."""

from __future__ import annotations

import importlib.util
import re

import pytest

from _doc_numbers import ROOT, generated_regions

_spec = importlib.util.spec_from_file_location("records", ROOT / "benchmarks" / "records.py")
records = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(records)


@pytest.mark.parametrize("name", sorted(records.REGIONS))
def test_region_equals_its_rendering(name):
    doc, _, _ = records.REGIONS[name]
    text = (ROOT / doc).read_text(encoding="utf-8")
    found = re.search(rf"<!-- begin: {re.escape(name)} -->\n(.*?)\n<!-- end: {re.escape(name)} -->", text, re.DOTALL)
    assert found, f"{doc} has no region {name!r}; run benchmarks/records.py"
    assert found.group(1) == records.rendered(name), (
        f"{doc}'s {name!r} differs from its record: run benchmarks/records.py"
    )
    assert name in generated_regions(doc)


def test_trpo_record_summary_matches_an_independent_computation():
    """The rendered means and fractions come from the stored per-update values (numpy here, statistics there)."""
    np = pytest.importorskip("numpy")
    updates = records._load("trpo_in_sample")["updates"]
    exact, k1 = np.array([u["kl_exact"] for u in updates]), np.array([u["kl_k1"] for u in updates])
    text = records.rendered("trpo-in-sample")
    assert f"over the {len(updates)} updates" in text
    assert f"the exact KL averaged {exact.mean():.4f} nats" in text
    assert f"k1 {k1.mean():.4f}" in text
    assert f"in {100 * np.mean(k1 > exact):.0f}% of the updates" in text


def test_vae_record_differences_are_computed_from_the_table():
    r = records._load("vae")
    text = records.rendered("vae-records")
    elbo, shifts = r["ablation"]["rows"][0]["nll"], r["ablation"]["rows"][2]["nll"]
    assert f"({shifts[-1] - elbo[-1]:+.1f} nats at 300 epochs)".replace("-", "−") in text
    assert f"to within {abs(r['baseline']['nll'] - r['published']['nll'][0]):.1f} nats" in text
