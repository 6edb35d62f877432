"""Every error message: it names the argument, the rule, what was found and the fix."""

from __future__ import annotations

import math

import numpy as np
import pytest

import klkit
from klkit.errors import BackendMismatchError, InvalidArgumentError, InvalidDistributionError, ShapeError

pytestmark = pytest.mark.usefixtures("torch_one_thread")

# both the small generic path and the large fused paths must raise the same errors
SIZES = [3, 100_000]


def _probs(n, dtype=np.float64):
    return np.full(n, 1.0 / n, dtype=dtype)


def _with(x, index, value):
    x = np.array(x, copy=True)
    x[index] = value
    return x


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(("value", "found"), [(-0.1, "-0.1"), (np.nan, "nan"), (np.inf, "inf")])
def test_bad_probabilities(backend, n, value, found):
    p = backend(_with(_probs(n), 1, value))
    q = backend(_probs(n))
    for call in (
        lambda: klkit.entropy(p),
        lambda: klkit.kl_divergence(p, q),
        lambda: klkit.kl_divergence(q, p),
        lambda: klkit.cross_entropy(q, p),
        lambda: klkit.js_divergence(p, q),
    ):
        with pytest.raises(
            InvalidDistributionError,
            match=(
                rf"must hold probabilities: finite and >= 0; found 1 entry, fir"
                rf"st {found} at index 1.*kind='log_probs'"
            ),
        ):
            call()


@pytest.mark.parametrize("n", SIZES)
def test_unnormalised_probabilities(backend, n):
    p = backend(_probs(n) * 1.01)
    with pytest.raises(
        InvalidDistributionError,
        match=(
            r"`p` must sum to 1 along `axis` \(tolerance 1\.5e-08.*sums fr"
            r"om 1\.01.*klkit\.normalize"
        ),
    ):
        klkit.entropy(p)
    with pytest.raises(InvalidDistributionError, match=r"`q` must sum to 1"):
        klkit.kl_divergence(backend(_probs(n)), p)
    p32 = backend(_probs(n, np.float32) * 1.01, np.float32)
    with pytest.raises(InvalidDistributionError, match=r"tolerance 3\.5e-04"):
        klkit.entropy(p32)


@pytest.mark.parametrize("n", SIZES)
def test_bad_log_probabilities(backend, n):
    lp = np.log(_probs(n))
    with pytest.raises(
        InvalidDistributionError,
        match=(
            r"`p` must hold log-probabilities: <= 0 and not NaN; found 1 e"
            r"ntry, first 0\.5 at index 0. .*kind='logits'"
        ),
    ):
        klkit.entropy(backend(_with(lp, 0, 0.5)), kind="log_probs")
    with pytest.raises(InvalidDistributionError, match=r"`q` must hold log-probabilities.*nan"):
        klkit.kl_divergence(backend(lp), backend(_with(lp, 0, np.nan)), kind="log_probs")
    with pytest.raises(
        InvalidDistributionError,
        match=(
            r"`p` must be normalised, logsumexp = 0, along `axis`.*logsume"
            r"xp from"
        ),
    ):
        klkit.entropy(backend(lp - 0.1), kind="log_probs")


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(("value", "found"), [(np.nan, "nan"), (np.inf, "inf")])
def test_bad_logits(backend, n, value, found):
    a = backend(_with(np.zeros(n), 2, value))
    b = backend(np.zeros(n))
    for call in (
        lambda: klkit.entropy(a, kind="logits"),
        lambda: klkit.kl_divergence(a, b, kind="logits"),
        lambda: klkit.cross_entropy(b, a, kind="logits"),
        lambda: klkit.js_divergence(b, a, kind="logits"),
    ):
        with pytest.raises(
            InvalidDistributionError,
            match=(
                rf"must hold logits: real numbers or -inf \(masked\), never NaN"
                rf" or \+inf; found 1 entry, first.*{found}.*mask with -inf"
            ),
        ):
            call()


@pytest.mark.parametrize("n", SIZES)
def test_all_masked_logits(backend, n):
    a = backend(np.stack([np.zeros(n), np.full(n, -np.inf)]))
    with pytest.raises(
        InvalidDistributionError,
        match=(
            r"`p` must have at least one finite logit per slice; found 1 s"
            r"lice\(s\) with every logit -inf. Leave at least one"
        ),
    ):
        klkit.entropy(a, kind="logits")
    with pytest.raises(InvalidDistributionError, match=r"`q` must have at least one finite logit"):
        klkit.cross_entropy(backend(np.full((2, n), 1.0 / n)), a, q_kind="logits")


def test_shapes_that_do_not_broadcast(backend):
    with pytest.raises(
        ShapeError,
        match=(
            r"`p` and `q` must have shapes that broadcast; found \(3,\) an"
            r"d \(4,\).*q\[None, :\]"
        ),
    ):
        klkit.kl_divergence(backend(_probs(3)), backend(_probs(4)))
    with pytest.raises(ValueError, match="broadcast"):
        klkit.cross_entropy(backend(np.full((2, 3), 1 / 3)), backend(np.full((3, 3), 1 / 3)))


@pytest.mark.parametrize("axis", [2, -3, 5])
def test_axis_out_of_range(backend, axis):
    with pytest.raises(
        ShapeError,
        match=(
            rf"`axis` must be in \[-2, 1\] for inputs with 2 dimension\(s\)"
            rf"; found axis={axis}"
        ),
    ):
        klkit.entropy(backend(np.full((2, 3), 1 / 3)), axis=axis)


@pytest.mark.parametrize("axis", [1.0, "0", None, True])
def test_axis_not_an_integer(backend, axis):
    with pytest.raises(InvalidArgumentError, match=r"`axis` must be an integer; found .* of type"):
        klkit.entropy(backend(_probs(3)), axis=axis)


def test_zero_d_input(backend):
    with pytest.raises(ShapeError, match=r"`p` must have at least one dimension.*\[p, 1 - p\]"):
        klkit.entropy(backend(0.5))


@pytest.mark.parametrize("base", [0, 1, -1, math.nan, math.inf, -2.5, 0.5])
def test_bad_base_value(backend, base):
    with pytest.raises(
        InvalidArgumentError,
        match=(
            r"`base` must be None \(nats\) or a finite number > 1"
            r"; found .*base=2 for bits"
        ),
    ):
        klkit.entropy(backend(_probs(2)), base=base)
    with pytest.raises(InvalidArgumentError, match=r"`base`"):
        klkit.surprise(backend([0.5]), base=base)


@pytest.mark.parametrize("base", ["two", [2], True])
def test_bad_base_type(backend, base):
    with pytest.raises(
        InvalidArgumentError,
        match=(
            r"`base` must be None \(nats\) or a real number > 1; "
            r"found .* of type"
        ),
    ):
        klkit.kl_divergence(backend(_probs(2)), backend(_probs(2)), base=base)


def test_bad_kind(backend):
    with pytest.raises(
        InvalidArgumentError,
        match=(
            r"`kind` must be one of 'probs', 'log_probs' or 'logits'; foun"
            r"d 'prob'"
        ),
    ):
        klkit.entropy(backend(_probs(2)), kind="prob")
    with pytest.raises(InvalidArgumentError, match=r"`q_kind` must be one of .*found 'softmax'"):
        klkit.kl_divergence(backend(_probs(2)), backend(_probs(2)), q_kind="softmax")


def test_empty_axis(backend):
    with pytest.raises(
        ShapeError,
        match=(
            r"the reduction axis \(-1\) is empty: a distribution needs at "
            r"least one outcome"
        ),
    ):
        klkit.entropy(backend(np.zeros((3, 0))))
    with pytest.raises(ShapeError, match=r"reduction axis \(0\) is empty"):
        klkit.kl_divergence(backend(np.zeros((0, 2))), backend(np.zeros((0, 2))), axis=0)


def test_numpy_and_torch_mixed_is_type_error():
    torch = pytest.importorskip("torch")
    p = np.array([0.5, 0.5])
    with pytest.raises(
        BackendMismatchError,
        match=(
            r"inputs mix torch tensors with other arrays \(found numpy.nda"
            r"rray, torch.Tensor\).*torch.as_tensor"
        ),
    ):
        klkit.kl_divergence(p, torch.tensor(p))
    with pytest.raises(TypeError, match="mix torch tensors"):
        klkit.cross_entropy(torch.tensor(p), [0.5, 0.5])


def test_surprise_outside_unit_interval(backend):
    with pytest.raises(
        InvalidDistributionError,
        match=(
            r"`p` must hold probabilities in \[0, 1\]; found 2 entries out"
            r"side, first 1\.5"
        ),
    ):
        klkit.surprise(backend([1.5, 0.5, -0.2]))


def test_normalize_errors(backend):
    with pytest.raises(InvalidDistributionError, match=r"`x` must hold finite, non-negative weights.*found 1 negative"):
        klkit.normalize(backend([1.0, -1.0]))
    with pytest.raises(InvalidDistributionError, match=r"`x` must have a positive sum along `axis`.*prior count"):
        klkit.normalize(backend([[1.0, 1.0], [0.0, 0.0]]))


def test_torch_devices_must_match():
    torch = pytest.importorskip("torch")
    p = torch.tensor([0.5, 0.5])
    q = torch.tensor([0.5, 0.5], device="meta")
    with pytest.raises(InvalidDistributionError, match=r"`p` and `q` must be on the same device; found cpu and meta"):
        klkit.kl_divergence(p, q)


@pytest.mark.parametrize("n", SIZES)
def test_validate_false_skips_the_checks(backend, n):
    p = backend(_probs(n) * 2.0)  # sums to 2: rejected by default
    with pytest.raises(InvalidDistributionError):
        klkit.entropy(p)
    h = klkit.entropy(p, validate=False)  # computed as given, never renormalised
    expected = -(2.0 / n) * math.log(2.0 / n) * n
    assert float(h) == pytest.approx(expected, rel=1e-9)
    lp = backend(np.full(n, 0.0))  # log-probabilities of all ones: not normalised
    assert float(klkit.kl_divergence(lp, lp, kind="log_probs", validate=False)) == 0.0


# ---------------------------------------------------------------------------
# Inputs that are not arrays, complex numbers, and options that do not exist
# ---------------------------------------------------------------------------


class _Model:
    """Stands for an estimator object (e.g. an sklearn model) passed by mistake."""

    def predict_proba(self, x):
        return x


@pytest.mark.parametrize("bad", [None, {"a": 0.5, "b": 0.5}, "0.5,0.5", _Model()], ids=["None", "dict", "str", "model"])
@pytest.mark.parametrize("measure", ["entropy", "kl_divergence", "js_divergence", "decompose"])
def test_non_arrays_are_type_errors_naming_the_argument(measure, bad):
    fn = getattr(klkit, measure)
    args = (bad,) if measure == "entropy" else (bad, [0.5, 0.5])
    with pytest.raises(TypeError, match=r"`p` must be an array .* found "):
        fn(*args)
    if measure != "entropy":
        with pytest.raises(TypeError, match=r"`q` must be an array"):
            fn([0.5, 0.5], bad)


@pytest.mark.parametrize("measure", ["entropy", "cross_entropy", "kl_divergence", "js_divergence"])
def test_complex_input_is_rejected_not_truncated(backend, measure):
    z = np.array([0.5 + 0.1j, 0.5 - 0.1j])
    p = backend.torch.tensor(z) if backend.name == "torch" else z
    args = (p,) if measure == "entropy" else (p, p)
    with pytest.raises(TypeError, match=r"`p` must hold real numbers; found dtype (torch\.)?complex.*x\.real"):
        getattr(klkit, measure)(*args)


@pytest.mark.parametrize("keyword", ["reduction", "dim"])
@pytest.mark.parametrize("measure", ["entropy", "cross_entropy", "kl_divergence", "js_divergence", "decompose"])
def test_unknown_keywords_name_axis(backend, measure, keyword):
    args = (backend(_probs(2)),) if measure == "entropy" else (backend(_probs(2)), backend(_probs(2)))
    with pytest.raises(TypeError, match=rf"unknown keyword argument `{keyword}`.*`axis` \(not `dim`\)"):
        getattr(klkit, measure)(*args, **{keyword: 0})


@pytest.mark.parametrize("validate", ["no", 0, 1, None, "False"])
def test_validate_must_be_a_bool(backend, validate):
    with pytest.raises(InvalidArgumentError, match=r"`validate` must be True or False; found"):
        klkit.kl_divergence(backend(_probs(2)), backend(_probs(2)), validate=validate)


def test_unnormalised_counts_point_to_normalize_not_logits(backend):
    with pytest.raises(InvalidDistributionError, match=r"must sum to 1.*klkit\.normalize") as info:
        klkit.entropy(backend([3.0, 1.0]))
    assert "kind='logits'" not in str(info.value).split("klkit.normalize")[0]


def test_base_below_one_is_rejected_with_the_reason(backend):
    with pytest.raises(InvalidArgumentError, match=r"finite number > 1; found 0.5 \(a base below 1 turns"):
        klkit.kl_divergence(backend([0.5, 0.5]), backend([0.9, 0.1]), base=0.5)
