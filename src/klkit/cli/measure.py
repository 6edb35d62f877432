"""``klkit measure``: the lesson's numbers for a pair of distributions P and Q, and KL's relatives.

The typer command is a thin wrapper: it parses ``--p``/``--q`` (or reads
``--p-file``/``--q-file``) and calls :func:`measure_report`, a plain typed function
that tests call directly, then prints the report as a table or as JSON.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from klkit._engine import check_kind
from klkit.cli._errors import OneLineUsageCommand, one_line_errors
from klkit.divergences import hellinger_distance, js_distance, total_variation
from klkit.measures import cross_entropy, entropy, js_divergence, kl_divergence, normalize
from klkit.renyi import renyi_divergence

__all__ = [
    "format_json",
    "load_vector",
    "measure_report",
    "normalize_counts",
    "parse_alpha",
    "parse_base",
    "parse_vector",
    "read_distribution",
]

_CHECK_RTOL = 1e-12  # the identity H(P,Q) = H(P) + KL(P‖Q) "holds" within this relative gap


# ---------------------------------------------------------------------------
# Plain functions (tested directly)
# ---------------------------------------------------------------------------


def measure_report(
    p: Any, q: Any, *, base: float | None = None, kind: str = "probs", q_kind: str | None = None, alpha: float = 2.0
) -> dict[str, Any]:
    r"""Entropy of each, cross-entropy and KL both ways, JS, and the check :math:`H(P,Q) = H(P) + KL(P\|Q)`;
    beside them total variation, Hellinger and JS distance, and the Rényi divergence of order α both ways.

    Every number comes from :mod:`klkit.measures` (with validation on), each computed
    on its own: the check compares two independently computed sides.

    Parameters
    ----------
    p, q : array_like
        One distribution each (1-D, the same number of outcomes), of kind ``kind`` and
        ``q_kind``.
    base : float, optional
        None for nats, 2 for bits, any ``b > 0, b != 1``.
    kind : {'probs', 'log_probs', 'logits'}, default 'probs'
        What ``p`` holds.
    q_kind : {'probs', 'log_probs', 'logits'}, optional
        What ``q`` holds; defaults to ``kind``.
    alpha : float, default 2
        The order of the Rényi divergences, ``0 <= alpha <= inf``.

    Returns
    -------
    dict
        ``unit``, ``base``, ``kind``, ``q_kind``, ``p``, ``q`` (as given), ``entropy_p``,
        ``entropy_q``, ``cross_entropy_pq`` (H(P,Q)), ``cross_entropy_qp`` (H(Q,P)),
        ``kl_pq`` (KL(P‖Q)), ``kl_qp`` (KL(Q‖P)), ``js`` and ``check`` =
        ``{cross_entropy, entropy_plus_kl, difference, holds}``; ``difference`` is
        ``H(P,Q) − (H(P) + KL(P‖Q))``, None when both sides are ``+inf``. Then
        ``total_variation`` and ``hellinger`` (no unit, in [0, 1]), ``js_distance`` (√JS in
        ``base``), ``alpha``, ``renyi_pq`` (D_α(P‖Q)) and ``renyi_qp`` (D_α(Q‖P)).

    Raises
    ------
    ValueError
        ``p`` or ``q`` not 1-D, of different lengths, or not valid distributions of their
        kind; a bad ``base``, ``kind`` or ``alpha`` (the messages of :mod:`klkit.measures`).

    Examples
    --------
    >>> r = measure_report([0.5, 0.5], [0.9, 0.1], base=2)
    >>> r["entropy_p"], round(r["kl_pq"], 6), r["check"]["holds"]
    (1.0, 0.736966, True)
    """
    P = _as_vector(p, "p")
    Q = _as_vector(q, "q")
    if P.shape != Q.shape:
        raise ValueError(
            f"`p` and `q` must have the same number of outcomes; found {P.size} and {Q.size}. "
            "List one probability per outcome for both."
        )
    kind = check_kind(kind, "kind")
    q_kind = kind if q_kind is None else check_kind(q_kind, "q_kind")
    opts_pq = {"base": base, "kind": kind, "q_kind": q_kind}
    opts_qp = {"base": base, "kind": q_kind, "q_kind": kind}
    kl_pq = float(kl_divergence(P, Q, **opts_pq))  # first: its errors name `p` and `q` correctly
    kl_qp = float(kl_divergence(Q, P, **opts_qp))
    h_p = float(entropy(P, base=base, kind=kind))
    h_q = float(entropy(Q, base=base, kind=q_kind))
    ce_pq = float(cross_entropy(P, Q, **opts_pq))
    ce_qp = float(cross_entropy(Q, P, **opts_qp))
    js = float(js_divergence(P, Q, **opts_pq))
    relatives = {"kind": kind, "q_kind": q_kind}
    tv = float(total_variation(P, Q, **relatives))
    hellinger = float(hellinger_distance(P, Q, **relatives))
    js_dist = float(js_distance(P, Q, **opts_pq))
    renyi_pq = float(renyi_divergence(P, Q, alpha, **opts_pq))
    renyi_qp = float(renyi_divergence(Q, P, alpha, **opts_qp))
    rhs = h_p + kl_pq
    if math.isinf(ce_pq) and math.isinf(rhs):
        difference, holds = None, ce_pq == rhs
    else:
        difference = ce_pq - rhs
        holds = abs(difference) <= _CHECK_RTOL * max(1.0, abs(ce_pq))
    return {
        "unit": _unit(base),
        "base": base,
        "kind": kind,
        "q_kind": q_kind,
        "p": P.tolist(),
        "q": Q.tolist(),
        "entropy_p": h_p,
        "entropy_q": h_q,
        "cross_entropy_pq": ce_pq,
        "cross_entropy_qp": ce_qp,
        "kl_pq": kl_pq,
        "kl_qp": kl_qp,
        "js": js,
        "check": {"cross_entropy": ce_pq, "entropy_plus_kl": rhs, "difference": difference, "holds": holds},
        "total_variation": tv,
        "hellinger": hellinger,
        "js_distance": js_dist,
        "alpha": float(alpha),
        "renyi_pq": renyi_pq,
        "renyi_qp": renyi_qp,
    }


def parse_vector(text: str, option: str) -> np.ndarray:
    """Parse comma-separated numbers (``"0.5,0.5"``) into a float64 vector.

    Examples
    --------
    >>> parse_vector("0.25, 0.75", "--p").tolist()
    [0.25, 0.75]
    """
    items = [item.strip() for item in text.split(",")]
    values = []
    for item in items:
        try:
            values.append(float(item))
        except ValueError:
            raise ValueError(
                f"`{option}` must be comma-separated numbers; found {item!r} in {text!r}. Write e.g. {option} 0.5,0.5."
            ) from None
    return np.asarray(values, dtype=np.float64)


def load_vector(path: Path, option: str) -> np.ndarray:
    """Read one distribution from a ``.npy`` or ``.csv`` file (one row or one column of numbers)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise ValueError(
            f"`{option}` must be a .npy or .csv file; found {str(path)!r}. Save the vector with "
            "numpy.save or as comma-separated numbers."
        )
    if not path.is_file():
        raise ValueError(f"`{option}` must name an existing file; found no file at {str(path)!r}. Check the path.")
    try:
        if suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        else:
            data = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=1)
    except (ValueError, OSError, EOFError) as exc:
        detail = re.sub(r"\s+", " ", str(exc)).strip().rstrip(".")
        raise ValueError(
            f"`{option}` could not be read as {'a numpy array' if suffix == '.npy' else 'CSV numbers'} "
            f"from {str(path)!r}: {detail}. Write one distribution as numbers."
        ) from None
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise ValueError(
            f"`{option}` must hold real numbers; found dtype {data.dtype} in {str(path)!r}. Save a float array."
        )
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 2 and 1 in data.shape:  # one row or one column
        data = data.reshape(-1)
    return data


def read_distribution(values: str | None, file: Path | None, name: str) -> np.ndarray:
    """The vector given by ``--NAME`` or ``--NAME-file``: exactly one of the two."""
    if (values is None) == (file is None):
        found = "both" if values is not None else "neither"
        raise ValueError(
            f"give exactly one of `--{name}` and `--{name}-file`; found {found}. "
            f"Write e.g. --{name} 0.5,0.5 or --{name}-file {name}.npy."
        )
    return parse_vector(values, f"--{name}") if values is not None else load_vector(file, f"--{name}-file")


def normalize_counts(x: np.ndarray, option: str) -> np.ndarray:
    """``x / x.sum()`` for ``--normalize``: counts or weights (finite, >= 0, positive sum) as probabilities.

    Examples
    --------
    >>> normalize_counts(np.array([1.0, 3.0]), "--p").tolist()
    [0.25, 0.75]
    """
    if not (np.all(np.isfinite(x)) and np.all(x >= 0) and x.sum() > 0):
        raise ValueError(
            f"`{option}` with `--normalize` must hold counts or weights: finite, >= 0, with a positive sum; "
            f"found {x.tolist()}. Drop --normalize for log-probabilities or logits (use --kind)."
        )
    return normalize(x)


def parse_base(text: str | None) -> float | None:
    """``None``/``"e"`` → nats (None); a number otherwise (checked by klkit)."""
    if text is None or text.strip().lower() in ("e", "nats", "none"):
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(
            f"`--base` must be a number > 0 other than 1 (2 for bits) or 'e'; found {text!r}. Write e.g. --base 2."
        ) from None


def parse_alpha(text: str) -> float:
    """A number, or ``"inf"``, for the Rényi order (its range is checked by klkit).

    Examples
    --------
    >>> parse_alpha("0.5"), parse_alpha("inf")
    (0.5, inf)
    """
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"`--alpha` must be a number >= 0 or 'inf'; found {text!r}. Write e.g. --alpha 2.") from None


def format_json(report: dict[str, Any]) -> str:
    """Strict JSON (no ``Infinity``/``NaN`` tokens): non-finite numbers become the strings ``"inf"``, ``"nan"``."""
    return json.dumps(_json_safe(report), indent=2, allow_nan=False)


# ---------------------------------------------------------------------------
# The command (thin wrapper)
# ---------------------------------------------------------------------------


@one_line_errors
def measure_command(
    p: Annotated[str | None, typer.Option("--p", help="P as comma-separated numbers, e.g. 0.5,0.5.")] = None,
    q: Annotated[str | None, typer.Option("--q", help="Q as comma-separated numbers, e.g. 0.9,0.1.")] = None,
    p_file: Annotated[Path | None, typer.Option("--p-file", help="Read P from a .npy or .csv file.")] = None,
    q_file: Annotated[Path | None, typer.Option("--q-file", help="Read Q from a .npy or .csv file.")] = None,
    base: Annotated[str | None, typer.Option("--base", help="Log base: 2 for bits; nats by default.")] = None,
    kind: Annotated[str, typer.Option("--kind", help="What P holds: probs, log_probs or logits.")] = "probs",
    q_kind: Annotated[str | None, typer.Option("--q-kind", help="What Q holds; defaults to --kind.")] = None,
    alpha: Annotated[str, typer.Option("--alpha", help="Order of the Rényi divergences: a number >= 0 or inf.")] = "2",
    normalize: Annotated[
        bool, typer.Option("--normalize", help="Divide P and Q by their sums first (for counts or weights).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")] = False,
) -> None:
    """Entropy of P and Q, cross-entropy and KL both ways, JS, and the check H(P,Q) = H(P) + KL(P‖Q);
    total variation, Hellinger and JS distance, and the Rényi divergence of order --alpha both ways.

    Example: klkit measure --p 0.5,0.5 --q 0.9,0.1 --base 2 --alpha 0.5
    """
    P, Q = read_distribution(p, p_file, "p"), read_distribution(q, q_file, "q")
    if normalize:
        P, Q = normalize_counts(P, "--p"), normalize_counts(Q, "--q")
    report = measure_report(
        P,
        Q,
        base=parse_base(base),
        kind=kind,
        q_kind=q_kind,
        alpha=parse_alpha(alpha),
    )
    if as_json:
        typer.echo(format_json(report))
    else:
        _print_table(report)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _as_vector(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(
            f"`{name}` must be one distribution (a 1-D vector); found shape {arr.shape}. "
            "Pass one row, or use the Python API for batches."
        )
    return arr


def _unit(base: float | None) -> str:
    if base is None:
        return "nats"
    if base == 2:
        return "bits"
    return f"log base {base:g}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    return value


def _order(alpha: float) -> str:
    return "∞" if math.isinf(alpha) else f"{alpha:g}"


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.6f}" if math.isfinite(value) else str(value)


def _print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"P = {report['p']} ({report['kind']}), Q = {report['q']} ({report['q_kind']})")
    table.add_column("measure")
    table.add_column(f"value ({report['unit']})", justify="right")
    order = _order(report["alpha"])
    rows = [
        ("entropy H(P)", "entropy_p"),
        ("entropy H(Q)", "entropy_q"),
        ("cross-entropy H(P,Q)", "cross_entropy_pq"),
        ("cross-entropy H(Q,P)", "cross_entropy_qp"),
        ("KL(P‖Q)", "kl_pq"),
        ("KL(Q‖P)", "kl_qp"),
        ("JS(P,Q)", "js"),
        (f"Rényi D_{order}(P‖Q)", "renyi_pq"),
        (f"Rényi D_{order}(Q‖P)", "renyi_qp"),
        (f"JS distance √JS(P,Q) (√{report['unit']})", "js_distance"),
        ("total variation TV(P,Q) (no unit)", "total_variation"),
        ("Hellinger H(P,Q) (no unit)", "hellinger"),
    ]
    for label, key in rows:
        table.add_row(label, _number(report[key]))
    check = report["check"]
    console = Console(highlight=False, soft_wrap=True)
    console.print(table)
    difference = "undefined (both sides +inf)" if check["difference"] is None else f"{check['difference']:.3e}"
    console.print(
        f"check H(P,Q) = H(P) + KL(P‖Q): {_number(check['cross_entropy'])} = {_number(report['entropy_p'])} + "
        f"{_number(report['kl_pq'])} = {_number(check['entropy_plus_kl'])}; difference {difference} "
        f"({'holds' if check['holds'] else 'DOES NOT HOLD'})",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``klkit measure`` to ``app`` (the ``klkit`` application)."""
    app.command("measure", cls=OneLineUsageCommand)(measure_command)
