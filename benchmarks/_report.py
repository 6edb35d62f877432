"""Shared helpers for the benchmark scripts: the machine's description and the
section writer for ``docs/benchmarks.md``.

Each benchmark script owns one named section of ``docs/benchmarks.md``, delimited by
``<!-- begin: NAME -->`` and ``<!-- end: NAME -->``; :func:`write_section` replaces that
block (or appends it) without touching the others, so scripts can run in any order.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import os
import platform
import re
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = ROOT / "docs" / "benchmarks.md"

_HEADER = """# Benchmarks

Written by the scripts in `benchmarks/` (run them all with `make bench`, or one with
`.venv/bin/python benchmarks/run.py NAME`). Each section below is replaced, in place, by the
script of the same name; the machine each ran on is given in its section.
"""

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _begin(name: str) -> str:
    return f"<!-- begin: {name} -->"


def _end(name: str) -> str:
    return f"<!-- end: {name} -->"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock keyed by ``path`` (in the temp dir, so nothing lands in ``docs/``)."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"klkit-bench-{digest}.lock"
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def replace_section(document: str, name: str, markdown: str) -> str:
    """Return ``document`` with the block named ``name`` replaced by ``markdown`` (appended if absent).

    Examples
    --------
    >>> doc = "top\\n<!-- begin: a -->\\nold\\n<!-- end: a -->\\nbottom\\n"
    >>> print(replace_section(doc, "a", "new"), end="")
    top
    <!-- begin: a -->
    new
    <!-- end: a -->
    bottom
    >>> print(replace_section("top\\n", "b", "x"), end="")
    top
    <BLANKLINE>
    <!-- begin: b -->
    x
    <!-- end: b -->
    """
    if not _NAME.match(name):
        raise ValueError(f"`name` must match {_NAME.pattern}; found {name!r}. Use letters, digits, '_', '-', '.'.")
    block = f"{_begin(name)}\n{markdown.strip()}\n{_end(name)}"
    start = document.find(_begin(name))
    stop = document.find(_end(name))
    if start != -1 and stop != -1 and stop > start:
        return document[:start] + block + document[stop + len(_end(name)) :]
    if start != -1 or stop != -1:
        raise ValueError(
            f"the section {name!r} in the document has a begin or end marker but not both in order; "
            f"fix the markers `{_begin(name)}` / `{_end(name)}` by hand."
        )
    return document.rstrip("\n") + "\n\n" + block + "\n"


def write_section(name: str, markdown: str, path: str | os.PathLike[str] = DEFAULT_PATH) -> Path:
    """Replace (or append) the block ``<!-- begin: NAME -->`` … ``<!-- end: NAME -->`` in ``path``.

    The file is created with a short header when missing. The write is atomic (a temporary
    file in the same directory, then ``os.replace``) and serialised with a file lock, so two
    benchmark scripts finishing at once both keep their sections.

    Parameters
    ----------
    name : str
        The section's name, usually the script's stem (``"measures"``, ``"estimators"``).
    markdown : str
        The section's body (a heading, the machine description, tables, notes).
    path : path-like, optional
        The document; ``docs/benchmarks.md`` at the repository root by default. A relative
        path is taken relative to the repository root.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    target = Path(path)
    if not target.is_absolute():
        target = ROOT / target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target):
        document = target.read_text(encoding="utf-8") if target.exists() else _HEADER
        updated = replace_section(document, name, markdown)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(updated)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    return target


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def _ram_gib() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    return "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def usable_cores() -> int:
    """Number of cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def load_description() -> str:
    """One Markdown sentence: the load average when the run ended, on how many usable cores."""
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"Load average when the run ended (1, 5, 15 min): {load} on {usable_cores()} cores "
        "(other jobs share the machine; the comparisons are within one run)."
    )


def machine_description() -> str:
    """One Markdown line describing the machine and the software the numbers were taken with.

    CPU model, usable/total cores, RAM, OS, Python and the numpy/scipy/torch/numba versions,
    and the UTC date. Versions are read from package metadata, so nothing heavy is imported.
    """
    versions = ", ".join(f"{pkg} {_version(pkg)}" for pkg in ("numpy", "scipy", "torch", "numba"))
    date = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{_cpu_model()}, {usable_cores()} usable cores (of {os.cpu_count()}), {_ram_gib()} RAM; "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}; {versions}; {date}"
    )


if __name__ == "__main__":
    print(machine_description())
