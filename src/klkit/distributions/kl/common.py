"""What the closed-form KL modules share: the registered KL of two family records (for composites)."""

from __future__ import annotations

from typing import Any

from klkit.distributions.registry import lookup_kl
from klkit.errors import NotRegisteredError

__all__ = ["kl_of"]


def kl_of(p: Any, q: Any) -> Any:
    """The registered closed form of KL(p‖q) for two family records (used by composites)."""
    function = lookup_kl(type(p), type(q))
    if function is None:
        raise NotRegisteredError(f"no closed-form KL is registered for ({type(p).__name__}, {type(q).__name__})")
    return function(p, q)


# ===================================================================================================
