"""The text the lab's distillation section trains on: docstrings of standard-library modules.

The docstrings of :data:`MODULES` and their public members, lower-cased and reduced to the alphabet
:data:`CHARS`; deterministic within one Python version.
"""

from __future__ import annotations

import importlib
import inspect
import re
import warnings

__all__ = ["CHARS", "MODULES", "corpus"]

MODULES = (
    "collections",
    "functools",
    "itertools",
    "json",
    "re",
    "argparse",
    "logging",
    "pathlib",
    "random",
    "statistics",
    "textwrap",
    "string",
    "heapq",
    "bisect",
    "datetime",
    "fractions",
    "decimal",
    "csv",
    "difflib",
    "shutil",
    "subprocess",
    "threading",
    "typing",
    "dataclasses",
    "enum",
    "inspect",
)
CHARS = "abcdefghijklmnopqrstuvwxyz .,'-()"  # everything else becomes a space; runs of spaces collapse


def corpus() -> str:
    """The docstrings of :data:`MODULES` and their public members, lower-cased, on :data:`CHARS`.

    Deterministic within one Python version; the docstrings, and so the text, change a little between versions.
    """
    docs = []
    with warnings.catch_warnings():  # deprecated aliases (typing.io, typing.re) warn when looked up
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in MODULES:
            module = importlib.import_module(name)
            docs.append(inspect.getdoc(module) or "")
            for attr in sorted(dir(module)):
                obj = getattr(module, attr)
                if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                    continue
                doc = inspect.getdoc(obj)
                if doc:
                    docs.append(doc)
    text = "".join(c if c in CHARS else " " for c in " ".join(docs).lower())
    return re.sub(" +", " ", text)
