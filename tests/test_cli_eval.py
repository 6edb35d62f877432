"""`klkit eval`: dispatch on the run's recorded algorithm, one-line errors."""

import json

import pytest
from typer.testing import CliRunner

from klkit.cli import app
from klkit.cli.evaluate import evaluate_run, read_algorithm

runner = CliRunner()


def test_missing_config_is_one_line_exit_2(tmp_path):
    result = runner.invoke(app, ["eval", str(tmp_path)])
    assert result.exit_code == 2
    assert "config.json" in result.output
    assert "Traceback" not in result.output


def test_unknown_algorithm_is_rejected(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"algorithm": "gan"}))
    with pytest.raises(ValueError, match="must name an algorithm"):
        read_algorithm(tmp_path)


def test_algorithm_mismatch_is_rejected(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"algorithm": "ppo"}))
    with pytest.raises(ValueError, match="holds a ppo run, not vae"):
        evaluate_run(tmp_path, algorithm="vae")
    result = runner.invoke(app, ["eval", "vae", str(tmp_path)])
    assert result.exit_code == 2


def test_bad_target_word(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"algorithm": "ppo"}))
    result = runner.invoke(app, ["eval", "gan", str(tmp_path)])
    assert result.exit_code == 2
    assert "must be one of" in result.output
