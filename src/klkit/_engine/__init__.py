"""The engine behind klkit's array measures: one front door, a named internal API.

Every module outside this package imports from here (``from klkit._engine import namespace``),
never from a module inside it. The modules, each with one job:

- :mod:`~klkit._engine.arrays`: the one array layer (array-api-compat): namespace, dtype policy,
  conversions, the gradient-keeping clamp;
- :mod:`~klkit._engine.checks`: argument and value checks with messages that name the fix;
- :mod:`~klkit._engine.prepare`: sizes that pick a path, value checks, each kind's ``(log p, p)``;
- :mod:`~klkit._engine.inputs`: the same preparation for the relatives (Rényi, f-divergences, MI);
- :mod:`~klkit._engine.door`: :func:`reduce_measure`, which prepares once and picks one path;
- paths: :mod:`~klkit._engine.numpy_path` (numba kernels in :mod:`~klkit._engine.kernels` and
  :mod:`~klkit._engine.kernels_logits`), :mod:`~klkit._engine.torch_tiles` (torch without autograd),
  :mod:`~klkit._engine.torch_autograd` (logits under autograd; fused Functions in
  :mod:`~klkit._engine.fused_measures` on the tiles of :mod:`~klkit._engine.fused_tiles`),
  :mod:`~klkit._engine.generic` (any array-API library; the reference);
- :mod:`~klkit._engine.finish`: base, clamp to the bounds, output dtype;
- :mod:`~klkit._engine.dispatch`: the hook through which distribution objects are handed to the
  package that registered them;
- :mod:`~klkit._engine.loss_checks`, :mod:`~klkit._engine.loss_paths`, :mod:`~klkit._engine.loss_fast`
  and :mod:`~klkit._engine.fused_loss`: the cross-entropy loss;
- :mod:`~klkit._engine.support`: the support rule (p > 0 in the working dtype) of every path;
- :mod:`~klkit._engine.threads`: the kernels' thread count and pool.

The torch-only names (the fused Functions and ``TILE_ELEMENTS``) import torch on first use.
"""

from __future__ import annotations

from typing import Any

from klkit._engine.arrays import (
    NUMPY,
    asarray,
    clamp_keep_gradient,
    compute_dtype,
    dtype_name,
    errstate,
    is_half,
    is_numpy,
    is_torch,
    is_torch_array,
    log_of_base,
    logsumexp,
    namespace,
    to_numpy,
)
from klkit._engine.checks import (
    CHECKS,
    Kind,
    broadcast_shape,
    check_axis,
    check_base,
    check_entries,
    check_kind,
    check_log_probs,
    check_logits,
    check_not_empty,
    check_probs,
    check_streaming,
    check_sums,
    check_validate,
    describe_entries,
    sum_tolerance,
)
from klkit._engine.dispatch import (
    accepts_measure_objects,
    is_measure_object,
    measure_objects,
    register_object_measures,
)
from klkit._engine.door import reduce_measure
from klkit._engine.finish import LOG2, clamp_to_bounds, in_base, js_bound, to_output_dtype
from klkit._engine.generic import chunk_budget, generic_path
from klkit._engine.inputs import (
    F_NAMES,
    FName,
    Inputs,
    check_alpha,
    check_f,
    check_f_at_one,
    f_values,
    finish_result,
    invalid_slices,
    prepare_one,
    prepare_pair,
    unknown_slope,
)
from klkit._engine.jensen_shannon import js_term
from klkit._engine.kernels import probs_rows, probs_rows_small
from klkit._engine.kernels_logits import logits_rows
from klkit._engine.loss_checks import (
    check_loss_options,
    check_loss_target_shape,
    check_loss_weight,
    loss_logits,
    loss_namespace,
    loss_target_kind,
)
from klkit._engine.loss_fast import small_index_loss
from klkit._engine.loss_paths import generic_loss_path, torch_loss_path
from klkit._engine.numpy_path import KERNEL_MODES
from klkit._engine.prepare import (
    CHUNK_BYTES,
    CHUNK_MIN,
    FAST_MIN,
    Measure,
    check_values,
    check_weights,
    invalid_logits,
    log_and_prob,
    log_softmax,
    logits_normaliser,
    out_of_domain,
    safe_log,
    under_autograd,
)
from klkit._engine.threads import ENV_VAR as NUM_THREADS_ENV_VAR
from klkit._engine.threads import get_num_threads, parallel_map, set_num_threads
from klkit._engine.torch_autograd import FUSED_MIN
from klkit._engine.torch_tiles import TORCH_TILES

# torch-only names: module → names, imported on first access (PEP 562)
_TORCH_NAMES = {
    "fused_tiles": ("TILE_ELEMENTS",),
    "fused_measures": ("logits_cross_entropy_soft", "logits_entropy", "logits_kl"),
    "fused_loss": ("logits_cross_entropy",),
}
_LAZY = {name: module for module, names in _TORCH_NAMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CHECKS",
    "CHUNK_BYTES",
    "CHUNK_MIN",
    "FAST_MIN",
    "FUSED_MIN",
    "F_NAMES",
    "KERNEL_MODES",
    "LOG2",
    "NUMPY",
    "NUM_THREADS_ENV_VAR",
    "TILE_ELEMENTS",
    "TORCH_TILES",
    "FName",
    "Inputs",
    "Kind",
    "Measure",
    "accepts_measure_objects",
    "asarray",
    "broadcast_shape",
    "check_alpha",
    "check_axis",
    "check_base",
    "check_entries",
    "check_f",
    "check_f_at_one",
    "check_kind",
    "check_log_probs",
    "check_logits",
    "check_loss_options",
    "check_loss_target_shape",
    "check_loss_weight",
    "check_not_empty",
    "check_probs",
    "check_streaming",
    "check_sums",
    "check_validate",
    "check_values",
    "check_weights",
    "chunk_budget",
    "clamp_keep_gradient",
    "clamp_to_bounds",
    "compute_dtype",
    "describe_entries",
    "dtype_name",
    "errstate",
    "f_values",
    "finish_result",
    "generic_loss_path",
    "generic_path",
    "get_num_threads",
    "in_base",
    "invalid_logits",
    "invalid_slices",
    "is_half",
    "is_measure_object",
    "is_numpy",
    "is_torch",
    "is_torch_array",
    "js_bound",
    "js_term",
    "log_and_prob",
    "log_of_base",
    "log_softmax",
    "logits_cross_entropy",
    "logits_cross_entropy_soft",
    "logits_entropy",
    "logits_kl",
    "logits_normaliser",
    "logits_rows",
    "logsumexp",
    "loss_logits",
    "loss_namespace",
    "loss_target_kind",
    "measure_objects",
    "namespace",
    "out_of_domain",
    "parallel_map",
    "prepare_one",
    "prepare_pair",
    "probs_rows",
    "probs_rows_small",
    "reduce_measure",
    "register_object_measures",
    "safe_log",
    "set_num_threads",
    "small_index_loss",
    "sum_tolerance",
    "to_numpy",
    "to_output_dtype",
    "torch_loss_path",
    "under_autograd",
    "unknown_slope",
]
