"""VAE benchmark: klkit's training step against the same model as a plain PyTorch loop, and the
test NLL table on MNIST-5k.

Usage::

    .venv/bin/python benchmarks/vae.py                      # step cost + NLL table (trains the default: ~5 min)
    .venv/bin/python benchmarks/vae.py --run-dir DIR        # reuse (or resume) a default run in DIR
    .venv/bin/python benchmarks/vae.py --step-only          # only the step-cost comparison
    .venv/bin/python benchmarks/vae.py --baseline           # also train+evaluate the PyTorch-examples VAE

Writes its section of ``docs/benchmarks.md`` through ``_report.write_section("vae", ...)``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `klkit train vae` does; read when torch loads
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine_description, write_section
from klkit.train import vae
from klkit.train.data import load_images
from klkit.train.vae.step import EpochSums, Objective, train_batch

# Published reference numbers (same split and evaluation); not re-measured here.
PUBLISHED_REFERENCES = [
    ("784-400-20 MLP VAE (PyTorch examples), 50 epochs", 105.4),
    ("784-400-20 MLP VAE (PyTorch examples), 200 epochs", 100.1),
    ("784-512-256-32 MLP + KL warm-up, 300 epochs", 98.1),
    ("100-component Bernoulli mixture (EM)", 157.5),
    ("independent pixels", 208.4),
]


# ---------------------------------------------------------------------------- the plain PyTorch loop
class PlainVAE(nn.Module):
    """The default architecture written out by hand (ReLU MLPs, diagonal Gaussian encoder)."""

    def __init__(self, hidden: tuple[int, ...], latent: int, dim: int = 784) -> None:
        super().__init__()
        enc, dec, n = [], [], dim
        for h in hidden:
            enc += [nn.Linear(n, h), nn.ReLU()]
            n = h
        self.encoder = nn.Sequential(*enc, nn.Linear(n, 2 * latent))
        n = latent
        for h in reversed(hidden):
            dec += [nn.Linear(n, h), nn.ReLU()]
            n = h
        self.decoder = nn.Sequential(*dec, nn.Linear(n, dim))


def plain_step(model: PlainVAE, optimizer: torch.optim.Optimizer, x: torch.Tensor, k: int) -> float:
    """Dynamic binarisation, (importance-weighted) ELBO with the KL formula inline, Adam step."""
    x = torch.bernoulli(x)
    mu, logvar = model.encoder(x).chunk(2, -1)
    std = torch.exp(0.5 * logvar)
    eps = torch.randn((k, *mu.shape))
    z = mu + std * eps
    logits = model.decoder(z.reshape(-1, mu.shape[-1])).reshape(k, len(x), -1)
    log_px = -F.binary_cross_entropy_with_logits(logits, x.expand(k, -1, -1), reduction="none").sum(-1)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)
    if k == 1:
        loss = -(log_px[0] - kl).mean()
    else:
        log_w = log_px + (-0.5 * z.pow(2) + 0.5 * eps.pow(2) + 0.5 * logvar).sum(-1)
        loss = -(torch.logsumexp(log_w, 0) - torch.log(torch.tensor(float(k)))).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def step_cost(cfg: vae.Config, *, steps: int = 30, rounds: int = 7) -> dict[str, float]:
    """Median wall and CPU seconds per step of each loop, timed in alternating rounds on the same batches."""
    torch.set_num_threads(cfg.threads or 2)
    x_train = torch.from_numpy(load_images("mnist5k").train)
    batches = [x_train[i * cfg.batch_size : (i + 1) * cfg.batch_size] for i in range(steps)]
    torch.manual_seed(0)
    plain = PlainVAE(cfg.hidden, cfg.latent)
    plain_opt = torch.optim.Adam(plain.parameters(), lr=cfg.lr)
    torch.manual_seed(0)
    model = vae.VAE((28, 28), cfg)
    step_fn = Objective(model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sums = EpochSums.zeros(cfg.latent)
    times: dict[str, list[float]] = {"plain": [], "klkit": []}
    cpu: dict[str, list[float]] = {"plain": [], "klkit": []}
    for r in range(rounds + 1):  # round 0 warms up both
        for name in ("plain", "klkit") if r % 2 else ("klkit", "plain"):
            started, started_cpu = time.perf_counter(), time.process_time()
            for x in batches:
                if name == "plain":
                    plain_step(plain, plain_opt, x, cfg.samples)
                else:
                    # the training loop's body itself: binarise, shift, train_step, accumulate the metrics
                    train_batch(step_fn, opt, x, sums, cfg, image_shape=(28, 28), kl_weight=1.0)
            if r:
                times[name].append((time.perf_counter() - started) / steps)
                cpu[name].append((time.process_time() - started_cpu) / steps)
    plain_s, klkit_s = statistics.median(times["plain"]), statistics.median(times["klkit"])
    plain_cpu, klkit_cpu = statistics.median(cpu["plain"]), statistics.median(cpu["klkit"])
    return {
        "plain_ms": 1e3 * plain_s,
        "klkit_ms": 1e3 * klkit_s,
        "overhead": klkit_s / plain_s - 1,
        "plain_min_ms": 1e3 * min(times["plain"]),
        "klkit_min_ms": 1e3 * min(times["klkit"]),
        "plain_cpu_ms": 1e3 * plain_cpu,
        "klkit_cpu_ms": 1e3 * klkit_cpu,
        "cpu_overhead": klkit_cpu / plain_cpu - 1,
    }


# ---------------------------------------------------------------------------- runs and the table
def train_and_evaluate(cfg: vae.Config, run_dir: Path) -> dict:
    if not (run_dir / "eval.json").exists():
        vae.train(cfg, run_dir)
        vae.evaluate(run_dir, k=1000)
    result = json.loads((run_dir / "eval.json").read_text())
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    config = json.loads((run_dir / "config.json").read_text())
    result["train_seconds"] = records[-1]["seconds"]
    result["cpu_seconds"] = records[-1].get("cpu_seconds", float("nan"))
    result["epochs"] = records[-1]["epoch"]
    result["layout"] = f"{records[-1].get('processes', '?')} × {config.get('threads')}"
    return result


def row(name: str, r: dict) -> str:
    return (
        f"| {name} | {r['epochs']} | {r['layout']} | {r['train_seconds']:.0f} | {r['cpu_seconds']:.0f} "
        f"| {r['nll']:.2f} ± {r['nll_standard_error']:.2f} "
        f"| {-r['elbo']:.2f} | {r['bits_per_dim']:.4f} | {r['active_units']}/{r['latent']} |"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=Path("/tmp/klkit-bench-vae/default"))
    parser.add_argument("--step-only", action="store_true")
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the step timing (default 2)")
    args = parser.parse_args(argv)

    cfg = vae.Config() if args.threads is None else vae.Config(threads=args.threads)
    cost = step_cost(cfg)
    print(json.dumps(cost, indent=2))
    lines = [
        "## VAE (`benchmarks/vae.py`)",
        "",
        machine_description(),
        "",
        f"**Training step** of the default model ({'-'.join(map(str, (784, *cfg.hidden, cfg.latent)))}, "
        f"batch {cfg.batch_size}, {cfg.samples} samples per image, {cfg.threads} thread(s)): klkit's loop body "
        "(dynamic binarisation, 1-pixel shift augmentation, `train_step` with the library's KL, the IWAE gap and "
        "the NaN check, metric accumulation) against the same model written as a plain PyTorch loop (KL formula "
        "inline, plain IWAE bound, no augmentation, `loss.item()` per step). Median over 7 alternating rounds of "
        "30 steps; CPU time is the process's, robust to other load on the machine.",
        "",
        "| loop | wall ms / step (median) | wall ms / step (min) | CPU ms / step (median) |",
        "|---|---|---|---|",
        f"| plain PyTorch | {cost['plain_ms']:.2f} | {cost['plain_min_ms']:.2f} | {cost['plain_cpu_ms']:.2f} |",
        f"| klkit | {cost['klkit_ms']:.2f} | {cost['klkit_min_ms']:.2f} | {cost['klkit_cpu_ms']:.2f} |",
        "",
        f"klkit's overhead: **{100 * cost['overhead']:+.1f} %** wall, **{100 * cost['cpu_overhead']:+.1f} %** CPU "
        "(bar: ≤ +10 %).",
        "",
    ]
    if not args.step_only:
        results = [("klkit default (`klkit train vae`)", train_and_evaluate(cfg, args.run_dir))]
        if args.baseline:
            base = vae.Config(
                hidden=(400,),
                latent=20,
                epochs=50,
                samples=1,
                shift=0,
                warmup=0,
                lr_schedule="constant",
                threads=cfg.threads,
            )
            results.append(
                (
                    "784-400-20 PyTorch-examples VAE, 50 epochs (klkit loop, same evaluation)",
                    train_and_evaluate(base, args.run_dir.parent / "baseline"),
                )
            )
        lines += [
            "**Test NLL on MNIST-5k** (1,000 test images, fixed seeded binarisation, importance-sampled with "
            "k = 1000; ± is the standard error over images). Wall seconds depend on the machine's load at the "
            "time; CPU seconds do not:",
            "",
            "| model | epochs | processes × threads | wall s | CPU s (per process) | NLL (nats) | −ELBO (nats) "
            "| bits/dim | active units |",
            "|---|---|---|---|---|---|---|---|---|",
            *(row(name, r) for name, r in results),
            *(f"| {name} (published reference) | | | | | {nll} | | | |" for name, nll in PUBLISHED_REFERENCES),
            "",
        ]
        print("\n".join(lines[-len(results) - 8 :]))
    write_section("vae", "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
