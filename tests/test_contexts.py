"""klkit's thread pool in child processes (fork, spawn, torch DataLoader workers) and its size.

Every child gets a timeout, so a hang fails the test instead of hanging the suite.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time

import numpy as np
import pytest
import scipy.special

import klkit
from klkit._engine import NUM_THREADS_ENV_VAR
from klkit._engine import threads as engine_threads  # white-box: the pool's state

TIMEOUT = 120.0
SHAPE = (64, 4096)  # 2^18 elements: the numpy kernels, several chunks per thread


@pytest.fixture(autouse=True)
def default_threads(monkeypatch):
    monkeypatch.delenv(NUM_THREADS_ENV_VAR, raising=False)
    yield
    klkit.set_num_threads(None)


def _probs(seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).random(SHAPE) + 0.01
    return x / x.sum(-1, keepdims=True)


def _expected(p: np.ndarray) -> np.ndarray:
    return -scipy.special.xlogy(p, p).sum(-1)


def entropy_matches(seed: int = 0) -> bool:
    """A large call in this process, compared with the float64 scipy reference."""
    p = _probs(seed)
    return bool(np.allclose(klkit.entropy(p, validate=False), _expected(p), rtol=1e-12, atol=0))


def _child_exit_code() -> int:
    return 0 if entropy_matches(1) and entropy_matches(2) else 1


# --- fork and spawn --------------------------------------------------------------------------


@pytest.fixture
def threaded_parent():
    """A parent whose pool has threads running (two, whatever the machine)."""
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    klkit.set_num_threads(2)
    assert entropy_matches()
    assert engine_threads._pool is not None


def _wait(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child hung for {timeout:.0f} s")


@pytest.mark.usefixtures("threaded_parent")
def test_os_fork_after_a_threaded_call():
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            code = 0 if engine_threads._pool is None and _child_exit_code() == 0 else 1
        finally:
            os._exit(code)
    assert _wait(pid, TIMEOUT) == 0
    assert entropy_matches(3)  # the parent's pool still works


def _run(context: str) -> int | None:
    ctx = multiprocessing.get_context(context)
    proc = ctx.Process(target=_mp_child)
    proc.start()
    proc.join(TIMEOUT)
    if proc.is_alive():
        proc.kill()
        proc.join()
        pytest.fail(f"the {context!r} child hung for {TIMEOUT:.0f} s")
    return proc.exitcode


def _mp_child() -> None:
    sys.exit(_child_exit_code())


@pytest.mark.usefixtures("threaded_parent")
def test_multiprocessing_fork_after_a_threaded_call():
    assert _run("fork") == 0


@pytest.mark.usefixtures("threaded_parent")
def test_multiprocessing_spawn():
    assert _run("spawn") == 0


class _LargeEntropy:
    """A dataset whose items are computed with klkit on a large array."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        p = _probs(i)
        return klkit.entropy(p, validate=False), _expected(p), klkit.get_num_threads()


@pytest.mark.parametrize("threads", [None, 2])
def test_torch_dataloader_workers(threads):
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    klkit.set_num_threads(2)
    assert entropy_matches()  # the parent has a pool with threads
    klkit.set_num_threads(threads)
    loader = DataLoader(_LargeEntropy(), batch_size=None, num_workers=2, timeout=TIMEOUT)
    items = list(loader)
    assert len(items) == 4
    for got, expected, workers_threads in items:
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-12)
        # torch sets one thread in its workers; klkit follows unless told otherwise
        assert workers_threads == (1 if threads is None else threads)
    del torch


# --- the thread count ----------------------------------------------------------------------------


def test_default_is_the_cpus_available_capped_by_torch(monkeypatch):
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "torch", None)  # as if torch were not imported
        assert klkit.get_num_threads() == cpus
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert klkit.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this platform")
def test_default_follows_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not imported
    assert klkit.get_num_threads() == 1


def test_environment_variable(monkeypatch):
    monkeypatch.setenv(NUM_THREADS_ENV_VAR, "3")
    assert klkit.get_num_threads() == 3
    klkit.set_num_threads(2)  # an explicit call wins
    assert klkit.get_num_threads() == 2
    klkit.set_num_threads(None)
    assert klkit.get_num_threads() == 3


@pytest.mark.parametrize("raw", ["0", "-2", "four", "2.5"])
def test_environment_variable_must_be_a_positive_integer(monkeypatch, raw):
    monkeypatch.setenv(NUM_THREADS_ENV_VAR, raw)
    with pytest.raises(ValueError, match=rf"KLKIT_NUM_THREADS.*{raw!r}.*unset it"):
        klkit.get_num_threads()
    with pytest.raises(ValueError, match="KLKIT_NUM_THREADS"):
        klkit.entropy(_probs(), validate=False)


@pytest.mark.parametrize(
    "bad, error", [(0, ValueError), (-1, ValueError), (2.0, TypeError), (True, TypeError), ("2", TypeError)]
)
def test_set_num_threads_rejects(bad, error):
    with pytest.raises(error, match="positive integer"):
        klkit.set_num_threads(bad)
