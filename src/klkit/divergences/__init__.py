"""KL's relatives on arrays: total variation, Hellinger distance, Jensen–Shannon distance, f-divergences.

The bounds that tie them to KL (natural logarithms, :math:`H^2 = 1 - \\sum_i\\sqrt{p_i q_i}`):

* Pinsker: :math:`TV \\le \\sqrt{KL/2}`; Bretagnolle–Huber: :math:`TV \\le \\sqrt{1 - e^{-KL}}`;
* :math:`H^2 \\le TV \\le H\\sqrt{2 - H^2}`;
* :math:`2H^2 \\le D_{1/2} = -2\\log(1 - H^2) \\le KL` (Rényi divergence of order ½, :mod:`klkit.renyi`).
"""

from klkit.divergences.distances import hellinger_distance, js_distance, total_variation
from klkit.divergences.f_divergences import f_divergence

__all__ = ["f_divergence", "hellinger_distance", "js_distance", "total_variation"]
