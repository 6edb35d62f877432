"""The numbers of docs/guide/registry.md: Monte Carlo's batch size, the Pareto-k̂ rule, and the batched-Wishart
difference from torch, each computed here (torch's own functions and a plain Monte Carlo are the references)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from _doc_numbers import sentence_numbers

claim = pytest.mark.doc_claim
DOC = "docs/guide/registry.md"


@claim(DOC, "batches of at most 2¹⁸ array elements")
def test_monte_carlo_batch_size():
    from klkit.distributions import montecarlo

    (elements,) = sentence_numbers(DOC, "batches of at most 2¹⁸ array elements")
    assert elements == montecarlo.BATCH_ELEMENTS
    assert max(montecarlo.batch_sizes(10**6, 1)) == elements
    assert max(montecarlo.batch_sizes(10**6, 4)) * 4 == elements


@claim(DOC, "above the published threshold min(1 − 1/log₁₀ S, 0.7), checked from 10,000 samples on")
@claim(DOC, "Terms with 0.5 < k ≤ 0.7 (infinite variance, finite\nmean, error shrinking like n^−(1−k)) do not warn")
def test_pareto_khat_rule():
    from klkit.distributions import mc_diagnostics as mcd
    from klkit.errors import MonteCarloWarning

    *_, cap, minimum = sentence_numbers(DOC, "min(1 − 1/log₁₀ S, 0.7), checked from 10,000 samples")
    for s in (10**3, 5_000, 10**4, 10**5, 10**7):
        assert mcd.khat_threshold(s) == pytest.approx(min(1 - 1 / math.log10(s), cap), rel=1e-15)
    assert minimum == mcd.MIN_DIAGNOSED
    low, high = sentence_numbers(DOC, "Terms with 0.5 < k ≤ 0.7")
    assert high == cap

    def warns(k: float, n: int) -> bool:
        rng = np.random.default_rng(1)
        tracker = mcd.TailTracker(n, ())
        tracker.update(rng.pareto(1 / k, n))  # P(X > x) ~ x^(-1/k): tail shape k
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tracker.warn_if_unreliable("KL", "")
        return any(issubclass(w.category, MonteCarloWarning) for w in caught)

    n = 100_000
    assert not warns((low + high) / 2, n)  # infinite variance, finite mean: no warning
    assert warns(0.9, n)  # beyond the threshold: a warning
    assert not warns(0.9, int(minimum) - 1)  # too few samples to judge: no diagnosis


@claim(DOC, "(−0.777 for Wishart(4, I) ‖\nWishart(3.5, 2I) in a batch of two, where Monte Carlo gives 0.479)")
@pytest.mark.slow
def test_batched_wishart_difference_from_torch():
    torch = pytest.importorskip("torch")
    import torch.distributions as td
    from torch.distributions.kl import _kl_expfamily_expfamily

    import klkit

    torch_kl, df_p, df_q, _, mc = sentence_numbers(
        DOC, "(−0.777 for Wishart(4, I) ‖ Wishart(3.5, 2I) in a batch of two, where Monte Carlo gives 0.479)"
    )
    torch_kl = -torch_kl  # the text's "−"
    eye = torch.eye(2, dtype=torch.float64).expand(2, 2, 2)
    p = td.Wishart(torch.tensor([df_p, 5.0], dtype=torch.float64), covariance_matrix=eye)
    q = td.Wishart(torch.tensor([df_q, 6.0], dtype=torch.float64), covariance_matrix=2 * eye)
    assert round(float(_kl_expfamily_expfamily(p, q)[0].detach()), 3) == torch_kl  # torch differentiates internally
    with torch.random.fork_rng():
        torch.manual_seed(0)
        x = p.sample((100_000,))
    terms = p.log_prob(x) - q.log_prob(x)
    mean, se = terms.mean(0), terms.std(0) / math.sqrt(terms.shape[0])
    assert abs(float(mean[0]) - mc) < 3 * float(se[0]) + 5e-4  # the text's 0.479, to its rounding
    assert abs(float(klkit.kl_divergence(p, q)[0]) - float(mean[0])) < 5 * float(se[0])
