"""A fair coin carries one bit; a biased coin less."""

from __future__ import annotations

import math

import numpy as np
import scipy.stats

import klkit
from klkit.lab.base import Check, LabContext, SectionResult


def _binary_entropy_bits(p: float) -> float:
    """Independent reference: −p log₂ p − (1 − p) log₂ (1 − p) with plain math."""
    return -sum(x * math.log2(x) for x in (p, 1 - p) if x > 0)


def run(ctx: LabContext) -> SectionResult:
    rng = np.random.default_rng(ctx.seed + 2)
    fair = float(klkit.entropy([0.5, 0.5], base=2))
    bias = 0.9
    biased = float(klkit.entropy([bias, 1 - bias], base=2))
    ref = _binary_entropy_bits(bias)
    scipy_ref = float(scipy.stats.entropy([bias, 1 - bias], base=2))

    # Entropy = expected surprise: average the surprise of simulated flips of the biased coin.
    n = 100_000 if ctx.quick else 1_000_000
    ctx.progress(f"{n:,} flips of a {bias:g}-coin")
    heads = rng.random(n) < bias
    bits = klkit.surprise(np.where(heads, bias, 1 - bias), base=2)
    mean, se = float(bits.mean()), float(bits.std(ddof=1) / math.sqrt(n))
    z = (mean - biased) / se

    fair_nats = float(klkit.entropy([0.5, 0.5]))
    biased_nats = float(klkit.entropy([bias, 1 - bias]))
    checks = [
        Check("H(fair coin) = 1 bit", f"H = {fair!r} bits", fair == 1.0),
        Check(
            "H(fair coin) = ln 2 nats, and nats convert to bits by 1 nat = 1/ln 2 bits (the 0.9-coin too)",
            f"{fair_nats:.15f} nats (ln 2 = {math.log(2):.15f}); 0.9-coin: {biased_nats:.6f} nats / ln 2 = "
            f"{biased_nats / math.log(2):.6f} bits",
            abs(fair_nats - math.log(2)) <= 1e-15 and abs(biased_nats / math.log(2) - biased) <= 1e-14,
        ),
        Check(
            f"H(coin with P(heads) = {bias:g}) = −0.9 log₂ 0.9 − 0.1 log₂ 0.1",
            f"klkit {biased:.12f} bits; math {ref:.12f}; scipy {scipy_ref:.12f}",
            abs(biased - ref) < 1e-12 and abs(biased - scipy_ref) < 1e-12,
        ),
        Check("a biased coin carries less than a fair one", f"{biased:.4f} < {fair:g} bit", biased < fair),
        Check(
            f"entropy = expected surprise: mean surprise of {n:,} simulated flips within 4 standard errors",
            f"{mean:.4f} ± {se:.4f} bits (z = {z:+.2f})",
            abs(z) < 4,
        ),
    ]
    rows = "".join(
        f'<tr><td class="num">{p:g}</td><td class="num">{float(klkit.entropy([p, 1 - p])):.4f}</td>'
        f'<td class="num">{float(klkit.entropy([p, 1 - p], base=2)):.4f}</td></tr>'
        for p in (0.5, 0.6, 0.7, 0.8, 0.9, 0.99, 1.0)
    )
    table = f"<table><tr><th>P(heads)</th><th>H (nats)</th><th>H (bits)</th></tr>{rows}</table>"
    return SectionResult(
        key="coin",
        title="A fair coin carries one bit; a biased coin less",
        claim="The entropy of a fair coin is exactly 1 bit (ln 2 ≈ 0.693 nats); a coin with P(heads) = 0.9 has "
        "entropy ≈ 0.469 bits (0.325 nats).",
        how="klkit.entropy(base=2) against the formula evaluated with plain math and against scipy.stats.entropy; "
        "and the mean surprise of simulated flips (entropy is the expected surprise).",
        checks=checks,
        tables_html=[table],
        intuition="A fair coin's outcome is as uncertain as two outcomes can be: learning it is worth exactly one "
        "yes/no answer, one bit. A coin that lands heads 90% of the time surprises you rarely, so on average "
        "its flips tell you less. Nats and bits are the same quantity with natural or base-2 logarithms.",
        example="Fair coin: H = −½ ln ½ − ½ ln ½ = ln 2 = 0.693 nats = 0.693/ln 2 = 1 bit. The 0.9-coin: "
        "H = −0.9 ln 0.9 − 0.1 ln 0.1 = 0.0948 + 0.2303 = 0.325 nats = 0.469 bits.",
        numbers={
            "fair_coin_bits": fair,
            "biased_p": bias,
            "biased_coin_bits": biased,
            "fair_coin_nats": fair_nats,
            "biased_coin_nats": biased_nats,
            "mc_mean_bits": mean,
            "mc_standard_error": se,
        },
    )
