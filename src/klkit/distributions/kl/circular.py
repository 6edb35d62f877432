"""Closed-form KL of von Mises laws on the circle."""

from __future__ import annotations

from typing import Any

from klkit.distributions import families as fam
from klkit.distributions.registry import register_kl

__all__ = []


@register_kl(fam.VonMises, fam.VonMises)
def _kl_vonmises_vonmises(p: fam.VonMises, q: fam.VonMises) -> Any:
    """A(κp)(κp − κq cos(μp − μq)) + log I0(κq) − log I0(κp), A = I1/I0 (scaled Bessel functions)."""
    xp = p.xp
    kp, kq = p.concentration, q.concentration
    a = xp.i1e(kp) / xp.i0e(kp)
    cos = xp.where(p.loc == q.loc, 1.0 + 0.0 * p.loc, xp.cos(p.loc - q.loc))
    return a * (kp - kq * cos) + (xp.log(xp.i0e(kq)) + kq) - (xp.log(xp.i0e(kp)) + kp)
