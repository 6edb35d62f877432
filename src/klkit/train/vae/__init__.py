r"""A variational autoencoder whose KL term is klkit's closed form.

The evidence lower bound (Kingma & Welling, 2014) of an image :math:`x` is

.. math::

    \mathrm{ELBO}(x) = \mathbb{E}_{q(z|x)}[\log p(x|z)] - \mathrm{KL}(q(z|x) \,\|\, p(z)) \le \log p(x),

with encoder :math:`q(z|x) = \mathcal{N}(\mu(x), \operatorname{diag}\sigma^2(x))`, prior
:math:`p(z) = \mathcal{N}(0, I)` and a Bernoulli (binarised images) or Gaussian (continuous
data) decoder :math:`p(x|z)`. The KL term is
:func:`klkit.distributions.gaussian_kl_standard_normal`, one value per latent dimension, so
the β weight, the linear warm-up and free bits act on it directly.

With ``samples = k > 1`` the objective is the importance-weighted bound (IWAE, Burda et al.,
2016) :math:`\mathcal{L}_k = \mathbb{E}[\log \frac1k \sum_i w_i]`,
:math:`w_i = p(x|z_i)\,p(z_i)/q(z_i|x)`, written as the ELBO (closed-form KL) plus the
non-negative gap :math:`\log \frac1k\sum_i w_i - \frac1k\sum_i \log w_i`; its expectation is
exactly :math:`\mathcal{L}_k` and for ``k = 1`` the gap is 0. Evaluation estimates
:math:`\log p(x)` with the same bound and ``k = 1000``.

Run it with :func:`train` / :func:`evaluate`, the CLI ``klkit train vae`` / ``klkit eval vae``,
or data-parallel with ``torchrun --nproc_per_node=N -m klkit.train.vae --run-dir DIR [options]``.

Layout, one job per module, in the order a run uses them:

- :mod:`~klkit.train.vae.config` — :class:`Config`, everything a run depends on;
- :mod:`~klkit.train.vae.data` — split, fixed test binarisation, augmentation, noise;
- :mod:`~klkit.train.vae.model` — the :class:`VAE` (encoder, decoder);
- :mod:`~klkit.train.vae.loss` — :func:`objective` (ELBO / IWAE, closed-form KL), :func:`kl_weight_at`;
- :mod:`~klkit.train.vae.step` — one training step and the loop body shared with ``benchmarks/vae.py``;
- :mod:`~klkit.train.vae.loop` — :func:`train`: epochs, validation, checkpoints, DDP;
- :mod:`~klkit.train.vae.rundir` — ``config.json``, ``checkpoint.pt``, ``model.pt``, :func:`load_model`;
- :mod:`~klkit.train.vae.evaluation` — importance-sampled NLL, active units, :func:`evaluate`;
- :mod:`~klkit.train.vae.figures` — the figures :func:`evaluate` writes;
- ``__main__`` — the ``python -m`` / ``torchrun -m`` entry point.

The names below are imported from those modules on first use, not when the package is imported:
``python -m klkit.train.vae`` must set ``OMP_WAIT_POLICY`` before torch loads (see ``__main__``).

References
----------
D. P. Kingma, M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014.
Y. Burda, R. Grosse, R. Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016.
C. K. Sønderby et al., "Ladder Variational Autoencoders", NeurIPS 2016 (KL warm-up).
D. P. Kingma et al., "Improved Variational Inference with Inverse Autoregressive Flow", NeurIPS 2016 (free bits).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "VAE",
    "Config",
    "Terms",
    "TrainingDivergedError",
    "evaluate",
    "load_model",
    "objective",
    "plot_kl_per_dim",
    "plot_training_curve",
    "train",
    "train_step",
]

# Each public name and the module that defines it.
_HOMES = {
    "config": ["Config"],
    "data": ["TEST_BINARIZATION_SEED", "binarize", "fixed_test_images", "random_shift", "standard_normal"],
    "model": ["VAE"],
    "loss": ["Terms", "kl_weight_at", "objective"],
    "step": ["train_step"],
    "loop": ["TrainingDivergedError", "train"],
    "rundir": ["CHECKPOINT", "MODEL", "load_model", "weights_digest"],
    "evaluation": [
        "ACTIVE_UNIT_THRESHOLD",
        "active_units",
        "batch_statistics",
        "evaluate",
        "kl_closed_vs_monte_carlo",
        "log_likelihood_bound",
        "posterior_mean_variance",
        "statistics_sums",
    ],
    "figures": ["plot_kl_per_dim", "plot_training_curve", "write_figures"],
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}
_HOME.update({"Images": "klkit.train.data", "load_images": "klkit.train.data"})  # re-exported, as before


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` (first use only; the value is then cached here)."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    home = _HOME[name]
    module = importlib.import_module(home if "." in home else f"{__name__}.{home}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})
