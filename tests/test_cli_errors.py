"""Every command: a user's error is one line on stderr and exit code 2; a bug keeps its traceback."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
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
        "train ppo threads": (["train", "ppo", "--threads", "0", "--run-dir", missing], r"`--threads` must be"),
        "train trpo bad kl": (["train", "trpo", "--max-kl", "-1", "--run-dir", missing], r"`--max-kl` must be"),
        "train vae bad data": (["train", "vae", "--data", "nope", "--run-dir", missing], r"`--data` must be"),
        "train vae bad device": (["train", "vae", "--device", "tpu", "--run-dir", missing], r"`--device` must be"),
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


@pytest.mark.parametrize(
    ("args", "pattern", "command"),
    [
        (["train", "vae"], r"Missing option '--run-dir'", "train vae"),
        (["eval"], r"Missing argument 'target'", "eval"),
        (["lab", "--out"], r"Option '--out' requires an argument", None),
        (["pairs", "--bogus"], r"No such option: --bogus", "pairs"),
        (["bogus"], r"No such command 'bogus'", ""),
        (["--bogus"], r"No such option: --bogus", ""),
        (["measure", "--p", "0.5,0.5", "extra"], r"unexpected extra argument", "measure"),
        (["train", "ppo", "--steps", "many"], r"Invalid value for '--steps'", "train ppo"),
    ],
)
def test_every_usage_error_is_one_line_on_stderr_with_exit_2(args, pattern, command):
    result = runner.invoke(app, args, prog_name="klkit")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert "╭" not in result.stderr and result.stdout == ""
    if command is not None:  # points at the help of the command that refused
        assert f"(see `{' '.join(['klkit', command]).strip()} --help`)" in lines[0], lines[0]


def test_usage_errors_are_one_line_from_the_console_script_too():
    done = subprocess.run(
        [sys.executable, "-m", "klkit", "train", "vae"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "--run-dir" in done.stderr


def test_version_prints_the_package_version():
    import klkit

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"klkit {klkit.__version__}"


@pytest.mark.parametrize(
    ("args", "says", "never"),
    [
        (["--p", "0.5,0.5", "--q", "0.5,0.5", "--kind", "logprobs"], "`--kind` must be one of", "`kind`"),
        (["--p", "0.5,0.5", "--q", "0.5,0.5", "--q-kind", "x"], "`--q-kind` must be one of", "q_kind"),
        (["--p", "0.5,0.5", "--q", "0.5,0.5", "--base", "1"], "--base 2 for bits, --base e for nats", "base="),
        (["--p", "0.5,0.6", "--q", "0.5,0.5"], "pass --normalize", "klkit.normalize"),
        (["--p", "0.5,0.5", "--q", "-1,2", "--kind", "log_probs"], "Pass --kind logits", "kind="),
    ],
)
def test_cli_errors_speak_cli_not_python(args, says, never):
    result = runner.invoke(app, ["measure", *args])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert says in line and never not in line, line
    assert "np.log" not in line and "math.e" not in line and "None" not in line, line


def test_normalize_option_divides_counts_by_their_sums():
    result = runner.invoke(app, ["measure", "--p", "1,3", "--q", "2,2", "--normalize", "--base", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["p"] == [0.25, 0.75] and report["q"] == [0.5, 0.5]
    # KL((1/4, 3/4) ‖ (1/2, 1/2)) = 1 − H(1/4) bits, H(1/4) = 2 − (3/4) log2 3
    assert abs(report["kl_pq"] - (1 - (2 - 0.75 * np.log2(3)))) < 1e-15
    bad = runner.invoke(app, ["measure", "--p", "1,-3", "--q", "2,2", "--normalize"])
    assert bad.exit_code == 2 and "`--p` with `--normalize` must hold counts" in bad.stderr
