"""Run the lab's sections, show progress on the terminal, write ``results.json`` and ``index.html``."""

from __future__ import annotations

import difflib
import importlib
import json
import math
import os
import platform
import shutil
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from klkit.lab.base import Check, LabContext, SectionResult
from klkit.lab.sections import SECTIONS, TITLES

__all__ = ["LabReport", "run_lab", "run_section"]

_PACKAGE = "klkit.lab.sections"
_FIGURE_SUFFIXES = frozenset({".png", ".svg", ".jpg", ".jpeg"})
# The extra of pyproject.toml that installs each optional package a section may need.
_EXTRAS = {
    "torch": "torch",
    "matplotlib": "lab",
    "sklearn": "lab",
    "mlxtend": "lab",
    "plotly": "lab",
    "constriction": "lab",
    "tqdm": "lab",
    "gymnasium": "rl",
    "pygame": "rl",
}


@dataclass
class LabReport:
    """What :func:`run_lab` produced.

    Attributes
    ----------
    sections : list of SectionResult
        One per section run, in report order.
    durations : dict
        Seconds each section took.
    index_html, results_json : Path
        The report and the machine-readable results.
    duration_s : float
        Seconds the whole run took.
    left_out : list of str
        Sections not run because ``only`` left them out.
    """

    sections: list[SectionResult]
    durations: dict[str, float]
    index_html: Path
    results_json: Path
    duration_s: float
    left_out: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every section that ran passed; a section that could not run has failed."""
        return all(s.passed for s in self.sections)

    @property
    def failed(self) -> list[str]:
        """Keys of the sections that did not pass (a failing check, a crash, a missing module)."""
        return [s.key for s in self.sections if not s.passed]

    def why_failed(self) -> dict[str, str]:
        """For each failed section, its first failing check as ``"name: measured"``."""
        reasons = {}
        for s in self.sections:
            bad = [c for c in s.checks if not c.passed]
            if not s.passed:
                reasons[s.key] = f"{bad[0].name}: {bad[0].measured}" if bad else "the section made no checks"
        return reasons


def _check_only(only: Sequence[str] | None) -> list[str]:
    """The section keys to run, in report order; a one-line ValueError for an unknown name."""
    if not only:
        return list(SECTIONS)
    unknown = [name for name in only if name not in SECTIONS]
    if unknown:
        hints = "".join(
            f" (did you mean {close[0]!r}?)"
            for name in unknown[:1]
            if (close := difflib.get_close_matches(name, SECTIONS, n=1, cutoff=0.6))
        )
        raise ValueError(
            f"`only` must name lab sections; found unknown {', '.join(map(repr, unknown))}{hints}. "
            f"Choose from: {', '.join(SECTIONS)}."
        )
    return [name for name in SECTIONS if name in set(only)]  # report order, no duplicates


def _install_hint(exc: ImportError) -> str:
    """Which extra of klkit installs the missing module, when klkit knows one."""
    top = (exc.name or "").split(".")[0]
    extra = _EXTRAS.get(top)
    if extra is None:
        return ""
    return f"; install the `{extra}` extra: pip install 'klkit[{extra}]'"


def _cannot_run(key: str, exc: ImportError) -> SectionResult:
    """A failed result for a section whose module, or a module it needs, cannot be imported."""
    missing = f"module {exc.name!r}" if exc.name else "a module"
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return SectionResult(
        key=key,
        title=TITLES.get(key, key),
        claim="",
        how=f"The section could not run: {missing} could not be imported.",
        checks=[Check("the section's modules can be imported", f"{last}{_install_hint(exc)}", False)],
        numbers={"traceback": traceback.format_exc()},
    )


def run_section(key: str, ctx: LabContext) -> SectionResult:
    """Run one section: import ``klkit.lab.sections.<key>`` and call its ``run(ctx)``.

    Raises
    ------
    ImportError
        The section's module, or one it imports, is missing (:func:`run_lab` reports it as a failure).
    TypeError
        ``run`` did not return a :class:`SectionResult`.
    """
    module_name = f"{_PACKAGE}.{key}"
    module = importlib.import_module(module_name)
    result = module.run(ctx)
    if not isinstance(result, SectionResult):
        raise TypeError(f"`{module_name}.run` must return a SectionResult; found {type(result).__name__}")
    return result


def _run_one(key: str, ctx: LabContext) -> SectionResult:
    """:func:`run_section`, with a missing module or a crash turned into a failed result."""
    try:
        return run_section(key, ctx)
    except ImportError as exc:
        return _cannot_run(key, exc)
    except Exception as exc:  # a crashing section is a failed section, the others still run
        return _crashed(key, exc)


def _crashed(key: str, exc: BaseException) -> SectionResult:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return SectionResult(
        key=key,
        title=TITLES.get(key, key),
        claim="",
        how="The section raised an exception before it could finish.",
        checks=[Check("section runs without error", last, False)],
        numbers={"traceback": traceback.format_exc()},
    )


def _json_default(obj: Any) -> Any:
    """numpy/torch scalars and arrays, Paths and Estimates to plain JSON."""
    if hasattr(obj, "standard_error") and hasattr(obj, "value"):
        return {"value": _json_default(obj.value), "standard_error": _json_default(obj.standard_error)}
    if hasattr(obj, "detach"):
        obj = obj.detach().cpu().numpy()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return obj.name
    return str(obj)


def _finite(obj: Any) -> Any:
    """Replace NaN/inf (not valid JSON) by strings, recursively."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _write_json(path: Path, data: dict[str, Any]) -> None:
    plain = json.loads(json.dumps(data, default=_json_default))
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_finite(plain), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _results(sections: list[SectionResult], durations: dict[str, float], meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = dict(meta)
    out["passed"] = all(s.passed for s in sections)
    out["sections"] = {
        s.key: {
            "title": s.title,
            "status": "pass" if s.passed else "fail",
            "claim": s.claim,
            "how": s.how,
            "intuition": s.intuition,
            "example": s.example,
            "captions": dict(s.captions),
            "explorables": len(s.interactive_html),
            "checks": [{"name": c.name, "measured": c.measured, "passed": bool(c.passed)} for c in s.checks],
            "figures": [Path(f).name for f in s.figures],
            "numbers": s.numbers,
            "duration_s": round(durations.get(s.key, 0.0), 3),
        }
        for s in sections
    }
    return out


def _previous_figures(out: Path) -> set[Path]:
    """The figures an earlier run listed in ``out/results.json``: the files the runner owns there.

    Only plain figure files directly inside ``out`` count; a missing or foreign ``results.json`` owns nothing.
    """
    try:
        data = json.loads((out / "results.json").read_text(encoding="utf-8"))
        names = [name for section in data["sections"].values() for name in section["figures"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()
    owned = set()
    for name in names:
        if isinstance(name, str) and name == Path(name).name and Path(name).suffix.lower() in _FIGURE_SUFFIXES:
            path = out / name
            if path.is_file() and not path.is_symlink():
                owned.add(path)
    return owned


def _publish(result: SectionResult, out: Path) -> SectionResult:
    """Move the figures the section listed from its staging folder into ``out`` (replacing same names)."""
    published = []
    for figure in result.figures:
        source = Path(figure)
        target = out / source.name
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)
        published.append(target)
    result.figures = published
    return result


def _remove_stale(previous: set[Path], sections: list[SectionResult]) -> None:
    """Delete the earlier run's figures that this run did not write again."""
    current = {Path(f).resolve() for s in sections for f in s.figures}
    for path in previous:
        if path.resolve() not in current:
            path.unlink(missing_ok=True)


def _progress_display(console: Any, show: bool) -> Any:
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[section]:<14}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        disable=not show,
        transient=False,
    )


def _run_sections(
    keys: list[str], out: Path, staging: Path, *, quick: bool, seed: int, console: Any, show_progress: bool
) -> tuple[list[SectionResult], dict[str, float]]:
    """Run each section with its own staging folder; its listed figures are copied into ``out``."""
    sections: list[SectionResult] = []
    durations: dict[str, float] = {}
    progress = _progress_display(console, show_progress)
    with progress:
        task = progress.add_task("", total=len(keys), section="")
        for key in keys:
            progress.update(task, section=key, description="starting")

            def status(line: str, _task: Any = task) -> None:
                progress.update(_task, description=str(line)[:70])

            folder = staging / key
            folder.mkdir()
            t0 = time.perf_counter()
            result = _run_one(key, LabContext(out_dir=folder, quick=quick, seed=seed, progress=status))
            try:
                result = _publish(result, out)
            except OSError as exc:  # a listed figure that does not exist
                result = _crashed(key, exc)
            durations[key] = time.perf_counter() - t0
            sections.append(result)
            mark, colour = ("PASS", "green") if result.passed else ("FAIL", "red")
            console.print(f"[{colour}]{mark}[/] {key:<14} {durations[key]:6.1f} s  {result.title}", highlight=False)
            progress.advance(task)
        progress.update(task, section="done", description="")
    return sections, durations


def run_lab(
    out_dir: str | os.PathLike[str] = "lab-report",
    *,
    quick: bool = False,
    only: Sequence[str] | None = None,
    seed: int = 0,
    show_progress: bool | None = None,
) -> LabReport:
    """Run the lab's sections and write the report.

    Parameters
    ----------
    out_dir : path, default "lab-report"
        Created if missing; receives ``index.html``, ``results.json`` and the figures. Figures an
        earlier run listed in ``results.json`` and this run did not write are removed; nothing else
        in the folder is touched.
    quick : bool, default False
        Smaller experiments: the whole lab in <= 60 s on 2 cores (full: <= 5 min).
    only : sequence of str, optional
        Run only these sections (names from :data:`klkit.lab.sections.SECTIONS`).
    seed : int, default 0
        Seed passed to every section.
    show_progress : bool, optional
        Draw a rich progress display; default: when stderr is a terminal and ``CI`` is not set.

    Returns
    -------
    LabReport
        The section results, paths and timings; ``report.passed`` is the overall verdict. A section
        that cannot run (a missing module or extra) has failed.

    Raises
    ------
    ValueError
        ``only`` names an unknown section.
    """
    import matplotlib
    from rich.console import Console

    matplotlib.use("Agg")
    keys = _check_only(only)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    if show_progress is None:
        show_progress = console.is_terminal and os.environ.get("CI", "").lower() not in {"1", "true", "yes"}

    started = time.perf_counter()
    previous = _previous_figures(out)
    staging = Path(tempfile.mkdtemp(prefix=".klkit-lab-staging-", dir=out))
    try:
        sections, durations = _run_sections(
            keys, out, staging, quick=quick, seed=seed, console=console, show_progress=show_progress
        )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    left_out = [key for key in SECTIONS if key not in keys]
    meta = {
        "klkit_version": _version(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "seed": seed,
        "only": list(only) if only else None,
        "left_out": left_out,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "duration_s": round(time.perf_counter() - started, 2),
    }
    results_json = out / "results.json"
    _write_json(results_json, _results(sections, durations, meta))

    from klkit.lab.report import write_html

    index = write_html(out / "index.html", sections, durations, meta)
    _remove_stale(previous, sections)
    return LabReport(sections, durations, index, results_json, time.perf_counter() - started, left_out)


def _version() -> str:
    import klkit

    return klkit.__version__
