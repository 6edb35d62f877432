"""Discrete entropy / KL / cross-entropy from samples or counts, against the known truth.

Tolerances (documented in the tests): each bias check averages R = 1000 independent
multinomial draws, so the mean of the estimates has a standard error ``sd / √R``; a
method is "unbiased to first order" when its mean lies within 4 such standard errors
of the truth, and the plug-in bias it corrects is well outside that band.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from klkit.estimators import Estimate, discrete_cross_entropy, discrete_entropy, discrete_kl_divergence

R = 1000  # repeated draws for bias checks


def zipf(k: int, s: float = 1.0) -> np.ndarray:
    p = 1.0 / np.arange(1, k + 1) ** s
    return p / p.sum()


def repeated(method: str, p: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    counts = np.random.default_rng(seed).multinomial(n, p, size=R)
    results = [discrete_entropy(counts=c, method=method) for c in counts]
    return np.array([float(e) for e in results]), np.array([float(e.standard_error) for e in results])


# --- entropy: accuracy and bias -----------------------------------------------------------------


@pytest.mark.parametrize("n", [1_000, 10_000])
def test_miller_madow_removes_the_plugin_bias(n):
    p = zipf(50)
    truth = stats.entropy(p)  # independent reference
    plugin, _ = repeated("plugin", p, n)
    mm, se = repeated("miller_madow", p, n)
    band = 4 * mm.std(ddof=1) / math.sqrt(R)
    assert abs(mm.mean() - truth) < band
    assert abs(mm.mean() - truth) < abs(plugin.mean() - truth)
    if n == 1_000:  # plug-in bias ≈ -(m-1)/(2n) = -0.025 nats, far outside the band
        assert plugin.mean() - truth < -band
    # The reported standard error describes the spread of the estimates within 20%.
    assert np.mean(se) == pytest.approx(mm.std(ddof=1), rel=0.2)


@pytest.mark.parametrize("n", [1_000, 10_000])
def test_chao_shen_is_less_biased_than_plugin(n):
    p = zipf(50)
    truth = stats.entropy(p)
    plugin, _ = repeated("plugin", p, n, seed=1)
    cs, _ = repeated("chao_shen", p, n, seed=1)
    assert abs(cs.mean() - truth) <= abs(plugin.mean() - truth) + 1e-12
    assert abs(cs.mean() - truth) < 0.025  # at n=1e3 the plug-in is off by ~0.028


def test_chao_shen_handles_undersampled_data():
    # 200 symbols, 150 samples: the plug-in misses most of the tail; Chao-Shen's coverage adjustment does not.
    p = zipf(200, 0.5)
    truth = stats.entropy(p)
    plugin, _ = repeated("plugin", p, 150, seed=2)
    cs, _ = repeated("chao_shen", p, 150, seed=2)
    assert plugin.mean() - truth < -0.4
    assert abs(cs.mean() - truth) < 0.25 * abs(plugin.mean() - truth)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 1000), min_size=1, max_size=30).filter(lambda c: sum(c) > 0))
def test_plugin_equals_entropy_of_frequencies(counts):
    c = np.array(counts)
    e = discrete_entropy(counts=c)
    assert float(e) == pytest.approx(stats.entropy(c / c.sum()), abs=1e-12)
    mm = discrete_entropy(counts=c, method="miller_madow")
    assert float(mm) - float(e) == pytest.approx((np.count_nonzero(c) - 1) / (2 * c.sum()))


def test_fair_coin_is_one_bit_and_base_changes_scale():
    e = discrete_entropy(["H", "T"] * 10, base=2)
    assert float(e) == pytest.approx(1.0) and float(e.standard_error) == pytest.approx(0.0, abs=1e-7)
    nats = discrete_entropy(counts=[3, 5, 2])
    assert float(discrete_entropy(counts=[3, 5, 2], base=2)) == pytest.approx(float(nats) / math.log(2))


def test_samples_counts_and_mappings_agree():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 7, 500)
    counts = np.bincount(x)
    mapping = {int(s): int(c) for s, c in zip(*np.unique(x, return_counts=True), strict=True)}
    for method in ("plugin", "miller_madow", "chao_shen"):
        a = discrete_entropy(x, method=method)
        b = discrete_entropy(counts=counts, method=method)
        c = discrete_entropy(counts=mapping, method=method)
        d = discrete_entropy(torch.as_tensor(x), method=method)
        assert float(a) == pytest.approx(float(b)) == pytest.approx(float(c)) == pytest.approx(float(d))
        assert a.n_samples == 500 and isinstance(a, Estimate)


def test_rows_of_a_2d_array_are_joint_symbols():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 2, (4000, 2))  # two independent fair bits: joint entropy 2 bits
    assert float(discrete_entropy(x, base=2)) == pytest.approx(2.0, abs=0.01)


# --- KL and cross-entropy -----------------------------------------------------------------------


@pytest.mark.parametrize("n", [1_000, 10_000])
def test_kl_miller_madow_removes_plugin_bias(n):
    p, q = zipf(20), zipf(20, 0.6)
    truth = float(np.sum(p * np.log(p / q)))
    assert truth == pytest.approx(stats.entropy(p, q))
    rng = np.random.default_rng(5)
    cp, cq = rng.multinomial(n, p, size=R), rng.multinomial(n, q, size=R)
    plugin = np.array([float(discrete_kl_divergence(p_counts=a, q_counts=b, unseen="raise")) for a, b in zip(cp, cq)])
    mm = np.array(
        [
            float(discrete_kl_divergence(p_counts=a, q_counts=b, method="miller_madow", unseen="raise"))
            for a, b in zip(cp, cq)
        ]
    )
    band = 4 * mm.std(ddof=1) / math.sqrt(R)
    assert abs(mm.mean() - truth) < band
    assert plugin.mean() - truth > abs(mm.mean() - truth)  # the plug-in is biased upward


def test_kl_standard_error_matches_spread():
    p, q = zipf(20), zipf(20, 0.6)
    rng = np.random.default_rng(6)
    cp, cq = rng.multinomial(5000, p, size=R), rng.multinomial(5000, q, size=R)
    est = [discrete_kl_divergence(p_counts=a, q_counts=b) for a, b in zip(cp, cq)]
    spread = np.std([float(e) for e in est], ddof=1)
    assert np.mean([float(e.standard_error) for e in est]) == pytest.approx(spread, rel=0.2)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 500), st.integers(1, 500)), min_size=1, max_size=20))
def test_cross_entropy_is_entropy_plus_kl_and_kl_non_negative(pairs):
    cp, cq = np.array(pairs).T
    h = float(discrete_entropy(counts=cp))
    kl = float(discrete_kl_divergence(p_counts=cp, q_counts=cq))
    ce = float(discrete_cross_entropy(p_counts=cp, q_counts=cq))
    assert kl >= -1e-12
    assert ce == pytest.approx(h + kl, abs=1e-9)
    assert float(discrete_kl_divergence(p_counts=cp, q_counts=cp)) == pytest.approx(0.0, abs=1e-12)


def test_symbols_are_aligned_by_identity_not_position():
    e = discrete_kl_divergence(["a", "a", "b", "c"], ["c", "b", "b", "a"])
    p, q = np.array([0.5, 0.25, 0.25]), np.array([0.25, 0.5, 0.25])
    assert float(e) == pytest.approx(float(np.sum(p * np.log(p / q))))
    same = discrete_kl_divergence(p_counts={"a": 2, "b": 1, "c": 1}, q_counts={"c": 1, "b": 2, "a": 1})
    assert float(same) == pytest.approx(float(e))
    # symbols only in Q contribute nothing to KL(P‖Q) but are part of Q's normalisation
    extra = discrete_kl_divergence(["a", "b"], ["a", "b", "z", "z"])
    assert float(extra) == pytest.approx(math.log(2))


def test_unseen_in_q_rules():
    p_samples, q_samples = ["a", "b", "b"], ["a", "a", "a"]
    inf = discrete_kl_divergence(p_samples, q_samples)
    assert float(inf) == math.inf and math.isnan(inf.standard_error)
    assert float(discrete_cross_entropy(p_samples, q_samples)) == math.inf
    with pytest.raises(ValueError, match=r"unseen in Q, first \['b'\].*unseen='pseudocount'"):
        discrete_kl_divergence(p_samples, q_samples, unseen="raise")
    # add-one: Q counts a: 3+1, b: 0+1 → q = (0.8, 0.2); p = (1/3, 2/3)
    smooth = discrete_kl_divergence(p_samples, q_samples, unseen="pseudocount")
    p, q = np.array([1 / 3, 2 / 3]), np.array([0.8, 0.2])
    assert float(smooth) == pytest.approx(float(np.sum(p * np.log(p / q))))
    half = discrete_cross_entropy(p_samples, q_samples, unseen="pseudocount", pseudocount=0.5)
    q = np.array([3.5, 0.5]) / 4
    assert float(half) == pytest.approx(float(-np.sum(p * np.log(q))))


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, r"exactly one of `samples` and `counts`; found neither"),
        ({"samples": [1, 2], "counts": [1, 1]}, r"found both"),
        ({"samples": []}, r"`samples` must be a non-empty"),
        ({"samples": [1.0, np.nan]}, r"`samples` must not contain NaN"),
        ({"counts": [1, -2]}, r"`counts` must hold non-negative integer counts.*-2"),
        ({"counts": [0.5, 0.5]}, r"non-negative integer counts.*not probabilities"),
        ({"counts": [0, 0]}, r"positive total"),
        ({"counts": [[1, 2]]}, r"1-D array of counts"),
        ({"counts": [1, 2], "method": "nsb"}, r"`method` must be one of 'plugin', 'miller_madow', 'chao_shen'"),
        ({"counts": [1, 2], "base": 0}, r"`base`"),
    ],
)
def test_entropy_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        discrete_entropy(**kwargs)


def test_divergence_errors():
    with pytest.raises(ValueError, match=r"same length.*3 and 2"):
        discrete_kl_divergence(p_counts=[1, 2, 3], q_counts=[1, 2])
    with pytest.raises(TypeError, match="aligned by position"):
        discrete_kl_divergence([1, 2], q_counts=[1, 2])
    with pytest.raises(ValueError, match=r"`unseen` must be one of"):
        discrete_kl_divergence([1, 2], [1, 2], unseen="drop")
    with pytest.raises(ValueError, match=r"`pseudocount` must be a finite number > 0"):
        discrete_cross_entropy([1, 2], [1, 2], unseen="pseudocount", pseudocount=0)
    with pytest.raises(ValueError, match=r"`method` must be one of 'plugin', 'miller_madow'"):
        discrete_kl_divergence([1, 2], [1, 2], method="chao_shen")
    with pytest.raises(ValueError, match="exactly one of `q_samples` and `q_counts`"):
        discrete_kl_divergence([1, 2])
