"""PPO and TRPO: klkit against Stable-Baselines3 (PPO) and sb3-contrib (TRPO), same seeds, same threads.

For each environment, agent and seed, trains for ``--steps`` environment steps with the
rl-baselines3-zoo hyperparameters (klkit's presets start from the same numbers) and records every
finished episode's (step, raw return). Reported per agent:

- steps to threshold: the first step at which the mean return of the last 10 finished
  episodes reaches the environment's threshold (CartPole-v1 475, Acrobot-v1 −100, Pendulum-v1 −200);
- final: the mean of the last 10 episodes at the end of training (with exploration noise, and on whichever
  start states those episodes drew: the same seed draws the same ones whatever the agent learnt);
- greedy: the final policy's mean return, acting with its mode, over ``EVAL_EPISODES`` episodes whose
  start states are the same for every agent and seed (environment seeds 10,000 + i);
- steps/s: environment steps per wall-clock second of training (``learn``/``train`` only, no imports).

Each run is cached as JSON in ``runs/bench-rl/`` (git-ignored), so the long benchmark can be run
in pieces (``--envs CartPole-v1``) and the table is written from every cached run (``--report``).
SB3 and sb3-contrib come with klkit's `bench` extra (`make bench` installs it).

Usage::

    .venv/bin/python benchmarks/rl.py                       # everything (3 envs x 5 seeds x 4 agents; long)
    .venv/bin/python benchmarks/rl.py --envs CartPole-v1 --seeds 0 1 2
    .venv/bin/python benchmarks/rl.py --report              # only rebuild the table from the cache
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
CACHE = HERE.parent / "runs" / "bench-rl"

THRESHOLDS = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0, "Pendulum-v1": -200.0}
EVAL_EPISODES = 20
EVAL_SEED = 10_000
AGENTS = ("klkit-ppo", "sb3-ppo", "klkit-trpo", "sb3-trpo")

# rl-baselines3-zoo hyperparams/ppo.yml and trpo.yml (the numbers, as SB3 keyword arguments)
ZOO_PPO: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(
        n_envs=8,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate="lin_0.001",
        clip_range="lin_0.2",
    ),
    "Acrobot-v1": dict(normalize=True, n_envs=16, n_steps=256, gae_lambda=0.94, gamma=0.99, n_epochs=4, ent_coef=0.0),
    "Pendulum-v1": dict(
        n_envs=4,
        n_steps=1024,
        gae_lambda=0.95,
        gamma=0.9,
        n_epochs=10,
        ent_coef=0.0,
        learning_rate=1e-3,
        clip_range=0.2,
        use_sde=True,
        sde_sample_freq=4,
    ),
}
ZOO_TRPO: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(
        n_envs=2,
        n_steps=512,
        batch_size=512,
        cg_damping=1e-3,
        gae_lambda=0.98,
        gamma=0.99,
        learning_rate=1e-3,
        n_critic_updates=20,
    ),
    "Acrobot-v1": dict(normalize=True, n_envs=2, n_steps=1024),
    "Pendulum-v1": dict(n_envs=2, n_steps=1024, gamma=0.9, n_critic_updates=15, use_sde=True, sde_sample_freq=4),
}


def steps_to_threshold(episodes: list[tuple[int, float]], threshold: float, window: int = 10) -> int | None:
    from klkit.train.rl import steps_to_threshold as stt

    return stt(episodes, threshold, window)


def run_klkit(algorithm: str, env_id: str, seed: int, steps: int, threads: int) -> dict[str, Any]:
    from klkit.train import ppo, trpo
    from klkit.train.rl import read_metrics

    module = ppo if algorithm == "ppo" else trpo
    cfg = module.Config.for_env(
        env_id, seed=seed, total_steps=steps, threads=threads, progress=False, checkpoint_every=10**9
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = module.train(cfg, tmp)  # result["seconds"]: the training loop only, like SB3's learn()
        records = read_metrics(tmp)
        greedy = module.evaluate(tmp, episodes=EVAL_EPISODES)["mean_return"]  # environment seeds EVAL_SEED + i
    episodes = [(int(s), float(r)) for m in records for s, r in m["episodes"]]
    kl_max = max(m["kl_exact"] for m in records)
    return {
        "episodes": episodes,
        "wall": result["seconds"],
        "cpu": result["cpu_seconds"],
        "global_step": result["global_step"],
        "kl_max": kl_max,
        "greedy": greedy,
    }


def run_sb3(algorithm: str, env_id: str, seed: int, steps: int, threads: int) -> dict[str, Any]:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(threads)
    params = dict((ZOO_PPO if algorithm == "ppo" else ZOO_TRPO)[env_id])
    n_envs, normalize = params.pop("n_envs"), params.pop("normalize", False)
    for key in ("learning_rate", "clip_range"):
        if isinstance(params.get(key), str) and params[key].startswith("lin_"):
            start = float(params[key][4:])
            params[key] = lambda progress, start=start: progress * start
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    if normalize:
        env = VecNormalize(env, gamma=params.get("gamma", 0.99))
    if algorithm == "ppo":
        model = PPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **params)
    else:
        from sb3_contrib import TRPO

        model = TRPO("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **params)
    episodes: list[tuple[int, float]] = []

    class Record(BaseCallback):
        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    episodes.append((int(self.num_timesteps), float(info["episode"]["r"])))
            return True

    t0, cpu0 = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=steps, callback=Record())
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    greedy = _sb3_greedy(model, env if normalize else None, env_id)
    env.close()
    return {
        "episodes": episodes,
        "wall": wall,
        "cpu": cpu,
        "global_step": int(model.num_timesteps),
        "kl_max": None,
        "greedy": greedy,
    }


def _sb3_greedy(model: Any, normalizer: Any, env_id: str) -> float:
    """SB3's final policy, deterministic, on the same start states klkit's evaluation uses (seeds EVAL_SEED + i)."""
    import gymnasium as gym
    import numpy as np

    env, returns = gym.make(env_id), []
    for i in range(EVAL_EPISODES):
        obs, _ = env.reset(seed=EVAL_SEED + i)
        total, done = 0.0, False
        while not done:
            seen = obs if normalizer is None else normalizer.normalize_obs(obs[None])[0]
            action, _ = model.predict(seen, deterministic=True)
            if isinstance(env.action_space, gym.spaces.Box):
                action = np.clip(action, env.action_space.low, env.action_space.high)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def run_one(agent: str, env_id: str, seed: int, steps: int, threads: int) -> dict[str, Any]:
    library, algorithm = agent.split("-")
    out = (run_klkit if library == "klkit" else run_sb3)(algorithm, env_id, seed, steps, threads)
    eps = out["episodes"]
    threshold = THRESHOLDS[env_id]
    final = statistics.fmean(r for _, r in eps[-10:]) if eps else None
    return {
        "agent": agent,
        "env_id": env_id,
        "seed": seed,
        "steps": steps,
        "threads": threads,
        "steps_to_threshold": steps_to_threshold(eps, threshold),
        "final_mean10": final,
        "greedy_mean": out["greedy"],
        "steps_per_second": out["global_step"] / out["wall"],
        "steps_per_cpu_second": out["global_step"] / out["cpu"],
        "wall": out["wall"],
        "kl_max": out["kl_max"],
        "episodes": eps,
    }


def _fmt_steps(x: int | None) -> str:
    return "—" if x is None else f"{x / 1000:.1f}k"


def _when(rows: list[dict[str, Any]]) -> str:
    """The UTC date and time span in which these cached runs were written."""
    import datetime as dt

    times = sorted(dt.datetime.fromtimestamp(r["written"], dt.UTC) for r in rows)
    first, last = times[0], times[-1]
    return (
        f"{first:%Y-%m-%d %H:%M}–{last:%H:%M}" if first.date() == last.date() else f"{first:%Y-%m-%d}–{last:%Y-%m-%d}"
    )


def report(steps: int) -> str:
    from _report import machine_description

    rows = [{**json.loads(p.read_text()), "written": p.stat().st_mtime} for p in sorted(CACHE.glob("*.json"))]
    rows = [r for r in rows if r["steps"] == steps]
    lines = [
        f"PPO/TRPO against SB3 2.x / sb3-contrib with the rl-baselines3-zoo hyperparameters, {steps:,} steps, "
        "CPU, one torch thread each, runs one after another in one process per invocation.",
        "Threshold = mean return of the last 10 finished episodes (CartPole-v1 ≥ 475, Acrobot-v1 ≥ −100, "
        "Pendulum-v1 ≥ −200). The last 10 training episodes carry exploration noise and their own start states "
        "(on Pendulum a seed's last start states alone can put a near-optimal policy below −200); "
        f"*greedy* is the final policy acting with its mode on the same {EVAL_EPISODES} start states for every agent "
        f"and seed (environment seeds {EVAL_SEED:,} + i). "
        "Speed counts training only (no imports or setup): steps per wall-clock second, "
        "and steps per CPU-second of the process, which is less sensitive to other jobs on a shared machine. "
        "Rows are cached runs, written when the *measured* column says (some with other jobs or parallel runs "
        "on the machine): compare speeds between rows measured in the same span, or by steps per CPU-second.",
        "",
        f"Machine: {machine_description()}",
        "",
        "| env | agent | seeds | steps to threshold (per seed) | median | reached | final mean-10 (per seed) "
        "| ended ≥ thr | greedy (per seed) | greedy ≥ thr | steps/s (median) | steps/CPU-s (median) | max KL (klkit) "
        "| measured (UTC) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary: dict[tuple[str, str], dict[str, Any]] = {}
    for env_id in THRESHOLDS:
        for agent in AGENTS:
            rs = sorted((r for r in rows if r["env_id"] == env_id and r["agent"] == agent), key=lambda r: r["seed"])
            if not rs:
                continue
            thr = THRESHOLDS[env_id]
            reached = [r["steps_to_threshold"] for r in rs]
            hit = [x for x in reached if x is not None]
            # median over seeds; a seed that never reached counts as "more than the budget"
            med = statistics.median([x if x is not None else float("inf") for x in reached])
            finals = [r["final_mean10"] for r in rs]
            ended = sum(1 for f in finals if f is not None and f >= thr)
            greedy = [r.get("greedy_mean") for r in rs]
            greedy_ok = sum(1 for g in greedy if g is not None and g >= thr)
            sps = statistics.median(r["steps_per_second"] for r in rs)
            cps = statistics.median(r["steps_per_cpu_second"] for r in rs)
            kls = [r["kl_max"] for r in rs if r["kl_max"] is not None]
            summary[(env_id, agent)] = {
                "median": med,
                "sps": sps,
                "cps": cps,
                "n": len(rs),
                "reached": len(hit),
                "ended": ended,
                "greedy_ok": greedy_ok,
                "greedy_n": sum(g is not None for g in greedy),
            }
            kl_text = f"{max(kls):.4f}" if kls else "—"
            lines.append(
                f"| {env_id} | {agent} | {','.join(str(r['seed']) for r in rs)} "
                f"| {' / '.join(_fmt_steps(x) for x in reached)} "
                f"| {'—' if med == float('inf') else _fmt_steps(int(med))} | {len(hit)}/{len(rs)} "
                f"| {' / '.join('—' if f is None else f'{f:.0f}' for f in finals)} | {ended}/{len(rs)} "
                f"| {' / '.join('—' if g is None else f'{g:.0f}' for g in greedy)} | {greedy_ok}/{len(rs)} "
                f"| {sps:,.0f} | {cps:,.0f} | {kl_text} | {_when(rs)} |"
            )
    lines += [
        "",
        "### Targets",
        "",
        "Bars: klkit reaches the threshold within the budget on every seed (CartPole-v1: and ends there); "
        "klkit's median steps to threshold ≤ SB3's (ratio ≤ 1); klkit ≥ 1.5× SB3's speed.",
        "",
        "| env | algorithm | seeds (klkit / SB3) | klkit reached on every seed | klkit ended ≥ thr (SB3) "
        "| klkit greedy ≥ thr (SB3) | median steps klkit / SB3 | speed klkit / SB3, wall | speed klkit / SB3, CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for env_id in THRESHOLDS:
        for algorithm in ("ppo", "trpo"):
            k, s = summary.get((env_id, f"klkit-{algorithm}")), summary.get((env_id, f"sb3-{algorithm}"))
            if not k:
                continue
            ratio = wall = cpu = "—"
            if s:
                km, sm = k["median"], s["median"]
                ratio = "—" if sm in (0, float("inf")) or km == float("inf") else f"{km / sm:.2f}"
                wall, cpu = f"{k['sps'] / s['sps']:.2f}×", f"{k['cps'] / s['cps']:.2f}×"
            lines.append(
                f"| {env_id} | {algorithm} | {k['n']} / {s['n'] if s else 0} | {k['reached']}/{k['n']} "
                f"| {k['ended']}/{k['n']} ({s['ended'] if s else '—'}/{s['n'] if s else '—'}) "
                f"| {k['greedy_ok']}/{k['greedy_n']} ({s['greedy_ok'] if s else '—'}/{s['greedy_n'] if s else '—'}) "
                f"| {ratio} | {wall} | {cpu} |"
            )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(THRESHOLDS), choices=list(THRESHOLDS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), choices=list(AGENTS))
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report", action="store_true", help="only write the table from cached runs")
    parser.add_argument("--rerun", action="store_true", help="run even when a cached result exists")
    args = parser.parse_args(argv)
    CACHE.mkdir(parents=True, exist_ok=True)
    if not args.report:
        for env_id in args.envs:
            for seed in args.seeds:
                for agent in args.agents:
                    path = CACHE / f"{env_id}_{agent}_{seed}_{args.steps}.json"
                    if path.exists() and not args.rerun:
                        continue
                    row = run_one(agent, env_id, seed, args.steps, args.threads)
                    path.write_text(json.dumps(row))
                    print(
                        f"{env_id:12s} {agent:10s} seed {seed}: steps-to-threshold "
                        f"{row['steps_to_threshold']}, final {row['final_mean10']:.1f}, "
                        f"{row['steps_per_second']:.0f} steps/s",
                        flush=True,
                    )
    md = report(args.steps)
    print(md)
    from _report import write_section

    write_section("rl", md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
