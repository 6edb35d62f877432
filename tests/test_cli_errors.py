"""Every command: a user's error is one line on stderr and exit code 2; a bug keeps its traceback."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from klkit.cli._errors import is_user_error, one_line_errors
from klkit.cli.app import app
from klkit.errors import InvalidArgumentError
from klkit.train.errors import ConfigMismatchError, RunDirectoryError

runner = CliRunner()


def _cases(tmp_path):
    missing = str(tmp_path / "nowhere")
    (tmp_path / "ppo").mkdir()
    (tmp_path / "ppo" / "config.json").write_text(json.dumps({"algorithm": "ppo", "env_id": "CartPole-v1"}))
    return {
        "eval missing dir": (["eval", missing], r"`run_dir` must be a klkit run directory"),
        "eval bad target": (["eval", "gan", missing], r"`TARGET` must be one of"),
        "eval no checkpoint": (["eval", str(tmp_path / "ppo")], r"`run_dir` must hold checkpoint\.pt"),
        "eval device for rl": (["eval", str(tmp_path / "ppo"), "--device", "cuda"], r"`--device` applies to vae"),
        "train ppo bad steps": (["train", "ppo", "--steps", "0", "--run-dir", missing], r"`total_steps` must be"),
        "train ppo bad env": (["train", "ppo", "--env", "Nope-v0", "--run-dir", missing], r"`env_id` must name"),
        "train ppo threads": (["train", "ppo", "--threads", "0", "--run-dir", missing], r"`threads` must be"),
        "train trpo bad kl": (["train", "trpo", "--max-kl", "-1", "--run-dir", missing], r"`max_kl` must be"),
        "train vae bad data": (["train", "vae", "--data", "nope", "--run-dir", missing], r"`data` must be"),
        "train vae bad device": (["train", "vae", "--device", "tpu", "--run-dir", missing], r"`device` must be"),
        "train vae bad hidden": (["train", "vae", "--hidden", "1,x", "--run-dir", missing], r"`--hidden` must be"),
        "lab unknown section": (["lab", "--only", "nosuch", "--out", missing], r"nosuch"),
        "measure bad p": (["measure", "--p", "0.5,x", "--q", "0.5,0.5"], r"`--p` must be"),
    }


def test_every_command_reports_user_errors_in_one_line_with_exit_2(tmp_path):
    for name, (args, pattern) in _cases(tmp_path).items():
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (name, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, result.stderr)
        assert result.stdout == "", (name, result.stdout)
        assert re.search(pattern, lines[0]), (name, lines[0])
        assert not (tmp_path / "nowhere").exists(), name  # nothing written on a refused call


def _raise(exc: BaseException) -> None:
    raise exc


@pytest.mark.parametrize(
    ("exc", "user"),
    [
        (InvalidArgumentError("`k` must be positive"), True),
        (ConfigMismatchError("`run_dir` differs"), True),
        (RunDirectoryError("`run_dir` missing"), True),
        (FileNotFoundError("no such file"), True),
        (TypeError("unsupported operand"), False),
        (KeyError("k"), False),
        (RuntimeError("shape mismatch"), False),
    ],
)
def test_only_user_errors_become_one_liners(exc, user):
    assert is_user_error(exc) is user


def test_a_plain_value_error_counts_only_when_klkit_raised_it():
    try:
        _raise(ValueError("`x` must be ..."))  # raised in this test module, not in klkit
    except ValueError as exc:
        assert not is_user_error(exc)
    from klkit.cli.vae import parse_hidden

    with pytest.raises(ValueError) as info:
        parse_hidden("1,x")
    assert is_user_error(info.value)


def test_a_bug_keeps_its_traceback():
    @one_line_errors
    def buggy() -> None:
        _raise(TypeError("unsupported operand type(s) for +: 'int' and 'str'"))

    with pytest.raises(TypeError):
        buggy()

    @one_line_errors
    def user_error() -> None:
        raise InvalidArgumentError("`k` must be positive; found 0.")

    with pytest.raises(typer.Exit) as info:
        user_error()
    assert info.value.exit_code == 2


def test_python_dash_m_klkit_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "klkit", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout and "train" in done.stdout and "eval" in done.stdout
