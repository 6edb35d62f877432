"""klkit.distill's public API, pinned: names, signatures, docstrings, and imports that point downward."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import klkit
import klkit.distill as distill

P, PK, K = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
E = inspect.Parameter.empty
OPTIONS = [
    ("divergence", K, "forward_kl"),
    ("beta", K, 0.5),
    ("skew", K, 0.1),
    ("alpha", K, None),
    ("temperature", K, 1.0),
    ("temperature_scaling", K, False),
]
TAIL = [
    ("labels", K, None),
    ("ignore_index", K, -100),
    ("reduction", K, "batchmean"),
    ("num_items_in_batch", K, None),
    ("chunk_size", K, None),
]
SIGNATURES = {
    "generalized_jsd_loss": [
        ("student_logits", PK, E),
        ("teacher_logits", PK, E),
        ("labels", PK, None),
        ("beta", PK, 0.5),
        ("temperature", PK, 1.0),
        ("reduction", PK, "batchmean"),
        ("num_items_in_batch", PK, None),
        ("interpolation", K, "trl"),
    ],
    "divergence_loss": [("student", P, E), ("teacher", P, E), *OPTIONS, ("kind", K, None), *TAIL],
    "fused_linear_divergence": [
        ("student_hidden", P, E),
        ("student_weight", P, E),
        ("teacher_hidden", P, E),
        ("teacher_weight", P, E),
        ("student_bias", K, None),
        ("teacher_bias", K, None),
        ("divergence", K, "jsd"),
        *OPTIONS[1:],
        *TAIL,
    ],
    "topk_teacher": [("teacher_logits", P, E), ("k", P, E), ("temperature", K, 1.0)],
}


def test_public_names_are_pinned():
    assert distill.__all__ == [
        "DIVERGENCES",
        "TopKTeacher",
        "divergence_loss",
        "fused_linear_divergence",
        "generalized_jsd_loss",
        "topk_teacher",
    ]
    assert distill.DIVERGENCES == (
        "forward_kl",
        "reverse_kl",
        "jsd",
        "skew_forward_kl",
        "skew_reverse_kl",
        "tvd",
        "alpha_beta",
    )
    assert distill.TopKTeacher._fields == ("indices", "log_probs", "tail_log_prob", "temperature", "vocab_size")
    assert not set(distill.__all__) & set(klkit.__all__)  # a subpackage, not re-exported at the top


def test_signatures_are_pinned():
    for name, expected in SIGNATURES.items():
        params = list(inspect.signature(getattr(distill, name)).parameters.values())
        assert [(p.name, p.kind, p.default) for p in params] == expected, name


def test_docstrings_have_the_numpydoc_sections():
    for name in SIGNATURES:
        doc = inspect.getdoc(getattr(distill, name))
        assert ".. math::" in doc.split("Parameters")[0] or ":math:" in doc.splitlines()[0], name
        for section in ("Parameters", "Returns", "Raises", "Examples"):
            assert f"\n{section}\n---" in doc, (name, section)


def test_imports_point_downward():
    """distill may use measures, losses, _xp, _validation, errors and torch; never lab, train, cli, rlhf, fitting."""
    folder = Path(distill.__file__).parent
    above = ("klkit.lab", "klkit.train", "klkit.cli", "klkit.rlhf", "klkit.fitting", "klkit.estimators")
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for module in names:
                assert not module.startswith(above), f"{path.name} imports {module}"
    for path in folder.glob("*.py"):
        importlib.import_module(f"klkit.distill.{path.stem}" if path.stem != "__init__" else "klkit.distill")
