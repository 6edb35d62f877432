r"""Forward vs reverse KL: fit an approximating family :math:`q` to a target distribution :math:`p`.

- **Forward** KL(p‖q) = E_p[log p − log q] = −H(p) + E_p[−log q]: minimising it over :math:`q` is
  maximum likelihood, because E_p[log p] does not depend on q; for a single Gaussian the optimum is
  the target's mean and covariance. The result is *mean-seeking* (mass-covering): q spreads over
  every mode of p.
- **Reverse** KL(q‖p) = E_q[log q − log p] needs the target's log-density at points drawn from q;
  it is minimised with reparameterised gradients. The result is *mode-seeking*: q settles on one
  mode, and which one depends on the start, hence several restarts.

Everything here is torch (``torch.distributions`` in, ``torch.distributions`` out). Modules:
``api`` (:func:`fit`, :func:`mass_covered`, the results), ``forward`` (moments and EM), ``reverse``
(gradient fits), ``family`` (building q), ``options`` (argument checks).
"""

from klkit.fitting.api import FitResult, Restart, fit, mass_covered

__all__ = ["FitResult", "Restart", "fit", "mass_covered"]
