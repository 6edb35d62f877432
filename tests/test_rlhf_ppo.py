"""PPO's RLHF-style KL penalty to a reference policy (``--kl-ref-coef``): tiny smoke runs, the metrics, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from klkit.cli.app import app
from klkit.train import ppo, rl

REF_KEYS = {"kl_ref_reverse", "kl_ref_forward", "kl_ref_estimate"}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small(**kw) -> ppo.Config:
    base = dict(env_id="CartPole-v1", total_steps=512, n_envs=2, n_steps=64, batch_size=64, n_epochs=2, progress=False)
    return ppo.Config(**{**base, **kw})


def test_default_builds_no_reference_and_logs_nothing_new(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a reference was built with kl_ref_coef = 0")

    monkeypatch.setattr(rl, "reference_policy", refuse)
    monkeypatch.setattr(rl, "reference_kl", refuse)
    ppo.train(small(), tmp_path)
    assert all(not REF_KEYS & set(r) for r in rl.read_metrics(tmp_path))


def test_default_and_explicit_zero_coefficient_train_identically(tmp_path):
    a = ppo.train(small(seed=3), tmp_path / "a")
    b = ppo.train(small(seed=3, kl_ref_coef=0.0, kl_estimator="k3", kl_placement="loss"), tmp_path / "b")
    strip = [("seconds", "steps_per_second")]
    ra, rb = rl.read_metrics(tmp_path / "a"), rl.read_metrics(tmp_path / "b")
    for x, y in zip(ra, rb, strict=True):
        for key in x:
            if key not in strip[0]:
                assert x[key] == y[key], key
    assert a["return_mean10"] == b["return_mean10"]


@pytest.mark.parametrize(("estimator", "placement", "gradient"), [
    ("k1", "reward", "native"), ("k3", "loss", "native"), ("k3", "loss", "reverse_kl"),
    ("k2", "loss", "straight_through"),
])
def test_reference_penalty_runs_and_logs_both_exact_kls(tmp_path, estimator, placement, gradient):
    ppo.train(small(kl_ref_coef=0.1, kl_estimator=estimator, kl_placement=placement, kl_gradient=gradient), tmp_path)
    records = rl.read_metrics(tmp_path)
    assert len(records) == 4
    for r in records:
        assert set(r) >= REF_KEYS
        assert r["kl_ref_reverse"] > -1e-6 and r["kl_ref_forward"] > -1e-6  # float32 rounding
    # the first rollout comes from the initial policy, which is the reference: both KLs are 0
    first = records[0]
    assert abs(first["kl_ref_reverse"]) < 1e-6 and abs(first["kl_ref_forward"]) < 1e-6
    assert abs(first["kl_ref_estimate"]) < 1e-5
    assert records[-1]["kl_ref_reverse"] > 0


def test_reference_from_another_run(tmp_path):
    ppo.train(small(seed=1), tmp_path / "ref")
    ppo.train(small(seed=2, kl_ref_coef=0.1, kl_ref=str(tmp_path / "ref")), tmp_path / "run")
    first = rl.read_metrics(tmp_path / "run")[0]
    assert first["kl_ref_reverse"] > 1e-4 and first["kl_ref_forward"] > 1e-4  # another policy from the start
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["kl_ref"] == str(tmp_path / "ref") and config["kl_ref_coef"] == 0.1


def test_cli_switches(tmp_path):
    result = CliRunner().invoke(app, ["train", "ppo", "--run-dir", str(tmp_path), "--steps", "256", "--n-envs", "2",
                                      "--n-steps", "64", "--kl-ref-coef", "0.05", "--kl-estimator", "k3",
                                      "--kl-placement", "loss", "--kl-gradient", "reverse_kl", "--no-progress"])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["kl_ref_coef"], config["kl_estimator"], config["kl_placement"], config["kl_gradient"]) == (
        0.05, "k3", "loss", "reverse_kl")
    assert set(rl.read_metrics(tmp_path)[0]) >= REF_KEYS


@pytest.mark.parametrize(("options", "message"), [
    (dict(kl_ref_coef=-1.0), r"`kl_ref_coef` must be a finite number >= 0; found -1.0"),
    (dict(kl_estimator="k4"), r"`kl_estimator` must be one of k1, k2, k3; found 'k4'"),
    (dict(kl_placement="both"), r"`kl_placement` must be one of reward, loss; found 'both'"),
    (dict(kl_gradient="forward"), r"`kl_gradient` must be one of native, reverse_kl, straight_through"),
    (dict(kl_gradient="reverse_kl"), r"`kl_gradient` must be 'native' with kl_placement='reward'"),
    (dict(kl_ref="somewhere", normalize_observations=True), r"`kl_ref` needs normalize_observations=False"),
])
def test_bad_switches_raise_naming_the_field(options, message):
    with pytest.raises(ValueError, match=message):
        small(**options).validate()


def test_missing_reference_run_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"`kl_ref` must be a run directory holding checkpoint.pt"):
        ppo.train(small(kl_ref_coef=0.1, kl_ref=str(tmp_path / "missing")), tmp_path / "run")
