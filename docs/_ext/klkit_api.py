"""The API reference, generated at build time from each public module's ``__all__``.

Every public name gets one page, under the first public path a user would import it from
(``klkit.kl_divergence`` rather than ``klkit.measures.kl_divergence``): the namespaces in
:data:`NAMESPACES` come first, in that order, then every other public module of the package
(``pkgutil`` walk), so a name added to any ``__all__`` shows up without editing the docs.
A module whose names all live elsewhere gets no page of its own; a reference to one of its
names (``:func:`klkit.measures.kl_divergence```) is resolved to the page of the same object
by :func:`resolve_alias`, so docstrings may cite either path.

Writes ``api/index.rst`` and one ``api/<module>.rst`` per module into the source folder
(git-ignored): the module's docstring, an autosummary table, then every name in full. One page
per module rather than per name keeps the build fast (the theme's navigation costs per page).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)
_HOMES: dict[Any, str] = {}  # object identity -> documented dotted path, rebuilt on every build
_MODULES: set[str] = set()  # the modules with a page
_OWNED: set[str] = set()  # every documented dotted name

# The namespaces, in the order of the API reference, with one line each. A public module not
# listed here still gets a page when it owns names no earlier module exports.
NAMESPACES: tuple[tuple[str, str], ...] = (
    ("klkit", "The measures and the information/divergence family, importable from the top level."),
    ("klkit.measures", "Surprise, entropy, cross-entropy, KL and JS divergence on arrays, in log space."),
    ("klkit.information", "Joint and conditional entropy, mutual information."),
    ("klkit.divergences", "Total variation, Hellinger, f-divergences, the Jensen–Shannon distance."),
    ("klkit.renyi", "Rényi divergence and entropy."),
    ("klkit.distributions", "Closed forms for distribution objects, the registry, Monte Carlo fallback."),
    ("klkit.estimators", "Entropy, KL and mutual information from samples, with standard errors."),
    ("klkit.fitting", "Forward vs reverse KL fitting of an approximating family."),
    ("klkit.losses", "Cross-entropy loss from logits."),
    ("klkit.distill", "Divergence losses for distillation."),
    ("klkit.rlhf", "KL penalties for RL from human feedback, with stated gradient semantics."),
    ("klkit.train", "Training loops whose every KL comes from klkit."),
    ("klkit.train.vae", "The variational autoencoder."),
    ("klkit.train.ppo", "Proximal policy optimisation."),
    ("klkit.train.trpo", "Trust-region policy optimisation."),
    ("klkit.train.rl", "What PPO and TRPO share: configuration, environments, policies, rollouts."),
    ("klkit.lab", "The experiments that verify each claim, and the HTML report."),
    ("klkit.errors", "Named exceptions and warnings."),
)
# The lab's sections are pages of the gallery (their ``run`` is the only name they export).
# The command line has its own page, generated from its --help (guide/cli).
EXCLUDED_PREFIXES = ("klkit.lab.sections.", "klkit.cli")


@dataclass
class ModulePage:
    """One module of the API reference: the names it owns and the ones it re-exports."""

    module: str
    summary: str
    owned: list[str] = field(default_factory=list)
    reexported: list[tuple[str, str]] = field(default_factory=list)  # (name here, documented path)


def _is_public(module: str) -> bool:
    parts = module.split(".")
    return not any(p.startswith("_") for p in parts[1:]) and not module.startswith(EXCLUDED_PREFIXES)


def _walk(package: str) -> list[str]:
    root = importlib.import_module(package)
    names = [m.name for m in pkgutil.walk_packages(root.__path__, f"{package}.")]
    return [name for name in names if _is_public(name)]


def _identity(obj: Any) -> Any:
    """A key for "the same object": functions, classes and modules by identity, data never shared."""
    if inspect.isroutine(obj) or inspect.isclass(obj) or inspect.ismodule(obj):
        return id(obj)
    return None


def _first_line(module: Any) -> str:
    """The docstring's first line, roles turned into literals (the index table has no module context)."""
    doc = (inspect.getdoc(module) or "").strip()
    line = doc.splitlines()[0] if doc else ""
    return re.sub(r":[a-z]+:`~?\.?([^`<]*?)(?: <[^>]*>)?`", r"``\1``", line)


def plan(package: str = "klkit") -> list[ModulePage]:
    """Which module documents which name: the curated namespaces first, then every public module."""
    order = [name for name, _ in NAMESPACES]
    summaries = dict(NAMESPACES)
    for name in _walk(package):
        if name not in order:
            order.append(name)
    home: dict[Any, str] = {}
    pages = []
    for module_name in order:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # a namespace not written yet
                continue
            raise
        exported = [n for n in getattr(module, "__all__", []) if not (n.startswith("__") and n.endswith("__"))]
        page = ModulePage(module_name, summaries.get(module_name) or _first_line(module))
        for name in exported:
            obj = getattr(module, name)
            key = _identity(obj)
            if key is not None and key in home:
                page.reexported.append((name, home[key]))
                continue
            if key is not None:
                home[key] = f"{module_name}.{name}"
            page.owned.append(name)
        pages.append(page)  # every public module has a page, a target for :mod: references
    documented = {f"{p.module}.{name}" for p in pages for name in p.owned}
    return [p for p in pages if p.module not in documented]  # a module shadowed by a name, e.g. cli.app


def _underline(text: str, char: str) -> str:
    return f"{text}\n{char * len(text)}\n"


def _directive(obj: Any) -> str:
    if inspect.isclass(obj):
        return "autoexception" if issubclass(obj, BaseException) else "autoclass"
    if inspect.isroutine(obj):
        return "autofunction"
    return "autodata"


def _module_rst(page: ModulePage) -> str:
    """The module's docstring, a summary table of its names, then each name in full on the same page."""
    module = importlib.import_module(page.module)
    lines = [
        _underline(f"``{page.module}``", "="),
        f".. automodule:: {page.module}",
        "   :no-members:",
        "",
        f".. currentmodule:: {page.module}",
        "",
    ]
    if page.owned:
        lines += [".. autosummary::", "   :nosignatures:", ""] + [f"   {name}" for name in page.owned]
    if page.reexported:
        lines += [
            "",
            "Also importable from here: "
            + ", ".join(f":obj:`{name} <{target}>`" for name, target in page.reexported)
            + ".",
        ]
    for name in page.owned:
        kind = _directive(getattr(module, name))
        lines += ["", "----", "", f".. {kind}:: {name}"]
        if kind in ("autoclass", "autoexception"):
            lines.append("   :members:")
    return "\n".join(lines) + "\n"


def write_api(srcdir: Path, package: str = "klkit") -> list[ModulePage]:
    """Write ``api/index.rst`` and one page per module; return the plan."""
    pages = plan(package)
    folder = srcdir / "api"
    folder.mkdir(exist_ok=True)
    shutil.rmtree(folder / "generated", ignore_errors=True)  # one page per name: an earlier layout's stubs
    wanted = {f"{p.module}.rst" for p in pages} | {"index.rst"}
    for stale in folder.glob("*.rst"):
        if stale.name not in wanted:
            stale.unlink()
    index = [
        _underline("API reference", "="),
        "Every public name of klkit, one page each, generated from its docstring (the examples in them "
        "run as doctests in the test suite). A name re-exported by several modules is documented once, "
        "where it is first listed here.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 30 70",
        "",
        "   * - module",
        "     - what is in it",
    ]
    for p in pages:
        index += [f"   * - :doc:`{p.module}`", f"     - {p.summary}"]
    index += ["", ".. toctree::", "   :hidden:", ""] + [f"   {p.module}" for p in pages]
    _write_if_changed(folder / "index.rst", "\n".join(index) + "\n")
    for p in pages:
        _write_if_changed(folder / f"{p.module}.rst", _module_rst(p))
    return pages


def _write_if_changed(path: Path, text: str) -> None:
    """Keep the mtime of unchanged files so Sphinx does not re-read them."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _homes(pages: list[ModulePage]) -> dict[Any, str]:
    out = {}
    for p in pages:
        module = importlib.import_module(p.module)
        for name in p.owned:
            key = _identity(getattr(module, name))
            if key is not None:
                out[key] = f"{p.module}.{name}"
    return out


def _import_dotted(path: str) -> tuple[Any, Any] | None:
    """``(owner, object)`` at a dotted path, attribute chains included; None when it does not exist.

    A dataclass field without a default (no class attribute) counts: its object is None.
    """
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        owner = None
        for attr in parts[cut:]:
            if hasattr(obj, attr):
                owner, obj = obj, getattr(obj, attr)
            elif inspect.isclass(obj) and attr in getattr(obj, "__dataclass_fields__", {}):
                owner, obj = obj, None
            else:
                return None
        return owner, obj
    return None


def _documented(path: str) -> str | None:
    """Where the object at ``path`` is documented: its own page, or the page of the class that holds it."""
    found = _import_dotted(path)
    if found is None:
        return None
    owner, obj = found
    if inspect.ismodule(obj):
        return obj.__name__ if obj.__name__ in _MODULES else None
    key = _identity(obj) if obj is not None else None
    if key is not None and key in _HOMES:
        return _HOMES[key]
    if path in _OWNED:  # data (a constant, a table) documented where it is listed
        return path
    if inspect.isclass(owner) and id(owner) in _HOMES:  # a method, attribute or field of a documented class
        member = path.rsplit(".", 1)[1]
        return f"{_HOMES[id(owner)]}.{member}" if key is not None and inspect.isroutine(obj) else _HOMES[id(owner)]
    return None


def resolve_alias(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve a reference to a klkit name documented under another path (or relative to the current module).

    ``:func:`klkit.measures.kl_divergence``` goes to ``klkit.kl_divergence``'s page; ``:func:`run_lab``` in
    ``klkit.lab.runner`` to ``klkit.lab.run_lab``; ``:attr:`value``` in a class to that class's page.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip(".~")
    module, cls = node.get("py:module"), node.get("py:class")
    candidates = [target] if target.startswith("klkit.") else []
    if module and cls:
        candidates.append(f"{module}.{cls}.{target}")
    if module:
        candidates.append(f"{module}.{target}")
    # relative to the module that defines the object whose docstring holds the reference
    docstring_of = re.search(r"docstring of ([\w.]+)", node.source or "")
    for owner in ([f"{module}.{cls}"] if module and cls else []) + ([docstring_of.group(1)] if docstring_of else []):
        defined_in = _defined_in(owner)
        if defined_in and f"{defined_in}.{target}" not in candidates:
            candidates.append(f"{defined_in}.{target}")
    domain = env.get_domain("py")
    for candidate in candidates:
        documented = _documented(candidate)
        if documented is None or documented == target:
            continue
        reftype = "mod" if documented in _MODULES else "obj"
        new = node.deepcopy()
        new["reftarget"] = documented
        found = domain.resolve_xref(env, node["refdoc"], app.builder, reftype, documented, new, contnode)
        if found is None and reftype == "obj" and "." in documented:  # a member without its own entry
            parent = documented.rsplit(".", 1)[0]
            found = domain.resolve_xref(env, node["refdoc"], app.builder, "obj", parent, new, contnode)
        if found is not None:
            return found
    for candidate in candidates:  # an existing name that is not public: shown as code, without a link
        if _import_dotted(candidate) is not None and not _public(candidate):
            return contnode
    return None


def _defined_in(path: str) -> str | None:
    """The module that defines the object at ``path`` (a re-exported class lives elsewhere); a module: itself."""
    found = _import_dotted(path)
    obj = None if found is None else found[1]
    if inspect.ismodule(obj):
        return obj.__name__
    return getattr(obj, "__module__", None) if obj is not None else None


def _public(path: str) -> bool:
    """Whether ``path`` names a public klkit object: no private part, listed in its module's ``__all__``."""
    parts = path.split(".")
    if any(part.startswith("_") for part in parts):
        return False
    for cut in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        return parts[cut] in getattr(module, "__all__", ())
    return False


def _on_config_inited(app: Sphinx, config: Any) -> None:
    pages = write_api(Path(app.srcdir))
    _HOMES.clear()
    _HOMES.update(_homes(pages))
    _MODULES.clear()
    _MODULES.update(p.module for p in pages)
    _OWNED.clear()
    _OWNED.update(f"{p.module}.{name}" for p in pages for name in p.owned)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", _on_config_inited)  # before Sphinx looks for source files
    app.connect("missing-reference", resolve_alias)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
