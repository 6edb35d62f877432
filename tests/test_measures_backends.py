"""The measures on every array library and precision: one input, one answer.

The reference is scipy on float64 copies of the stored values (after rounding to
the input's dtype), never klkit itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

import klkit

torch = pytest.importorskip("torch")


def _reference(measure: str, p: np.ndarray, q: np.ndarray | None) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if measure == "entropy":
        return special.entr(p).sum(-1)
    q = np.asarray(q, dtype=np.float64)
    if measure == "kl_divergence":
        return special.rel_entr(p, q).sum(-1)
    return -special.xlogy(p, q).sum(-1)


def _dirichlet(rng, shape) -> np.ndarray:
    return rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])


MEASURES = ["entropy", "cross_entropy", "kl_divergence"]


# ---------------------------------------------------------------------------
# Half precision: validation works, sums accumulate in float32, the dtype is kept
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("measure", MEASURES)
def test_half_precision_probs_accumulate_in_float32(rng, dtype, measure):
    tdtype = getattr(torch, dtype)
    p = torch.tensor(_dirichlet(rng, (64, 300))).to(tdtype)
    q = torch.tensor(_dirichlet(rng, (64, 300))).to(tdtype)
    # the stored half values sum to 1 only within the half tolerance: validation must accept them
    args = (p,) if measure == "entropy" else (p, q)
    out = getattr(klkit, measure)(*args)
    assert out.dtype == tdtype and out.shape == (64,)
    ref = _reference(measure, p.float().numpy(), None if measure == "entropy" else q.float().numpy())
    # one rounding of the float32 result to the half dtype: half an ulp of the output
    ulp = 2.0**-10 if dtype == "float16" else 2.0**-7
    np.testing.assert_allclose(out.float().numpy(), ref, rtol=ulp, atol=1e-3)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_logits_are_not_computed_in_half(rng, dtype):
    x = torch.tensor(rng.standard_normal((8, 4000)) * 3).to(getattr(torch, dtype))
    y = torch.tensor(rng.standard_normal((8, 4000)) * 3).to(getattr(torch, dtype))
    ref = special.rel_entr(special.softmax(x.double().numpy(), -1), special.softmax(y.double().numpy(), -1)).sum(-1)
    out = klkit.kl_divergence(x, y, kind="logits")
    assert out.dtype == x.dtype
    ulp = 2.0**-10 if dtype == "float16" else 2.0**-7
    np.testing.assert_allclose(out.double().numpy(), ref, rtol=ulp)


def test_half_precision_invalid_probs_raise_a_clear_error():
    p = torch.tensor([0.5, 0.7], dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=r"`p` must sum to 1.*bfloat16"):
        klkit.entropy(p)
    with pytest.raises(ValueError, match=r"`q` must hold probabilities.*-0.5"):
        klkit.kl_divergence(
            torch.tensor([0.5, 0.5], dtype=torch.float16), torch.tensor([1.5, -0.5], dtype=torch.float16)
        )


# ---------------------------------------------------------------------------
# Other array-API libraries: a strict implementation, and dask out of core
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("measure", [*MEASURES, "js_divergence"])
@pytest.mark.parametrize("kind", ["probs", "log_probs", "logits"])
def test_array_api_strict_gives_its_own_type_and_numpys_answer(rng, measure, kind):
    xs = pytest.importorskip("array_api_strict")
    p, q = _dirichlet(rng, (5, 7)), _dirichlet(rng, (5, 7))
    p[0, :3] = 0.0
    p[0] /= p[0].sum()
    if kind != "probs":
        with np.errstate(divide="ignore"):
            p, q = np.log(p), np.log(q)
    args = (p,) if measure == "entropy" else (p, q)
    expected = getattr(klkit, measure)(*args, kind=kind)
    out = getattr(klkit, measure)(*(xs.asarray(a) for a in args), kind=kind)
    assert type(out).__module__.startswith("array_api_strict")
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-13, atol=1e-15)


def test_array_api_strict_errors_and_special_values():
    xs = pytest.importorskip("array_api_strict")
    with pytest.raises(ValueError, match=r"`p` must sum to 1"):
        klkit.entropy(xs.asarray([0.5, 0.6]))
    out = klkit.kl_divergence(xs.asarray([[0.5, 0.5], [1.0, 0.0]]), xs.asarray([[1.0, 0.0], [1.0, 0.0]]))
    assert np.asarray(out).tolist() == [math.inf, 0.0]
    bad = klkit.entropy(xs.asarray([[0.5, math.nan], [0.5, 0.5]]), validate=False)
    assert np.isnan(np.asarray(bad)[0]) and np.asarray(bad)[1] == pytest.approx(math.log(2))


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_dask_in_dask_out_equal_to_numpy(rng, measure, kind):
    da = pytest.importorskip("dask.array")
    p, q = _dirichlet(rng, (2000, 40)), _dirichlet(rng, (2000, 40))
    if kind == "logits":
        p, q = np.log(p) + 3.0, np.log(q) - 1.0
    args = (p,) if measure == "entropy" else (p, q)
    lazy = getattr(klkit, measure)(*(da.from_array(a, chunks=(250, 40)) for a in args), kind=kind)
    assert isinstance(lazy, da.Array)
    ref = _reference(
        measure,
        *(special.softmax(a, -1) if kind == "logits" else a for a in args),
        *([None] if measure == "entropy" else []),
    )
    np.testing.assert_allclose(lazy.compute(), ref, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------
# Any torch device: the meta device propagates shapes through every path
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("measure", [*MEASURES, "js_divergence"])
@pytest.mark.parametrize("kind", ["probs", "log_probs", "logits"])
def test_meta_device_runs_without_host_data(measure, kind):
    p = torch.empty(3, 1000, device="meta")
    args = (p,) if measure == "entropy" else (p, torch.empty(1, 1000, device="meta"))
    out = getattr(klkit, measure)(*args, kind=kind, validate=False)
    assert out.device.type == "meta" and out.shape == (3,) and out.dtype == torch.float32


# ---------------------------------------------------------------------------
# torch.compile: validate=False compiles without graph breaks
# ---------------------------------------------------------------------------


def _compile_or_skip(fn):
    try:
        compiled = torch.compile(fn, fullgraph=True, backend="eager")
        return compiled
    except Exception as err:  # pragma: no cover - depends on the torch build
        pytest.skip(f"torch.compile unavailable: {err}")


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_torch_compile_fullgraph_without_validation(rng, measure, kind):
    torch._dynamo.reset()
    p = torch.tensor(_dirichlet(rng, (16, 50)), dtype=torch.float32)
    q = torch.tensor(_dirichlet(rng, (16, 50)), dtype=torch.float32)
    if kind == "logits":
        p, q = p.log(), q.log()
    args = (p,) if measure == "entropy" else (p, q)

    def f(*a):
        return getattr(klkit, measure)(*a, kind=kind, validate=False)

    out = _compile_or_skip(f)(*args)
    ref = _reference(
        measure,
        *(special.softmax(a.double().numpy(), -1) if kind == "logits" else a.double().numpy() for a in args),
        *([None] if measure == "entropy" else []),
    )
    np.testing.assert_allclose(out.double().numpy(), ref, rtol=1e-5, atol=1e-6)
