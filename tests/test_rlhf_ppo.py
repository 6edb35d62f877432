"""PPO's RLHF-style KL penalty to a reference policy (``--kl-ref-coef``): tiny smoke runs, the metrics, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import special
from typer.testing import CliRunner

from klkit.cli.app import app
from klkit.rlhf import ESTIMATORS, GRADIENTS, PLACEMENTS
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


@pytest.mark.parametrize(
    ("estimator", "placement", "gradient"),
    [
        ("k1", "reward", "native"),
        ("k3", "loss", "native"),
        ("k3", "loss", "reverse_kl"),
        ("k2", "loss", "straight_through"),
    ],
)
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
    result = CliRunner().invoke(
        app,
        [
            "train",
            "ppo",
            "--run-dir",
            str(tmp_path),
            "--steps",
            "256",
            "--n-envs",
            "2",
            "--n-steps",
            "64",
            "--kl-ref-coef",
            "0.05",
            "--kl-estimator",
            "k3",
            "--kl-placement",
            "loss",
            "--kl-gradient",
            "reverse_kl",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["kl_ref_coef"], config["kl_estimator"], config["kl_placement"], config["kl_gradient"]) == (
        0.05,
        "k3",
        "loss",
        "reverse_kl",
    )
    assert set(rl.read_metrics(tmp_path)[0]) >= REF_KEYS


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            dict(kl_ref_coef=-1.0),
            r"`kl_ref_coef` must be a finite number >= 0; found -1\.0\. Pass 0 to turn the penalty "
            r"off, or a small β such as 0\.05\.",
        ),
        (dict(kl_ref_coef=float("inf")), r"`kl_ref_coef` must be a finite number >= 0; found inf\. Pass 0"),
        (dict(kl_ref_coef=True), r"`kl_ref_coef` must be a finite number >= 0; found True\. Pass 0"),
        (
            dict(kl_estimator="k4"),
            r"`kl_estimator` must be one of 'k1', 'k2', 'k3', 'abs'; found 'k4'\. Use 'k1' or 'k3' "
            r"\(unbiased for KL\(π_old‖π_ref\) at the rollout's actions\)\.",
        ),
        (
            dict(kl_placement="both"),
            r"`kl_placement` must be one of 'reward', 'loss'; found 'both'\. Use 'reward' "
            r"\(β·estimate off each reward\) or 'loss' \(β·surrogate added to the loss\)\.",
        ),
        (
            dict(kl_gradient="forward"),
            r"`kl_gradient` must be one of 'native', 'reverse_kl', 'straight_through'; found "
            r"'forward'\. Use 'native' \(the libraries' gradient\) or 'reverse_kl'",
        ),
        (
            dict(kl_gradient="reverse_kl"),
            r"`kl_gradient` must be 'native' with kl_placement='reward'; found "
            r"'reverse_kl'\. In the reward only the estimate is used; use "
            r"kl_placement='loss'",
        ),
        (
            dict(kl_ref="somewhere", normalize_observations=True),
            r"`kl_ref` needs normalize_observations=False: .*found "
            r"normalize_observations=True\. Turn it off or drop "
            r"kl_ref",
        ),
    ],
)
def test_bad_switches_raise_naming_the_field(options, message):
    with pytest.raises(ValueError, match=message):
        small(**options).validate()


def test_the_switches_accept_exactly_the_options_of_klkit_rlhf():
    for estimator in ESTIMATORS:
        small(kl_ref_coef=0.1, kl_estimator=estimator).validate()
    for placement in PLACEMENTS:
        for gradient in GRADIENTS if placement == "loss" else ("native",):
            small(kl_ref_coef=0.1, kl_placement=placement, kl_gradient=gradient).validate()


def test_missing_reference_run_is_refused(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"`kl_ref` must be a run directory holding checkpoint.pt; none in .*missing\. "
        r"Train the reference first, or leave kl_ref None",
    ):
        ppo.train(small(kl_ref_coef=0.1, kl_ref=str(tmp_path / "missing")), tmp_path / "run")


@pytest.mark.parametrize(
    ("saved", "found"),
    [
        (dict(env_id="Acrobot-v1", normalize_observations=False), "'Acrobot-v1' with normalize_observations=False"),
        (dict(env_id="CartPole-v1", normalize_observations=True), "'CartPole-v1' with normalize_observations=True"),
    ],
)
def test_a_reference_run_that_reads_other_observations_is_refused(tmp_path, saved, found):
    (tmp_path / rl.CHECKPOINT).write_bytes(b"")  # refused before the checkpoint is read
    (tmp_path / rl.CONFIG).write_text(json.dumps(saved))
    cfg = small(kl_ref_coef=0.1, kl_ref=str(tmp_path))
    with pytest.raises(
        ValueError,
        match=rf"`kl_ref` must be a run on CartPole-v1 without observation normalisation; "
        rf"found {found}\. Point kl_ref at such a run",
    ):
        rl.reference_policy(cfg, rl.build_policy(cfg))


# --- the penalty itself: rewards, metrics, and its effect on training --------------------------------------


@pytest.fixture(scope="module")
def rollout(tmp_path_factory):
    """A CartPole rollout of a fresh policy (1,024 steps) and a reference that differs from it by a fixed amount."""
    cfg = small(n_envs=4, n_steps=256, seed=11)
    with rl.run_scope(1):
        run = rl.Run(cfg, tmp_path_factory.mktemp("rollout"), "ppo")
        run.resume({})
        run.collect_rollout()
        run.finish()
        reference = rl.reference_policy(cfg, run.policy)
        generator = torch.Generator().manual_seed(0)
        last = reference.actor[-1]  # logits moved away from the rollout policy's: KL(π_old‖π_ref) ≈ 0.1
        last.weight.copy_(0.3 * torch.randn(last.weight.shape, generator=generator))
        last.bias.copy_(torch.tensor([0.3, -0.2]))
    return run.buffer, reference


def independent_kls(buffer, reference):
    """log π_old, log π_ref at the actions and the exact per-state KLs both ways, in float64 with scipy."""
    n = buffer.rewards.size
    obs = torch.from_numpy(buffer.obs.reshape(n, -1))
    with torch.no_grad():
        ref_logits = reference.distribution_parameters(obs).double().numpy()
    old_logits = buffer.dist_params.reshape(n, -1).astype(np.float64)
    log_ref = ref_logits - special.logsumexp(ref_logits, axis=1, keepdims=True)
    log_old = old_logits - special.logsumexp(old_logits, axis=1, keepdims=True)
    actions = buffer.actions.reshape(n)
    old_at = buffer.log_probs.reshape(n).astype(np.float64)
    np.testing.assert_allclose(old_at, log_old[np.arange(n), actions], rtol=0, atol=1e-5)  # the rollout's log π_old
    reverse = special.rel_entr(np.exp(log_old), np.exp(log_ref)).sum(axis=1)
    forward = special.rel_entr(np.exp(log_ref), np.exp(log_old)).sum(axis=1)
    return old_at, log_ref[np.arange(n), actions], reverse, forward


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_reference_kl_takes_beta_times_the_estimate_off_the_rewards(rollout, estimator):
    buffer, reference = rollout
    beta = 0.7
    cfg = small(kl_ref_coef=beta, kl_estimator=estimator, kl_placement="reward")
    old_at, ref_at, reverse, forward = independent_kls(buffer, reference)
    ell = old_at - ref_at  # log π_old - log π_ref at the sampled actions
    estimate = ell if estimator == "k1" else np.expm1(-ell) + ell  # k3 = e^d - 1 - d with d = -ℓ
    before = buffer.rewards.astype(np.float64).copy()
    copy = rl.RolloutBuffer(**{k: v.copy() for k, v in vars(buffer).items()})
    ref_log_probs, record = rl.reference_kl(reference, copy, cfg)
    np.testing.assert_allclose(ref_log_probs.double().numpy(), ref_at, rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        copy.rewards.astype(np.float64).ravel(), before.ravel() - beta * estimate, rtol=0, atol=1e-5
    )
    assert abs(record["kl_ref_estimate"] - estimate.mean()) < 1e-5
    assert record["kl_ref_reverse"] == pytest.approx(reverse.mean(), rel=1e-5)
    assert record["kl_ref_forward"] == pytest.approx(forward.mean(), rel=1e-5)
    assert 0.03 < reverse.mean() < 0.5  # the penalty is not vacuous on this rollout
    # in the loss, the rewards are left alone
    untouched = rl.RolloutBuffer(**{k: v.copy() for k, v in vars(buffer).items()})
    rl.reference_kl(reference, untouched, small(kl_ref_coef=beta, kl_estimator=estimator, kl_placement="loss"))
    np.testing.assert_array_equal(untouched.rewards, buffer.rewards)


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_estimate_agrees_with_the_exact_kl_within_its_standard_error(rollout, estimator):
    # E_{a~π_old(.|s)}[k] = KL(π_old(.|s)‖π_ref(.|s)) for k1 and k3: their difference is a martingale difference,
    # so the mean estimate lies within a few standard errors of the mean exact KL
    buffer, reference = rollout
    old_at, ref_at, reverse, _ = independent_kls(buffer, reference)
    ell = old_at - ref_at
    estimate = ell if estimator == "k1" else np.expm1(-ell) + ell
    se = np.std(estimate - reverse, ddof=1) / np.sqrt(estimate.size)
    _, record = rl.reference_kl(
        reference,
        rl.RolloutBuffer(**{k: v.copy() for k, v in vars(buffer).items()}),
        small(kl_ref_coef=0.1, kl_estimator=estimator),
    )
    assert 0 < se < 0.02
    assert abs(record["kl_ref_estimate"] - record["kl_ref_reverse"]) < 4 * se


def test_a_large_beta_keeps_the_policy_closer_to_the_reference(tmp_path):
    def final_kl(name, **options):
        cfg = ppo.Config.for_env("CartPole-v1", total_steps=4096, seed=0, progress=False, **options)
        ppo.train(cfg, tmp_path / name)
        return rl.read_metrics(tmp_path / name)

    # β = 1e-9 in the reward is β = 0 in float32 (β·estimate is below half an ulp of every reward): the same run,
    # with the KL to the reference measured
    zero, tiny = final_kl("zero"), final_kl("tiny", kl_ref_coef=1e-9)
    assert [r["policy_loss"] for r in zero] == [r["policy_loss"] for r in tiny]
    assert [r["return_mean10"] for r in zero] == [r["return_mean10"] for r in tiny]
    free = tiny[-1]["kl_ref_reverse"]
    in_reward = final_kl("reward", kl_ref_coef=5.0)[-1]["kl_ref_reverse"]
    in_loss = final_kl("loss", kl_ref_coef=5.0, kl_placement="loss", kl_estimator="k3", kl_gradient="reverse_kl")[-1][
        "kl_ref_reverse"
    ]
    assert free > 0.03  # measured 0.075
    assert in_reward < free / 2 and in_loss < free / 2  # measured 0.015 and 0.002


# --- resuming keeps the reference --------------------------------------------------------------------------


def spy_references(monkeypatch):
    """Record the reference's weights each time PPO evaluates the penalty."""
    seen, original = [], rl.reference_kl

    def spy(reference, buffer, cfg, device=None):
        seen.append({k: v.detach().cpu().clone() for k, v in reference.state_dict().items()})
        return original(reference, buffer, cfg, device)

    monkeypatch.setattr(rl, "reference_kl", spy)
    return seen


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_resumed_run_keeps_its_initial_policy_as_the_reference(tmp_path, monkeypatch):
    seen = spy_references(monkeypatch)
    cfg = small(seed=4, kl_ref_coef=0.1, checkpoint_every=1)
    ppo.train(cfg, tmp_path / "run")  # interrupted after 512 steps ...
    ppo.train(small(seed=4, kl_ref_coef=0.1, checkpoint_every=1, total_steps=1024), tmp_path / "run")  # ... resumed
    assert len(seen) == 8
    with rl.run_scope(None):  # the initial weights of a fresh run with this seed
        initial = rl.Run(cfg, tmp_path / "fresh", "ppo").policy.state_dict()
    assert all(same_weights(weights, initial) for weights in seen)
    saved = torch.load(tmp_path / "run" / rl.CHECKPOINT, weights_only=True)
    assert same_weights(saved["extra"]["reference"], initial)
    assert not same_weights(saved["policy"], initial)  # the policy did move away from it


def test_a_resumed_run_keeps_the_reference_run_as_it_was(tmp_path, monkeypatch):
    ppo.train(small(seed=1), tmp_path / "ref")
    at_start = torch.load(tmp_path / "ref" / rl.CHECKPOINT, weights_only=True)["policy"]
    seen = spy_references(monkeypatch)
    options = dict(seed=2, kl_ref_coef=0.1, kl_ref=str(tmp_path / "ref"))
    ppo.train(small(**options), tmp_path / "run")
    ppo.train(small(seed=1, total_steps=1024), tmp_path / "ref")  # the reference run trains on meanwhile
    assert not same_weights(torch.load(tmp_path / "ref" / rl.CHECKPOINT, weights_only=True)["policy"], at_start)
    ppo.train(small(**options, total_steps=1024), tmp_path / "run")
    assert len(seen) == 8 and all(same_weights(weights, at_start) for weights in seen)
