"""klkit's thread pool under concurrent callers: no crash, no deadlock, the single-threaded answer.

Eight Python threads call the measures at once, on sizes that take the threaded numpy kernels
(probabilities and logits) and sizes that do not, while another thread keeps changing
:func:`klkit.set_num_threads`; every result must equal, bit for bit, the one computed with one
thread before. The pool used to be replaced (and shut down) by a call that needed more workers
while another call was still submitting to it.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import klkit

SIZES = ((4096, 64), (2048, 100), (512, 1000), (32, 50), (1, 300_000))  # rows × n: threaded and small
CALLS = ("entropy", "cross_entropy", "kl_divergence")
N_THREADS = 8
JOIN_TIMEOUT = 120.0  # seconds: a deadlock fails the test instead of hanging it


def _cases() -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    cases = []
    for rows, n in SIZES:
        logits_p, logits_q = rng.normal(size=(rows, n)), rng.normal(size=(rows, n))
        for kind in ("probs", "logits"):
            if kind == "probs":
                p = np.exp(logits_p - logits_p.max(-1, keepdims=True))
                q = np.exp(logits_q - logits_q.max(-1, keepdims=True))
                p, q = p / p.sum(-1, keepdims=True), q / q.sum(-1, keepdims=True)
            else:
                p, q = logits_p, logits_q
            for name in CALLS:
                cases.append((name, kind, p, q))
    return cases


def _call(name: str, kind: str, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    fn = getattr(klkit, name)
    return np.asarray(fn(p, kind=kind) if name == "entropy" else fn(p, q, kind=kind))


def test_concurrent_calls_give_the_single_threaded_answer() -> None:
    cases = _cases()
    klkit.set_num_threads(1)
    try:
        expected = [_call(*case) for case in cases]
        errors: list[BaseException] = []
        mismatches: list[str] = []
        stop = threading.Event()

        def churn() -> None:  # the thread count changes between (and during) the calls
            counts = (48, 2, 7, 1, 16, 3, 33)
            i = 0
            while not stop.is_set():
                klkit.set_num_threads(counts[i % len(counts)])
                i += 1
                stop.wait(0.001)

        def worker(w: int) -> None:
            try:
                for rep in range(2):
                    for j in range(len(cases)):
                        k = (j + 7 * w + rep) % len(cases)  # each thread in its own order: mixed sizes at once
                        got = _call(*cases[k])
                        if not np.array_equal(got, expected[k]):
                            name, kind, p, _ = cases[k]
                            mismatches.append(f"{name} {kind} {p.shape}: max diff {np.max(np.abs(got - expected[k]))}")
            except BaseException as exc:  # reported in the main thread
                errors.append(exc)

        changer = threading.Thread(target=churn, daemon=True)
        threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(N_THREADS)]
        changer.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join(JOIN_TIMEOUT)
        stop.set()
        changer.join(JOIN_TIMEOUT)
        alive = [t.name for t in threads if t.is_alive()]
        assert not alive, f"threads still running after {JOIN_TIMEOUT} s (deadlock?): {alive}"
        assert not errors, f"{len(errors)} calls raised, first: {errors[0]!r}"
        assert not mismatches, mismatches[:5]
    finally:
        klkit.set_num_threads(None)


def test_pool_grows_while_a_call_is_running() -> None:
    """A call that needs more workers than the pool has, while another call holds the pool,
    must not shut the held pool down under it (the exact failure of the old pool)."""
    from klkit._engine import parallel_map

    started, release = threading.Event(), threading.Event()
    result: list[list[int]] = []

    def slow(i: int) -> int:
        started.set()
        release.wait(JOIN_TIMEOUT)
        return i

    def first() -> None:
        result.append(parallel_map(slow, list(range(2))))

    t = threading.Thread(target=first, daemon=True)
    t.start()
    if not started.wait(JOIN_TIMEOUT):
        pytest.fail("the first call never started")
    assert parallel_map(lambda i: i * i, list(range(64))) == [i * i for i in range(64)]  # grows the pool
    release.set()
    t.join(JOIN_TIMEOUT)
    assert not t.is_alive()
    assert result == [[0, 1]]
