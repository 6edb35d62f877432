"""Differential harness for KL's relatives: every public measure of the family, every kind and backend, values
against 40-digit mpmath on the stored inputs and gradients against autograd through the defining formulas.

Measures: ``renyi_divergence`` (α = 0, ½, 1, 2, 5, ∞), ``renyi_entropy`` (α = 0, ½, 2, ∞), ``total_variation``,
``hellinger_distance``, ``js_distance``, ``f_divergence`` for each name, ``mutual_information``,
``conditional_entropy`` and ``joint_entropy`` (each row of six outcomes read as a 2 × 3 joint table).

Rows (six outcomes): random pairs, pairs with zeros, identical rows (zeros included), near-equal rows
(q = p·e^{εz}, ε = 1e-3 … 1e-7), underflowing p against masked q (logit −1000 against −inf; log kinds) and,
in float64, ratios near the float64 limit (q_i = 2.2e-308 against p_i = ½). Probabilities are exact:
integers over 2^52, so each row sums to exactly 1 and the defining formula needs no normalisation.

Reference (``reference``): the defining formula at 40 digits on the stored values (log kinds: softmax in
mpmath), with the support rule: an outcome whose probability is 0 in the working dtype is outside the support.
Values: identical rows must give exactly 0 for every distance and divergence; otherwise
``|got − ref| ≤ tol · (|ref| + c)`` with ``c`` the row's first-order size (Σ (p+q)|log p/q| for divergences,
Σ p|log p| for entropies, Σ (p+q) for TV), times ``1 + max|log|`` for log kinds (the rounding of stored logs),
``tol`` 1e-12 (float64) or 1e-5 (float32). Gradients (torch float64): equal to autograd through the defining
formula on full-support rows, compared on the tangent space (probs: mean removed; log_probs: the component
along p removed; logits: as they are), and finite everywhere the value is finite; gradcheck on smooth rows.
"""

from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
import pytest

import klkit

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("torch_one_thread")

K = 6
SCALE = 2**52
KINDS = ("probs", "log_probs", "logits")
TINY = 2.2250738585072014e-308


def _exact(rng, weights) -> np.ndarray:
    """Integers summing to 2^52 in proportion to ``weights`` (zeros stay zero), as float64 (exact)."""
    w = np.asarray(weights, dtype=np.float64)
    k = np.floor(w / w.sum() * SCALE).astype(np.int64)
    k[np.argmax(k)] += SCALE - k.sum()
    return k / SCALE


@functools.lru_cache(maxsize=2)
def rows(limit: bool) -> tuple[np.ndarray, np.ndarray, dict[str, slice]]:
    """Log-probabilities (−inf for zeros) of p and q, and the row groups."""
    rng = np.random.default_rng(2026)
    p, q, groups = [], [], {}

    def add(name, pairs):
        start = len(p)
        for a, b in pairs:
            p.append(a)
            q.append(b)
        groups[name] = slice(start, len(p))

    add("random", [(_exact(rng, rng.dirichlet(np.ones(K))), _exact(rng, rng.dirichlet(np.ones(K)))) for _ in range(6)])
    zeros = []
    for i in range(5):
        a, b = rng.dirichlet(np.ones(K)), rng.dirichlet(np.ones(K))
        a[i % K] = 0.0 if i != 1 else a[i % K]
        b[(i + 1) % K if i != 2 else i % K] = 0.0
        zeros.append((_exact(rng, a), _exact(rng, b)))
    add("zeros", zeros)
    same = [_exact(rng, rng.dirichlet(np.ones(K))) for _ in range(3)] + [zeros[0][0], zeros[3][1]]
    add("identical", [(a, a.copy()) for a in same])
    near = []
    for eps in (1e-3, 1e-5, 1e-7):
        a = _exact(rng, rng.dirichlet(np.full(K, 3.0)))
        ka = np.round(a * SCALE).astype(np.int64)
        d = np.round(ka * eps * rng.standard_normal(K)).astype(np.int64)
        d[np.argmax(ka)] -= d.sum()
        near.append((a, (ka + d) / SCALE))
    add("near", near)
    if limit:
        add("limit", [(_exact(rng, [1, 1, 1, 1, 1, 1]), np.array([TINY, 0.125, 0.125, 0.25, 0.25, 0.25]))])
    with np.errstate(divide="ignore"):
        logp, logq = np.log(np.array(p)), np.log(np.array(q))
    n = len(p) + 2
    exact_p, exact_q = np.array(p), np.array(q)
    # underflowing p (exp(−1000) = 0) against masked q: log kinds only (probabilities would store it as 0)
    under_p, under_q = logp[:2].copy(), logq[:2].copy()
    under_p[:, -1], under_q[:, -1] = -1000.0, -np.inf
    under_p[:, :-1] = np.log(np.exp(under_p[:, :-1]) / np.exp(under_p[:, :-1]).sum(-1, keepdims=True))
    under_q[:, :-1] = np.log(np.exp(under_q[:, :-1]) / np.exp(under_q[:, :-1]).sum(-1, keepdims=True))
    groups["underflow"] = slice(len(p), n)
    EXACT[limit] = (np.concatenate([exact_p, np.exp(under_p)]), np.concatenate([exact_q, np.exp(under_q)]))
    return np.concatenate([logp, under_p]), np.concatenate([logq, under_q]), groups


EXACT: dict[bool, tuple[np.ndarray, np.ndarray]] = {}  # the rows' exact probabilities


def stored(limit: bool, kind: str, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(p, q) as ``kind`` in ``dtype``; probabilities are the exact ones (not exp of their logs)."""
    logp, logq, _ = rows(limit)
    if kind == "probs":
        p, q = EXACT[limit]
        return p.astype(dtype), q.astype(dtype)
    shift = 0.0 if kind == "log_probs" else 3.0
    return (logp + shift).astype(dtype), (logq + shift).astype(dtype)


# ---------------------------------------------------------------------------
# The measures and their references
# ---------------------------------------------------------------------------

RENYI = (0.0, 0.5, 1.0, 2.0, 5.0, math.inf)
RENYI_H = (0.0, 0.5, 2.0, math.inf)
F_NAMES = ("kl", "reverse_kl", "tv", "hellinger", "chi2", "js")
DISTANCES = ("total_variation", "hellinger_distance", "js_distance")
KL_BASED = {"renyi_1.0", "f_kl", "f_reverse_kl"}  # KL itself is the engine's: its p/q > 1.3e300 case is not here


def call(name: str, p, q, kind: str):
    table = {"mutual_information", "conditional_entropy", "joint_entropy"}
    if name in table:
        t = p.reshape(*p.shape[:-1], 2, 3)
        return getattr(klkit, name)(t, kind=kind)
    if name.startswith("renyi_entropy_"):
        return klkit.renyi_entropy(p, float(name.rsplit("_", 1)[1]), kind=kind)
    if name.startswith("renyi_"):
        return klkit.renyi_divergence(p, q, float(name.split("_")[1]), kind=kind)
    if name.startswith("f_"):
        return klkit.f_divergence(p, q, name[2:], kind=kind)
    value = getattr(klkit, name)(p, q, kind=kind)
    return value**2 if name != "total_variation" else value  # distances compared squared (√ amplifies)


NAMES = (
    [f"renyi_{a}" for a in RENYI]
    + [f"renyi_entropy_{a}" for a in RENYI_H]
    + list(DISTANCES)
    + [f"f_{f}" for f in F_NAMES]
    + ["mutual_information", "conditional_entropy", "joint_entropy"]
)


def _mp_probs(x: np.ndarray, kind: str, working) -> tuple[list, float]:
    """The stored row as an exact distribution (log kinds: softmax at 40 digits; 0 where the working dtype
    has 0), and how far the stored row's total is from 1 (0 for exact probabilities and for logits)."""
    if kind == "probs":
        values = [mpmath.mpf(float(v)) for v in x]
        total = sum(values)
        return [v / total for v in values], abs(float(total - 1))
    if kind == "log_probs":
        off = abs(float(sum(mpmath.exp(mpmath.mpf(float(v))) for v in x if v > -np.inf) - 1))
    else:
        off = 0.0
    top = max(float(v) for v in x)
    e = [mpmath.exp(mpmath.mpf(float(v)) - top) if v > -np.inf else mpmath.mpf(0) for v in x]
    total = sum(e)
    shifted = x.astype(working) - working(np.max(x.astype(working)))
    with np.errstate(under="ignore", over="ignore", invalid="ignore"):
        work = np.exp(shifted - np.log(np.sum(np.exp(shifted))))
    return [v / total if w > 0 else mpmath.mpf(0) for v, w in zip(e, work, strict=True)], off


def _renyi(P, Q, a) -> mpmath.mpf:
    pairs = [(p, q) for p, q in zip(P, Q, strict=True) if p > 0]
    if a == 0:
        return -mpmath.log(sum(q for _, q in pairs)) if any(q > 0 for _, q in pairs) else mpmath.inf
    if a == math.inf:
        return mpmath.inf if any(q == 0 for _, q in pairs) else mpmath.log(max(p / q for p, q in pairs))
    if a == 1:
        return mpmath.inf if any(q == 0 for _, q in pairs) else sum(p * mpmath.log(p / q) for p, q in pairs)
    if a > 1 and any(q == 0 for _, q in pairs):
        return mpmath.inf
    s = sum(p**a * q ** (1 - a) for p, q in pairs if q > 0)
    return mpmath.inf if s == 0 else mpmath.log(s) / (a - 1)


def _renyi_h(P, a) -> mpmath.mpf:
    pos = [p for p in P if p > 0]
    if a == 0:
        return mpmath.log(len(pos))
    if a == math.inf:
        return -mpmath.log(max(pos))
    return mpmath.log(sum(p**a for p in pos)) / (1 - a)


def _f(P, Q, name) -> mpmath.mpf:
    total = mpmath.mpf(0)
    for p, q in zip(P, Q, strict=True):
        if name == "kl" and p > 0:
            total += mpmath.inf if q == 0 else p * mpmath.log(p / q)
        elif name == "reverse_kl" and q > 0:
            total += mpmath.inf if p == 0 else q * mpmath.log(q / p)
        elif name == "tv":
            total += abs(p - q) / 2
        elif name == "hellinger":
            total += (mpmath.sqrt(p) - mpmath.sqrt(q)) ** 2 / 2
        elif name == "chi2" and (p > 0 or q > 0):
            total += mpmath.inf if q == 0 else (p - q) ** 2 / q
        elif name == "js":
            m = (p + q) / 2
            total += ((p * mpmath.log(p / m) if p else 0) + (q * mpmath.log(q / m) if q else 0)) / 2
    return total


def _table(P, name) -> mpmath.mpf:
    t = [P[0:3], P[3:6]]
    px = [sum(r) for r in t]
    py = [t[0][j] + t[1][j] for j in range(3)]
    cells = [(t[i][j], px[i], py[j]) for i in range(2) for j in range(3) if t[i][j] > 0]
    if name == "mutual_information":
        return sum(p * mpmath.log(p / (a * b)) for p, a, b in cells)
    if name == "conditional_entropy":
        return -sum(p * mpmath.log(p / a) for p, a, _ in cells)
    return -sum(p * mpmath.log(p) for p, _, _ in cells)


def reference(name: str, P, Q) -> tuple[float, float]:
    """(value, first-order size c) at 40 digits."""
    with mpmath.workdps(40):
        both = [(p, q) for p, q in zip(P, Q, strict=True) if p > 0 and q > 0]
        c_div = float(sum((p + q) * abs(mpmath.log(p / q)) for p, q in both))
        c_h = float(sum(-p * mpmath.log(p) for p in P if p > 0))
        if name.startswith("renyi_entropy_"):
            return float(_renyi_h(P, float(name.rsplit("_", 1)[1]))), c_h
        if name.startswith("renyi_"):
            return float(_renyi(P, Q, float(name.split("_")[1]))), c_div
        if name in ("mutual_information", "conditional_entropy", "joint_entropy"):
            return float(_table(P, name)), c_h
        if name == "total_variation":
            return float(_f(P, Q, "tv")), float(sum(P) + sum(Q))
        f = {"hellinger_distance": "hellinger", "js_distance": "js"}.get(name, name[2:])
        return float(_f(P, Q, f)), c_div + (float(sum(P) + sum(Q)) if f == "tv" else 0.0)


@functools.lru_cache(maxsize=16)
def references(kind: str, dtype_name: str, working_name: str) -> dict[str, np.ndarray]:
    limit = dtype_name == "float64"
    dtype, working = np.dtype(dtype_name).type, np.dtype(working_name).type
    sp, sq = stored(limit, kind, dtype)
    out = {}
    with mpmath.workdps(40):
        Ps, off_p = zip(*(_mp_probs(r.astype(np.float64), kind, working) for r in sp), strict=True)
        Qs, off_q = zip(*(_mp_probs(r.astype(np.float64), kind, working) for r in sq), strict=True)
        out["off"] = np.array(off_p) + np.array(off_q)
        for name in NAMES:
            values = [reference(name, P, Q) for P, Q in zip(Ps, Qs, strict=True)]
            out[name] = np.array([v for v, _ in values])
            out[name + ":c"] = np.array([c for _, c in values])
    return out


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------

BACKENDS = {  # (library, storage dtype, working dtype)
    "np64": ("numpy", "float64", "float64"),
    "np32": ("numpy", "float32", "float64"),
    "t64": ("torch", "float64", "float64"),
    "t32": ("torch", "float32", "float32"),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("backend", list(BACKENDS))
def test_values_against_mpmath(backend, kind):
    library, dtype_name, working_name = BACKENDS[backend]
    limit = dtype_name == "float64"
    logp, logq, groups = rows(limit)
    keep = np.ones(len(logp), dtype=bool)
    if kind == "probs":
        keep[groups["underflow"]] = False  # stored as probabilities the underflowed entry is simply 0
    sp, sq = stored(limit, kind, np.dtype(dtype_name).type)
    p, q = (torch.tensor(sp), torch.tensor(sq)) if library == "torch" else (sp, sq)
    ref = references(kind, dtype_name, working_name)
    tol = 1e-12 if working_name == "float64" else 1e-5
    if dtype_name == "float32":
        tol = max(tol, 1e-6)  # the float32 result's own rounding
    logs = np.abs(np.where(np.isfinite(logp), logp, 0.0)).max(-1) + 3.0
    # float32 arithmetic: each log carries ε32·|log| absolute, so terms of p log p size enter the bound
    with np.errstate(invalid="ignore", over="ignore"):
        size = np.where(np.isfinite(logp), np.exp(logp) * np.abs(logp), 0.0).sum(-1)
        size += np.where(np.isfinite(logq), np.exp(logq) * np.abs(logq), 0.0).sum(-1)
    identical = np.zeros(len(logp), dtype=bool)
    identical[groups["identical"]] = True
    bad = []
    for name in NAMES:
        got = np.asarray(
            torch.as_tensor(call(name, p, q, kind)).double() if library == "torch" else call(name, p, q, kind)
        )
        got = got.astype(np.float64)
        want, c = ref[name], ref[name + ":c"]
        rows_ok = keep.copy()
        if "limit" in groups and name in KL_BASED:
            rows_ok[groups["limit"]] = False
        if name == "renyi_inf":
            c = np.ones_like(c)  # a max of log-ratios: each carries ε·|log| absolute, whatever its size
        # float32 arithmetic, and KL (the engine's, from log differences): each log carries ε·|log| absolute
        logged = working_name == "float32" or (kind != "probs" and name in KL_BASED)
        scale = np.abs(want) + c * (1.0 if kind == "probs" else logs) + (size if logged else 0.0)
        with np.errstate(invalid="ignore"):
            # a stored row whose total is 1 + δ has no better-defined answer than to O(δ): that enters as is
            bound = tol * (np.where(np.isinf(scale), 0, scale) + 1e-18) + 4 * ref["off"] * (1 + np.abs(want))
            close = np.where(np.isinf(want), got == want, np.abs(got - want) <= bound)
        if not name.startswith(("renyi_entropy", "joint", "conditional", "mutual")):
            close &= ~identical | (got == 0.0)  # identical rows: exactly 0
        wrong = np.flatnonzero(rows_ok & ~close)
        if wrong.size:
            i = wrong[0]
            bad.append(f"{name}: rows {wrong.tolist()} e.g. got {got[i]!r} want {want[i]!r}")
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------


def _probs(x, kind):
    return {"probs": lambda: x, "log_probs": lambda: torch.exp(x), "logits": lambda: torch.softmax(x, -1)}[kind]()


def _xlogy(x, y):
    return torch.where(x > 0, x * torch.log(torch.where(x > 0, y, 1.0)), 0.0)


def formula(name: str, p, q):
    """The defining formula in torch float64, for full-support rows (its gradients are the reference)."""
    if name.startswith("renyi_entropy_"):
        a = float(name.rsplit("_", 1)[1])
        if a == 0:
            return 0.0 * p.sum(-1) + math.log(K)
        if a == math.inf:
            return -torch.log(p.max(-1).values)
        return torch.log((p**a).sum(-1)) / (1 - a)
    if name.startswith("renyi_"):
        a = float(name.split("_")[1])
        if a == 0:
            return 0.0 * (p + q).sum(-1)
        if a == 1:
            return (p * torch.log(p / q)).sum(-1)
        if a == math.inf:
            return torch.log((p / q).max(-1).values)
        return torch.log((p**a * q ** (1 - a)).sum(-1)) / (a - 1)
    if name in ("mutual_information", "conditional_entropy", "joint_entropy"):
        t = p.reshape(-1, 2, 3)
        px, py = t.sum(-1, keepdim=True), t.sum(-2, keepdim=True)
        if name == "mutual_information":
            return (t * torch.log(t / (px * py))).sum((-1, -2))
        if name == "conditional_entropy":
            return -(t * torch.log(t / px)).sum((-1, -2))
        return -(t * torch.log(t)).sum((-1, -2))
    m = (p + q) / 2
    f = {"total_variation": "tv", "hellinger_distance": "hellinger", "js_distance": "js"}.get(name, name[2:])
    return {
        "kl": lambda: (p * torch.log(p / q)).sum(-1),
        "reverse_kl": lambda: (q * torch.log(q / p)).sum(-1),
        "tv": lambda: (p - q).abs().sum(-1) / 2,
        "hellinger": lambda: ((p.sqrt() - q.sqrt()) ** 2).sum(-1) / 2,
        "chi2": lambda: ((p - q) ** 2 / q).sum(-1),
        "js": lambda: (_xlogy(p, p / m) + _xlogy(q, q / m)).sum(-1) / 2,
    }[f]()


def _tangent(g, x, kind):
    if kind == "probs":
        return g - g.mean(-1, keepdim=True)
    if kind == "log_probs":
        p = torch.exp(x)
        return g - p * (g * p).sum(-1, keepdim=True) / (p * p).sum(-1, keepdim=True)
    return g


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_against_the_defining_formulas(kind):
    logp, logq, groups = rows(True)
    sp, sq = stored(True, kind, np.float64)
    full = np.isfinite(logp).all(-1) & np.isfinite(logq).all(-1) & (np.exp(logq).min(-1) > 1e-300)
    full[groups["identical"]] = False  # TV, α = ∞ and √ are not differentiable at P = Q
    bad = []
    for name in NAMES:
        p = torch.tensor(sp, requires_grad=True)
        q = torch.tensor(sq, requires_grad=True)
        value = call(name, p, q, kind)
        finite = torch.isfinite(value)
        gp, gq = torch.autograd.grad(value[finite].sum(), (p, q), allow_unused=True)
        gq = torch.zeros_like(q) if gq is None else gq
        finite[groups["limit"]] = False  # there ∂χ²/∂q = −(p/q)² − … ≈ −6e614 is truly beyond float64
        if not (torch.isfinite(gp[finite]).all() and torch.isfinite(gq[finite]).all()):
            bad.append(f"{name}: non-finite gradient on a finite row")
        sel = torch.tensor(full)
        rp = torch.tensor(sp[full], requires_grad=True)
        rq = torch.tensor(sq[full], requires_grad=True)
        ref = formula(name, _probs(rp, kind), _probs(rq, kind))
        ref_name = name
        if name in ("hellinger_distance", "js_distance"):
            ref_name = name  # compared squared, as call() returns
        rgp, rgq = torch.autograd.grad(ref.sum(), (rp, rq), allow_unused=True)
        rgq = torch.zeros_like(rq) if rgq is None else rgq
        for got, want, x in ((gp[sel], rgp, rp), (gq[sel], rgq, rq)):
            got, want = _tangent(got, x.detach(), kind), _tangent(want, x.detach(), kind)
            scale = want.abs().amax(-1, keepdim=True) + 1e-12
            err = float(((got - want).abs() / scale).max())
            if err > 1e-8:
                bad.append(f"{ref_name}: gradient off by {err:.2e} (relative to the row's largest)")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("kind", ["log_probs", "logits"])
def test_gradcheck_where_smooth(kind):
    _, _, groups = rows(False)
    idx = list(range(groups["random"].start, groups["random"].start + 2)) + list(range(*groups["near"].indices(99)))[:2]
    p, q = stored(False, kind, np.float64)
    sp, sq = torch.tensor(p[idx], requires_grad=True), torch.tensor(q[idx], requires_grad=True)
    for name in NAMES:
        if name in ("renyi_inf", "renyi_entropy_inf", "total_variation", "f_tv"):
            continue  # max and |·| are not smooth; their gradients are checked against the formula above
        if kind == "log_probs" and name in KL_BASED:
            continue  # KL (the engine's) off the simplex: its value drops Σ(q − p), its gradient keeps it
        f = functools.partial(call, name, kind=kind)
        # log-probabilities: a step small enough to stay within the sum tolerance (1.5e-8) of validation
        assert torch.autograd.gradcheck(f, (sp, sq), eps=1e-7 if kind == "logits" else 3e-9, atol=1e-5), name
