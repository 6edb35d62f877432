"""Run the benchmark scripts: all of ``benchmarks/*.py`` (except ``_``-prefixed helpers and
this file), or only those named on the command line.

``gpu_check.py`` is not one of them: it is ``make gpu-check``, for a CUDA machine.

Usage::

    .venv/bin/python benchmarks/run.py            # every benchmark
    .venv/bin/python benchmarks/run.py measures   # one (``measures`` or ``measures.py``)
    .venv/bin/python benchmarks/run.py --list     # what there is

Each script prints its table and writes its own section of ``docs/benchmarks.md``.
The exit status is 0 only when every script that ran succeeded.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# scripts with their own entry point: gpu_check.py is `make gpu-check` (a CUDA machine), not part of `make bench`
NOT_BENCHMARKS = {"gpu_check"}


def available() -> dict[str, Path]:
    """Benchmark scripts by name (the file's stem), sorted."""
    return {
        path.stem: path
        for path in sorted(HERE.glob("*.py"))
        if not path.name.startswith("_") and path.name != Path(__file__).name and path.stem not in NOT_BENCHMARKS
    }


def main(argv: list[str]) -> int:
    scripts = available()
    if "-h" in argv or "--help" in argv:
        print(__doc__.strip())
        return 0
    if "--list" in argv:
        print("\n".join(scripts) or "(no benchmark scripts)")
        return 0
    names = [Path(arg).stem for arg in argv] or list(scripts)
    unknown = [name for name in names if name not in scripts]
    if unknown:
        print(
            f"error: unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(scripts) or 'none'}",
            file=sys.stderr,
        )
        return 2
    failed: list[str] = []
    for name in names:
        print(f"\n=== benchmarks/{name}.py ===", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(scripts[name])], cwd=HERE.parent)
        print(f"=== {name}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {time.perf_counter() - start:.0f} s")
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
