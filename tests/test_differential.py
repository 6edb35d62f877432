"""Differential harness: every internal path of the measures against one float64 reference.

The reference (``reference`` below) is plain float64 numpy on the values actually stored
(each input is rounded to its storage dtype first, then widened to float64):

* per kind, along the last axis, ``(log p, p)``: probs ``(log x, x)`` with ``log 0 = -inf``;
  log_probs ``(x, exp x)``; logits ``(x - logsumexp x, exp of that)``.
* ``H = -Σ p log p``, ``CE = -Σ p log q``, ``KL = Σ p (log p - log q)`` (clamped at 0),
  ``JS = ½Σ p(log p - log m) + ½Σ q(log q - log m)``, ``log m = logaddexp(log p, log q) - log 2``
  (clamped to [0, log 2]); terms with ``p = 0`` (resp. ``q = 0`` in JS) are 0; ``base`` divides
  by ``log base``.
* a slice holding an entry outside its kind's *domain* is NaN (probs: NaN, negative or ±inf;
  log_probs: NaN or +inf; logits: NaN, +inf, or every entry -inf). That is what
  ``validate=False`` must give; ``validate=True`` must raise ``ValueError`` whenever a
  slice fails the *validation* rules (domain, plus the sum / logsumexp tolerance
  ``klkit._validation.sum_tolerance`` of the storage dtype, and log_probs ≤ tolerance).

Comparison (``assert_matches``), position by position:

* NaN where and only where the reference is NaN; ±inf where and only where it is ±inf, same sign.
* a reference 0 must come back as ``0 <= got <= tol`` (e.g. KL(p‖p) is exactly 0 in the
  reference: the result may not be negative, nor more than the tolerance).
* finite values: ``|got - ref| <= tol``, where ``scale = max(1, |ref|, Σ|terms|)`` (Σ|terms|
  is the condition of the sum; equal to |ref| for H and CE) and ``f(n) = max(1, √n / 100)``
  is the small factor for the reduction length n:

  - float64 in (numpy or torch):    tol = 1e-12 · f(n) · scale
  - float32 in (numpy or torch):    tol = 1e-5  · f(n) · scale
  - float16 in (torch):             tol = 2^-10 · (|ref| + max(1, Σ|terms|))  (output rounding)
  - bfloat16 in (torch):            tol = 2^-7  · (|ref| + max(1, Σ|terms|))

* KL and JS are never negative, JS never above log 2 (in the requested base; for a float32/half
  output, log 2 rounded to that dtype, which may sit just above log 2).
* numpy in → numpy out of the input's float dtype; torch in → torch out, same dtype and device;
  requires_grad in → a differentiable result whose gradients are finite in every slice whose
  value is finite, and equal (small case) to autograd through the same reference written in torch.

Matrix: ``test_small`` (tiny shapes, one chunk below the kernel threshold, non-last axis,
transposed input; every backend/dtype) and ``test_large`` (shapes straddling each threshold
of :mod:`klkit.measures`: 65536 elements for the numba kernels, 262144 for chunking, torch
tiles and pieces; fewer dtypes). Data is generated once per key and cached; special rows sit
in the first, middle and last rows. Many of these cases fail on purpose until the engine
rewrite lands; do not weaken them.
"""

from __future__ import annotations

import functools
import math
import zlib

import numpy as np
import pytest
import scipy.special
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import klkit
from klkit._engine import sum_tolerance

torch = pytest.importorskip("torch")

MEASURES = ("entropy", "cross_entropy", "kl_divergence", "js_divergence", "decompose")
KINDS = ("probs", "log_probs", "logits")
MIXED = {"probs": "logits", "log_probs": "probs", "logits": "log_probs"}
LOG2 = math.log(2.0)

# backend id -> (library, dtype name, requires_grad)
BACKENDS = {
    "np32": ("numpy", "float32", False),
    "np64": ("numpy", "float64", False),
    "t16": ("torch", "float16", False),
    "tbf16": ("torch", "bfloat16", False),
    "t32": ("torch", "float32", False),
    "t64": ("torch", "float64", False),
    "t32grad": ("torch", "float32", True),
    "t64grad": ("torch", "float64", True),
}
TORCH_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """pytest -n 2 on 2 cores: torch's OpenMP regions with 2 threads wait on descheduled peers."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------
# data: random distributions with special rows injected
# ---------------------------------------------------------------------------


def logsumexp(x: np.ndarray) -> np.ndarray:
    """log Σ exp along the last axis (keepdims); all -inf → -inf, +inf → inf, NaN → NaN."""
    with np.errstate(all="ignore"):
        top = np.max(x, axis=-1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        return np.log(np.sum(np.exp(x - top), axis=-1, keepdims=True)) + top


def _convert(logits: np.ndarray, kind: str, offset: np.ndarray) -> np.ndarray:
    """The distribution of ``logits`` (rows, n), -inf entries included, as ``kind``."""
    with np.errstate(all="ignore"):
        lse = logsumexp(logits)
        lp = logits - lse
        if kind == "log_probs":
            return lp
        if kind == "probs":
            p = np.exp(lp)
            return p / p.sum(-1, keepdims=True)
        return logits + offset  # logits: shift-invariant, an arbitrary offset per row


def _special_rows(rows: int) -> tuple[int, int, int]:
    return 0, rows // 2, rows - 1


@functools.lru_cache(maxsize=6)
def make_data(kind: str, q_kind: str, shape: tuple[int, ...], variant: str) -> tuple[np.ndarray, np.ndarray]:
    """``(p, q)`` in float64, shape ``(rows, n)`` reshaped to ``shape`` (outcomes last).

    valid variants
      random   random logits (scale 2) converted to the kind
      zeros    special rows: p = 0 (masked) at column a, q = 0 at column b where p > 0 (→ CE, KL
               = +inf, JS finite), both 0 at column c (a 0 term); n = 2 gives disjoint one-hots
               (H = 0, CE = KL = inf, JS = log 2)
      same     special rows: q identical to p (KL = JS = 0 exactly in the reference)
      special  first and last rows 'zeros', middle row 'same' (multi-row shapes)
    invalid variants (validate=True must raise; validate=False: NaN slices / the formula)
      bad      NaN in p (first row, first column), +inf in q (last row, last column), and in
               p's middle row (middle column): probs -0.25 (negative), else +inf
      neginf   probs only: -inf in p (middle row, last column) and in q (first row, first column)
      zeromass p's first row and q's last row all zero (probs) / all -inf (log_probs, logits)
      sumoff   probs ×1.25 / log_probs +0.25 in p's middle row and q's first row
    """
    rows, n = math.prod(shape[:-1]), shape[-1]
    seed = zlib.crc32(repr((kind, q_kind, shape, variant)).encode())  # the same data in every worker
    rng = np.random.default_rng(seed)
    lp = rng.standard_normal((rows, n)) * 2.0
    lq = rng.standard_normal((rows, n)) * 2.0
    off_p = rng.uniform(-3, 3, (rows, 1))
    off_q = rng.uniform(-3, 3, (rows, 1))
    first, mid, last = _special_rows(rows)

    def zeros(r: int, shift: int) -> None:
        a, b = (shift % n), ((shift + 1) % n)
        lp[r, a] = -np.inf
        lq[r, b] = -np.inf
        if n >= 3:
            c = (shift + 2) % n
            lp[r, c] = lq[r, c] = -np.inf

    def same(r: int) -> None:
        lq[r] = lp[r]
        off_q[r] = off_p[r]

    if variant == "zeros":
        for r, s in ((first, 0), (mid, n // 2), (last, n - 3)):
            zeros(r, s)
    elif variant == "same":
        for r in {first, mid, last}:
            same(r)
    elif variant == "special":
        zeros(first, 0)
        zeros(last, n - 3)
        if mid not in (first, last):
            same(mid)
    p = _convert(lp, kind, off_p)
    q = _convert(lq, q_kind, off_q)
    if variant == "special" and mid not in (first, last) and kind == q_kind:
        q[mid] = p[mid]  # bitwise identical
    if variant in ("same",) and kind == q_kind:
        for r in {first, mid, last}:
            q[r] = p[r]
    if variant == "bad":
        p[first, 0] = np.nan
        q[last, n - 1] = np.inf
        p[mid, n // 2] = -0.25 if kind == "probs" else np.inf
    elif variant == "neginf":
        assert kind == "probs" and q_kind == "probs"
        p[mid, n - 1] = -np.inf
        q[first, 0] = -np.inf
    elif variant == "zeromass":
        p[first] = 0.0 if kind == "probs" else -np.inf
        q[last] = 0.0 if q_kind == "probs" else -np.inf
    elif variant == "sumoff":
        for x, k, r in ((p, kind, mid), (q, q_kind, first)):
            if k == "probs":
                x[r] *= 1.25
            elif k == "log_probs":
                x[r] += 0.25
    p.setflags(write=False)
    q.setflags(write=False)
    return p.reshape(shape), q.reshape(shape)


def stored(x: np.ndarray, dtype: str) -> np.ndarray:
    """The float64 values of ``x`` once rounded to ``dtype`` (what the reference sees)."""
    if dtype == "float64":
        return x
    if dtype == "float32":
        return x.astype(np.float32).astype(np.float64)
    return torch.from_numpy(np.ascontiguousarray(x)).to(TORCH_DTYPES[dtype]).to(torch.float64).numpy()


# ---------------------------------------------------------------------------
# the reference
# ---------------------------------------------------------------------------


def log_and_prob(x: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(all="ignore"):
        if kind == "probs":
            return np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.where(x == 0, -np.inf, np.nan)), x
        if kind == "log_probs":
            return x, np.exp(x)
        lp = x - logsumexp(x)
        lp = np.where(np.all(x == -np.inf, axis=-1, keepdims=True), np.nan, lp)
        return lp, np.exp(lp)


def out_of_domain(x: np.ndarray, kind: str) -> np.ndarray:
    """Per slice: an entry outside the kind's domain (→ NaN under validate=False)."""
    if kind == "probs":
        return np.any(~np.isfinite(x) | (x < 0), axis=-1)
    if kind == "log_probs":
        return np.any(np.isnan(x) | (x == np.inf), axis=-1)
    return np.any(np.isnan(x) | (x == np.inf), axis=-1) | np.all(x == -np.inf, axis=-1)


def fails_validation(x: np.ndarray, kind: str, dtype: str) -> bool:
    """Whether klkit's validation must reject ``x`` (float64 of the stored values)."""
    tol = sum_tolerance(dtype)
    with np.errstate(all="ignore"):
        if out_of_domain(x, kind).any():
            return True
        if kind == "probs":
            return bool(np.any(np.abs(x.sum(-1) - 1) > tol))
        if kind == "log_probs":
            return bool(np.any(x > tol) or np.any(np.abs(logsumexp(x)) > tol))
        return False


def reference(
    measure: str, p: np.ndarray, q: np.ndarray | None, kind: str, q_kind: str, base: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(value, Σ|terms|)`` per slice, outcomes along the last axis, float64."""
    with np.errstate(all="ignore"):
        logp, pp = log_and_prob(p, kind)
        bad = out_of_domain(p, kind)
        if measure == "entropy":
            terms = np.where(pp > 0, -pp * logp, 0.0)
        else:
            logq, qq = log_and_prob(q, q_kind)
            bad = bad | out_of_domain(q, q_kind)
            if measure == "cross_entropy":
                terms = np.where(pp > 0, -pp * logq, 0.0)
            elif measure == "kl_divergence":
                terms = np.where(pp > 0, pp * (logp - logq), 0.0)
            else:
                logm = np.logaddexp(logp, logq) - LOG2
                terms = 0.5 * (np.where(pp > 0, pp * (logp - logm), 0.0) + np.where(qq > 0, qq * (logq - logm), 0.0))
        value = terms.sum(-1)
        cond = np.abs(terms).sum(-1)
        if measure in ("kl_divergence", "js_divergence"):
            value = np.maximum(value, 0.0)  # NaN stays NaN
        if measure == "js_divergence":
            value = np.minimum(value, LOG2)
        value = np.where(bad, np.nan, value)
        if base is not None:
            value = value / math.log(base)
            cond = cond / abs(math.log(base))
    return value, cond


@functools.lru_cache(maxsize=64)
def cached_reference(measure, kind, q_kind, shape, variant, dtype):
    p, q = make_data(kind, q_kind, shape, variant)
    return reference(measure, stored(p, dtype), stored(q, dtype), kind, q_kind)


# ---------------------------------------------------------------------------
# running klkit and comparing
# ---------------------------------------------------------------------------


def tolerance(dtype: str, n: int, ref: np.ndarray, cond: np.ndarray) -> np.ndarray:
    f = max(1.0, math.sqrt(n) / 100)
    with np.errstate(all="ignore"):
        scale = np.fmax(np.fmax(1.0, np.abs(ref)), cond)
        if dtype == "float64":
            return 1e-12 * f * scale
        if dtype == "float32":
            return 1e-5 * f * scale
        eps = 2.0**-10 if dtype == "float16" else 2.0**-7
        return eps * (np.abs(ref) + np.fmax(1.0, cond))


def assert_matches(
    got: np.ndarray, ref: np.ndarray, tol: np.ndarray, what: str, bounds: tuple[float, float] | None = None
) -> None:
    got = np.asarray(got, dtype=np.float64).reshape(np.shape(ref))
    ref = np.asarray(ref)
    with np.errstate(all="ignore"):
        problems = []
        nan_ref, nan_got = np.isnan(ref), np.isnan(got)
        inf_ref, inf_got = np.isinf(ref), np.isinf(got)
        wrong = np.zeros(ref.shape, bool)
        wrong |= nan_ref != nan_got
        wrong |= inf_ref & (got != ref)
        wrong |= inf_got & ~inf_ref
        fin = np.isfinite(ref) & np.isfinite(got)
        zero = fin & (ref == 0)
        wrong |= zero & ((got < 0) | (got > tol))
        wrong |= fin & (np.abs(got - ref) > tol)
        if bounds is not None:
            lo, hi = bounds
            wrong |= np.isfinite(got) & ((got < lo) | (got > hi))
        if wrong.any():
            idx = np.argwhere(np.atleast_1d(wrong))
            for i in idx[:6]:
                i = tuple(i) if ref.ndim else ()
                t = np.asarray(tol)[i] if np.ndim(tol) else tol
                problems.append(f"at {i}: got {got[i]!r}, ref {ref[i]!r} (tol {t:.3g})")
            kinds = []
            if (nan_ref != nan_got).any():
                kinds.append(f"NaN mismatch ×{int((nan_ref != nan_got).sum())}")
            if (inf_ref & (got != ref)).any() or (inf_got & ~inf_ref).any():
                kinds.append(f"inf mismatch ×{int(((inf_ref & (got != ref)) | (inf_got & ~inf_ref)).sum())}")
            if (fin & (np.abs(got - ref) > tol)).any():
                err = np.abs(got - ref)[fin & (np.abs(got - ref) > tol)]
                kinds.append(f"finite off ×{err.size} (max |err| {err.max():.3g})")
            if (zero & (got < 0)).any():
                kinds.append("negative where ref is 0")
            if bounds is not None and (np.isfinite(got) & ((got < bounds[0]) | (got > bounds[1]))).any():
                kinds.append("out of bounds")
            pytest.fail(
                f"{what}: {int(wrong.sum())} of {wrong.size} slices wrong [{'; '.join(kinds)}]\n  "
                + "\n  ".join(problems),
                pytrace=False,
            )


def to_backend(x: np.ndarray, backend: str, layout: str):
    """``(array passed to klkit, leaf for gradients or None, axis)``."""
    lib, dtype, grad = BACKENDS[backend]
    if layout == "axis0":
        x = np.moveaxis(x, -1, 0)
    src = np.ascontiguousarray(x.T) if layout == "T" else np.ascontiguousarray(x)
    if lib == "numpy":
        a = src.astype(dtype)
        return (a.T if layout == "T" else a), None, (0 if layout == "axis0" else -1)
    t = torch.from_numpy(src).to(TORCH_DTYPES[dtype])
    leaf = None
    if grad:
        t.requires_grad_(True)
        leaf = t
    return (t.T if layout == "T" else t), leaf, (0 if layout == "axis0" else -1)


def check_type(out, backend: str, expected_shape: tuple[int, ...]) -> np.ndarray:
    lib, dtype, grad = BACKENDS[backend]
    if lib == "numpy":
        assert isinstance(out, np.ndarray | np.generic), f"numpy in, {type(out)} out"
        assert out.dtype == np.dtype(dtype), f"numpy {dtype} in, {out.dtype} out"
        assert np.shape(out) == expected_shape, f"shape {np.shape(out)} != {expected_shape}"
        return np.asarray(out, dtype=np.float64)
    assert isinstance(out, torch.Tensor), f"torch in, {type(out)} out"
    assert out.dtype == TORCH_DTYPES[dtype], f"torch {dtype} in, {out.dtype} out"
    assert out.device.type == "cpu", out.device
    assert tuple(out.shape) == expected_shape, f"shape {tuple(out.shape)} != {expected_shape}"
    if grad:
        assert out.requires_grad, "requires_grad in, a result without grad_fn out"
    return out.detach().to(torch.float64).numpy()


def log2_in(dtype: str, base: float | None = None) -> float:
    """JS's upper bound log 2 (in ``base``) as the output dtype can hold it: its rounding may sit above."""
    hi = LOG2 if base is None else LOG2 / math.log(base)
    return max(hi, float(stored(np.array([hi]), dtype)[0]))


def run_case(measure, kind, q_kind, shape, variant, backend, validate, layout="C"):
    _lib, dtype, grad = BACKENDS[backend]
    p64, q64 = make_data(kind, q_kind, shape, variant)
    two = measure != "entropy"
    P, leaf_p, axis = to_backend(p64, backend, layout)
    Q, leaf_q, _ = to_backend(q64, backend, layout) if two else (None, None, axis)
    sp, sq = stored(p64, dtype), stored(q64, dtype)
    label = f"{measure} kind={kind} q_kind={q_kind} {backend} shape={shape} {layout} {variant} validate={validate}"
    expected_shape = tuple(shape[:-1])
    kw = dict(axis=axis, kind=kind, validate=validate)
    if two:
        kw["q_kind"] = q_kind
    call = {
        "entropy": klkit.entropy,
        "cross_entropy": klkit.cross_entropy,
        "kl_divergence": klkit.kl_divergence,
        "js_divergence": klkit.js_divergence,
        "decompose": klkit.decompose,
    }[measure]
    args = (P, Q) if two else (P,)

    must_raise = fails_validation(sp, kind, dtype) or (two and fails_validation(sq, q_kind, dtype))
    if validate and must_raise:
        with pytest.raises(ValueError):
            call(*args, **kw)
        return
    out = call(*args, **kw)
    n = shape[-1]
    fields = ("entropy", "cross_entropy", "kl_divergence") if measure == "decompose" else (measure,)
    outs = tuple(out) if measure == "decompose" else (out,)
    assert len(outs) == len(fields)
    values = []
    for field, o in zip(fields, outs, strict=True):
        got = check_type(o, backend, expected_shape)
        ref, cond = cached_reference(field, kind, q_kind, shape, variant, dtype)
        bounds = (
            (0.0, math.inf) if field == "kl_divergence" else (0.0, log2_in(dtype)) if field == "js_divergence" else None
        )
        assert_matches(got, ref, tolerance(dtype, n, ref, cond), f"{label} [{field}]", bounds)
        values.append((o, ref))
    if grad:
        check_gradients_finite(values, leaf_p, leaf_q, layout, label)


def check_gradients_finite(values, leaf_p, leaf_q, layout, label):
    """Backward through every finite value: the gradient rows of those slices must be finite."""
    loss = 0.0
    finite_rows = None
    for o, _ in values:
        fin = torch.isfinite(o.detach())
        finite_rows = fin if finite_rows is None else finite_rows & fin
    for o, _ in values:
        loss = loss + torch.where(finite_rows, o, 0.0).sum()
    assert torch.is_tensor(loss) and loss.requires_grad, f"{label}: the result is detached from its inputs"
    loss.backward()
    for leaf, name in ((leaf_p, "p"), (leaf_q, "q")):
        if leaf is None:
            continue
        g = leaf.grad
        assert g is not None, f"{label}: no gradient for {name}"
        fr = finite_rows.numpy().reshape(-1)
        # leaves are stored in the layout passed (C, transposed source, or axis moved first)
        gn = g.detach().to(torch.float64).numpy()
        gn = gn.reshape(fr.size, -1) if layout == "C" else gn.reshape(-1, fr.size).T  # (slices, n)
        bad = fr & ~np.isfinite(gn).all(-1)
        assert not bad.any(), (
            f"{label}: non-finite gradient of {name} in {int(bad.sum())} slice(s) with a finite "
            f"value, first {int(np.argmax(bad))}"
        )


# ---------------------------------------------------------------------------
# the matrix
# ---------------------------------------------------------------------------


def _kind_pairs(mixed_all: bool = True):
    pairs = [(k, k) for k in KINDS]
    return pairs + ([(k, MIXED[k]) for k in KINDS] if mixed_all else [("probs", "logits")])


def _variants(kind: str, q_kind: str, rows: int, invalid_extra: bool = True):
    valid = ["random", "zeros", "same"] if rows == 1 else ["special"]
    out = [*valid, "bad"]
    if invalid_extra:
        out.append("zeromass")
        if kind == q_kind == "probs":
            out.append("neginf")
        if not kind == q_kind == "logits":
            out.append("sumoff")
    return out


VALID = ("random", "zeros", "same", "special")
RAISE_BACKENDS = ("np32", "np64", "t16", "tbf16", "t32", "t64grad")  # invalid data, validate=True: must raise


def _param(measure, kind, q_kind, shape, layout, variant, backend, validate):
    return pytest.param(
        measure,
        kind,
        q_kind,
        shape,
        layout,
        variant,
        backend,
        validate,
        id=f"{measure}-{kind}-{q_kind}-{'x'.join(map(str, shape))}-{layout}-{variant}"
        f"-{backend}-{'validate' if validate else 'novalidate'}",
    )


def _cases(plans, pairs, variants_of, raise_backends, decompose_backends=None):
    """Data key (shape, layout, kinds, variant) outermost, so that each worker builds it once."""
    for shape, layout, backends, mixed_backends, extra in plans:
        rows = math.prod(shape[:-1])
        for kind, q_kind in pairs:
            for variant in variants_of(kind, q_kind, rows, extra, layout):
                for measure in MEASURES:
                    if measure == "entropy" and kind != q_kind:
                        continue  # entropy has no q: its kinds are covered by the same-kind pairs
                    for backend in backends if kind == q_kind else mixed_backends:
                        if measure == "decompose" and decompose_backends and backend not in decompose_backends:
                            continue  # decompose = entropy + CE + KL: their paths are run one by one anyway
                        for validate in (True, False):
                            if validate and variant not in VALID and backend not in raise_backends:
                                continue  # the raise: one check per dtype is enough
                            yield _param(measure, kind, q_kind, shape, layout, variant, backend, validate)


ALL = list(BACKENDS)
SMALL = [  # (shape, layout, backends for same-kind pairs, backends for mixed pairs, all invalid variants?)
    ((3,), "C", ALL, ["np32", "np64", "t16", "tbf16", "t32", "t64grad"], True),
    ((4, 5), "C", ALL, ["np32", "np64", "t16", "t32", "t32grad", "t64"], True),
    ((4, 5), "axis0", ["np32", "np64", "t32", "t64grad"], ["np64", "t32"], False),
    ((4, 5), "T", ["np32", "np64", "t16", "t32", "t32grad"], ["np64", "t32"], False),
    ((64, 1000), "C", ["np32", "np64", "tbf16", "t32", "t64grad"], ["np64", "t32"], True),  # one chunk
    ((64, 1000), "T", ["np64", "t32"], ["np64"], False),
]


def _small_variants(kind, q_kind, rows, extra, layout):
    return _variants(kind, q_kind, rows, extra)


@pytest.mark.parametrize(
    ("measure", "kind", "q_kind", "shape", "layout", "variant", "backend", "validate"),
    list(_cases(SMALL, _kind_pairs(), _small_variants, RAISE_BACKENDS)),
)
def test_small(measure, kind, q_kind, shape, layout, variant, backend, validate):
    run_case(measure, kind, q_kind, shape, variant, backend, validate, layout)


LARGE = [  # each straddles a threshold of klkit.measures (65536 kernels, 262144 chunks, torch tiles/pieces)
    ((21846, 3), "C", ["np64", "np32", "t32"], ["np64", "t32grad"], True),  # 65538: just above the kernels
    ((21846, 3), "axis0", ["np64", "t32"], [], False),
    ((3, 30000), "C", ["np64", "t32", "t64"], ["t32"], False),  # 90000: kernels, no chunking
    ((3, 30000), "T", ["np64", "t32"], [], False),  # transposed: no kernels, generic path
    ((2, 200001), "C", ["np64", "t32", "t16"], ["np64"], False),  # > 262144, odd length: chunks, column tiles
    ((2, 200001), "T", ["np64", "t32"], [], False),
    ((300000, 2), "C", ["np64", "t32"], ["t32"], False),  # many 2-outcome rows, row chunks
    ((1, 600000), "C", ["np64", "t32", "t64grad"], ["np64"], True),  # one huge row: pieces, chained lse
]


def _large_variants(kind, q_kind, rows, extra, layout):
    return ["special" if rows > 1 else "zeros", "bad"] + (["zeromass"] if extra else [])


LARGE_DECOMPOSE = ("np64", "t32", "t64grad")


@pytest.mark.parametrize(
    ("measure", "kind", "q_kind", "shape", "layout", "variant", "backend", "validate"),
    list(_cases(LARGE, _kind_pairs(mixed_all=False), _large_variants, ("np64", "t32"), LARGE_DECOMPOSE)),
)
def test_large(measure, kind, q_kind, shape, layout, variant, backend, validate):
    run_case(measure, kind, q_kind, shape, variant, backend, validate, layout)


# ---------------------------------------------------------------------------
# gradients against autograd through the reference expression (small case)
# ---------------------------------------------------------------------------


def torch_reference(measure: str, p, q, kind: str, q_kind: str):
    """The reference of :func:`reference`, written with torch float64 ops (for autograd)."""

    def lp(x, k):
        if k == "probs":
            return torch.log(x), x
        if k == "log_probs":
            return x, torch.exp(x)
        y = x - torch.logsumexp(x, -1, keepdim=True)
        return y, torch.exp(y)

    logp, pp = lp(p, kind)
    if measure == "entropy":
        return -(pp * logp).sum(-1)
    logq, qq = lp(q, q_kind)
    if measure == "cross_entropy":
        return -(pp * logq).sum(-1)
    if measure == "kl_divergence":
        return (pp * (logp - logq)).sum(-1)
    logm = torch.logaddexp(logp, logq) - LOG2
    return 0.5 * ((pp * (logp - logm)).sum(-1) + (qq * (logq - logm)).sum(-1))


@pytest.mark.parametrize("backend", ["t32grad", "t64grad"])
@pytest.mark.parametrize(("kind", "q_kind"), [(k, k) for k in KINDS] + [(k, MIXED[k]) for k in KINDS], ids=lambda v: v)
@pytest.mark.parametrize("measure", MEASURES[:4])
def test_gradient_matches_reference_autograd(measure, kind, q_kind, backend):
    """Random valid (4, 5) data without zeros: klkit's gradient = autograd of the reference."""
    if measure == "entropy" and kind != q_kind:
        pytest.skip("entropy has no q")
    dtype = TORCH_DTYPES[BACKENDS[backend][1]]
    p64, q64 = make_data(kind, q_kind, (4, 5), "random")
    two = measure != "entropy"
    P = torch.from_numpy(p64.copy()).to(dtype).requires_grad_(True)
    Q = torch.from_numpy(q64.copy()).to(dtype).requires_grad_(True)
    w = torch.linspace(0.5, 1.5, 4, dtype=torch.float64)  # a generic upstream gradient
    kw = dict(kind=kind, q_kind=q_kind) if two else dict(kind=kind)
    fn = getattr(klkit, measure)
    out = fn(P, Q, **kw) if two else fn(P, **kw)
    (out.to(torch.float64) * w).sum().backward()
    Pr = P.detach().to(torch.float64).requires_grad_(True)
    Qr = Q.detach().to(torch.float64).requires_grad_(True)
    (torch_reference(measure, Pr, Qr if two else None, kind, q_kind) * w).sum().backward()
    rtol = 1e-10 if dtype == torch.float64 else 1e-4
    for name, got, ref in (("p", P.grad, Pr.grad), ("q", Q.grad, Qr.grad))[: 1 + two]:
        assert got is not None, f"no gradient for {name}"
        g, r = got.to(torch.float64), ref
        assert torch.isfinite(g).all(), f"non-finite gradient of {name}: {g}"
        err = (g - r).abs().max().item()
        assert err <= rtol * max(1.0, r.abs().max().item()), f"gradient of {name} off by {err:.3g}:\n{g}\nvs\n{r}"


# ---------------------------------------------------------------------------
# base, Python lists, and the reference itself at the edges (mpmath)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("base", [2, 10], ids=lambda b: f"base{b}")
@pytest.mark.parametrize("backend", ["np32", "np64", "t16", "t32", "t64", "t64grad"])
@pytest.mark.parametrize("measure", MEASURES)
def test_base(measure, backend, base):
    """``base=b`` divides the nats by log b, special values included (zeros variant: inf rows)."""
    kind = q_kind = "probs"
    dtype = BACKENDS[backend][1]
    p64, q64 = make_data(kind, q_kind, (4, 5), "special")
    P, _, _ = to_backend(p64, backend, "C")
    Q, _, _ = to_backend(q64, backend, "C")
    fn = getattr(klkit, measure)
    out = fn(P, base=base) if measure == "entropy" else fn(P, Q, base=base)
    fields = ("entropy", "cross_entropy", "kl_divergence") if measure == "decompose" else (measure,)
    outs = tuple(out) if measure == "decompose" else (out,)
    for field, o in zip(fields, outs, strict=True):
        got = check_type(o, backend, (4,))
        ref, cond = reference(field, stored(p64, dtype), stored(q64, dtype), kind, q_kind, base=base)
        hi = log2_in(dtype, base) if field == "js_divergence" else math.inf
        bounds = None if field in ("entropy", "cross_entropy") else (0.0, hi)
        assert_matches(got, ref, tolerance(dtype, 5, ref, cond), f"{field} {backend} base={base}", bounds)


@pytest.mark.parametrize("measure", MEASURES)
def test_python_lists_are_float64(measure):
    p = [[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]]
    q = [[0.25, 0.75, 0.0], [0.0, 0.5, 0.5]]
    fn = getattr(klkit, measure)
    out = fn(p) if measure == "entropy" else fn(p, q)
    fields = ("entropy", "cross_entropy", "kl_divergence") if measure == "decompose" else (measure,)
    outs = tuple(out) if measure == "decompose" else (out,)
    for field, o in zip(fields, outs, strict=True):
        got = check_type(o, "np64", (2,))
        ref, cond = reference(field, np.array(p), np.array(q), "probs", "probs")
        assert_matches(got, ref, tolerance("float64", 3, ref, cond), f"{field} lists")


def _mp_kl(p, q, kind):
    import mpmath

    with mpmath.workdps(50):  # local precision: never the whole test run's
        if kind == "logits":

            def norm(x):
                lse = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in x))
                return [mpmath.mpf(v) - lse for v in x]

            lp, lq = norm(p), norm(q)
        else:
            lp = [mpmath.log(mpmath.mpf(v)) for v in p]
            lq = [mpmath.log(mpmath.mpf(v)) for v in q]
        return float(mpmath.fsum(mpmath.exp(a) * (a - b) for a, b in zip(lp, lq, strict=True)))


@pytest.mark.parametrize("backend", ["np64", "t64", "t64grad"])
@pytest.mark.parametrize("n", [5, 70_000], ids=lambda n: f"n{n}")
@pytest.mark.parametrize("kind", ["probs", "logits"])
@pytest.mark.parametrize("delta", [1e-4, 1e-7], ids=lambda d: f"delta{d:g}")
def test_near_zero_kl_against_mpmath(delta, kind, n, backend):
    """p ≈ q: KL ~ δ²; the reference is checked against mpmath, klkit against both (1e-12 abs)."""
    rng = np.random.default_rng(7)
    logits = rng.standard_normal(n)
    if kind == "probs":
        p = scipy.special.softmax(logits)
        q = p * (1 + delta * rng.standard_normal(n))
        q = q / q.sum()
    else:
        p, q = logits, logits + delta * rng.standard_normal(n)
    exact = _mp_kl(p, q, kind) if n == 5 else None  # mpmath on the small case
    ref, _ = reference("kl_divergence", p, q, kind, kind)
    if exact is not None:  # the float64 reference is good to 1e-15 absolute here
        assert abs(float(ref) - exact) <= 1e-15, (float(ref), exact)
    P, _, _ = to_backend(p, backend, "C")
    Q, _, _ = to_backend(q, backend, "C")
    got = float(check_type(klkit.kl_divergence(P, Q, kind=kind), backend, ()))
    target = exact if exact is not None else float(ref)
    assert got >= 0.0 and abs(got - target) <= 1e-12 * max(1.0, math.sqrt(n) / 100), (got, target)


# ---------------------------------------------------------------------------
# properties (hypothesis) over numpy and torch
# ---------------------------------------------------------------------------

# no shrinking: a failure is reported with the example found (keeps the file fast while it fails)
PROPS = settings(deadline=None, max_examples=25, derandomize=True, phases=(Phase.explicit, Phase.generate))


@st.composite
def logit_rows(draw, rows=3, max_k=9):
    k = draw(st.integers(2, max_k))
    vals = st.floats(-20, 20, allow_nan=False, allow_infinity=False, width=64)
    a = np.array(draw(st.lists(vals, min_size=rows * k, max_size=rows * k))).reshape(rows, k)
    b = np.array(draw(st.lists(vals, min_size=rows * k, max_size=rows * k))).reshape(rows, k)
    return a, b


def _as(x: np.ndarray, backend: str):
    return torch.from_numpy(x.copy()) if backend == "torch" else x


def _np(x) -> np.ndarray:
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


PROP_BACKENDS = pytest.mark.parametrize("backend", ["numpy", "torch"])


@PROP_BACKENDS
@PROPS
@given(pair=logit_rows(), kind=st.sampled_from(KINDS))
def test_prop_kl_nonnegative_and_zero_on_itself(backend, pair, kind):
    a, b = pair
    p, q = (
        scipy.special.softmax(x, -1)
        if kind == "probs"
        else scipy.special.log_softmax(x, -1)
        if kind == "log_probs"
        else x
        for x in (a, b)
    )
    kl = _np(klkit.kl_divergence(_as(p, backend), _as(q, backend), kind=kind))
    assert np.all(kl >= 0)
    self_kl = _np(klkit.kl_divergence(_as(p, backend), _as(p, backend), kind=kind))
    assert np.all(self_kl >= 0) and np.all(self_kl <= 1e-12)
    js = _np(klkit.js_divergence(_as(p, backend), _as(q, backend), kind=kind))
    assert np.all(js >= 0) and np.all(js <= LOG2)


@PROP_BACKENDS
@PROPS
@given(pair=logit_rows(), kind=st.sampled_from(KINDS))
def test_prop_cross_entropy_is_entropy_plus_kl(backend, pair, kind):
    a, b = pair
    p, q = (
        scipy.special.softmax(x, -1)
        if kind == "probs"
        else scipy.special.log_softmax(x, -1)
        if kind == "log_probs"
        else x
        for x in (a, b)
    )
    P, Q = _as(p, backend), _as(q, backend)
    h = _np(klkit.entropy(P, kind=kind))
    ce = _np(klkit.cross_entropy(P, Q, kind=kind))
    kl = _np(klkit.kl_divergence(P, Q, kind=kind))
    np.testing.assert_allclose(ce, h + kl, rtol=1e-12, atol=1e-12 * max(1.0, float(np.abs(ce).max())))
    d = klkit.decompose(P, Q, kind=kind)
    np.testing.assert_allclose(
        _np(d.cross_entropy),
        _np(d.entropy) + _np(d.kl_divergence),
        rtol=1e-12,
        atol=1e-12 * max(1.0, float(np.abs(ce).max())),
    )


@PROP_BACKENDS
@PROPS
@given(pair=logit_rows(), c=st.floats(-50, 50), measure=st.sampled_from(MEASURES[:4]))
def test_prop_the_three_kinds_agree(backend, pair, c, measure):
    """probs p, log_probs log p, logits log p + c: one distribution, one answer."""
    a, b = pair
    p, q = scipy.special.softmax(a, -1), scipy.special.softmax(b, -1)
    with np.errstate(divide="ignore"):
        lp, lq = np.log(p), np.log(q)
    fn = getattr(klkit, measure)

    def call(x, y, kind):
        return _np(
            fn(_as(x, backend), kind=kind) if measure == "entropy" else fn(_as(x, backend), _as(y, backend), kind=kind)
        )

    r_probs = call(p, q, "probs")
    r_log = call(lp, lq, "log_probs")
    r_logits = call(lp + c, lq - c, "logits")
    ref, cond = reference(measure, p, q, "probs", "probs")
    tol = 1e-10 * np.fmax(np.fmax(1, np.abs(ref)), cond)  # log/exp round trips of the inputs
    for got in (r_probs, r_log, r_logits):
        assert np.all(np.abs(got - ref) <= tol), (got, ref)


@PROP_BACKENDS
@PROPS
@given(pair=logit_rows(), base=st.sampled_from([2, 10, math.e, 3.7]), measure=st.sampled_from(MEASURES[:4]))
def test_prop_base_change_scales(backend, pair, base, measure):
    a, b = pair
    P, Q = _as(a, backend), _as(b, backend)
    fn = getattr(klkit, measure)
    nats = _np(fn(P, kind="logits") if measure == "entropy" else fn(P, Q, kind="logits"))
    in_base = _np(fn(P, kind="logits", base=base) if measure == "entropy" else fn(P, Q, kind="logits", base=base))
    np.testing.assert_allclose(in_base, nats / math.log(base), rtol=1e-12, atol=1e-14)
