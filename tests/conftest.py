"""Shared fixtures: every measure test can run on each array backend (numpy, torch)."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# for the measures' property tests (applied per test, so other modules keep their own settings);
# the backend fixture is stateless, so sharing it across examples is safe
MEASURE_PROPERTIES = settings(
    deadline=None,
    max_examples=int(os.environ.get("KLKIT_EXAMPLES", "20")),
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class Backend:
    """Converts numpy arrays to one library and back, so a test is written once."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "torch":
            import torch

            self.torch = torch

    def __call__(self, x, dtype=np.float64):
        x = np.asarray(x, dtype=dtype)
        return self.torch.from_numpy(x.copy()) if self.name == "torch" else x

    def numpy(self, x) -> np.ndarray:
        if self.name == "torch":
            assert isinstance(x, self.torch.Tensor), type(x)
            return x.detach().cpu().numpy()
        assert isinstance(x, np.ndarray | np.generic), type(x)
        return np.asarray(x)

    def __repr__(self) -> str:
        return self.name


@pytest.fixture(params=["numpy", "torch"])
def backend(request) -> Backend:
    """Run the test once with numpy arrays and once with torch tensors."""
    if request.param == "torch":
        pytest.importorskip("torch")
    return Backend(request.param)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261124)


def random_logits(rng: np.random.Generator, shape, scale: float = 2.0) -> np.ndarray:
    return rng.standard_normal(shape) * scale


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    return x - top - np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.exp(log_softmax(x, axis))


def as_kind(logits: np.ndarray, kind: str) -> np.ndarray:
    """The same distribution as probabilities, log-probabilities or logits."""
    if kind == "logits":
        return logits
    lp = log_softmax(logits)
    return lp if kind == "log_probs" else np.exp(lp) / np.exp(lp).sum(-1, keepdims=True)


@pytest.fixture
def torch_one_thread():
    """One intra-op torch thread for the test: on a shared 2-core runner (pytest -n 2, other
    jobs) OpenMP regions with 2 threads wait on descheduled peers and small ops take ~20 ms."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def numpy_peak_memory(f) -> int:
    """Peak bytes numpy allocates during the second of two calls of ``f`` (the first compiles and warms up)."""
    f()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
