"""``klkit train ppo`` and ``klkit train trpo``: train a policy on a Gymnasium task into a run directory.

Each starts from the environment's preset (:data:`klkit.train.ppo.PRESETS`,
:data:`klkit.train.trpo.PRESETS`, taken from rl-baselines3-zoo); options given on the
command line override it. Evaluate afterwards with ``klkit eval DIR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from klkit.cli._errors import one_line_errors


def train_rl(algorithm: str, run_dir: Path, env: str, **overrides: Any) -> dict[str, Any]:
    """Train ``algorithm`` ('ppo' or 'trpo') on ``env`` with its preset plus ``overrides`` (None: keep the preset).

    Examples
    --------
    >>> import tempfile
    >>> r = train_rl("ppo", Path(tempfile.mkdtemp()), "CartPole-v1", steps=512, progress=False)
    >>> r["algorithm"], r["global_step"]
    ('ppo', 512)
    """
    if algorithm == "ppo":
        from klkit.train.ppo import Config, train
    elif algorithm == "trpo":
        from klkit.train.trpo import Config, train
    else:
        raise ValueError(f"`algorithm` must be 'ppo' or 'trpo'; found {algorithm!r}.")
    values = {k: v for k, v in overrides.items() if v is not None}
    if "steps" in values:
        values["total_steps"] = values.pop("steps")
    return train(Config.for_env(env, **values), run_dir)


def _report(result: dict[str, Any], run_dir: Path) -> None:
    ret = result["return_mean10"]
    typer.echo(
        f"{result['algorithm']} on {result['env_id']}: {result['global_step']:,} steps in {result['seconds']:.1f} s "
        f"({result['steps_per_second']:,.0f} steps/s); mean return of the last 10 episodes "
        f"{'n/a' if ret is None else f'{ret:.1f}'}. Next: klkit eval {run_dir}"
    )


RunDir = Annotated[Path, typer.Option("--run-dir", help="Directory for config, metrics, checkpoint (resumed).")]
Env = Annotated[str, typer.Option("--env", help="Gymnasium id: CartPole-v1, Acrobot-v1, Pendulum-v1, ...")]
Steps = Annotated[int | None, typer.Option(help="Environment steps in total (preset: 100000).")]
Seed = Annotated[int | None, typer.Option(help="Random seed (torch, numpy, environments).")]
NEnvs = Annotated[int | None, typer.Option("--n-envs", help="Environments stepped together.")]
NSteps = Annotated[int | None, typer.Option("--n-steps", help="Steps per environment per rollout.")]
Threads = Annotated[int, typer.Option(help="torch threads (1 is fastest for these small networks).")]
Progress = Annotated[bool, typer.Option(help="Show a progress bar on a terminal.")]
Device = Annotated[str, typer.Option(help="Where the networks run: cpu, cuda or auto (environments step on the CPU).")]


@one_line_errors
def train_ppo_command(
    run_dir: RunDir,
    env: Env = "CartPole-v1",
    steps: Steps = None,
    seed: Seed = None,
    n_envs: NEnvs = None,
    n_steps: NSteps = None,
    lr: Annotated[float | None, typer.Option(help="Adam learning rate.")] = None,
    clip: Annotated[float | None, typer.Option(help="Clip range ε of the surrogate.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over each rollout.")] = None,
    kl_penalty: Annotated[
        bool | None, typer.Option("--kl-penalty/--no-kl-penalty", help="Adaptive β·KL penalty (PPO paper §4).")
    ] = None,
    kl_target: Annotated[float | None, typer.Option("--kl-target", help="d_targ of the adaptive penalty.")] = None,
    target_kl: Annotated[float | None, typer.Option("--target-kl", help="Stop an update's epochs at this KL.")] = None,
    kl_ref_coef: Annotated[
        float | None,
        typer.Option("--kl-ref-coef", help="β of an RLHF-style KL penalty to a reference policy (0: none)."),
    ] = None,
    kl_estimator: Annotated[
        str | None, typer.Option("--kl-estimator", help="The penalty's estimator: k1, k2, k3 or abs (klkit.rlhf).")
    ] = None,
    kl_placement: Annotated[
        str | None,
        typer.Option("--kl-placement", help="reward (β·estimate off each reward) or loss (β·surrogate in the loss)."),
    ] = None,
    kl_gradient: Annotated[
        str | None,
        typer.Option("--kl-gradient", help="In the loss: native, reverse_kl or straight_through (klkit.rlhf)."),
    ] = None,
    kl_ref: Annotated[
        Path | None,
        typer.Option("--kl-ref", help="Run directory of the reference policy (default: this run's initial policy)."),
    ] = None,
    threads: Threads = 1,
    device: Device = "cpu",
    progress: Progress = True,
) -> None:
    """Train PPO (clipped surrogate; optional adaptive KL penalty); resume if RUN_DIR has a checkpoint."""
    result = train_rl(
        "ppo",
        run_dir,
        env,
        steps=steps,
        seed=seed,
        n_envs=n_envs,
        n_steps=n_steps,
        learning_rate=lr,
        clip_range=clip,
        n_epochs=epochs,
        kl_penalty=kl_penalty,
        kl_target=kl_target,
        target_kl=target_kl,
        kl_ref_coef=kl_ref_coef,
        kl_estimator=kl_estimator,
        kl_placement=kl_placement,
        kl_gradient=kl_gradient,
        kl_ref=None if kl_ref is None else str(kl_ref),
        threads=threads,
        device=device,
        progress=None if progress else False,
    )
    _report(result, run_dir)


@one_line_errors
def train_trpo_command(
    run_dir: RunDir,
    env: Env = "CartPole-v1",
    steps: Steps = None,
    seed: Seed = None,
    n_envs: NEnvs = None,
    n_steps: NSteps = None,
    max_kl: Annotated[float | None, typer.Option("--max-kl", help="δ: KL budget of each policy step.")] = None,
    damping: Annotated[float | None, typer.Option(help="Damping λ of the Fisher matrix in CG.")] = None,
    threads: Threads = 1,
    device: Device = "cpu",
    progress: Progress = True,
) -> None:
    """Train TRPO (natural gradient by CG, KL ≤ δ by line search); resume if RUN_DIR has a checkpoint."""
    result = train_rl(
        "trpo",
        run_dir,
        env,
        steps=steps,
        seed=seed,
        n_envs=n_envs,
        n_steps=n_steps,
        max_kl=max_kl,
        cg_damping=damping,
        threads=threads,
        device=device,
        progress=None if progress else False,
    )
    _report(result, run_dir)


def register(app: typer.Typer) -> None:
    """Add ``klkit train ppo`` and ``klkit train trpo`` to ``app`` (the ``klkit train`` group)."""
    app.command("ppo")(train_ppo_command)
    app.command("trpo")(train_trpo_command)
