"""Closed-form KL of von Mises laws on the circle."""

from __future__ import annotations

from typing import Any

import numpy as np

from klkit.distributions import families as fam
from klkit.distributions.registry import register_kl
from klkit.errors import NotRegisteredError

__all__ = []


@register_kl(fam.VonMises, fam.VonMises)
def _kl_vonmises_vonmises(p: fam.VonMises, q: fam.VonMises) -> Any:
    """A(κp)(κp − κq cos((μp − μq)/s)) + log I0(κq) − log I0(κp), A = I1/I0 (scaled Bessel functions).

    Both laws on one circle (the same scale s); circles of different circumference have no common
    density, so that pair raises :class:`~klkit.errors.NotRegisteredError`.
    """
    xp = p.xp
    if not np.all(np.asarray(p.scale) == np.asarray(q.scale)):
        raise NotRegisteredError(
            f"KL of von Mises laws on circles of different circumference (scale {p.scale} and {q.scale}) has "
            "no closed form, and scipy's samples of a scaled von Mises are wrapped into [−π, π], so Monte "
            "Carlo is refused too. Rescale both variables to one scale."
        )
    kp, kq = p.concentration, q.concentration
    a = xp.i1e(kp) / xp.i0e(kp)
    angle = (p.loc - q.loc) if isinstance(p.scale, float) and p.scale == 1.0 else (p.loc - q.loc) / p.scale
    cos = xp.where(p.loc == q.loc, 1.0 + 0.0 * p.loc, xp.cos(angle))
    return a * (kp - kq * cos) + (xp.log(xp.i0e(kq)) + kq) - (xp.log(xp.i0e(kp)) + kp)
