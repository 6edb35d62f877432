"""``klkit measure``: the plain function against scipy/numpy, and the command via typer's runner."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.special import log_softmax, softmax
from scipy.stats import entropy as scipy_entropy
from typer.testing import CliRunner

from klkit.cli.app import app
from klkit.cli.measure import format_json, load_vector, measure_report, parse_vector

runner = CliRunner()
RTOL = 1e-12


def invoke(*args: str):
    return runner.invoke(app, ["measure", *args])


def _renyi(p: np.ndarray, q: np.ndarray, alpha: float) -> float:
    """D_α(P‖Q) in nats from the defining sum (full supports), its α = ∞ limit log max p/q."""
    if np.isinf(alpha):
        return float(np.log(np.max(p / q)))
    return float(np.log(np.sum(p**alpha * q ** (1 - alpha))) / (alpha - 1))


def _reference(p: np.ndarray, q: np.ndarray, base: float | None, alpha: float = 2.0) -> dict[str, float]:
    """Independent truth: scipy for H, KL, JS and the JS distance; numpy for the cross-entropy, total
    variation, Hellinger distance (√(1 − Σ√(pq))) and the Rényi divergence."""
    scale = 1.0 if base is None else np.log(base)
    return {
        "entropy_p": scipy_entropy(p, base=base),
        "entropy_q": scipy_entropy(q, base=base),
        "kl_pq": scipy_entropy(p, q, base=base),
        "kl_qp": scipy_entropy(q, p, base=base),
        "cross_entropy_pq": -np.sum(p * np.log(q)) / scale,
        "cross_entropy_qp": -np.sum(q * np.log(p)) / scale,
        "js": jensenshannon(p, q, base=base) ** 2,
        "js_distance": jensenshannon(p, q, base=base),
        "total_variation": 0.5 * np.abs(p - q).sum(),
        "hellinger": np.sqrt(1 - np.sqrt(p * q).sum()),
        "renyi_pq": _renyi(p, q, alpha) / scale,
        "renyi_qp": _renyi(q, p, alpha) / scale,
    }


def _json_strict(text: str) -> dict:
    def reject(token: str):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=reject)


# ---------------------------------------------------------------------------
# measure_report (the plain function)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("base", [None, 2, 10])
@pytest.mark.parametrize("k", [2, 5, 50])
def test_report_matches_scipy(k, base):
    rng = np.random.default_rng(k)
    p, q = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))
    report = measure_report(p, q, base=base)
    for key, expected in _reference(p, q, base).items():
        assert report[key] == pytest.approx(expected, rel=RTOL, abs=1e-15), key
    assert report["unit"] == {None: "nats", 2: "bits", 10: "log base 10"}[base]
    check = report["check"]
    assert check["holds"] is True
    assert abs(check["difference"]) <= 1e-12 * check["cross_entropy"]
    assert check["entropy_plus_kl"] == pytest.approx(report["entropy_p"] + report["kl_pq"], rel=1e-15)


def test_report_lesson_numbers():
    report = measure_report([0.5, 0.5], [0.9, 0.1], base=2)
    assert report["entropy_p"] == pytest.approx(1.0, rel=RTOL)  # a fair coin carries one bit
    assert report["entropy_q"] == pytest.approx(-(0.9 * np.log2(0.9) + 0.1 * np.log2(0.1)), rel=RTOL)
    assert report["kl_pq"] != pytest.approx(report["kl_qp"])  # KL is not symmetric
    assert 0 < report["js"] <= 1.0  # JS is at most one bit


def test_report_disjoint_support_is_inf_and_check_holds():
    report = measure_report([0.5, 0.5], [1.0, 0.0])
    assert report["kl_pq"] == np.inf and report["cross_entropy_pq"] == np.inf
    assert report["kl_qp"] == pytest.approx(np.log(2), rel=RTOL)
    assert report["check"]["difference"] is None and report["check"]["holds"] is True
    assert np.isfinite(report["js"]) and report["js"] <= np.log(2)
    assert report["renyi_pq"] == np.inf and report["renyi_qp"] == pytest.approx(np.log(2), rel=RTOL)
    assert report["total_variation"] == 0.5
    assert report["hellinger"] == pytest.approx(np.sqrt(1 - np.sqrt(0.5)), rel=RTOL)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 3.0, np.inf])
def test_report_renyi_order(alpha):
    p, q = np.array([0.2, 0.3, 0.5]), np.array([0.1, 0.1, 0.8])
    report = measure_report(p, q, base=2, alpha=alpha)
    expected_pq = scipy_entropy(p, q) if alpha == 1 else _renyi(p, q, alpha)
    expected_qp = scipy_entropy(q, p) if alpha == 1 else _renyi(q, p, alpha)
    assert report["alpha"] == alpha
    assert report["renyi_pq"] == pytest.approx(expected_pq / np.log(2), rel=RTOL, abs=1e-15)
    assert report["renyi_qp"] == pytest.approx(expected_qp / np.log(2), rel=RTOL, abs=1e-15)
    assert report["total_variation"] <= np.sqrt(report["kl_pq"] * np.log(2) / 2)  # Pinsker, KL in nats


def test_report_kinds_pass_through():
    rng = np.random.default_rng(3)
    logits_p, logits_q = rng.normal(size=6) * 3, rng.normal(size=6) * 3
    p, q = softmax(logits_p), softmax(logits_q)
    expected = _reference(p, q, None)
    for report in (
        measure_report(logits_p, logits_q, kind="logits"),
        measure_report(log_softmax(logits_p), log_softmax(logits_q), kind="log_probs"),
        measure_report(logits_p, q, kind="logits", q_kind="probs"),
    ):
        for key, value in expected.items():
            assert report[key] == pytest.approx(value, rel=1e-10), key


def test_report_rejects_two_dimensions_and_unequal_lengths():
    with pytest.raises(ValueError, match=r"`p` must be one distribution \(a 1-D vector\); found shape \(2, 2\)"):
        measure_report([[0.5, 0.5], [0.5, 0.5]], [0.5, 0.5])
    with pytest.raises(ValueError, match="`p` and `q` must have the same number of outcomes; found 2 and 3"):
        measure_report([0.5, 0.5], [0.2, 0.3, 0.5])


def test_parse_vector_and_format_json():
    assert parse_vector(" 0.25 ,0.75", "--p").tolist() == [0.25, 0.75]
    with pytest.raises(ValueError, match=r"`--q` must be comma-separated numbers; found 'a'"):
        parse_vector("0.5,a", "--q")
    text = format_json({"x": float("inf"), "y": [float("nan")], "z": 1.5})
    assert _json_strict(text) == {"x": "inf", "y": ["nan"], "z": 1.5}


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------


def test_command_table_shows_every_measure():
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    result = invoke("--p", "0.5,0.5", "--q", "0.9,0.1", "--base", "2")
    assert result.exit_code == 0, result.output
    for label in (
        "H(P)",
        "H(Q)",
        "H(P,Q)",
        "H(Q,P)",
        "KL(P‖Q)",
        "KL(Q‖P)",
        "JS(P,Q)",
        "bits",
        "Rényi D_2(P‖Q)",
        "Rényi D_2(Q‖P)",
        "√JS(P,Q) (√bits)",
        "TV(P,Q) (no unit)",
        "Hellinger H(P,Q) (no unit)",
    ):
        assert label in result.stdout
    for value in _reference(p, q, 2).values():
        assert f"{value:.6f}" in result.stdout
    assert "holds" in result.stdout and "DOES NOT HOLD" not in result.stdout


def test_command_json_parses_and_matches_the_function():
    result = invoke("--p", "0.2,0.3,0.5", "--q", "0.1,0.1,0.8", "--json")
    assert result.exit_code == 0, result.output
    data = _json_strict(result.stdout)
    p, q = np.array([0.2, 0.3, 0.5]), np.array([0.1, 0.1, 0.8])
    for key, expected in _reference(p, q, None).items():
        assert data[key] == pytest.approx(expected, rel=RTOL), key
    assert data == _json_strict(format_json(measure_report(p, q)))
    assert data["unit"] == "nats" and data["check"]["holds"] is True


def test_command_alpha_option():
    p, q = np.array([0.2, 0.3, 0.5]), np.array([0.1, 0.1, 0.8])
    result = invoke("--p", "0.2,0.3,0.5", "--q", "0.1,0.1,0.8", "--alpha", "0.5", "--json")
    assert result.exit_code == 0, result.output
    data = _json_strict(result.stdout)
    assert data["alpha"] == 0.5 and data["renyi_pq"] == pytest.approx(_renyi(p, q, 0.5), rel=RTOL)
    result = invoke("--p", "0.5,0.5", "--q", "1,0", "--alpha", "inf", "--json")
    data = _json_strict(result.stdout)
    assert data["alpha"] == "inf" and data["renyi_pq"] == "inf" and data["renyi_qp"] == pytest.approx(np.log(2))
    result = invoke("--p", "0.5,0.5", "--q", "0.9,0.1", "--alpha", "inf")
    assert "Rényi D_∞(P‖Q)" in result.stdout and f"{np.log(5):.6f}" in result.stdout


def test_command_json_infinite_values_are_strings():
    result = invoke("--p", "0.5,0.5", "--q", "1,0", "--json")
    assert result.exit_code == 0, result.output
    data = _json_strict(result.stdout)
    assert data["kl_pq"] == "inf" and data["cross_entropy_pq"] == "inf"
    assert data["check"] == {"cross_entropy": "inf", "entropy_plus_kl": "inf", "difference": None, "holds": True}


def test_command_kind_options():
    result = invoke("--p", "0,0", "--q", "2,-1", "--kind", "logits", "--json")
    assert result.exit_code == 0, result.output
    data = _json_strict(result.stdout)
    p, q = softmax([0.0, 0.0]), softmax([2.0, -1.0])
    assert data["kl_pq"] == pytest.approx(scipy_entropy(p, q), rel=1e-12)
    result = invoke("--p", "0,0", "--q", "0.9,0.1", "--kind", "logits", "--q-kind", "probs", "--json")
    assert _json_strict(result.stdout)["kl_pq"] == pytest.approx(scipy_entropy([0.5, 0.5], [0.9, 0.1]), rel=1e-12)


def test_command_reads_npy_and_csv(tmp_path):
    rng = np.random.default_rng(7)
    p, q = rng.dirichlet(np.ones(8)), rng.dirichlet(np.ones(8))
    np.save(tmp_path / "p.npy", p)
    (tmp_path / "q_row.csv").write_text(",".join(repr(float(x)) for x in q) + "\n")
    (tmp_path / "q_col.csv").write_text("\n".join(repr(float(x)) for x in q) + "\n")
    expected = _reference(p, q, None)
    for q_file in ("q_row.csv", "q_col.csv"):
        result = invoke("--p-file", str(tmp_path / "p.npy"), "--q-file", str(tmp_path / q_file), "--json")
        assert result.exit_code == 0, result.output
        data = _json_strict(result.stdout)
        for key, value in expected.items():
            assert data[key] == pytest.approx(value, rel=RTOL), (q_file, key)
    assert load_vector(tmp_path / "q_col.csv", "--q-file").tolist() == q.tolist()


def _errors_cases(tmp_path):
    np.save(tmp_path / "matrix.npy", np.full((2, 3), 1 / 3))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "words.csv").write_text("half,half\n")
    (tmp_path / "p.txt").write_text("0.5,0.5\n")
    good = ("--q", "0.5,0.5")
    return {
        "not a number": (("--p", "0.5,x", *good), r"`--p` must be comma-separated numbers; found 'x'"),
        "missing q": (("--p", "0.5,0.5"), r"give exactly one of `--q` and `--q-file`; found neither"),
        "both p and p-file": (("--p", "1,0", "--p-file", "p.npy", *good), r"`--p` and `--p-file`; found both"),
        "bad extension": (("--p-file", str(tmp_path / "p.txt"), *good), r"`--p-file` must be a \.npy or \.csv file"),
        "missing file": (("--p-file", str(tmp_path / "none.npy"), *good), r"`--p-file` must name an existing file"),
        "bad csv": (("--p-file", str(tmp_path / "words.csv"), *good), r"`--p-file` could not be read as CSV numbers"),
        "pickled npy": (("--p-file", str(tmp_path / "objects.npy"), *good), r"`--p-file` could not be read"),
        "2-D file": (("--p-file", str(tmp_path / "matrix.npy"), *good), r"`--p` must be one distribution"),
        "lengths": (("--p", "0.5,0.5", "--q", "0.2,0.3,0.5"), r"must have the same number of outcomes; found 2 and 3"),
        "sum": (("--p", "0.5,0.6", *good), r"`--p` must sum to 1"),
        "negative": (("--p", "1.5,-0.5", *good), r"`--p` must hold probabilities: finite and >= 0; found 1 entry"),
        "nan": (("--p", "nan,0.5", *good), r"`--p` must hold probabilities.*nan"),
        "q sum": (("--p", "0.5,0.5", "--q", "0.5,0.6"), r"`--q` must sum to 1"),
        "q logits nan": (("--p", "0,0", "--q", "0,nan", "--kind", "logits"), r"`--q` must hold logits"),
        "base text": (("--p", "0.5,0.5", *good, "--base", "two"), r"`--base` must be a number"),
        "base one": (("--p", "0.5,0.5", *good, "--base", "1"), r"`--base` must be e \(nats\) or a finite number"),
        "base negative": (("--p", "0.5,0.5", *good, "--base", "-2"), r"`--base` must be"),
        "kind": (("--p", "0.5,0.5", *good, "--kind", "prob"), r"`--kind` must be one of"),
        "q-kind": (("--p", "0.5,0.5", *good, "--q-kind", "scores"), r"`--q-kind` must be one of"),
        "logits +inf": (("--p", "inf,0", "--q", "0,0", "--kind", "logits"), r"`--p` must hold logits"),
        "alpha text": (("--p", "0.5,0.5", *good, "--alpha", "two"), r"`--alpha` must be a number >= 0 or 'inf'"),
        "alpha negative": (("--p", "0.5,0.5", *good, "--alpha", "-1"), r"`--alpha` must be >= 0 \(or inf\)"),
        "alpha nan": (("--p", "0.5,0.5", *good, "--alpha", "nan"), r"`--alpha` must be >= 0 \(or inf\); found nan"),
    }


def test_every_error_is_one_line_with_exit_code_2(tmp_path):
    for name, (args, pattern) in _errors_cases(tmp_path).items():
        result = invoke(*args)
        assert result.exit_code == 2, (name, result.output)
        assert result.stdout == "", name
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (name, result.stderr)
        assert lines[0].startswith("error: "), (name, lines[0])
        assert "Traceback" not in result.output, name
        assert re.search(pattern, lines[0]), (name, lines[0])


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (("--p", "0.5,0.5", "--q", "0.9,0.1", "--bogus"), r"No such option: --bogus"),
        (("--p",), r"Option '--p' requires an argument"),
        (("--p", "0.5,0.5", "--q", "0.9,0.1", "extra"), r"unexpected extra argument"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(args, pattern):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert "measure --help" in lines[0]


def test_help_lists_the_options():
    result = invoke("--help")
    assert result.exit_code == 0
    for option in ("--p", "--q", "--p-file", "--q-file", "--base", "--kind", "--q-kind", "--alpha", "--json"):
        assert option in result.stdout
