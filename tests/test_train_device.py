"""Device-clean training code: shapes on the ``meta`` device, CPU generators serving any device, no CUDA → exit 2."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from klkit.cli.app import app
from klkit.train import vae
from klkit.train._runs import resolve_device
from klkit.train.errors import DeviceUnavailableError

TRAIN = Path(vae.__file__).parent.parent  # src/klkit/train (vae is a package)
CONSTRUCTORS = {
    "zeros",
    "ones",
    "empty",
    "full",
    "rand",
    "randn",
    "randint",
    "randperm",
    "arange",
    "linspace",
    "tensor",
    "eye",
}
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def _meta_model(**changes) -> vae.VAE:
    return vae.VAE((8, 8), vae.Config(hidden=(16,), latent=3, **changes)).to("meta")


@pytest.mark.parametrize("decoder", ["bernoulli", "gaussian"])
def test_the_objective_runs_on_the_meta_device(decoder):
    model, x = _meta_model(decoder=decoder), torch.empty(5, 64, device="meta")
    terms = vae.objective(model, x, samples=3, kl_weight=0.5, free_bits=0.1)
    assert terms.loss.device.type == "meta" and terms.loss.shape == ()
    assert terms.kl_per_dim.shape == (3,) and terms.mu.shape == (5, 3)


def test_evaluation_statistics_run_on_the_meta_device_with_a_cpu_generator():
    model, x = _meta_model(), torch.empty(7, 64, device="meta")
    generator = torch.Generator().manual_seed(0)  # a CPU generator, as evaluate() uses
    sums = vae.statistics_sums(model, x, generator=generator, chunk=3)
    assert sums.device.type == "meta" and sums.shape == (2 + 3,)
    assert vae.posterior_mean_variance(model, x).shape == (3,)
    assert vae.log_likelihood_bound(model, x, k=4, generator=generator).shape == (7,)


def test_standard_normal_draws_the_same_numbers_for_any_target_device():
    like = torch.zeros(1, dtype=torch.float64)
    a = vae.standard_normal((4, 2), like, torch.Generator().manual_seed(1))
    b = vae.standard_normal((4, 2), like.to("meta"), torch.Generator().manual_seed(1))
    assert a.dtype == torch.float64 and b.device.type == "meta" and b.shape == a.shape


def _constructor_calls(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    return [
        (node.lineno, node.func.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "torch"
        and node.func.attr in CONSTRUCTORS
        and not any(k.arg == "device" for k in node.keywords)
    ]


TRAIN_MODULES = sorted(p.relative_to(TRAIN).as_posix() for p in TRAIN.rglob("*.py"))  # every file, new ones too


@pytest.mark.parametrize("name", TRAIN_MODULES)
def test_every_torch_constructor_names_its_device_or_says_why_not(name):
    lines = (TRAIN / name).read_text().splitlines()
    missing = [
        f"{name}:{line} torch.{fn}"
        for line, fn in _constructor_calls(TRAIN / name)
        if "# host" not in lines[line - 1] and "# host" not in lines[line - 2]
    ]
    assert not missing, f"torch constructors without device= (add it, or a '# host: why' comment): {missing}"


@no_cuda
def test_cuda_without_cuda_is_a_named_error():
    with pytest.raises(DeviceUnavailableError, match=r"`device`.*'cuda'.*--device cpu"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


@no_cuda
def test_cli_device_cuda_without_cuda_is_one_line_exit_2(tmp_path):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["train", "vae", "--data", "digits", "--device", "cuda", "--run-dir", str(run_dir)]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: `--device`") and "--device cpu" in lines[0], result.stderr
    assert not run_dir.exists()  # refused before anything was written
    vae.train(vae.Config(data="digits", hidden=(8,), latent=2, epochs=1, max_train=64, progress=False), run_dir)
    result = CliRunner().invoke(app, ["eval", str(run_dir), "--device", "cuda", "--k", "2"])
    assert result.exit_code == 2 and "error: `--device`" in result.stderr, result.output


@no_cuda
@pytest.mark.parametrize("algorithm", ["ppo", "trpo"])
def test_rl_device_cuda_without_cuda_is_one_line_exit_2_and_writes_nothing(tmp_path, algorithm):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["train", algorithm, "--steps", "64", "--device", "cuda", "--run-dir", str(run_dir)]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: `--device`") and "--device cpu" in lines[0], result.stderr
    assert not run_dir.exists()


def test_rl_device_rejects_an_unknown_name():
    from klkit.train import ppo

    with pytest.raises(ValueError, match=r"`device` must be 'auto', 'cpu' or 'cuda'; found 'gpu'"):
        ppo.Config(device="gpu").validate()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("algorithm", ["ppo", "trpo"])
def test_rl_trains_on_cuda_and_resumes_on_the_cpu(tmp_path, algorithm):
    from klkit.train import ppo, trpo

    module = ppo if algorithm == "ppo" else trpo
    cfg = module.Config.for_env("Pendulum-v1", total_steps=2 * 2 * 1024 * 4, device="cuda", progress=False)
    cfg.n_envs, cfg.n_steps = 2, 64
    first = module.train(cfg, tmp_path)
    assert first["global_step"] == cfg.total_steps
    resumed = module.train(
        module.Config(**{**cfg.__dict__, "device": "cpu", "total_steps": 2 * cfg.total_steps}), tmp_path
    )
    assert resumed["global_step"] == 2 * cfg.total_steps
    assert np.isfinite(module.evaluate(tmp_path, episodes=1)["mean_return"])
