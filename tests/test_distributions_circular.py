"""scipy's circular laws: closed forms over one period, or a refusal — never a Monte Carlo from wrapped samples.

scipy draws vonmises/vonmises_line samples in [−π, π] and wrapcauchy samples in [0, 2π] whatever
``loc`` and ``scale``, while the densities move and stretch with them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

import klkit
from klkit.errors import NotRegisteredError


def _period(d) -> tuple[float, float]:
    _, loc, scale = d.dist._parse_args(*d.args, **d.kwds)
    return float(loc) - math.pi * float(scale), float(loc) + math.pi * float(scale)


@pytest.mark.parametrize(
    ("kappa", "loc", "scale"), [(2.0, 0.0, 4.0), (0.5, 1.0, 1.0), (10.0, -2.0, 0.3), (1e-3, 0.0, 7.0)]
)
def test_von_mises_entropy_matches_quadrature_over_one_period(kappa: float, loc: float, scale: float) -> None:
    d = stats.vonmises(kappa, loc=loc, scale=scale)
    lo, hi = _period(d)
    reference = integrate.quad(lambda t: -d.pdf(t) * d.logpdf(t), lo, hi, epsabs=1e-13, epsrel=1e-13)[0]
    assert float(klkit.entropy(d)) == pytest.approx(reference, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(
    ("kp", "kq", "loc_p", "loc_q", "scale"), [(2.0, 0.7, 0.3, 2.0, 4.0), (5.0, 5.0, 0.0, 1.0, 0.5)]
)
def test_von_mises_kl_same_scale_matches_quadrature(
    kp: float, kq: float, loc_p: float, loc_q: float, scale: float
) -> None:
    p, q = stats.vonmises(kp, loc=loc_p, scale=scale), stats.vonmises(kq, loc=loc_q, scale=scale)
    lo, hi = _period(p)
    reference = integrate.quad(lambda t: p.pdf(t) * (p.logpdf(t) - q.logpdf(t)), lo, hi, epsabs=1e-13)[0]
    assert float(klkit.kl_divergence(p, q)) == pytest.approx(reference, rel=1e-10, abs=1e-13)


def test_von_mises_kl_across_scales_is_refused() -> None:
    p, q = stats.vonmises(2.0, scale=4.0), stats.vonmises(2.0, scale=3.0)
    with pytest.raises(NotRegisteredError, match="different circumference"):
        klkit.kl_divergence(p, q, method="exact")
    with pytest.raises(NotRegisteredError, match="refuses to sample"):  # 'auto' falls back on sampling, refused
        klkit.kl_divergence(p, q)


@pytest.mark.parametrize(
    "d",
    [
        stats.vonmises(2.0, scale=4.0),
        stats.vonmises_line(2.0, scale=4.0),
        stats.vonmises_line(2.0, loc=3.0),
        stats.wrapcauchy(0.5, loc=2.0),
        stats.wrapcauchy(0.5, scale=3.0),
    ],
    ids=["vonmises-scale", "vonmises_line-scale", "vonmises_line-loc", "wrapcauchy-loc", "wrapcauchy-scale"],
)
def test_monte_carlo_from_wrapped_samples_is_refused(d) -> None:
    with pytest.raises(NotRegisteredError, match=r"refuses to sample.*loc=0, scale=1"):
        klkit.entropy(d, method="mc", n_samples=1_000, seed=0)
    with pytest.raises(NotRegisteredError, match="refuses to sample"):
        klkit.kl_divergence(d, stats.norm(0, 10), n_samples=1_000, seed=0)


@pytest.mark.parametrize(
    ("d", "exact"),
    [
        (stats.wrapcauchy(0.5), math.log(2 * math.pi * (1 - 0.25))),  # log(2π(1 − c²))
        (stats.vonmises_line(2.0), float(stats.vonmises(2.0).entropy())),
        (stats.vonmises(2.0, loc=3.0), float(stats.vonmises(2.0).entropy())),  # periodic: loc is a rotation
    ],
    ids=["wrapcauchy", "vonmises_line", "vonmises-loc"],
)
def test_standard_circular_laws_still_sample_correctly(d, exact: float) -> None:
    e = klkit.entropy(d, method="mc", n_samples=100_000, seed=1)
    assert abs(float(e) - exact) < 5 * float(e.standard_error)
    assert np.isfinite(float(e.standard_error))
