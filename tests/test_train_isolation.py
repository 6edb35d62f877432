"""Library calls leave the caller's torch threads and global RNGs (torch, numpy, Python) as they found them."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch.distributions import Normal, Uniform

import klkit
from klkit.train import ppo, trpo, vae
from klkit.train._runs import isolated_rng, torch_threads

TINY_VAE = {
    "data": "digits",
    "hidden": (8,),
    "latent": 2,
    "batch_size": 64,
    "max_train": 128,
    "epochs": 1,
    "progress": False,
    "eval_every": 1,
}


def _global_state() -> tuple[Any, ...]:
    return (
        torch.get_num_threads(),
        torch.random.get_rng_state().clone(),
        np.random.get_state()[1].copy(),  # noqa: NPY002
        random.getstate(),
    )


def _assert_untouched(call: Callable[[], Any]) -> None:
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002
    random.seed(123)
    threads, torch_state, numpy_state, python_state = _global_state()
    call()
    after = _global_state()
    assert after[0] == threads, "torch threads changed"
    assert torch.equal(after[1], torch_state), "torch's global RNG advanced"
    assert np.array_equal(after[2], numpy_state), "numpy's global RNG advanced"
    assert after[3] == python_state, "Python's random advanced"


@pytest.mark.parametrize("threads", [None, 1])
def test_vae_train_and_evaluate_leave_threads_and_rng(tmp_path, threads):
    _assert_untouched(lambda: vae.train(vae.Config(**TINY_VAE, threads=threads), tmp_path))
    _assert_untouched(lambda: vae.evaluate(tmp_path, k=2, kl_check_samples=10, figures=False, threads=threads))


@pytest.mark.parametrize("threads", [None, 1])
def test_ppo_and_trpo_leave_threads_and_rng(tmp_path, threads):
    _assert_untouched(
        lambda: ppo.train(
            ppo.Config(
                total_steps=128, n_envs=2, n_steps=64, batch_size=64, n_epochs=1, threads=threads, progress=False
            ),
            tmp_path / "ppo",
        )
    )
    _assert_untouched(lambda: ppo.evaluate(tmp_path / "ppo", episodes=1, deterministic=False))
    _assert_untouched(
        lambda: trpo.train(
            trpo.Config(total_steps=128, n_envs=2, n_steps=64, critic_epochs=1, threads=threads, progress=False),
            tmp_path / "trpo",
        )
    )


def test_seeded_runs_still_repeat_after_isolation(tmp_path):
    cfg = ppo.Config(total_steps=128, n_envs=2, n_steps=64, batch_size=64, n_epochs=1, seed=4, progress=False)
    a, b = ppo.train(cfg, tmp_path / "a"), ppo.train(cfg, tmp_path / "b")
    assert a["return_mean10"] == b["return_mean10"]


@pytest.mark.parametrize(
    "call",
    [
        lambda: klkit.kl_divergence(Normal(0.0, 1.0), Uniform(-1.0, 1.0), seed=0, method="mc", n_samples=2000),
        lambda: klkit.kl_divergence(Uniform(-1.0, 1.0), Normal(0.0, 1.0), seed=0, method="mc", n_samples=2000),
        lambda: klkit.cross_entropy(Normal(0.0, 1.0), Uniform(-1.0, 1.0), seed=0, method="mc", n_samples=2000),
        lambda: klkit.js_divergence(Normal(0.0, 1.0), Uniform(-1.0, 1.0), seed=0, n_samples=2000),
    ],
    ids=["kl-normal-uniform", "kl-uniform-normal", "cross-entropy", "js"],
)
def test_seeded_monte_carlo_leaves_the_global_rng(call):
    _assert_untouched(call)


def test_seeded_monte_carlo_is_repeatable():
    p, q = Uniform(-1.0, 1.0), Normal(0.0, 1.0)
    a = klkit.kl_divergence(p, q, seed=3, method="mc", n_samples=500)
    torch.rand(7)  # whatever the global generator does in between
    assert float(a.value) == float(klkit.kl_divergence(p, q, seed=3, method="mc", n_samples=500).value)


def test_scopes_restore_after_an_exception():
    threads, state = torch.get_num_threads(), torch.random.get_rng_state()
    with pytest.raises(RuntimeError), torch_threads(1), isolated_rng():
        torch.manual_seed(0)
        raise RuntimeError("inside")
    assert torch.get_num_threads() == threads and torch.equal(torch.random.get_rng_state(), state)
