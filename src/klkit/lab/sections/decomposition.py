"""Cross-entropy = entropy + KL, and what each term costs when a real entropy coder encodes samples."""

from __future__ import annotations

import math

import numpy as np

import klkit
from klkit.lab.base import Check, LabContext, SectionResult, save_figure
from klkit.lab.sections._coding import DYADIC_P, SYMBOLS, coding_explorable, huffman_lengths, range_coded_bits
from klkit.lab.sections._random import random_pairs

UNIFORM = np.full(4, 0.25)
# a pair whose code lengths are not whole bits: Huffman pays up to 1 bit/symbol more, the range coder does not
SKEWED_P = np.array([0.6, 0.25, 0.1, 0.05])
SKEWED_Q = np.array([0.3, 0.3, 0.2, 0.2])


def _identity(rng: np.random.Generator, n: int, ctx: LabContext) -> tuple[list[Check], dict[str, float]]:
    """H(P,Q) = H(P) + KL(P‖Q) on random pairs: three independent klkit computations, the identity checked."""
    hs, ces, kls, ks = [], [], [], []
    for k in (2, 3, 10, 100):
        ctx.progress(f"{n:,} random pairs on {k} outcomes")
        p, q = random_pairs(rng, n, k)
        hs.append(klkit.entropy(p))
        ces.append(klkit.cross_entropy(p, q))
        kls.append(klkit.kl_divergence(p, q))
        ks.append(np.full(n, k))
    h, ce, kl, kk = (np.concatenate(x) for x in (hs, ces, kls, ks))
    err = np.abs(ce - (h + kl))
    rel = err / np.maximum(ce, 1.0)
    worst = int(np.argmax(rel))
    checks = [
        Check(
            f"H(P,Q) = H(P) + KL(P‖Q) on {h.size:,} random pairs (K ∈ {{2, 3, 10, 100}}), relative error ≤ 1e-12",
            f"worst |H(P,Q) − H(P) − KL| = {err[worst]:.2e} nats at H(P,Q) = {ce[worst]:.4g} "
            f"(relative {rel[worst]:.2e}, K = {kk[worst]})",
            bool(rel.max() <= 1e-12),
        ),
        Check(
            "H(P,Q) ≥ H(P): coding with the wrong distribution costs extra bits",
            f"min H(P,Q) − H(P) = {np.min(ce - h):.3g} nats",
            bool(np.min(ce - h) >= -1e-12 * np.max(ce)),
        ),
    ]
    numbers = {"pairs": int(h.size), "worst_abs_error": float(err[worst]), "worst_rel_error": float(rel[worst])}
    return checks, numbers


def _coder(p: np.ndarray, q: np.ndarray, samples: np.ndarray, label: str) -> tuple[list[Check], dict[str, float]]:
    """Range-code samples of P with P's model and with Q's; rates against H(P), H(P,Q) and KL (bits/symbol).

    Tolerance: 4 standard errors of the sample's mean code length (it fluctuates around its expectation) plus
    0.002 bits/symbol for the coder's own overhead. Coding with the wrong model misses by KL, far outside it.
    """
    n = samples.size
    h = float(klkit.entropy(p, base=2))
    ce = float(klkit.cross_entropy(p, q, base=2))
    kl = float(klkit.kl_divergence(p, q, base=2))
    bits_p, ok_p = range_coded_bits(samples, p)
    bits_q, ok_q = range_coded_bits(samples, q)
    rate_p, rate_q = bits_p / n, bits_q / n
    len_p, len_q = -np.log2(p[samples]), -np.log2(q[samples])
    se = lambda x: float(np.std(x, ddof=1) / math.sqrt(n))  # noqa: E731
    tol_p, tol_q, tol_kl = (4 * se(x) + 0.002 for x in (len_p, len_q, len_q - len_p))
    checks = [
        Check(
            f"{label}: the range coder with P's model spends H(P) bits/symbol on {n:,} samples of P (± {tol_p:.4f})",
            f"{rate_p:.4f} bits/symbol vs H(P) = {h:.4f}; decoded back exactly: {ok_p}",
            abs(rate_p - h) <= tol_p and ok_p,
        ),
        Check(
            f"{label}: with Q's model it spends H(P,Q) bits/symbol (± {tol_q:.4f})",
            f"{rate_q:.4f} bits/symbol vs H(P,Q) = {ce:.4f}; decoded back exactly: {ok_q}",
            abs(rate_q - ce) <= tol_q and ok_q,
        ),
        Check(
            f"{label}: the extra bits are KL(P‖Q) (± {tol_kl:.4f}); P's code would miss H(P,Q) by KL itself",
            f"{rate_q - rate_p:.4f} bits/symbol vs KL(P‖Q) = {kl:.4f}",
            abs((rate_q - rate_p) - kl) <= tol_kl and abs(rate_p - ce) > tol_q,
        ),
    ]
    return checks, {"h_bits": h, "ce_bits": ce, "kl_bits": kl, "rate_p": rate_p, "rate_q": rate_q}


def _figure(ctx: LabContext, lengths_p: list[int], lengths_q: list[int], rates: dict[str, float]):
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.6), gridspec_kw={"width_ratios": [1.4, 1]})
    x = np.arange(4)
    left.bar(x - 0.2, lengths_p, 0.4, label="P's Huffman code", color="C0")
    left.bar(x + 0.2, lengths_q, 0.4, label="uniform Q's code", color="C1")
    left.set_xticks(x, [f"{s}\np = {p:g}" for s, p in zip(SYMBOLS, DYADIC_P, strict=True)])
    left.set(ylabel="codeword length (bits)", title="Code lengths = −log₂ probability", ylim=(0, 3.6))
    left.legend(fontsize=9, loc="upper left")
    h, kl = rates["h_bits"], rates["kl_bits"]
    right.bar([0, 1], [h, h], 0.55, color="C0", label="H(P) = 1.75: unavoidable")
    right.bar([1], [kl], 0.55, bottom=[h], color="C3", label="KL(P‖Q) = 0.25: wasted")
    right.plot([0, 1], [rates["rate_p"], rates["rate_q"]], "kD", ms=8, label="range coder, measured")
    right.set_xticks([0, 1], ["P's code", "Q's code"])
    right.set(ylabel="bits per symbol of P", title="Expected cost per symbol", ylim=(0, 3.1))
    right.legend(fontsize=8, loc="upper left", ncol=1, framealpha=0.95)
    for ax in (left, right):
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return save_figure(ctx, fig, "coding_cost")


def run(ctx: LabContext) -> SectionResult:
    rng = np.random.default_rng(ctx.seed + 3)
    n = 10_000 if ctx.quick else 100_000
    checks, numbers = _identity(rng, n, ctx)

    ctx.progress("Huffman codes and range coding with constriction")
    lengths_p, lengths_q = huffman_lengths(DYADIC_P), huffman_lengths(UNIFORM)
    mean_p, mean_q = float(DYADIC_P @ lengths_p), float(DYADIC_P @ lengths_q)
    h_bits = float(klkit.entropy(DYADIC_P, base=2))
    ce_bits = float(klkit.cross_entropy(DYADIC_P, UNIFORM, base=2))
    checks.append(
        Check(
            "dyadic P = (½, ¼, ⅛, ⅛): Huffman lengths are exactly −log₂ p, so the expected length is H(P); "
            "uniform Q's code costs H(P,Q)",
            f"lengths {lengths_p} → {mean_p:g} bits = H(P) {h_bits:g}; Q's {lengths_q} → {mean_q:g} bits = "
            f"H(P,Q) {ce_bits:g}; KL = {mean_q - mean_p:g} bits",
            lengths_p == [1, 2, 3, 3] and mean_p == h_bits == 1.75 and mean_q == ce_bits == 2.0,
        )
    )
    m = 50_000 if ctx.quick else 200_000
    samples = rng.choice(4, size=m, p=DYADIC_P)
    dyadic_checks, rates = _coder(DYADIC_P, UNIFORM, samples, "dyadic P, uniform Q")
    skewed = rng.choice(4, size=m, p=SKEWED_P)
    skewed_checks, skewed_rates = _coder(SKEWED_P, SKEWED_Q, skewed, "P = (0.6, 0.25, 0.1, 0.05), Q = (.3, .3, .2, .2)")
    huff_skewed = float(SKEWED_P @ huffman_lengths(SKEWED_P))
    checks += dyadic_checks + skewed_checks
    checks.append(
        Check(
            "non-dyadic P: Huffman's whole-bit codewords cost between H(P) and H(P) + 1 bits; the range coder gets "
            "closer to H(P)",
            f"H(P) = {skewed_rates['h_bits']:.4f}, Huffman {huff_skewed:.4f}, range coder {skewed_rates['rate_p']:.4f}",
            skewed_rates["h_bits"] <= huff_skewed < skewed_rates["h_bits"] + 1
            and abs(skewed_rates["rate_p"] - skewed_rates["h_bits"]) < huff_skewed - skewed_rates["h_bits"],
        )
    )
    explorable, steps = coding_explorable(samples)
    worst = max(abs(s["rate"] - s["cross_entropy"]) for s in steps)
    checks.append(
        Check(
            f"the explorable's {len(steps)} codes Q ∝ P^λ: measured rate = H(P,Q) within 0.02 bits/symbol, every "
            "message decoded back",
            f"worst |rate − H(P,Q)| = {worst:.4f} bits/symbol",
            worst <= 0.02 and all(s["ok"] for s in steps),
        )
    )
    fig_path = _figure(ctx, lengths_p, lengths_q, rates)
    numbers.update({"dyadic": rates, "skewed": skewed_rates, "huffman_skewed": huff_skewed, "samples": m})
    return SectionResult(
        key="decomposition",
        title="Cross-entropy = entropy + KL: the cost of coding with the wrong distribution",
        claim="For any P and Q, H(P, Q) = H(P) + KL(P‖Q). In bits: encoding samples of P with the best code for P "
        "costs H(P) bits per symbol (unavoidable); with a code built for Q it costs H(P, Q); the difference, "
        "KL(P‖Q), is the penalty for using the wrong distribution.",
        how=f"The identity on {numbers['pairs']:,} random pairs (three independent klkit computations). Then real "
        f"coding with the constriction library: Huffman codewords for the dyadic P and the uniform Q, and its range "
        f"coder (an arithmetic coder) run on {m:,} samples of P with P's model and with Q's, message length divided "
        "by the number of symbols, each message decoded back. Tolerance: 4 standard errors of the sample's mean "
        "code length + 0.002 bits/symbol of coder overhead.",
        checks=checks,
        figures=[fig_path],
        numbers=numbers,
        intuition="A code gives each outcome a codeword of about −log₂ q bits: frequent outcomes get short words. "
        "If the outcomes really come from P, the best you can do is P's own code, H(P) bits per outcome on average. "
        "A code built for another distribution Q costs H(P, Q) bits; the extra H(P, Q) − H(P) = KL(P‖Q) is waste.",
        example="P = (½, ¼, ⅛, ⅛) has the codewords 0, 10, 110, 111 (1, 2, 3, 3 bits): ½·1 + ¼·2 + ⅛·3 + ⅛·3 = 1.75 "
        "bits = H(P). The uniform code spends 2 bits on every symbol: H(P, Q) = 2 bits, so KL(P‖Q) = 0.25 bits.",
        captions={
            fig_path.name: "Left: each symbol's codeword length; P's code gives the frequent symbol a 1-bit word, the "
            "uniform code 2 bits to all. Right: the average cost per symbol of P. The black diamonds are what the "
            "range coder actually spent on the samples: they land on 1.75 and on 1.75 + 0.25 bits."
        },
        interactive_html=[explorable.html()],
    )
