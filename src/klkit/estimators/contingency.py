"""Contingency tables for discrete mutual information: the non-empty cells, from counts or paired symbols."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from klkit._engine import is_torch_array
from klkit.errors import InvalidDistributionError, ShapeError
from klkit.estimators.checks import check_counts

__all__ = ["Cells", "paired_cells", "table_cells"]


class Cells:
    """Non-empty cells of a contingency table: counts, row index, column index (and whether from real data)."""

    def __init__(self, count: np.ndarray, row: np.ndarray, column: np.ndarray, real_valued: bool = False) -> None:
        self.count, self.row, self.column, self.real_valued = count, row, column, real_valued


def table_cells(counts: Any) -> Cells:
    """The non-empty cells of a 2-D table of counts: dense (numpy, torch) or sparse (scipy, torch).

    Examples
    --------
    >>> cells = table_cells([[3, 0], [1, 2]])
    >>> cells.count.tolist(), cells.row.tolist(), cells.column.tolist()
    ([3, 1, 2], [0, 1, 1], [0, 0, 1])
    """
    if sparse.issparse(counts):
        return _sparse_table(counts)
    if is_torch_array(counts) and str(counts.layout) != "torch.strided":  # a torch sparse table
        counts = counts.to_dense()
    c = counts.detach().cpu().numpy() if is_torch_array(counts) else np.asarray(counts)
    if c.ndim != 2 or 0 in c.shape:
        raise ShapeError(
            f"`counts` must be a non-empty 2-D contingency table (rows: values of X, columns: values "
            f"of Y); found shape {c.shape}. For paired samples pass them as x, y."
        )
    flat = check_counts(c.reshape(-1), "counts")
    table = flat.reshape(c.shape)
    row, column = np.nonzero(table)
    return Cells(table[row, column], row, column)


def _sparse_table(counts: Any) -> Cells:
    """The non-empty cells of a scipy.sparse contingency table (any format; repeated entries add up)."""
    if len(counts.shape) != 2 or 0 in counts.shape:
        raise ShapeError(
            f"`counts` must be a non-empty 2-D contingency table (rows: values of X, columns: values "
            f"of Y); found a sparse matrix of shape {counts.shape}. For paired samples pass them as x, y."
        )
    coo = sparse.coo_array(counts)
    coo.sum_duplicates()
    if coo.nnz == 0:
        raise InvalidDistributionError(
            "`counts` must have a positive total; found a sparse table with no stored counts. Count some samples."
        )
    data = check_counts(coo.data, "counts")
    keep = data > 0
    return Cells(data[keep], coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64))


def _codes(values: Any, name: str, n_expected: int | None) -> tuple[np.ndarray, bool]:
    """Integer codes of the symbols (rows of a 2-D array are symbols) and whether they are real numbers."""
    v = values.detach().cpu().numpy() if is_torch_array(values) else np.asarray(values)
    if v.ndim == 0 or v.ndim > 2 or v.shape[0] == 0:
        raise ShapeError(
            f"`{name}` must be a non-empty 1-D array of symbols (or 2-D, one symbol per row); found "
            f"shape {v.shape}. Reshape it, or pass a contingency table as counts=."
        )
    if n_expected is not None and v.shape[0] != n_expected:
        raise ShapeError(
            f"`x` and `y` must be paired, with the same number of rows; found {n_expected} and "
            f"{v.shape[0]}. Pass one (x, y) pair per row."
        )
    if v.dtype.kind == "f" and np.isnan(v).any():
        raise InvalidDistributionError(
            f"`{name}` must not contain NaN (NaN is not a symbol: NaN != NaN); found "
            f"{int(np.isnan(v).sum())}. Drop those pairs or map NaN to a symbol."
        )
    _, inverse = np.unique(v, axis=0 if v.ndim == 2 else None, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), v.dtype.kind in "fc"


def paired_cells(x: Any, y: Any) -> Cells:
    """The non-empty cells of the table of paired symbols (rows of a 2-D array are symbols)."""
    cx, real_x = _codes(x, "x", None)
    cy, real_y = _codes(y, "y", cx.size)
    joint, count = np.unique(cx * (int(cy.max()) + 1) + cy, return_counts=True)
    return Cells(count, joint // (int(cy.max()) + 1), joint % (int(cy.max()) + 1), real_x or real_y)
