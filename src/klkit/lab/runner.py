"""Run the lab's sections, show progress on the terminal, write ``results.json`` and ``index.html``."""

from __future__ import annotations

import importlib
import json
import math
import os
import platform
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from klkit.lab.base import Check, LabContext, SectionResult
from klkit.lab.sections import SECTIONS, TITLES

__all__ = ["LabReport", "run_lab", "run_section"]

_PACKAGE = "klkit.lab.sections"


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
    passed : bool
        True when every *available* section passed (unavailable ones count as neither).
    """

    sections: list[SectionResult]
    durations: dict[str, float]
    index_html: Path
    results_json: Path
    duration_s: float

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.sections if s.available)

    @property
    def failed(self) -> list[str]:
        """Keys of the available sections that did not pass."""
        return [s.key for s in self.sections if s.available and not s.passed]

    @property
    def unavailable(self) -> list[str]:
        return [s.key for s in self.sections if not s.available]


def _check_only(only: Sequence[str] | None) -> list[str]:
    if not only:
        return list(SECTIONS)
    unknown = [name for name in only if name not in SECTIONS]
    if unknown:
        raise ValueError(
            f"`only` must name lab sections; found unknown {', '.join(map(repr, unknown))}. "
            f"Choose from: {', '.join(SECTIONS)}."
        )
    return [name for name in SECTIONS if name in set(only)]  # report order, no duplicates


def _unavailable(key: str, reason: str) -> SectionResult:
    return SectionResult(
        key=key,
        title=TITLES.get(key, key),
        claim="",
        how=reason,
        checks=[],
        available=False,
    )


def run_section(key: str, ctx: LabContext) -> SectionResult:
    """Run one section; a missing module gives an unavailable result, a crash a failed one."""
    module_name = f"{_PACKAGE}.{key}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:  # the section exists but one of its imports is missing: a failure
            raise
        return _unavailable(key, f"Not yet available: module `{module_name}` is not written yet.")
    result = module.run(ctx)
    if not isinstance(result, SectionResult):
        raise TypeError(f"`{module_name}.run` must return a SectionResult; found {type(result).__name__}")
    return result


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
    out["passed"] = all(s.passed for s in sections if s.available)
    out["sections"] = {
        s.key: {
            "title": s.title,
            "status": "unavailable" if not s.available else ("pass" if s.passed else "fail"),
            "claim": s.claim,
            "how": s.how,
            "checks": [{"name": c.name, "measured": c.measured, "passed": bool(c.passed)} for c in s.checks],
            "figures": [Path(f).name for f in s.figures],
            "numbers": s.numbers,
            "duration_s": round(durations.get(s.key, 0.0), 3),
        }
        for s in sections
    }
    return out


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
        Created if missing; receives ``index.html``, ``results.json`` and the figures.
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
        The section results, paths and timings; ``report.passed`` is the overall verdict.

    Raises
    ------
    ValueError
        ``only`` names an unknown section.
    """
    import matplotlib
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    matplotlib.use("Agg")
    keys = _check_only(only)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    if show_progress is None:
        show_progress = console.is_terminal and os.environ.get("CI", "").lower() not in {"1", "true", "yes"}

    started = time.perf_counter()
    sections: list[SectionResult] = []
    durations: dict[str, float] = {}
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[section]:<14}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        disable=not show_progress,
        transient=False,
    )
    with progress:
        task = progress.add_task("", total=len(keys), section="")
        for key in keys:
            progress.update(task, section=key, description="starting")

            def status(line: str, _task: Any = task) -> None:
                progress.update(_task, description=str(line)[:70])

            ctx = LabContext(out_dir=out, quick=quick, seed=seed, progress=status)
            t0 = time.perf_counter()
            try:
                result = run_section(key, ctx)
            except Exception as exc:  # a crashing section is a failed section, the others still run
                result = _crashed(key, exc)
            durations[key] = time.perf_counter() - t0
            sections.append(result)
            mark = "n/a " if not result.available else ("PASS" if result.passed else "FAIL")
            colour = {"PASS": "green", "FAIL": "red"}.get(mark, "yellow")
            console.print(f"[{colour}]{mark}[/] {key:<14} {durations[key]:6.1f} s  {result.title}", highlight=False)
            progress.advance(task)
        progress.update(task, section="done", description="")

    meta = {
        "klkit_version": _version(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "seed": seed,
        "only": list(only) if only else None,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "duration_s": round(time.perf_counter() - started, 2),
    }
    results_json = out / "results.json"
    _write_json(results_json, _results(sections, durations, meta))

    from klkit.lab.report import write_html

    index = write_html(out / "index.html", sections, durations, meta)
    return LabReport(sections, durations, index, results_json, time.perf_counter() - started)


def _version() -> str:
    import klkit

    return klkit.__version__
