"""Layout of klkit.distributions: Estimate in a leaf, closed forms registered on import (sizes: test_module_size)."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import klkit

SRC = pathlib.Path(klkit.__file__).parent
DISTRIBUTIONS = sorted((SRC / "distributions").rglob("*.py"))


def _imports(tree: ast.AST) -> list[tuple[str, ast.AST]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node))
    return found


def test_estimate_is_a_leaf_module() -> None:
    tree = ast.parse((SRC / "estimate.py").read_text())
    allowed_klkit = {"klkit.errors", "klkit._xp", "klkit._engine"}
    for module, _ in _imports(tree):
        top = module.split(".")[0]
        if top == "klkit":
            assert any(module == a or module.startswith(a + ".") for a in allowed_klkit), module
        else:
            assert top in sys.stdlib_module_names or top == "numpy", module


def test_estimate_is_one_class_under_three_names() -> None:
    from klkit.estimate import Estimate
    from klkit.estimators import Estimate as FromEstimators

    assert FromEstimators is Estimate and klkit.Estimate is Estimate


def test_distributions_import_estimate_at_module_top() -> None:
    """No function-level import of klkit.estimators for Estimate (the leaf module is imported at the top)."""
    for path in DISTRIBUTIONS:
        tree = ast.parse(path.read_text())
        for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            for module, node in _imports(function):
                names = {a.name for a in getattr(node, "names", [])}
                assert not (module.startswith("klkit.estimators") and "Estimate" in names), (path, function.name)
                assert module != "klkit.estimate", (path, function.name)


def test_every_kl_module_registers_on_import_of_the_package() -> None:
    code = (
        "import klkit.distributions as d, pkgutil, klkit.distributions.kl as k\n"
        "from klkit.distributions import registry\n"
        "mods = {m.name for m in pkgutil.iter_modules(k.__path__)}\n"
        "owners = {registry.lookup_kl(a, b).__module__.rsplit('.', 1)[-1] for a, b in registry.registered_pairs()}\n"
        "print(sorted(mods - owners - {'common', 'moments'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
