"""VAE training runs (tiny configs on sklearn's digits): files, resume after a crash or a kill, NaN, DDP, CLI."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from klkit.cli.app import app
from klkit.train import _checkpoint as ckpt
from klkit.train import vae
from klkit.train.errors import ConfigMismatchError
from klkit.train.vae import Config, TrainingDivergedError

ROOT = Path(__file__).resolve().parent.parent
TINY = {
    "data": "digits",
    "hidden": (16,),
    "latent": 3,
    "batch_size": 64,
    "max_train": 256,
    "progress": False,
    "threads": 1,
    "eval_every": 1,
}


def tiny(**changes) -> Config:
    return Config(**{**TINY, **changes})


def epochs_logged(run_dir: Path) -> list[int]:
    return [r["epoch"] for r in ckpt.read_jsonl(run_dir / "metrics.jsonl")]


def test_train_then_evaluate_writes_the_run_directory(tmp_path):
    result = vae.train(tiny(epochs=3, samples=2, warmup=2, validation=100), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["algorithm"] == "vae" and config["samples"] == 2
    records = ckpt.read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert [r["kl_weight"] for r in records] == [0.5, 1.0, 1.0]
    for r in records:
        assert len(r["kl_per_dim"]) == 3 and math.isclose(sum(r["kl_per_dim"]), r["train_kl"], rel_tol=1e-6)
        assert math.isclose(r["train_elbo"], r["train_reconstruction"] - r["train_kl"], rel_tol=1e-9)
        assert 0 <= r["active_units"] <= 3 and r["train_iw_gap"] >= 0 and "validation_nll" in r
    assert result["epochs"] == 3 and 1 <= result["best_epoch"] <= 3
    assert ckpt.load(tmp_path / "checkpoint.pt")["epoch"] == 3

    out = vae.evaluate(tmp_path, k=50, kl_check_samples=500)
    assert out == json.loads((tmp_path / "eval.json").read_text())
    assert out["bits_per_dim"] == pytest.approx(out["nll"] / (64 * math.log(2)))
    assert out["nll"] <= -out["elbo"] + 0.5  # the k-sample bound is (up to sampling noise) tighter than the ELBO
    assert abs(out["kl_check"]["z_score"]) < 4
    for name in ("reconstructions.png", "samples.png", "traversal.png", "kl_per_dim.png", "training_curve.png"):
        assert (tmp_path / name).stat().st_size > 1000, name


def test_resume_after_an_exception_continues_exactly(tmp_path, monkeypatch):
    """A crash in epoch 3, then the same command: epochs 1..4 logged once, weights as if never interrupted."""
    straight = vae.train(tiny(epochs=4), tmp_path / "straight")

    real = vae.kl_weight_at

    def crash_in_epoch_3(epoch, cfg):
        if epoch == 3:
            raise KeyboardInterrupt("simulated interruption")
        return real(epoch, cfg)

    monkeypatch.setattr("klkit.train.vae.loop.kl_weight_at", crash_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        vae.train(tiny(epochs=4), tmp_path / "resumed")
    assert epochs_logged(tmp_path / "resumed") == [1, 2]
    monkeypatch.setattr("klkit.train.vae.loop.kl_weight_at", real)
    resumed = vae.train(tiny(epochs=4), tmp_path / "resumed")
    assert epochs_logged(tmp_path / "resumed") == [1, 2, 3, 4]
    assert resumed["weights_sha256"] == straight["weights_sha256"]
    assert resumed["final"]["train_loss"] == straight["final"]["train_loss"]


def test_resume_after_sigkill(tmp_path):
    """Kill a training process after its first checkpoint; the rerun continues from the checkpoint's epoch."""
    run_dir = tmp_path / "run"
    script = textwrap.dedent(f"""
        from klkit.train import vae
        vae.train(vae.Config(**{dict(TINY, epochs=500)!r}), {str(run_dir)!r})
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env={**os.environ, "CI": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while len(epochs_logged(run_dir)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    saved = ckpt.load(run_dir / "checkpoint.pt")["epoch"]  # loads: the file is never torn
    assert saved >= 1
    vae.train(tiny(epochs=saved + 2), run_dir)
    assert epochs_logged(run_dir) == list(range(1, saved + 3))


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    vae.train(tiny(epochs=2), tmp_path)
    good = ckpt.load(tmp_path / "checkpoint.pt")
    real = vae.kl_weight_at
    monkeypatch.setattr(
        "klkit.train.vae.loop.kl_weight_at", lambda epoch, cfg: math.nan if epoch == 3 else real(epoch, cfg)
    )
    expected = r"loss became NaN or infinite at epoch 3, step 1.*last good checkpoint \(epoch 2\) is kept"
    with pytest.raises(TrainingDivergedError, match=expected):
        vae.train(tiny(epochs=5), tmp_path)
    kept = ckpt.load(tmp_path / "checkpoint.pt")
    assert kept["epoch"] == 2
    for name, tensor in good["model"].items():
        assert torch.equal(kept["model"][name], tensor), name
    assert epochs_logged(tmp_path) == [1, 2]


def test_resume_refuses_a_different_configuration(tmp_path):
    vae.train(tiny(epochs=1), tmp_path)
    before = (tmp_path / "config.json").read_bytes()
    with pytest.raises(ConfigMismatchError, match=r"different configuration \(latent 3 → 4\).*new --run-dir"):
        vae.train(tiny(epochs=2, latent=4), tmp_path)
    assert (tmp_path / "config.json").read_bytes() == before  # a refused call writes nothing
    assert epochs_logged(tmp_path) == [1]


def test_train_reports_the_active_units_evaluate_reports(tmp_path):
    """One definition (Var_x E_q[z_d|x] > 0.01 on the fixed test images, final model) in both places."""
    result = vae.train(tiny(epochs=1, latent=8), tmp_path)
    out = vae.evaluate(tmp_path, k=2, kl_check_samples=10, figures=False)
    assert result["active_units"] == out["active_units"]
    assert ckpt.read_jsonl(tmp_path / "metrics.jsonl")[-1]["active_units"] == out["active_units"]
    printed = CliRunner().invoke(
        app,
        [
            "train",
            "vae",
            "--data",
            "digits",
            "--epochs",
            "1",
            "--latent",
            "8",
            "--hidden",
            "16",
            "--batch-size",
            "64",
            "--max-train",
            "256",
            "--eval-every",
            "1",
            "--threads",
            "1",
            "--no-progress",
            "--run-dir",
            str(tmp_path),
        ],
    )  # resumes the finished run: same numbers
    assert printed.exit_code == 0, printed.output
    assert f"active units {out['active_units']} of 8" in printed.output


def test_two_process_ddp_replicas_hold_identical_weights(tmp_path):
    """torchrun with 2 CPU processes (gloo): one epoch on a tiny subset, then compare each replica's weights."""
    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent(f"""
        import json, os, torch
        from klkit.train import vae
        result = vae.train(vae.Config(**{dict(TINY, epochs=1, max_train=200)!r}), {str(tmp_path / "run")!r})
        rank = os.environ["RANK"]
        with open({str(tmp_path)!r} + f"/rank{{rank}}.json", "w") as f:
            json.dump({{"digest": result["weights_sha256"], "world": int(os.environ["WORLD_SIZE"]),
                        "loss": result["final"]["train_loss"]}}, f)
    """)
    )
    env = {**os.environ, "CI": "true", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(driver)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert ranks[0]["digest"] == ranks[1]["digest"]
    assert ranks[0]["loss"] == ranks[1]["loss"]  # the epoch's loss was all-reduced over both shards
    assert epochs_logged(tmp_path / "run") == [1]
    # the replicas moved away from the (shared) initial weights
    torch.manual_seed(0)
    initial = vae.weights_digest(vae.VAE((8, 8), tiny()))
    assert ranks[0]["digest"] != initial


def test_cli_train_then_eval(tmp_path):
    runner = CliRunner()
    run_dir = tmp_path / "run"
    args = [
        "train",
        "vae",
        "--data",
        "digits",
        "--epochs",
        "2",
        "--latent",
        "2",
        "--beta",
        "0.5",
        "--warmup",
        "2",
        "--free-bits",
        "0.1",
        "--hidden",
        "16",
        "--max-train",
        "200",
        "--threads",
        "1",
        "--no-progress",
        "--run-dir",
        str(run_dir),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "trained 2 epochs" in result.output
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["latent"], config["beta"], config["warmup"], config["free_bits"]) == (2, 0.5, 2, 0.1)
    result = runner.invoke(app, ["eval", "vae", str(run_dir), "--k", "20", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["k"] == 20
    assert (run_dir / "latent_map.png").exists()  # a 2-D latent gets the map instead of a traversal


def test_cli_reports_bad_options_in_one_line(tmp_path):
    result = CliRunner().invoke(app, ["train", "vae", "--data", "nope", "--run-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "`--data` must be 'mnist5k', 'digits' or an existing path" in result.output
    result = CliRunner().invoke(app, ["train", "vae", "--hidden", "64,x", "--run-dir", str(tmp_path)])
    assert result.exit_code == 2 and "`--hidden` must be comma-separated" in result.output
