"""``klkit pairs``: the closed forms klkit knows (KL pairs and entropies)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from klkit.cli._errors import one_line_errors

__all__ = ["pairs_table"]


def pairs_table() -> dict[str, Any]:
    """Registered KL pairs (with whether each is a finite formula or an explicit +inf) and entropies.

    Returns
    -------
    dict
        ``pairs``: list of ``{"p", "q", "finite", "function", "in_torch"}`` (``in_torch``: whether
        ``torch.distributions.kl`` has the pair too, None without torch); ``entropies``: family names;
        ``finite_pairs``, ``infinite_pairs``: counts.

    Examples
    --------
    >>> from klkit.cli.pairs import pairs_table
    >>> table = pairs_table()
    >>> table["finite_pairs"] >= 61
    True
    """
    from klkit.distributions import pair_table, registered_entropies

    torch_pairs = _torch_pairs()
    rows = [
        {
            "p": r.p.__name__,
            "q": r.q.__name__,
            "finite": r.finite,
            "function": r.function.__name__,
            "in_torch": None
            if torch_pairs is None
            else (_TORCH_NAME.get(r.p.__name__, r.p.__name__), _TORCH_NAME.get(r.q.__name__, r.q.__name__))
            in torch_pairs,
        }
        for r in pair_table()
    ]
    finite = sum(r["finite"] for r in rows)
    return {
        "pairs": rows,
        "entropies": [t.__name__ for t in registered_entropies()],
        "finite_pairs": finite,
        "infinite_pairs": len(rows) - finite,
    }


_TORCH_NAME = {"Transformed": "TransformedDistribution", "TorchExponentialFamily": "ExponentialFamily"}


def _torch_pairs() -> set[tuple[str, str]] | None:
    """Names of the pairs ``torch.distributions.kl`` registers (None without torch)."""
    try:
        from torch.distributions import kl
    except ImportError:
        return None
    return {(p.__name__, q.__name__) for p, q in kl._KL_REGISTRY}


@one_line_errors
def pairs_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
    finite_only: Annotated[bool, typer.Option("--finite", help="Only the finite closed forms.")] = False,
) -> None:
    """List the KL(p‖q) pairs with a closed form (torch and scipy objects) and the closed-form entropies."""
    table = pairs_table()
    if finite_only:
        table["pairs"] = [r for r in table["pairs"] if r["finite"]]
    if as_json:
        typer.echo(json.dumps(table, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    out = Table(
        title=f"KL(p‖q) closed forms: {table['finite_pairs']} finite, "
        f"{table['infinite_pairs']} +inf (supports that never nest)"
    )
    out.add_column("p")
    out.add_column("q")
    out.add_column("KL")
    out.add_column("torch has it")
    for r in table["pairs"]:
        torch_has = {True: "yes", False: "no (klkit only)", None: "?"}[r["in_torch"]]
        out.add_row(r["p"], r["q"], "formula" if r["finite"] else "+inf", torch_has)
    console = Console()
    console.print(out)
    console.print(f"Closed-form entropy ({len(table['entropies'])}): {', '.join(table['entropies'])}")


def register(app: typer.Typer) -> None:
    """Add ``klkit pairs`` to ``app`` (the ``klkit`` application)."""
    app.command("pairs")(pairs_command)
