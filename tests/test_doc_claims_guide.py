"""The numbers of README.md and the guide pages (docs/guide/*.md), each computed here from the code or an
independent reference (mpmath, scipy quadrature, a KSG written from the paper); read from the sentence."""

from __future__ import annotations

import math
import re

import mpmath
import numpy as np
import pytest
from scipy import integrate, stats
from scipy.spatial import cKDTree
from scipy.special import digamma

from _doc_numbers import ROOT, sentence_numbers

claim = pytest.mark.doc_claim
README, CLI, EST, FIT = "README.md", "docs/guide/cli.md", "docs/guide/estimators.md", "docs/guide/fitting.md"


def _invoke(args):
    from typer.testing import CliRunner

    from klkit.cli.app import app

    return CliRunner().invoke(app, args, prog_name="klkit")


@claim(README, "in the command line's words (`--kind logits`) and\nexit with code 2.")
@claim(CLI, "and exits with code 2;")
@claim(README, "any other name is an error, exit 2")
def test_cli_errors_exit_with_the_documented_code(tmp_path):
    (code,) = sentence_numbers(README, "exit with code 2.")
    assert sentence_numbers(CLI, "and exits with code 2;") == [code]
    (lab_code,) = sentence_numbers(README, "any other name is an error, exit 2")
    for args, want in [
        (["measure", "--p", "0.5,0.5", "--q", "0.9,0.1", "--kind", "bogus"], code),
        (["measure", "--p", "0.5,0.6", "--q", "0.9,0.1"], code),  # a value error, not a usage error
        (["bogus"], code),
        (["lab", "--out", str(tmp_path / "lab"), "--only", "bogus"], lab_code),
    ]:
        done = _invoke(args)
        assert done.exit_code == want, (args, done.output)
        assert len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)


@claim(README, "(86 finite pairs, 32 of them missing from torch")
def test_registry_counts():
    from klkit.cli.pairs import pairs_table

    finite, missing = sentence_numbers(README, "(86 finite pairs, 32 of them missing from torch")
    table = pairs_table()
    assert table["finite_pairs"] == finite
    assert sum(1 for r in table["pairs"] if r["finite"] and r["in_torch"] is False) == missing


@claim(README, "the VAE's KL, stable for logvar in\n[−30, 30]")
@claim("docs/guide/training.md", "stable for `logvar` in [−30, 30]")
def test_gaussian_kl_standard_normal_is_accurate_over_the_stated_range():
    torch = pytest.importorskip("torch")
    from klkit.distributions import gaussian_kl_standard_normal

    low, high = sentence_numbers(README, "stable for logvar in [−30, 30]")
    assert sentence_numbers("docs/guide/training.md", "stable for `logvar` in [−30, 30]") == [low, high]
    low = -low if low > 0 else low  # the scanner reads magnitudes; the text's "−" is the sign
    inner = np.geomspace(1e-9, 1.0, 40)
    grid = np.unique(np.concatenate([np.linspace(low, high, 61), inner, -inner, [0.0]]))
    mu = np.array([0.0, 0.3])
    for dtype, tol in ((torch.float64, 1e-13), (torch.float32, 1e-6)):
        lv = torch.tensor(grid, dtype=dtype)
        for m in mu:
            got = gaussian_kl_standard_normal(torch.full_like(lv, float(m)), lv).double().numpy()
            with mpmath.workdps(50):
                want = [
                    float((mpmath.mpf(float(m)) ** 2 + mpmath.expm1(mpmath.mpf(float(v))) - mpmath.mpf(float(v))) / 2)
                    for v in lv.double().numpy()
                ]
            want = np.array(want)
            nz = want > 0
            assert np.all(np.isfinite(got))
            rel = np.abs(got[nz] - want[nz]) / want[nz]
            assert rel.max() < tol, (dtype, m, float(grid[nz][rel.argmax()]), rel.max())


@claim(README, "on 1e7 and 1e4 × 1000 float64 arrays")
def test_measures_benchmark_sizes():
    n, rows, cols = sentence_numbers(README, "on 1e7 and 1e4 × 1000 float64 arrays")
    source = (ROOT / "benchmarks" / "measures.py").read_text(encoding="utf-8")
    full = re.search(r'else:\s*\n\s*sizes = \{"n": ([\d_]+), "rows": ([\d_]+), "cols": ([\d_]+)', source)
    assert full, "benchmarks/measures.py no longer sets its full sizes where this test looks"
    assert tuple(int(g.replace("_", "")) for g in full.groups()) == (n, rows, cols)


@claim(README, "against the torch or numpy call each replaces, at 1 and 2 threads.")
def test_training_loop_benchmark_threads():
    counts = sentence_numbers(README, "at 1 and 2 threads.")
    source = (ROOT / "benchmarks" / "training_loop.py").read_text(encoding="utf-8")
    found = re.search(r"threads = \[t for t in \(([\d, ]+)\)", source)
    assert found and [float(t) for t in found.group(1).split(",")] == counts


@claim(EST, "k2's bias shows: 0.133 against the true 0.125")
def test_k2_bias_example():
    from klkit.estimators import mc_kl

    shown, true = sentence_numbers(EST, "k2's bias shows: 0.133 against the true 0.125")
    assert true == 0.5**2 / 2  # KL(N(0, 1) ‖ N(0.5, 1)) = Δμ²/2
    x = np.random.default_rng(0).normal(size=100_000)
    est = mc_kl(-0.5 * x**2, -0.5 * (x - 0.5) ** 2, estimator="k2")
    assert round(float(est.value), 3) == shown
    assert round((float(est.value) - true) / float(est.standard_error)) == 13  # "thirteen standard errors away"


@claim(
    EST,
    "k3 = e^d − 1 − d is computed from a series below\n|d| = ½, where `expm1(d) − d` cancels "
    "(in float32 that form is off by 100 % at d = 1e-8)",
)
@claim(EST, "within 2 units in the last place of mpmath's value over d ∈ [−30, 30] in float32 and float64")
def test_k3_series_and_accuracy():
    from klkit.estimators import sampled_kl

    (radius,) = [x for x in sentence_numbers(EST, "computed from a series below |d| = ½") if x != 1]
    assert radius == sampled_kl.SERIES_RADIUS
    pct, d = sentence_numbers(EST, "that form is off by 100 % at d = 1e-8")
    d32 = np.float32(d)
    with mpmath.workdps(40):
        truth = float(mpmath.expm1(mpmath.mpf(float(d32))) - mpmath.mpf(float(d32)))
    assert round(100 * abs(float(np.expm1(d32) - d32) - truth) / truth) == pct
    ulps, low, high = sentence_numbers(EST, "within 2 units in the last place of mpmath's value over d ∈ [−30, 30]")
    low = -low if low > 0 else low
    inner = np.geomspace(1e-12, 1.0, 200)
    grid = np.concatenate([np.linspace(low, high, 601), inner, -inner])
    for dtype in (np.float32, np.float64):
        d = grid.astype(dtype)
        got = np.asarray(sampled_kl.k3(d), dtype=dtype)
        with mpmath.workdps(60):
            want = np.array([mpmath.expm1(mpmath.mpf(float(v))) - mpmath.mpf(float(v)) for v in d], dtype=np.float64)
        want = want.astype(dtype)
        err = np.abs(got.astype(np.float64) - want.astype(np.float64)) / np.spacing(want).astype(np.float64)
        assert err.max() <= ulps, (dtype, float(d[err.argmax()]), err.max())


def _ksg1(x, y, k=3):
    """Kraskov–Stögbauer–Grassberger estimator 1 (max-norm, standardised margins), from the paper."""
    x = ((x - x.mean()) / x.std())[:, None]
    y = ((y - y.mean()) / y.std())[:, None]
    xy = np.hstack([x, y])
    eps = cKDTree(xy).query(xy, k + 1, p=np.inf)[0][:, -1]
    nx = np.array([len(c) - 1 for c in cKDTree(x).query_ball_point(x, np.nextafter(eps, 0), p=np.inf)])
    ny = np.array([len(c) - 1 for c in cKDTree(y).query_ball_point(y, np.nextafter(eps, 0), p=np.inf)])
    return digamma(k) + digamma(len(x)) - np.mean(digamma(nx + 1) + digamma(ny + 1))


@claim(
    EST,
    "of the ρ = 0.6 Gaussian pairs below, rounded to 2 decimals, is 0.265 instead of 0.223\nwithout de-quantisation.",
)
def test_ksg_on_rounded_data_without_dequantisation():
    from klkit.estimators import mutual_information

    rho, decimals, biased, truth = sentence_numbers(
        EST, "of the ρ = 0.6 Gaussian pairs below, rounded to 2 decimals, is 0.265 instead of 0.223"
    )
    assert round(-0.5 * np.log(1 - rho**2), 3) == truth
    rng = np.random.default_rng(0)  # the page's example below
    x = rng.normal(size=2000)
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=2000)
    xr, yr = np.round(x, int(decimals)), np.round(y, int(decimals))
    assert round(_ksg1(xr, yr), 3) == biased
    # the reference agrees with klkit where there are no ties, and klkit's de-quantised estimate is near the truth
    assert _ksg1(x, y) == pytest.approx(float(mutual_information(x, y, method="ksg").value), abs=1e-9)
    fixed = mutual_information(xr, yr, method="ksg")
    assert abs(float(fixed.value) - truth) < 2 * float(fixed.standard_error) < abs(biased - truth)


@claim(FIT, "KL(q‖p) ≈ log 2 (it misses half the\nmass), while KL(p‖q) is large (≈ 8 nats")
def test_one_mode_fit_kls_by_quadrature():
    two, eight = sentence_numbers(FIT, "KL(q‖p) ≈ log 2 (it misses half the mass), while KL(p‖q) is large (≈ 8 nats")
    p = lambda t: 0.5 * stats.norm.pdf(t, -3, 1) + 0.5 * stats.norm.pdf(t, 3, 1)  # noqa: E731
    q = stats.norm(3, 1)
    reverse = integrate.quad(lambda t: q.pdf(t) * (q.logpdf(t) - np.log(p(t))), -15, 20, points=[3])[0]
    forward = integrate.quad(lambda t: p(t) * (np.log(p(t)) - q.logpdf(t)), -20, 20, points=[-3, 3], limit=200)[0]
    assert reverse == pytest.approx(np.log(two), abs=0.01)
    assert round(forward) == eight


@claim("docs/guide/coming-from.md", "(in nats by default, at most log 2)")
def test_js_divergence_is_at_most_log_2():
    import klkit

    (two,) = sentence_numbers("docs/guide/coming-from.md", "(in nats by default, at most log 2)")
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.full(5, 0.3), size=2000), rng.dirichlet(np.full(5, 0.3), size=2000)
    assert np.all(np.asarray(klkit.js_divergence(p, q)) <= np.log(two) + 1e-15)
    assert float(klkit.js_divergence([1.0, 0.0], [0.0, 1.0])) == pytest.approx(np.log(two), rel=1e-15)


@claim("docs/guide/kinds.md", "very confident models (logits of ±1000) give exact answers")
def test_confident_logits_are_exact():
    import klkit

    (big,) = sentence_numbers("docs/guide/kinds.md", "(logits of ±1000)")
    logits = np.array([big, -big, 0.0])
    with mpmath.workdps(60):
        z = [mpmath.mpf(float(v)) for v in logits]
        lse = mpmath.log(sum(mpmath.exp(v) for v in z))
        logp = [v - lse for v in z]
        entropy = float(-sum(mpmath.exp(v) * v for v in logp))
        p = [mpmath.mpf(0.5), mpmath.mpf(0.25), mpmath.mpf(0.25)]
        cross = float(-sum(a * b for a, b in zip(p, logp, strict=True)))
    assert float(klkit.entropy(logits, kind="logits")) == pytest.approx(entropy, rel=1e-12, abs=1e-300)
    assert float(klkit.cross_entropy([0.5, 0.25, 0.25], logits, q_kind="logits")) == pytest.approx(cross, rel=1e-15)
    with np.errstate(under="ignore"):
        assert np.exp(-2 * big) == 0.0  # where softmax underflows


@claim("docs/guide/losses.md", "in bfloat16 it\n  would keep 8 significant bits, 2 to 3 decimal digits")
def test_bfloat16_significant_digits():
    torch = pytest.importorskip("torch")

    bits, low, high = sentence_numbers("docs/guide/losses.md", "would keep 8 significant bits, 2 to 3 decimal digits")
    assert 1 - math.log2(torch.finfo(torch.bfloat16).eps) == bits  # the stored mantissa bits and the implicit one
    x = torch.tensor(np.geomspace(0.01, 100.0, 20_001), dtype=torch.float64)
    error = (x.to(torch.bfloat16).double() - x).abs()

    def worst(digits: float) -> float:  # the largest error in units of the last of `digits` significant digits
        return float((error / 10.0 ** (torch.floor(torch.log10(x)) - (digits - 1))).max())

    assert worst(low) <= 0.5 < worst(high)  # every value right to 2 digits; not every value to 3
