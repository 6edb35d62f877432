"""Monte Carlo of distribution objects in bounded memory: batches, merged exactly (Chan et al.)."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from scipy import special, stats

import klkit
from klkit.distributions import montecarlo
from klkit.distributions.mc_stream import LogMeanExp, TermStream

torch = pytest.importorskip("torch")
td = torch.distributions


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(montecarlo, "BATCH_ELEMENTS", 4096)
    return 4096


def _peak_bytes(call) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "measure",
    [
        lambda n: klkit.entropy(stats.norm(0, 1), method="mc", n_samples=n, seed=0),
        lambda n: klkit.kl_divergence(stats.norm(0, 1), stats.t(4), n_samples=n, seed=0),
        lambda n: klkit.cross_entropy(stats.norm(0, 1), stats.t(4), n_samples=n, seed=0),
        lambda n: klkit.js_distance(stats.norm(0, 1), stats.t(4), n_samples=n, seed=0),
        lambda n: klkit.renyi_divergence(stats.norm(0, 1), stats.t(4), 0.5, n_samples=n, seed=0),
        lambda n: klkit.kl_divergence(
            stats.multivariate_normal(np.zeros(3)), stats.multivariate_t(np.zeros(3), df=5), n_samples=n, seed=0
        ),
    ],
    ids=["entropy", "kl", "cross_entropy", "js", "renyi", "kl-multivariate"],
)
def test_numpy_peak_memory_does_not_grow_with_n_samples(small_batches: int, measure) -> None:
    measure(1_000)  # imports and caches outside the measurement
    small, large = _peak_bytes(lambda: measure(20_000)), _peak_bytes(lambda: measure(200_000))
    # unbatched, the 200,000 float64 terms alone are 1.6 MB and the peak grows ~10×
    assert large < 1.5 * small + 200_000, (small, large)
    assert large < 200_000 * 8, (small, large)


def test_torch_batches_are_bounded_and_cover_n(small_batches: int, monkeypatch: pytest.MonkeyPatch) -> None:
    shapes: list[tuple[int, ...]] = []
    original = td.LKJCholesky.sample

    def recording(self, sample_shape=torch.Size()):
        out = original(self, sample_shape)
        shapes.append(tuple(out.shape))
        return out

    monkeypatch.setattr(td.LKJCholesky, "sample", recording)
    p = td.LKJCholesky(20, torch.tensor(4.0, dtype=torch.float64))
    e = klkit.entropy(p, method="mc", n_samples=1_000, seed=0)
    sampled = [s for s in shapes if len(s) == 3]  # (batch, 20, 20); log_prob's support probes draw one sample
    assert sum(s[0] for s in sampled) == 1_000
    assert max(math.prod(s) for s in sampled) <= small_batches
    assert len(sampled) > 1 and np.isfinite(float(e))


def test_batched_entropy_equals_the_unbatched_formula_on_the_same_samples(small_batches: int) -> None:
    """numpy draws from one generator: the batches are the unbatched sample, so the estimate must match it."""
    n, seed = 50_000, 3
    e = klkit.entropy(stats.norm(0.3, 2.0), method="mc", n_samples=n, seed=seed)
    x = stats.norm(0.3, 2.0).rvs(size=(n,), random_state=np.random.default_rng(seed))
    terms = -stats.norm(0.3, 2.0).logpdf(x)
    assert float(e) == pytest.approx(terms.mean(), rel=1e-13)
    assert float(e.standard_error) == pytest.approx(terms.std(ddof=1) / math.sqrt(n), rel=1e-10)


def test_chan_merge_equals_one_pass_mean_and_standard_error() -> None:
    rng = np.random.default_rng(0)
    terms = rng.standard_t(5, size=(10_001, 3)) * 1e3 + 1e6  # large offset: the merge must not cancel
    stream = TermStream(terms.shape[0])
    for chunk in np.array_split(terms, [7, 2_000, 2_001, 9_000]):
        stream.add(chunk)
    e = stream.estimate("test")
    np.testing.assert_allclose(e.value, terms.mean(0), rtol=1e-14)
    np.testing.assert_allclose(e.standard_error, terms.std(0, ddof=1) / math.sqrt(terms.shape[0]), rtol=1e-9)


def test_log_mean_exp_merge_equals_one_pass() -> None:
    rng = np.random.default_rng(1)
    log_w = rng.normal(0.0, 3.0, size=20_000)
    log_w[15_000] = 40.0  # the running shift must grow in a late batch
    mean = LogMeanExp(log_w.size)
    for chunk in np.array_split(log_w, 7):
        mean.add(chunk)
    log_mean, relative = mean.result()
    w = np.exp(log_w - log_w.max())
    assert float(log_mean) == pytest.approx(special.logsumexp(log_w) - math.log(log_w.size), rel=1e-13)
    assert float(relative) == pytest.approx(w.std(ddof=1) / math.sqrt(w.size) / w.mean(), rel=1e-9)


def test_torch_batched_kl_keeps_gradients_and_matches_the_closed_form(small_batches: int) -> None:
    loc = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    p, q = td.Normal(loc, 1.0), td.Normal(torch.tensor(0.0, dtype=torch.float64), 1.5)
    e = klkit.kl_divergence(p, q, method="mc", n_samples=40_000, seed=0)
    exact = klkit.kl_divergence(p, q, method="exact")
    assert abs(float(e.value.detach()) - float(exact.detach())) < 5 * float(e.standard_error)
    (grad,) = torch.autograd.grad(e.value, loc)
    # d/dμ KL = μ/σq² (reparameterised samples: the pathwise gradient of the same estimate)
    assert float(grad) == pytest.approx(0.5 / 1.5**2, abs=5 * 2 / 1.5**2 / math.sqrt(40_000) + 0.02)
