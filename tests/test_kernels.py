"""The numpy fused kernels (``klkit._engine.kernels`` and ``kernels_logits``), directly and through the measures.

Every input has at least ``klkit._engine.FAST_MIN`` elements, so the public calls take the
kernels too. References are plain float64 numpy/scipy (``xlogy``, ``rel_entr``,
``log_softmax``), never klkit itself.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.special

import klkit
from conftest import numpy_peak_memory
from klkit._engine import FAST_MIN, KERNEL_MODES, logits_rows, probs_rows

MODES = KERNEL_MODES
PUBLIC = {"entropy": klkit.entropy, "cross_entropy": klkit.cross_entropy, "kl_divergence": klkit.kl_divergence}
SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")


@pytest.fixture(autouse=True)
def default_threads():
    yield
    klkit.set_num_threads(None)


# --- references -------------------------------------------------------------------------


def ref_probs(measure: str, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    p, q = p.astype(np.float64), q.astype(np.float64)
    with np.errstate(all="ignore"):
        if measure == "entropy":
            return -scipy.special.xlogy(p, p).sum(-1)
        if measure == "cross_entropy":
            return -scipy.special.xlogy(p, q).sum(-1)
        return scipy.special.rel_entr(p, q).sum(-1)


def ref_logits(measure: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rows with NaN, +inf or only -inf come out anyhow: the tests set what they expect there."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        la = scipy.special.log_softmax(a.astype(np.float64), axis=-1)
        lb = scipy.special.log_softmax(b.astype(np.float64), axis=-1)
        pa = np.exp(la)
        if measure == "entropy":
            return -scipy.special.xlogy(pa, pa).sum(-1)
        if measure == "cross_entropy":
            return -np.where(pa > 0, pa * lb, 0.0).sum(-1)
        return np.where(pa > 0, pa * (la - lb), 0.0).sum(-1)


def kernel(kind: str, measure: str, p: np.ndarray, q: np.ndarray):
    if kind == "probs":
        return probs_rows(p, None if measure == "entropy" else q, MODES[measure])
    return logits_rows(p, q, MODES[measure])


def public(kind: str, measure: str, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    args = (p,) if measure == "entropy" else (p, q)
    return np.asarray(PUBLIC[measure](*args, kind=kind, validate=False), dtype=np.float64)


def random_probs(rng, shape, dtype=np.float64) -> np.ndarray:
    x = rng.random(shape) + 0.01
    return (x / x.sum(-1, keepdims=True)).astype(dtype)


def check_both(kind, measure, p, q, expected, rtol=1e-12):
    """The kernel and the public call agree with ``expected`` (NaN and inf where it has them)."""
    assert p.size >= FAST_MIN
    value = kernel(kind, measure, p, q)[0]
    np.testing.assert_allclose(value, expected, rtol=rtol, atol=0)
    public_rtol = 1e-6 if p.dtype == np.float32 else rtol  # the public result is rounded to float32
    np.testing.assert_allclose(public(kind, measure, p, q), expected, rtol=public_rtol, atol=0)


# --- 1. special values are the same at every size ------------------------------------------


@pytest.mark.parametrize("measure", ["kl_divergence", "cross_entropy"])
def test_logits_minus_inf_in_q_gives_inf_per_row(measure):
    a = np.zeros((21846, 3))
    b = np.tile([0.0, 0.0, -np.inf], (21846, 1))
    small = float(PUBLIC[measure](a[0], b[0], kind="logits"))
    assert small == math.inf
    check_both("logits", measure, a, b, np.full(21846, math.inf))


@pytest.mark.parametrize("measure", ["kl_divergence", "cross_entropy"])
def test_probs_zero_in_q_gives_inf_per_row(rng, measure):
    p = random_probs(rng, (3, 30_000))
    q = random_probs(rng, (3, 30_000))
    q[1, 17] = 0.0
    expected = ref_probs(measure, p, q)
    assert expected[1] == math.inf and np.isfinite(expected[[0, 2]]).all()
    check_both("probs", measure, p, q, expected)


def test_logits_inf_rows_among_finite_rows_of_a_long_row(rng):
    """A -inf logit of q under a finite logit of p, in rows long enough to span many terms."""
    a = rng.standard_normal((4, 40_000))
    b = rng.standard_normal((4, 40_000))
    b[2, 123] = -np.inf
    for measure in ("kl_divergence", "cross_entropy"):
        expected = ref_logits(measure, a, b)
        expected[2] = math.inf  # ref: 0 · -inf would be dropped by its own masking
        check_both("logits", measure, a, b, expected)


# --- 2. NaN semantics without checks ----------------------------------------------------------

PROBS_BAD = [np.nan, -0.25, np.inf, -np.inf]
LOGITS_BAD = [np.nan, np.inf]


@pytest.mark.parametrize("measure", list(MODES))
@pytest.mark.parametrize("where", ["p", "q"])
@pytest.mark.parametrize("bad", PROBS_BAD)
def test_probs_bad_entry_gives_nan_for_its_row_only(rng, measure, where, bad):
    if measure == "entropy" and where == "q":
        pytest.skip("entropy does not read q")
    p = random_probs(rng, (2, 70_000))
    q = random_probs(rng, (2, 70_000))
    (p if where == "p" else q)[0, 5] = bad
    expected = ref_probs(measure, p, q)
    expected[0] = np.nan
    check_both("probs", measure, p, q, expected)
    assert int(kernel("probs", measure, p, q)[3]) == 1


@pytest.mark.parametrize("measure", list(MODES))
@pytest.mark.parametrize("where", ["p", "q"])
@pytest.mark.parametrize("bad", LOGITS_BAD)
def test_logits_bad_entry_gives_nan_for_its_row_only(rng, measure, where, bad):
    if measure == "entropy" and where == "q":
        pytest.skip("entropy does not read q")
    a = rng.standard_normal((2, 70_000))
    b = rng.standard_normal((2, 70_000))
    (a if where == "p" else b)[1, 9] = bad
    expected = ref_logits(measure, a, b)
    expected[1] = np.nan
    check_both("logits", measure, a, b, expected)
    assert int(kernel("logits", measure, a, b)[3]) == 1


@pytest.mark.parametrize("measure", list(MODES))
@pytest.mark.parametrize("where", ["p", "q"])
def test_logits_row_of_minus_inf_gives_nan(rng, measure, where):
    if measure == "entropy" and where == "q":
        pytest.skip("entropy does not read q")
    a = rng.standard_normal((3, 30_000))
    b = rng.standard_normal((3, 30_000))
    (a if where == "p" else b)[2] = -np.inf
    expected = ref_logits(measure, a, b)
    expected[2] = np.nan
    check_both("logits", measure, a, b, expected)
    _, lse_a, lse_b, bad = kernel("logits", measure, a, b)
    assert int(bad) == 0 and float(lse_a if where == "p" else lse_b) == -math.inf


def test_probs_zero_terms(rng):
    """0 · log 0 = 0 for p = 0 (with q = 0 too), in every row and every chunk."""
    p = random_probs(rng, (4, 40_000))
    p[:, ::3] = 0.0
    p /= p.sum(-1, keepdims=True)
    q = random_probs(rng, (4, 40_000))
    q[:, ::6] = 0.0  # only where p = 0
    for measure in MODES:
        expected = ref_probs(measure, p, q)
        assert np.isfinite(expected).all()
        check_both("probs", measure, p, q, expected)


def test_logits_minus_inf_in_p_contributes_nothing(rng):
    a = rng.standard_normal((4, 40_000))
    b = rng.standard_normal((4, 40_000))
    a[:, ::2] = -np.inf
    b[:, ::4] = -np.inf  # only where p = 0
    for measure in MODES:
        expected = ref_logits(measure, a, b)
        assert np.isfinite(expected).all()
        check_both("logits", measure, a, b, expected)


def test_validation_still_raises_with_the_counts(rng):
    p = random_probs(rng, (2, 70_000))
    p[1, 3] = np.nan
    with pytest.raises(ValueError, match="nan"):
        klkit.entropy(p)
    a = rng.standard_normal((2, 70_000))
    a[0, 1] = np.inf
    with pytest.raises(ValueError):
        klkit.entropy(a, kind="logits")
    off = random_probs(rng, (2, 70_000)) * 1.01  # sums of 1.01
    assert abs(float(probs_rows(off, None, MODES["entropy"])[1]) - 1.01) < 1e-9
    with pytest.raises(ValueError):
        klkit.entropy(off)


# --- accuracy across the chunk grid ----------------------------------------------------------------

SHAPES = [(100_000, 10), (400_000, 4), (4, 500_000), (3, 70_001), (7, 30_000)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("measure", list(MODES))
def test_probs_match_the_reference(rng, shape, dtype, measure):
    p = random_probs(rng, shape, dtype)
    q = random_probs(rng, shape, dtype)
    check_both("probs", measure, p, q, ref_probs(measure, p, q), rtol=1e-12)


@pytest.mark.parametrize("shape", SHAPES[:3], ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("measure", list(MODES))
def test_logits_match_the_reference(rng, shape, dtype, measure):
    a = (2 * rng.standard_normal(shape)).astype(dtype)
    b = (2 * rng.standard_normal(shape)).astype(dtype)
    check_both("logits", measure, a, b, ref_logits(measure, a, b), rtol=1e-10)


# --- 5. results do not depend on the number of threads -----------------------------------------------


@pytest.mark.parametrize("shape", [(100_000, 10), (4, 500_000), (3, 70_001)], ids=str)
@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_thread_count_does_not_change_results(rng, shape, kind):
    p = random_probs(rng, shape) if kind == "probs" else rng.standard_normal(shape)
    q = random_probs(rng, shape) if kind == "probs" else rng.standard_normal(shape)
    ref = ref_probs if kind == "probs" else ref_logits
    for measure in MODES:
        got = []
        for threads in (1, 2, 3):
            klkit.set_num_threads(threads)
            got.append((kernel(kind, measure, p, q)[0], public(kind, measure, p, q)))
        expected = ref(measure, p, q)
        for value, pub in got:
            np.testing.assert_allclose(value, expected, rtol=1e-12)
            np.testing.assert_allclose(pub, expected, rtol=1e-12)
            ulps = np.abs(value - got[0][0]) / np.spacing(np.abs(got[0][0]))
            assert ulps.max() <= 4, (measure, ulps.max())


def test_a_thread_count_beyond_the_cpus_is_used_as_given(rng):
    p = random_probs(rng, (64, 4096))
    klkit.set_num_threads(64)
    assert klkit.get_num_threads() == 64
    np.testing.assert_allclose(kernel("probs", "entropy", p, p)[0], ref_probs("entropy", p, p), rtol=1e-12)


# --- 3. memory ------------------------------------------------------------------------------------

LIMIT = 0.25
SCRATCH = 0.05  # buffers and partial sums beyond the per-row result


@pytest.mark.parametrize("shape", [(100_000, 10), (400_000, 4), (4, 500_000)], ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_peak_extra_memory(rng, shape, dtype, kind):
    """≤ 25% of one input, except where the float64 value per row alone is more than 20%
    (very many rows of very few columns): then the value plus at most 5% of one input."""
    p = random_probs(rng, shape, dtype)
    q = random_probs(rng, shape, dtype)
    value_bytes = 8 * shape[0]
    limit = max(LIMIT * p.nbytes, value_bytes + SCRATCH * p.nbytes)
    peak = numpy_peak_memory(lambda: kernel(kind, "kl_divergence", p, q))
    assert peak <= limit, f"kernel: {peak / p.nbytes:.1%} of one input"
    # measures.py clamps the result into a new array: one more value per row
    peak = numpy_peak_memory(lambda: klkit.kl_divergence(p, q, kind=kind, validate=False))
    assert peak <= max(LIMIT * p.nbytes, 2 * value_bytes + SCRATCH * p.nbytes), f"public: {peak / p.nbytes:.1%}"


# --- 6. compile cost: the on-disk cache --------------------------------------------------------------

FIRST_CALL = textwrap.dedent("""
    import json
    import numba
    import numpy as np
    import klkit
    from klkit._engine import kernels, kernels_logits, logits_rows, probs_rows
    p = np.full((16, 8192), 1 / 8192, dtype={dtype})
    for mode in (0, 1, 2):
        probs_rows(p, p, mode)
        logits_rows(p, p, mode)
    stats = {{}}
    for module in (kernels, kernels_logits):
        for name, kernel in vars(module).items():
            if isinstance(kernel, numba.core.registry.CPUDispatcher) and kernel.signatures:
                hits, misses = kernel.stats.cache_hits, kernel.stats.cache_misses
                stats[name] = [sum(hits.values()), sum(misses.values())]
    print(json.dumps(stats))
""")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["np.float64", "np.float32"])
def test_first_call_in_a_fresh_process_loads_the_cache(dtype):
    """A fresh process compiles nothing: every kernel it runs is loaded from numba's on-disk cache (counted by
    numba's own cache statistics, not timed: a loaded machine makes timings say nothing)."""
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("NUMBA_DISABLE_JIT", None)

    def first_call() -> dict[str, list[int]]:
        out = subprocess.run(
            [sys.executable, "-c", FIRST_CALL.format(dtype=dtype)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    first_call()  # compiles and writes the cache, or finds it warm already
    stats = first_call()
    assert {"_probs_chunk", "_logits_rows"} <= set(stats), stats
    assert all(hits >= 1 and misses == 0 for hits, misses in stats.values()), stats
