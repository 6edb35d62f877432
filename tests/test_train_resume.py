"""Resume never rewrites history: a changed configuration is refused (one line, exit 2), config.json untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from klkit.cli.app import app
from klkit.train import ppo, rl, trpo
from klkit.train.errors import ConfigMismatchError

runner = CliRunner()
PPO_ARGS = ["--env", "CartPole-v1", "--steps", "256", "--n-envs", "2", "--n-steps", "64", "--no-progress"]
TRPO_ARGS = ["--env", "CartPole-v1", "--steps", "256", "--n-envs", "2", "--n-steps", "64", "--no-progress"]


def _ppo(**kw) -> ppo.Config:
    return ppo.Config(
        **{"total_steps": 256, "n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 1, "progress": False, **kw}
    )


def _trpo(**kw) -> trpo.Config:
    return trpo.Config(**{"total_steps": 256, "n_envs": 2, "n_steps": 64, "critic_epochs": 1, "progress": False, **kw})


def _files(run_dir: Path) -> dict[str, bytes]:
    return {name: (run_dir / name).read_bytes() for name in ("config.json", "metrics.jsonl", "checkpoint.pt")}


@pytest.mark.parametrize(
    ("module", "make", "change", "shown"),
    [
        (ppo, _ppo, {"seed": 1}, "seed 0 → 1"),
        (ppo, _ppo, {"learning_rate": 2e-3}, "learning_rate 0.001 → 0.002"),
        (trpo, _trpo, {"seed": 1}, "seed 0 → 1"),
        (trpo, _trpo, {"max_kl": 0.02}, "max_kl 0.01 → 0.02"),
    ],
)
def test_a_changed_configuration_is_refused_and_nothing_is_written(tmp_path, module, make, change, shown):
    module.train(make(), tmp_path)
    before = _files(tmp_path)
    with pytest.raises(ConfigMismatchError, match="new --run-dir") as info:
        module.train(make(**change), tmp_path)
    assert shown in str(info.value) and "\n" not in str(info.value)
    assert _files(tmp_path) == before


def test_resumable_keys_may_change(tmp_path):
    ppo.train(_ppo(), tmp_path)
    result = ppo.train(_ppo(total_steps=384, threads=1, checkpoint_every=2), tmp_path)
    assert result["global_step"] == 384
    assert json.loads((tmp_path / "config.json").read_text())["total_steps"] == 384
    assert {"total_steps", "threads", "device", "progress", "checkpoint_every"} == set(rl.RESUMABLE)


def test_a_different_algorithm_names_only_the_algorithm(tmp_path):
    ppo.train(_ppo(), tmp_path)
    with pytest.raises(ConfigMismatchError, match=r'algorithm "ppo" → "trpo"\)'):
        trpo.train(_trpo(), tmp_path)


@pytest.mark.parametrize(
    ("command", "args", "change", "shown"),
    [
        ("ppo", PPO_ARGS, ["--seed", "1"], "seed 0 → 1"),
        ("ppo", PPO_ARGS, ["--lr", "0.002"], "learning_rate 0.001 → 0.002"),
        ("trpo", TRPO_ARGS, ["--seed", "1"], "seed 0 → 1"),
    ],
)
def test_cli_refuses_a_changed_configuration_in_one_line_with_exit_2(tmp_path, command, args, change, shown):
    run_dir = tmp_path / "run"
    first = runner.invoke(app, ["train", command, *args, "--run-dir", str(run_dir)])
    assert first.exit_code == 0, first.output
    before = _files(run_dir)
    again = runner.invoke(app, ["train", command, *args, *change, "--run-dir", str(run_dir)])
    assert again.exit_code == 2, again.output
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and shown in lines[0], again.stderr
    assert "new --run-dir" in lines[0] and again.stdout == ""
    assert _files(run_dir) == before
    same = runner.invoke(app, ["train", command, *args, "--run-dir", str(run_dir)])  # same options: resumes
    assert same.exit_code == 0 and f"{command} on CartPole-v1: 256 steps" in same.output, same.output


def test_a_setting_added_since_the_run_started_resumes_at_its_default(tmp_path):
    ppo.train(_ppo(), tmp_path)
    path = tmp_path / "config.json"
    config = json.loads(path.read_text())
    del config["kl_ref_coef"], config["device"]  # as written before these settings existed
    path.write_text(json.dumps(config))
    assert ppo.train(_ppo(total_steps=384), tmp_path)["global_step"] == 384
    config = json.loads(path.read_text())
    del config["kl_ref_coef"]
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigMismatchError, match=r"kl_ref_coef 0\.0 → 0\.5"):  # the default is what it ran with
        ppo.train(_ppo(total_steps=512, kl_ref_coef=0.5), tmp_path)
