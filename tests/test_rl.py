"""Unit tests of the RL pieces against independent computations (no training here; see test_rl_train.py)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats
from torch.distributions import Categorical, Independent, Normal

import klkit
from klkit.train import ppo, rl, trpo

torch.set_num_threads(1)


# --- conjugate gradient -------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), seed=st.integers(0, 2**31 - 1))
def test_conjugate_gradient_solves_spd_systems(n, seed):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(n, dtype=torch.float64)  # SPD
    b = torch.randn(n, generator=g, dtype=torch.float64)
    x = trpo.conjugate_gradient(lambda v: a @ v, b, max_steps=4 * n, tolerance=1e-28)
    expected = torch.linalg.solve(a, b)
    assert torch.allclose(x, expected, rtol=1e-6, atol=1e-8 * float(expected.abs().max()) + 1e-10)


def test_conjugate_gradient_is_exact_after_n_steps_on_well_conditioned_system():
    a = torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    b = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    x = trpo.conjugate_gradient(lambda v: a @ v, b, max_steps=3)
    assert torch.allclose(x, torch.tensor([1.0, 0.5, 1 / 3], dtype=torch.float64))


def test_conjugate_gradient_rejects_bad_input():
    with pytest.raises(ValueError, match="`b` must be a 1-D"):
        trpo.conjugate_gradient(lambda v: v, torch.ones(2, 2))
    with pytest.raises(ValueError, match="`max_steps`"):
        trpo.conjugate_gradient(lambda v: v, torch.ones(2), max_steps=0)


# --- Fisher-vector products -------------------------------------------------------------------


def _policy_and_kl(space, std="state-independent", seed=0):
    torch.manual_seed(seed)
    policy = rl.ActorCritic(3, space, hidden=(5,), std=std, log_std_init=-0.3).double()
    obs = torch.randn(7, 3, dtype=torch.float64)
    with torch.no_grad():
        old_params = policy.distribution_parameters(obs).clone()
        for p in policy.actor_parameters():  # move away from θ_old so the Hessian is not only Fisher
            p.add_(0.1 * torch.randn_like(p))
    old = policy.make_distribution(old_params)
    params = policy.actor_parameters()

    def mean_kl():
        return klkit.kl_divergence(old, policy.distribution(obs)).mean()

    return policy, params, mean_kl, obs, old_params


def _flat_grad(f, params):
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(f(), params)])


@pytest.mark.parametrize(
    "space,std",
    [
        (gym.spaces.Discrete(4), "state-independent"),
        (gym.spaces.Box(-1, 1, (2,)), "state-independent"),
        (gym.spaces.Box(-1, 1, (2,)), "state-dependent"),
    ],
)
def test_fisher_vector_product_matches_finite_differences_of_the_kl_gradient(space, std):
    _policy, params, mean_kl, _, _ = _policy_and_kl(space, std)
    n = sum(p.numel() for p in params)
    v = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    hv = trpo.fisher_vector_product(mean_kl, params, v, damping=0.0)
    theta = torch.cat([p.detach().reshape(-1) for p in params]).clone()
    eps = 1e-5
    trpo._assign(params, theta + eps * v)
    g_plus = _flat_grad(mean_kl, params)
    trpo._assign(params, theta - eps * v)
    g_minus = _flat_grad(mean_kl, params)
    trpo._assign(params, theta)
    fd = (g_plus - g_minus) / (2 * eps)
    assert torch.allclose(hv, fd, rtol=1e-5, atol=1e-8)
    damped = trpo.fisher_vector_product(mean_kl, params, v, damping=0.3)
    assert torch.allclose(damped, hv + 0.3 * v)


def test_fisher_vector_product_at_theta_old_is_the_fisher_information():
    # At θ = θ_old the KL Hessian equals E_s E_{a~π}[∇log π(a|s) ∇log π(a|s)ᵀ]: build that by enumeration.
    torch.manual_seed(3)
    policy = rl.ActorCritic(3, gym.spaces.Discrete(3), hidden=(4,)).double()
    obs = torch.randn(5, 3, dtype=torch.float64)
    params = policy.actor_parameters()
    with torch.no_grad():
        old = policy.distribution(obs)
    n = sum(p.numel() for p in params)
    fisher = torch.zeros(n, n, dtype=torch.float64)
    for s in range(obs.shape[0]):
        for a in range(3):
            logp = policy.distribution(obs[s : s + 1]).log_prob(torch.tensor([a]))[0]
            g = _flat_grad(lambda logp=logp: logp, params)
            fisher += old.probs[s, a] * torch.outer(g, g) / obs.shape[0]
    v = torch.randn(n, dtype=torch.float64)
    hv = trpo.fisher_vector_product(lambda: klkit.kl_divergence(old, policy.distribution(obs)).mean(), params, v)
    assert torch.allclose(hv, fisher @ v, rtol=1e-8, atol=1e-10)


# --- line search -------------------------------------------------------------------------------


def test_line_search_accepts_the_first_step_within_the_budget_that_improves():
    seen = []

    def evaluate(a):
        seen.append(a)
        return 2 * a - a * a, a * a  # improvement, KL

    result = trpo.backtracking_line_search(evaluate, max_kl=0.3, shrink=0.5, max_steps=10)
    assert result.accepted and result.fraction == 0.5 and result.kl <= 0.3 and result.improvement > 0
    assert seen == [1.0, 0.5]


def test_line_search_rejects_when_no_step_improves():
    result = trpo.backtracking_line_search(lambda a: (-a, 0.0), max_kl=0.01, shrink=0.8, max_steps=5)
    assert not result.accepted and result.fraction == 0.0 and result.trials == 5


def test_line_search_never_accepts_a_step_over_the_kl_budget():
    # improvement only for large steps, which all break the budget
    result = trpo.backtracking_line_search(
        lambda a: (1.0 if a > 0.5 else -1.0, a), max_kl=0.5, shrink=0.9, max_steps=20
    )
    assert not result.accepted


def test_line_search_rejects_bad_settings():
    with pytest.raises(ValueError, match="`shrink`"):
        trpo.backtracking_line_search(lambda a: (1.0, 0.0), max_kl=0.1, shrink=1.5)


# --- GAE ---------------------------------------------------------------------------------------


def _gae_by_definition(rewards, values, dones, last_value, gamma, lam):
    """A_t = Σ_k (γλ)^k δ_{t+k}, summing only until the episode ends (independent of the recursion)."""
    n_steps, n_envs = rewards.shape
    out = np.zeros_like(rewards)
    for e in range(n_envs):
        for t in range(n_steps):
            total, weight = 0.0, 1.0
            for k in range(t, n_steps):
                next_v = 0.0 if dones[k, e] else (values[k + 1, e] if k + 1 < n_steps else last_value[e])
                total += weight * (rewards[k, e] + gamma * next_v - values[k, e])
                if dones[k, e]:
                    break
                weight *= gamma * lam
            out[t, e] = total
    return out


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), gamma=st.floats(0.5, 1.0), lam=st.floats(0.0, 1.0))
def test_gae_matches_the_definition(seed, gamma, lam):
    rng = np.random.default_rng(seed)
    r, v = rng.normal(size=(9, 3)), rng.normal(size=(9, 3))
    d = rng.random((9, 3)) < 0.2
    last = rng.normal(size=3)
    adv, ret = rl.gae(r, v, d, last, gamma, lam)
    np.testing.assert_allclose(adv, _gae_by_definition(r, v, d, last, gamma, lam), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ret, adv + v)


def test_gae_with_lambda_one_is_the_discounted_return_minus_v():
    r = np.array([[1.0], [2.0], [3.0]])
    v = np.array([[0.5], [0.1], [0.2]])
    _adv, ret = rl.gae(r, v, np.zeros((3, 1), bool), np.array([10.0]), gamma=0.9, lam=1.0)
    expected_return0 = 1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 10
    assert ret[0, 0] == pytest.approx(expected_return0)


# --- policies ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "space,std",
    [
        (gym.spaces.Discrete(3), "state-independent"),
        (gym.spaces.Box(-2, 2, (2,)), "state-independent"),
        (gym.spaces.Box(-2, 2, (2,)), "state-dependent"),
    ],
)
def test_fast_sample_and_log_prob_agree_with_torch_distributions(space, std):
    torch.manual_seed(0)
    policy = rl.ActorCritic(4, space, hidden=(8,), std=std)
    obs = torch.randn(50, 4)
    with torch.no_grad():
        action, log_prob, params, value = policy.sample(obs)
        dist = policy.distribution(obs)
        assert torch.allclose(log_prob, dist.log_prob(action), atol=1e-5)
        assert torch.allclose(policy.log_prob(params, action), dist.log_prob(action), atol=1e-5)
        assert torch.allclose(value, policy.value(obs))
    expected_type = Categorical if isinstance(space, gym.spaces.Discrete) else Independent
    assert isinstance(dist, expected_type)


def test_categorical_sampling_frequencies_follow_the_policy():
    torch.manual_seed(0)
    policy = rl.ActorCritic(2, gym.spaces.Discrete(3), hidden=(4,))
    with torch.no_grad():
        policy.actor[-1].weight.zero_()
        policy.actor[-1].bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
        obs = torch.zeros(20_000, 2)
        action, *_ = policy.sample(obs)
    counts = np.bincount(action.numpy(), minlength=3)
    probs = torch.softmax(torch.tensor([0.0, 1.0, -1.0]), 0).numpy()
    assert stats.chisquare(counts, probs * counts.sum()).pvalue > 1e-3


def test_state_dependent_std_varies_with_the_state_and_independent_does_not():
    torch.manual_seed(0)
    box = gym.spaces.Box(-1, 1, (1,))
    dep = rl.ActorCritic(2, box, hidden=(8,), std="state-dependent")
    ind = rl.ActorCritic(2, box, hidden=(8,), std="state-independent")
    with torch.no_grad():
        dep.log_std_head.weight.normal_()
        obs = torch.randn(5, 2)
        assert dep.distribution(obs).base_dist.scale.std() > 0
        assert ind.distribution(obs).base_dist.scale.std() == 0


def test_actor_critic_rejects_bad_options():
    with pytest.raises(ValueError, match="`std`"):
        rl.ActorCritic(2, gym.spaces.Box(-1, 1, (1,)), std="sometimes")
    with pytest.raises(ValueError, match="`activation`"):
        rl.ActorCritic(2, gym.spaces.Discrete(2), activation="sigmoid")
    with pytest.raises(TypeError, match="`action_space`"):
        rl.ActorCritic(2, gym.spaces.MultiBinary(2))


# --- normalisation, bookkeeping ------------------------------------------------------------------


def test_running_mean_std_matches_numpy_on_the_concatenation():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3, 2, size=(n, 4)) for n in (5, 17, 1, 40)]
    rms = rl.RunningMeanStd((4,))
    for b in batches:
        rms.update(b)
    allx = np.concatenate(batches)
    np.testing.assert_allclose(rms.mean, allx.mean(0), rtol=1e-12)
    np.testing.assert_allclose(rms.var, allx.var(0), rtol=1e-12)


def test_reward_normalisation_divides_by_the_std_of_the_discounted_return():
    norm = rl.Normalizer((1,), 1, 0.9, observations=False, rewards=True)
    returns = []
    running = 0.0
    for _ in range(200):
        running = 0.9 * running + 1.0
        returns.append(running)
        out = norm.reward(np.array([1.0]), np.array([False]))
    assert out.dtype == np.float32  # the buffer's dtype: compare at float32 precision
    assert out[0] == pytest.approx(1.0 / math.sqrt(np.var(returns) + 1e-8), rel=2 * float(np.finfo(np.float32).eps))


def test_steps_to_threshold_uses_the_mean_of_the_last_ten_episodes():
    episodes = [(10 * i, 0.0 if i < 5 else 100.0) for i in range(1, 30)]
    # the mean of 10 reaches 100 once the 10 latest are all 100: episodes 5..14 -> ends at episode 14
    assert rl.steps_to_threshold(episodes, 100.0) == 140
    assert rl.steps_to_threshold(episodes[:9], 0.0) is None  # fewer than 10 finished


# --- the KL measured three ways ------------------------------------------------------------------


def test_policy_kl_exact_is_the_closed_form_and_k1_k3_estimate_it():
    torch.manual_seed(0)
    old = Independent(Normal(torch.zeros(40_000, 2), torch.ones(40_000, 2)), 1)
    new = Independent(Normal(torch.full((40_000, 2), 0.2), torch.full((40_000, 2), 1.1)), 1)
    a = old.sample()
    out = rl.policy_kl(old, new, old.log_prob(a), new.log_prob(a))
    closed = 2 * (math.log(1.1) + (1 + 0.04) / (2 * 1.21) - 0.5)  # KL of two diagonal Gaussians, by hand
    assert out["kl_exact"] == pytest.approx(closed, rel=1e-5)
    for k in ("kl_k1", "kl_k3"):
        assert abs(out[k] - closed) < 5 * out[f"{k}_se"]


# Schulman et al. 2017, §4: β ← β/2 if d < d_targ/1.5; β ← 2β if d > 1.5·d_targ; else β unchanged.
# d_targ = 1.5 puts the thresholds at 1.0 and 2.25, both exact in binary, so the boundaries are literal too.
@pytest.mark.parametrize(
    "beta,kl,target,expected",
    [
        (1.0, 0.001, 0.01, 0.5),
        (1.0, 0.02, 0.01, 2.0),
        (1.0, 0.012, 0.01, 1.0),
        (0.3, 0.5, 1.5, 0.15),
        (0.3, math.nextafter(1.0, 0.0), 1.5, 0.15),  # just under d_targ/1.5: halve
        (0.3, 1.0, 1.5, 0.3),  # at d_targ/1.5: keep (the rule is strict)
        (0.3, 1.5, 1.5, 0.3),
        (0.3, 2.25, 1.5, 0.3),  # at 1.5·d_targ: keep
        (0.3, math.nextafter(2.25, 3.0), 1.5, 0.6),  # just over 1.5·d_targ: double
        (4.0, 100.0, 1.5, 8.0),
        (4.0, 0.0, 1.5, 2.0),
    ],
)
def test_adaptive_beta_follows_the_ppo_paper_rule(beta, kl, target, expected):
    assert ppo.adapt_beta(beta, kl, target) == expected


def test_adaptive_beta_over_a_sequence_of_updates():
    beta, seen = 1.0, []
    for kl in (0.05, 0.05, 0.01, 0.001, 0.001, 0.0149, 0.0151):  # d_targ = 0.01
        beta = ppo.adapt_beta(beta, kl, 0.01)
        seen.append(beta)
    assert seen == [2.0, 4.0, 4.0, 2.0, 1.0, 1.0, 2.0]


# --- the TRPO step's KL budget, measured independently of the implementation -----------------------


def _kl_from_saved_parameters(discrete, old, new):
    """Per-state KL(π_old ‖ π_new) in numpy from the saved distribution parameters (logits, or [mean, log σ])."""
    old, new = old.numpy(), new.numpy()
    if discrete:
        lo = old - special.logsumexp(old, axis=-1, keepdims=True)
        ln = new - special.logsumexp(new, axis=-1, keepdims=True)
        return (np.exp(lo) * (lo - ln)).sum(-1)
    (mo, so), (mn, sn) = np.split(old, 2, axis=-1), np.split(new, 2, axis=-1)
    return (sn - so + (np.exp(2 * so) + (mo - mn) ** 2) / (2 * np.exp(2 * sn)) - 0.5).sum(-1)


def _log_prob_from_saved_parameters(discrete, params, actions):
    params, actions = params.numpy(), actions.numpy()
    if discrete:
        logp = params - special.logsumexp(params, axis=-1, keepdims=True)
        return np.take_along_axis(logp, actions[:, None], axis=-1)[:, 0]
    mean, log_std = np.split(params, 2, axis=-1)
    return stats.norm.logpdf(actions, mean, np.exp(log_std)).sum(-1)


def _trpo_batch(space, std, n=2000):
    torch.manual_seed(0)
    policy = rl.ActorCritic(3, space, hidden=(16,), std=std, log_std_init=-0.5).double()
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(n, 3, dtype=torch.float64, generator=g)
    with torch.no_grad():
        actions, log_probs, params, _ = policy.sample(obs)
    # advantages that reward actions above their state's typical one: a real direction to improve in
    score = actions.double() if actions.dim() == 1 else actions.sum(-1)
    advantages = score - score.mean() + 0.1 * torch.randn(n, dtype=torch.float64, generator=g)
    batch = {
        "obs": obs,
        "actions": actions,
        "log_probs": log_probs,
        "dist_params": params.clone(),
        "advantages": advantages,
    }
    return policy, batch


@pytest.mark.parametrize(
    "space,std",
    [
        (gym.spaces.Discrete(3), "state-independent"),
        (gym.spaces.Box(-1, 1, (2,)), "state-independent"),
        (gym.spaces.Box(-1, 1, (2,)), "state-dependent"),
    ],
)
def test_trpo_step_stays_within_the_kl_budget_measured_independently(space, std):
    discrete = isinstance(space, gym.spaces.Discrete)
    policy, batch = _trpo_batch(space, std)
    cfg = trpo.Config(max_kl=0.01)
    info = trpo.policy_step(policy, batch, cfg)
    assert info["line_search_accepted"]
    with torch.no_grad():
        new_params = policy.distribution_parameters(batch["obs"])
    old_params = batch["dist_params"]
    kl = _kl_from_saved_parameters(discrete, old_params, new_params)
    assert kl.mean() <= cfg.max_kl * (1 + 1e-9)
    # the step scaled to the quadratic model's δ, then backtracked by 0.8^k: most of the budget is used
    assert kl.mean() >= 0.8**3 * cfg.max_kl
    # torch's KL of distributions built here from the same saved parameters agrees
    if discrete:
        old, new = Categorical(logits=old_params), Categorical(logits=new_params)
    else:
        (mo, so), (mn, sn) = old_params.chunk(2, -1), new_params.chunk(2, -1)
        old, new = Independent(Normal(mo, so.exp()), 1), Independent(Normal(mn, sn.exp()), 1)
    np.testing.assert_allclose(torch.distributions.kl_divergence(old, new).numpy(), kl, rtol=1e-9, atol=1e-15)
    # and so does the Monte Carlo k1 estimate from the saved log-probabilities of the batch's actions
    old_lp = batch["log_probs"].numpy()
    np.testing.assert_allclose(
        _log_prob_from_saved_parameters(discrete, old_params, batch["actions"]), old_lp, rtol=1e-9, atol=1e-12
    )
    ratio = old_lp - _log_prob_from_saved_parameters(discrete, new_params, batch["actions"])
    assert abs(ratio.mean() - kl.mean()) < 5 * ratio.std(ddof=1) / math.sqrt(len(ratio))


def test_trpo_step_without_an_improving_direction_leaves_the_policy_unchanged():
    policy, batch = _trpo_batch(gym.spaces.Discrete(3), "state-independent", n=200)
    batch["advantages"] = torch.zeros_like(batch["advantages"])  # no step improves the surrogate
    before = [p.detach().clone() for p in policy.actor_parameters()]
    info = trpo.policy_step(policy, batch, trpo.Config(max_kl=0.01))
    assert not info["line_search_accepted"]
    assert all(torch.equal(a, b) for a, b in zip(before, policy.actor_parameters(), strict=True))
    with torch.no_grad():
        new_params = policy.distribution_parameters(batch["obs"])
    assert np.array_equal(_kl_from_saved_parameters(True, batch["dist_params"], new_params), np.zeros(200))


# --- configs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module,field,value,match",
    [
        (ppo, "batch_size", 0, "`batch_size` must be a positive integer"),
        (ppo, "clip_range", -0.1, "`clip_range` must be > 0 or None"),
        (ppo, "gamma", 1.5, r"`gamma` must be in \[0, 1\]"),
        (trpo, "max_kl", 0.0, "`max_kl` must be > 0"),
        (trpo, "line_search_shrink", 1.0, "`line_search_shrink`"),
        (trpo, "std", "sometimes", "`std`"),
    ],
)
def test_config_validation_names_the_field(module, field, value, match):
    cfg = module.Config(**{field: value})
    with pytest.raises(ValueError, match=match):
        cfg.validate()


def test_every_config_field_is_documented():
    import ast
    import inspect

    for module in (inspect.getmodule(rl.CommonConfig), ppo, trpo):  # CommonConfig lives in rl.config
        source = inspect.getsource(module)
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name in ("Config", "CommonConfig"):
                body = node.body
                for i, stmt in enumerate(body):
                    if isinstance(stmt, ast.AnnAssign):
                        nxt = body[i + 1] if i + 1 < len(body) else None
                        assert isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant), (
                            f"{module.__name__}.{node.name}.{stmt.target.id} has no docstring"
                        )


def test_make_vector_env_rejects_unknown_ids():
    with pytest.raises(ValueError, match="`env_id`"):
        rl.make_vector_env("NoSuchEnv-v0", 2)
    with pytest.raises(ValueError, match="`n_envs`"):
        rl.make_vector_env("CartPole-v1", 0)


def test_fisher_operator_reuses_the_gradient_and_matches_the_one_shot_product():
    _, params, mean_kl, _, _ = _policy_and_kl(gym.spaces.Discrete(3))
    n = sum(p.numel() for p in params)
    op = trpo.fisher_operator(mean_kl, params, damping=0.1)
    for seed in range(3):
        v = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        assert torch.allclose(op(v), trpo.fisher_vector_product(mean_kl, params, v, damping=0.1))
    with pytest.raises(ValueError, match="`vector`"):
        op(torch.ones(n + 1, dtype=torch.float64))


def test_functional_forward_equals_the_modules():
    torch.manual_seed(0)
    net = rl._mlp([3, 8, 8, 2], torch.nn.Tanh, out_gain=1.0)
    x = torch.randn(5, 3)
    assert torch.equal(rl._forward(net, x), net(x))
