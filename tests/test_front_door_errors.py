"""The front door refuses what it cannot measure with klkit's own errors: each names the argument, what was found
and the fix. Mixed arrays and distribution objects, options of one given to the other, `base` for unitless
measures, and inputs whose values klkit cannot read (ragged, meta, sparse, nested, strings, objects, dates)."""

from __future__ import annotations

import inspect
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as st
import torch

import klkit
from klkit.errors import InvalidArgumentError, ShapeError

NORMAL = torch.distributions.Normal(torch.tensor(0.0), torch.tensor(1.0))
OTHER = torch.distributions.Normal(torch.tensor(1.0), torch.tensor(2.0))
PAIRS = ["cross_entropy", "kl_divergence", "js_divergence", "decompose", "total_variation", "hellinger_distance"]
PAIRS += ["js_distance"]


def _call(name, p, q, **options):
    if name == "entropy":
        return klkit.entropy(p, **options)
    if name == "renyi_divergence":
        return klkit.renyi_divergence(p, q, 2.0, **options)
    if name == "f_divergence":
        return klkit.f_divergence(p, q, "chi2", **options)
    return getattr(klkit, name)(p, q, **options)


ALL = ["entropy", *PAIRS, "renyi_divergence", "f_divergence"]


@pytest.mark.parametrize("name", [n for n in ALL if n != "entropy"])
@pytest.mark.parametrize("order", ["array first", "object first"])
def test_arrays_mixed_with_distribution_objects_say_what_was_found(name, order):
    p, q = (np.array([0.5, 0.5]), NORMAL) if order == "array first" else (NORMAL, [0.5, 0.5])
    with pytest.raises(TypeError) as info:
        _call(name, p, q)
    message = str(info.value)
    assert f"`{name}` needs arrays or distribution objects, not both" in message
    assert "torch.distributions.Normal" in message and ("a numpy array" in message or "a list" in message)
    assert "got :" not in message and "Pass arrays for both" in message


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("option", [{"n_samples": 10}, {"seed": 0}, {"method": "mc"}])
def test_distribution_options_on_arrays_are_refused(name, option):
    (key,) = option
    with pytest.raises(TypeError, match=rf"`{name}` got `{key}`: options for distribution objects.*Drop `{key}`"):
        _call(name, [0.5, 0.5], [0.25, 0.75], **option)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "option", [{"kind": "logits"}, {"axis": 0}, {"validate": False}, {"q_kind": "log_probs"}], ids=str
)
@pytest.mark.parametrize("library", ["torch", "scipy"])
def test_array_options_on_distribution_objects_are_refused(name, option, library):
    if name == "entropy" and "q_kind" in option:
        pytest.skip("entropy has no q_kind")
    p, q = (NORMAL, OTHER) if library == "torch" else (st.norm(0, 1), st.norm(1, 2))
    (key,) = option
    with pytest.raises(TypeError, match=rf"`{name}` got {key}=.*for arrays only.*Drop `{key}` for distribution"):
        _call(name, p, q, **option)


@pytest.mark.parametrize("name", ["kl_divergence", "total_variation", "entropy"])
def test_array_options_left_at_their_defaults_are_accepted_for_distribution_objects(name):
    exact = {"kl_divergence": 0.5 * (4 + 1 - 1) / 4 + np.log(2) - 0.5 * 1, "entropy": 0.5 * np.log(2 * np.pi * np.e)}
    value = float(_call(name, NORMAL, OTHER, kind="probs", axis=-1, validate=True))
    if name in exact:  # KL(N(0,1)‖N(1,2)) = log 2 + (1 + 1)/(2·4) − ½; H(N(0,1)) = ½ log 2πe
        expected = np.log(2) + (1 + 1) / 8 - 0.5 if name == "kl_divergence" else exact[name]
        assert abs(value - expected) < 1e-6
    else:
        assert 0 < value < 1


@pytest.mark.parametrize("name", ["total_variation", "hellinger_distance", "f_divergence"])
@pytest.mark.parametrize("inputs", ["arrays", "objects"])
def test_unitless_measures_refuse_base_and_say_why(name, inputs):
    p, q = ([0.5, 0.5], [0.25, 0.75]) if inputs == "arrays" else (NORMAL, OTHER)
    with pytest.raises(TypeError) as info:
        _call(name, p, q, base=2)
    message = str(info.value)
    assert f"`{name}` takes no `base`" in message and "found base=2" in message and "Drop `base`" in message
    assert "unknown keyword" not in message


def test_readme_says_which_functions_take_base_as_the_signatures_do():
    readme = Path(__file__).resolve().parents[1].joinpath("README.md").read_text()
    sentence = re.search(r"where the measure has a unit, `base=2` for bits.*?refuse `base`", readme, re.S)
    assert sentence, "README must say which functions take `base`"
    refused = set(re.findall(r"`(\w+)`", sentence.group(0).split("have none")[0].split("bits (any base > 1);")[-1]))
    public = [n for n in klkit.__all__ if callable(getattr(klkit, n)) and not n[0].isupper()]
    takes_base = {n for n in public if "base" in inspect.signature(getattr(klkit, n)).parameters}
    measures = {n for n in public if "axis" in inspect.signature(getattr(klkit, n)).parameters}
    assert refused == {"total_variation", "hellinger_distance", "f_divergence"}
    assert refused.isdisjoint(takes_base)
    assert measures - refused - {"normalize"} <= takes_base


RAGGED = [[0.5, 0.5], [1.0]]


@pytest.mark.parametrize("name", ["entropy", "kl_divergence", "total_variation", "renyi_divergence"])
def test_ragged_lists_get_klkits_error(name):
    with pytest.raises(ShapeError, match=r"`p` must be a rectangular array.*ragged.*Pad the rows"):
        _call(name, RAGGED, RAGGED)
    with pytest.raises(ShapeError, match=r"`pxy` must be a rectangular array"):
        klkit.mutual_information(RAGGED)


@pytest.mark.parametrize("name", ["entropy", "kl_divergence", "js_distance", "renyi_divergence"])
def test_tensors_without_readable_values_get_klkits_errors(name):
    meta = torch.tensor([0.5, 0.5], device="meta")
    with pytest.raises(InvalidArgumentError, match=r"`p` must hold values to be validated; found a tensor on the meta"):
        _call(name, meta, meta)
    for kind in ("probs", "log_probs", "logits"):  # without validation a meta tensor propagates its shape
        with pytest.raises(InvalidArgumentError, match=r"Pass validate=False to propagate shapes only"):
            _call(name, meta, meta, kind=kind)
        assert _call(name, meta, meta, kind=kind, validate=False).device.type == "meta"
    sparse = torch.tensor([0.5, 0.5]).to_sparse()
    with pytest.raises(TypeError, match=r"`p` must be a dense \(strided\) tensor; found layout torch.sparse_coo"):
        _call(name, sparse, sparse)
    with warnings.catch_warnings():  # torch: "nested tensors are in prototype stage" (once per process)
        warnings.simplefilter("ignore", UserWarning)
        nested = torch.nested.nested_tensor([torch.tensor([0.5, 0.5]), torch.tensor([1.0])])
    with pytest.raises(ShapeError, match=r"`p` must be a rectangular tensor; found a nested"):
        _call(name, nested, nested)


@pytest.mark.parametrize(
    ("values", "advice"),
    [
        (np.array([0.5 + 0j, 0.5]), "does not drop imaginary parts"),
        (["0.5", "0.5"], "Strings are not numbers"),
        (np.array([0.5, None], dtype=object), "Python objects"),
        ([10**400, 1], "Python objects"),
        (np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]"), "Dates are not probabilities"),
        (np.array([1, 2], dtype="timedelta64[s]"), "Durations are not probabilities"),
    ],
    ids=["complex", "strings", "objects", "huge-int", "dates", "durations"],
)
def test_values_that_are_not_real_numbers_get_advice_that_fits_them(values, advice):
    with pytest.raises(TypeError) as info:
        klkit.entropy(values)
    message = str(info.value)
    assert message.startswith("`p` must hold real numbers; found dtype") and advice in message


@pytest.mark.parametrize(
    ("values", "expected"),
    [(np.array([True, False]), 0.0), (np.array([1, 0], dtype=np.int8), 0.0), ([1, 0], 0.0)],
    ids=["bool", "int8", "int-list"],
)
def test_integer_and_boolean_probabilities_are_accepted_as_floats(values, expected):
    assert float(klkit.entropy(values)) == expected  # a point mass: documented acceptance (0/1 as probabilities)


@pytest.mark.parametrize(
    ("name", "option"),
    [("js_distance", {"keepdims": True}), ("js_divergence", {"weights": (0.3, 0.7)})],
    ids=["keepdims", "weights"],
)
def test_every_array_only_option_is_refused_for_distribution_objects(name, option):
    (key,) = option
    with pytest.raises(TypeError, match=rf"`{name}` got {key}=.*for arrays only.*Drop `{key}` for distribution"):
        getattr(klkit, name)(NORMAL, OTHER, **option)


@pytest.mark.parametrize("name", ["renyi_divergence", "f_divergence"])
def test_the_order_or_f_reaches_the_distributions_given_by_name_too(name):
    # D_2(N(0,1)‖N(1,2)) = log(σ_q/σ_p) + ½ log(σ_q²/σ_α²) + α(μ_p − μ_q)²/(2σ_α²), σ_α² = ασ_q² + (1−α)σ_p² = 7
    # (Gil et al. 2013); chi2(N(0,1)‖N(1,2)) = exp(D_2) − 1
    d2 = np.log(2.0) + 0.5 * np.log(4.0 / 7.0) + 2.0 / 14.0
    value = float(
        klkit.renyi_divergence(NORMAL, OTHER, alpha=2.0)
        if name == "renyi_divergence"
        else klkit.f_divergence(NORMAL, OTHER, f="chi2")
    )
    expected = d2 if name == "renyi_divergence" else np.expm1(d2)
    assert abs(value - expected) < 1e-5 * expected
