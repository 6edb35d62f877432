"""The lab reaches training only through klkit.train's public API, and never touches global state.

A static check of every module under ``src/klkit/lab``: no private module of ``klkit.train`` (a path
segment starting with ``_``), only names in a training module's ``__all__`` (imported or used as an
attribute), and no call that re-seeds a global generator or sets torch's thread count outside the
two context managers of ``klkit.lab.base`` that restore what they set.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import klkit.lab

pytest.importorskip("torch")

LAB = Path(klkit.lab.__file__).parent
GLOBAL_STATE_CALLS = {
    "torch.manual_seed",
    "torch.random.manual_seed",
    "torch.seed",
    "torch.cuda.manual_seed",
    "torch.cuda.manual_seed_all",
    "torch.set_rng_state",
    "torch.set_num_threads",
    "torch.set_num_interop_threads",
    "np.random.seed",
    "numpy.random.seed",
    "np.random.set_state",
    "random.seed",
}
# The only places allowed to touch global state: they restore it on exit.
RESTORING = {("base.py", "torch_threads"), ("base.py", "torch_rng")}


def _public(module: str) -> set[str]:
    return set(importlib.import_module(module).__all__)


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def _private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split("."))


class _Checker(ast.NodeVisitor):
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.aliases: dict[str, str] = {}  # local name -> klkit.train submodule
        self.function: list[str] = []
        self.problems: list[str] = []

    def _flag(self, node: ast.AST, message: str) -> None:
        self.problems.append(f"{self.filename}:{getattr(node, 'lineno', '?')}: {message}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.startswith("klkit.train"):
                if _private(alias.name):
                    self._flag(node, f"imports the private module {alias.name}")
                elif alias.asname:
                    self.aliases[alias.asname] = alias.name

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if not module.startswith("klkit.train"):
            return
        if _private(module):
            self._flag(node, f"imports from the private module {module}")
            return
        for alias in node.names:
            if alias.name.startswith("_"):
                self._flag(node, f"imports the private name {module}.{alias.name}")
            elif module == "klkit.train":
                self.aliases[alias.asname or alias.name] = f"klkit.train.{alias.name}"
            elif alias.name not in _public(module):
                self._flag(node, f"imports {module}.{alias.name}, which is not in {module}.__all__")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id in self.aliases:
            module = self.aliases[node.value.id]
            if node.attr not in _public(module):
                self._flag(node, f"uses {module}.{node.attr}, which is not in {module}.__all__")
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.function.append(node.name)
        self.generic_visit(node)
        self.function.pop()

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        allowed = any((self.filename, f) in RESTORING for f in self.function)
        if name in GLOBAL_STATE_CALLS and not allowed:
            self._flag(node, f"calls {name}, which changes the caller's global state")
        self.generic_visit(node)


def problems(source: str, filename: str = "snippet.py") -> list[str]:
    """Every rule the source breaks, as ``file:line: what``."""
    checker = _Checker(filename)
    checker.visit(ast.parse(source))
    return checker.problems


def test_lab_uses_only_public_training_api_and_no_global_state():
    found = [p for path in sorted(LAB.rglob("*.py")) for p in problems(path.read_text(), path.name)]
    assert not found, "\n".join(found)


def test_the_training_sections_are_checked():
    """The static check sees the training sections' imports (it would pass vacuously otherwise)."""
    for key in ("vae", "trpo", "ppo"):
        source = (LAB / "sections" / f"{key}.py").read_text()
        assert f"from klkit.train import {key}" in source


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from klkit.train import _checkpoint as ckpt", "private name klkit.train._checkpoint"),
        ("import klkit.train._runs", "private module klkit.train._runs"),
        ("from klkit.train._runs import isolated_rng", "private module klkit.train._runs"),
        ("from klkit.train.ppo import helper_not_in_all", "klkit.train.ppo.helper_not_in_all, which is not in"),
        ("from klkit.train import vae\nvae.helper_not_in_all(None)", "uses klkit.train.vae.helper_not_in_all"),
        ("import klkit.train.trpo as trpo\ntrpo.helper_not_in_all('.')", "uses klkit.train.trpo.helper_not_in_all"),
        ("import torch\ntorch.manual_seed(0)", "calls torch.manual_seed"),
        ("import torch\ndef torch_threads():\n    torch.set_num_threads(1)", "calls torch.set_num_threads"),
        ("import numpy as np\nnp.random.seed(0)", "calls np.random.seed"),
    ],
)
def test_the_check_catches_each_rule(source, expected):
    """Negative controls: each forbidden pattern is reported (here outside base.py's restoring helpers)."""
    found = problems(source)
    assert len(found) == 1 and expected in found[0], found


def test_the_check_accepts_public_use_and_local_generators():
    source = (
        "import torch\nfrom klkit.train import vae\nfrom klkit.train.data import load_images\n"
        "cfg = vae.Config(data='digits')\ng = torch.Generator().manual_seed(0)\n"
    )
    assert problems(source) == []


def test_the_explorables_compute_nothing_in_the_browser():
    """The page's script only looks frames up: no Math, no arithmetic operator but string concatenation."""
    import re

    from klkit.lab.explore import RUNTIME_JS

    code = re.sub(r"'[^']*'", "''", RUNTIME_JS)  # string literals ('data-key', '-') are not arithmetic
    assert "Math." not in code and "parseFloat" not in code and "Number(" not in code
    assert not re.search(r"[*/%]|(?<![-+=!<>])-(?![-=>])", code), re.findall(r".{20}[*/%-].{20}", code)
    negative = re.sub(r"'[^']*'", "''", RUNTIME_JS.replace("spec.frames[key]", "Math.log(2) * spec.frames[key]"))
    assert "Math." in negative and re.search(r"[*/%]", negative)  # the check sees arithmetic when there is some
