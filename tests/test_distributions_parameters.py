"""Invalid scipy parameters: one behaviour on every path — an InvalidArgumentError naming the parameter.

scipy itself answers NaN from its closed forms and raises a generic "Domain error" from its sampler.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import klkit
from klkit.errors import InvalidArgumentError

INVALID = [
    (stats.norm(0.0, -1.0), "scale", "-1.0", r"\(0, inf\)"),
    (stats.gamma([2.0, -1.0]), "a", "-1.0", r"batch element \(1,\)"),
    (stats.t(-3.0), "df", "-3.0", r"\(0, inf\)"),
    (stats.beta(1.0, 0.0), "b", "0.0", r"\(0, inf\)"),
    (stats.binom(5, 1.5), "p", "1.5", r"\[0, 1\]"),
    (stats.binom(5.5, 0.5), "n", "5.5", "an integer"),
    (stats.poisson(-0.1), "mu", "-0.1", r"\[0, inf\)"),
    (stats.norm(np.nan, 1.0), "loc", "nan", "NaN"),
]
IDS = ["norm-scale", "gamma-a-batch", "t-df", "beta-b", "binom-p", "binom-n", "poisson-mu", "norm-loc"]


@pytest.mark.parametrize(("law", "parameter", "found", "rule"), INVALID, ids=IDS)
@pytest.mark.parametrize("method", ["auto", "exact", "mc"])
def test_entropy_raises_the_same_error_on_every_path(law, parameter: str, found: str, rule: str, method: str) -> None:
    with pytest.raises(InvalidArgumentError, match=rf"`p` = scipy\.stats\.\w+ has {parameter} = {found}.*{rule}"):
        klkit.entropy(law, method=method, n_samples=100, seed=0)


MEASURES = {
    "kl_divergence": lambda p, q, **o: klkit.kl_divergence(p, q, **o),
    "cross_entropy": lambda p, q, **o: klkit.cross_entropy(p, q, **o),
    "total_variation": lambda p, q, **o: klkit.total_variation(p, q, **o),
    "hellinger_distance": lambda p, q, **o: klkit.hellinger_distance(p, q, **o),
    "renyi_divergence": lambda p, q, **o: klkit.renyi_divergence(p, q, 0.5, **o),
    "js_distance": lambda p, q, **o: klkit.js_distance(p, q, **o),
}


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("method", ["auto", "mc"])
@pytest.mark.parametrize("side", ["p", "q"])
def test_pair_measures_name_the_bad_side(measure: str, method: str, side: str) -> None:
    good, bad = stats.norm(0.0, 1.0), stats.norm(0.0, -2.0)
    p, q = (bad, good) if side == "p" else (good, bad)
    with pytest.raises(InvalidArgumentError, match=rf"`{side}` = scipy\.stats\.norm has scale = -2\.0"):
        MEASURES[measure](p, q, method=method, n_samples=100, seed=0)


def test_boundary_values_scipy_accepts_are_accepted() -> None:
    """Closed domain ends (p = 0 and 1, μ = 0) are valid laws: exact answers, no error."""
    assert float(klkit.entropy(stats.binom(5, 0.0))) == 0.0
    assert float(klkit.entropy(stats.poisson(0.0))) == 0.0
    assert float(klkit.entropy(stats.bernoulli(1.0))) == 0.0


def test_valid_batch_passes_unchanged() -> None:
    h = klkit.entropy(stats.gamma([2.0, 3.0]))
    np.testing.assert_allclose(h, stats.gamma([2.0, 3.0]).entropy(), rtol=1e-13)
