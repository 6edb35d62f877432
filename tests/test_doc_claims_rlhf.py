"""The numbers of docs/rlhf.md: the estimators' formulas, the presets' clamps, float32's limits, what the
gradient tests check, and the lab's RLHF end points, each computed here; the numbers are read from the sentence."""

from __future__ import annotations

import ast
import json
import re

import mpmath
import numpy as np
import pytest

from _doc_numbers import ROOT, sentence_numbers

torch = pytest.importorskip("torch")
claim = pytest.mark.doc_claim
DOC = "docs/rlhf.md"


def _constants(test_file: str) -> dict[str, float]:
    """Module-level numeric constants of a test file (``N = 1_000_000``)."""
    tree = ast.parse((ROOT / "tests" / test_file).read_text(encoding="utf-8"))
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, int | float):
                    out[target.id] = node.value.value
    return out


@claim(DOC, "exact expectations and 10⁶ sampled tokens on a categorical policy")
@claim(DOC, "(tested to 1e-10 exactly and within\n1% on 10⁶ tokens at total variation 0.2)")
def test_gradient_tests_use_the_stated_sizes_and_tolerances():
    (tokens,) = sentence_numbers(DOC, "exact expectations and 10⁶ sampled tokens")
    exact_tol, pct, tokens2, tv = sentence_numbers(
        DOC, "(tested to 1e-10 exactly and within 1% on 10⁶ tokens at total variation 0.2)"
    )
    constants = _constants("test_rlhf_gradients.py")
    assert constants["N"] == tokens == tokens2
    assert constants["TV_OLD"] == tv
    source = (ROOT / "tests" / "test_rlhf_gradients.py").read_text(encoding="utf-8")
    body = source[source.index("def test_off_policy_corrected_surrogates_stay_unbiased") :]
    body = body.split("\n\n\n", 1)[0]
    assert re.search(rf"< {exact_tol:.0e}\b", body)
    assert re.search(rf"error < {pct / 100}\s*\*", body)


@claim(DOC, "Without it, the same surrogates are biased by 30–60% of\n‖∇KL‖ in the table below")
def test_uncorrected_off_policy_bias_range_is_the_tables():
    low, high = sentence_numbers(DOC, "biased by 30–60% of")
    text = (ROOT / DOC).read_text(encoding="utf-8")
    region = text[text.index("<!-- begin: rlhf-estimators -->") : text.index("<!-- end: rlhf-estimators -->")]
    header = next(line for line in region.splitlines() if "off-policy bias, uncorrected" in line)
    columns = [c.strip() for c in re.split(r"\s\|\s", header.strip("| "))]
    col = columns.index("off-policy bias, uncorrected")
    biases = [
        float(cells[col])
        for line in region.splitlines()
        if line.startswith("| loss |")
        for cells in [[c.strip() for c in re.split(r"\s\|\s", line.strip("| "))]]
    ]
    assert biases
    # the sentence's range is the table's, each end rounded to the nearest ten per cent
    assert round(min(biases) * 10) * 10 == low and round(max(biases) * 10) * 10 == high


@claim(DOC, "has the full gradient (exact to 1e-15 on the toy)")
@pytest.mark.parametrize("masked", [False, True], ids=["full", "eos"])
def test_sequence_surrogate_gradient_error_on_the_toy(masked):
    from klkit.rlhf import sequence_kl_surrogate
    from test_rlhf_sequence import EOS_MASK, Toy, expected, sequence_kl

    (tol,) = sentence_numbers(DOC, "(exact to 1e-15 on the toy)")
    toy = Toy()
    mask = EOS_MASK if masked else torch.ones_like(EOS_MASK)
    truth = toy.grad(sequence_kl(toy, mask))
    surrogate = sequence_kl_surrogate(toy.logp(toy.theta), toy.logp(toy.ref), mask)
    got = toy.grad(expected(toy, surrogate))
    assert float(truth.norm()) > 0.1
    assert float((got - truth).abs().max()) < tol


def _l(values):
    """Log-probabilities (≤ 0, as kl_penalty requires) and references whose log-ratios ℓ are ``values``."""
    ref = torch.full((len(values),), -40.0, dtype=torch.float64)
    logp = torch.tensor(values, dtype=torch.float64) + ref
    return logp, ref, logp - ref  # ℓ as the penalty computes it


@claim(DOC, "k1 = ℓ, k2 = ℓ²/2, k3 = e^(−ℓ) − 1 + ℓ")
@claim(DOC, "| ℓ, \\|ℓ\\|, ℓ²/2 | native |")
def test_k2_and_verl_mse_are_half_the_squared_log_ratio():
    from klkit.rlhf import kl_penalty

    (two,) = [x for x in sentence_numbers(DOC, "k1 = ℓ, k2 = ℓ²/2,") if x != 1]
    assert sentence_numbers(DOC, "| ℓ, \\|ℓ\\|, ℓ²/2 | native |") == [two]
    logp, ref, ell = _l([-3.0, -0.25, 0.0, 0.7, 5.0])
    for kwargs in ({"estimator": "k2"}, {"preset": "verl:mse"}):
        torch.testing.assert_close(kl_penalty(logp, ref, **kwargs).value, ell**2 / two, rtol=0, atol=0)
    k3 = kl_penalty(logp, ref, estimator="k3").value
    torch.testing.assert_close(k3, torch.exp(-ell) - 1 + ell, rtol=1e-14, atol=1e-15)


@claim(DOC, "| clamp((e^d − d) − 1, ±10), d = clamp(−ℓ, ±20) |")
@claim(DOC, "| ℓ, ℓ²/2, (e^d − 1) − d, each clamped to ±10 |")
def test_preset_clamps():
    from klkit.rlhf import PRESETS, kl_penalty

    *_, value_clamp, ratio_clamp = sentence_numbers(DOC, "| clamp((e^d − d) − 1, ±10), d = clamp(−ℓ, ±20) |")
    two, _, openrlhf_clamp = sentence_numbers(DOC, "| ℓ, ℓ²/2, (e^d − 1) − d, each clamped to ±10 |")
    assert PRESETS["verl:low_var_kl"].clamp.value == value_clamp
    assert PRESETS["verl:low_var_kl"].clamp.log_ratio == ratio_clamp
    logp, ref, ell = _l([-30.0, -6.0, 0.5, 6.0, 30.0])
    d = (-ell).clamp(-ratio_clamp, ratio_clamp)
    expected = ((torch.exp(d) - d) - 1).clamp(-value_clamp, value_clamp)
    torch.testing.assert_close(kl_penalty(logp, ref, preset="verl:low_var_kl").value, expected, rtol=0, atol=0)
    for name, formula in {
        "openrlhf:k1": ell,
        "openrlhf:k2": ell**2 / two,
        "openrlhf:k3": (torch.exp(-ell) - 1) + ell,
    }.items():
        assert PRESETS[name].clamp.value == openrlhf_clamp
        want = formula.clamp(-openrlhf_clamp, openrlhf_clamp)
        torch.testing.assert_close(kl_penalty(logp, ref, preset=name).value, want, rtol=1e-15, atol=0)


@claim(DOC, "(OpenRLHF's k3 in float32 below ℓ = −88)")
def test_float32_exp_overflows_below_minus_88():
    (ell,) = sentence_numbers(DOC, "(OpenRLHF's k3 in float32 below ℓ = −88)")
    ell = -ell if ell > 0 else ell  # the scanner reads the magnitude; the sign is the text's "−"
    with np.errstate(over="ignore"):
        assert np.isfinite(np.exp(np.float32(-ell)))  # e^d at d = 88: finite
        assert np.isinf(np.exp(np.float32(-ell + 1)))  # one below: e^89 overflows float32
    assert int(np.log(np.finfo(np.float32).max)) == -ell


@claim(DOC, "(a series below |d| = 1/2)")
def test_k3_series_radius():
    from klkit.estimators import sampled_kl

    one, two = sentence_numbers(DOC, "(a series below |d| = 1/2)")
    assert one / two == sampled_kl.SERIES_RADIUS


@claim(DOC, "keeps no correct digit in float32 for |d| below about 1e-4")
def test_naive_k3_loses_every_digit_below_1e_4_in_float32():
    (edge,) = sentence_numbers(DOC, "in float32 for |d| below about 1e-4")
    one = np.float32(1)

    def rel_error(d: float) -> float:
        d32 = np.float32(d)
        with mpmath.workdps(40):
            truth = float(mpmath.expm1(mpmath.mpf(float(d32))) - mpmath.mpf(float(d32)))
        return abs(float((np.exp(d32) - d32) - one) - truth) / truth

    grid = np.geomspace(1e-8, edge, 60)
    assert all(rel_error(s * d) >= 0.5 for d in grid for s in (1, -1))  # not one correct digit
    assert rel_error(10 * edge) < 0.1  # "about": ten times larger, the first digit is right


@claim(DOC, "KL (1.54 against 1.88 nats at seed 0) and a reverse KL that drifts to 1.7 times π*'s (3.14 against 1.81)")
@pytest.mark.slow
def test_lab_rlhf_end_points(tmp_path):
    pytest.importorskip("matplotlib")
    from klkit.lab import runner

    k3_forward, star_forward, seed, ratio, k3_reverse, star_reverse = sentence_numbers(
        DOC, "KL (1.54 against 1.88 nats at seed 0) and a reverse KL that drifts to 1.7 times π*'s (3.14 against 1.81)"
    )
    runner.run_lab(tmp_path, quick=False, only=["rlhf"], seed=int(seed), show_progress=False)
    numbers = json.loads((tmp_path / "results.json").read_text())["sections"]["rlhf"]["numbers"]
    k3 = next(m for m in numbers["methods"] if m["method"] == "k3 in the loss")
    star = numbers["optimum_reverse"]
    assert round(k3["forward_kl"], 2) == k3_forward and round(star["forward_kl"], 2) == star_forward
    assert round(k3["reverse_kl"], 2) == k3_reverse and round(star["reverse_kl"], 2) == star_reverse
    assert round(k3["reverse_kl"] / star["reverse_kl"], 1) == ratio


@claim(DOC, "(`verl:low_var_kl` and every `openrlhf:*` give 10 there, with gradient 0;")
@claim("docs/guide/rl-penalties.md", "`verl:low_var_kl` gives verl's 10 at a reference of `-inf`")
def test_clamped_presets_at_an_infinite_reference():
    from klkit.rlhf import PRESETS, kl_penalty

    value, zero = sentence_numbers(DOC, "give 10 there, with gradient 0;")
    assert sentence_numbers("docs/guide/rl-penalties.md", "gives verl's 10 at a reference of `-inf`") == [value]
    names = ["verl:low_var_kl", *(n for n in PRESETS if n.startswith("openrlhf:"))]
    assert len(names) > 1
    for dtype in (torch.float64, torch.float32):
        for name in names:
            logp = torch.tensor([-0.5, -2.0], dtype=dtype, requires_grad=True)
            ref = torch.tensor([float("-inf"), -1.0], dtype=dtype)
            penalty = kl_penalty(logp, ref, preset=name, placement="loss")
            assert float(penalty.value[0]) == value, (name, dtype)
            (grad,) = torch.autograd.grad(penalty.surrogate.sum(), logp)
            assert float(grad[0]) == zero and torch.isfinite(grad).all(), (name, dtype)
