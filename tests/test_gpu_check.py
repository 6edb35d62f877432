"""``benchmarks/gpu_check.py`` (``make gpu-check``) in its CPU smoke mode: it runs, selects the CUDA tests,
and writes a JSON and a Markdown table whose klkit rows agree with the float64 formulas."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("gpu-check")
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "gpu_check.py"),
        "--device",
        "cpu",
        "--quick",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.md").read_text()


def test_cuda_tests_are_selected(report):
    tests = report[0]["tests"]
    assert tests["collect_only"] and tests["exit_code"] == 0
    assert "tests/test_train_device.py" in tests["files"]
    collected = int(tests["summary"].split("/")[0])  # "6/145 tests collected (139 deselected) in 1.2s"
    assert collected >= 1


def test_every_loss_is_measured_and_klkit_agrees_with_float64(report):
    rows = report[0]["rows"]
    assert report[0]["environment"]["device"] == "cpu" and report[0]["quick"]
    groups = {r["group"] for r in rows}
    assert groups == {
        "jsd from logits",
        "jsd fused with the output layer",
        "cross-entropy from logits",
        "cross-entropy fused with the output layer",
    }
    measured = [r for r in rows if r["status"] == "ok"]
    assert len(measured) == 7  # naive and klkit in each group, but klkit's fused cross-entropy (none)
    for r in measured:
        assert r["ms"] > 0 and r["extra_peak_mib"] >= 0 and math.isfinite(r["loss_rel_error"])
        if r["implementation"].startswith("klkit"):
            assert r["loss_rel_error"] < 1e-5 and r["grad_rel_error"] < 1e-4, r
    liger = [r for r in rows if r["implementation"].startswith("Liger")]
    assert len(liger) == 4 and all("GPU" in r["status"] for r in liger)


def test_markdown_table_has_one_line_per_row(report):
    data, text = report
    table = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| loss |")]
    assert len(table) == len(data["rows"])
    assert "klkit fused_linear_divergence" in text and "collected only" in text
