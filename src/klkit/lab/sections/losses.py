"""Cross-entropy loss = negative log-likelihood = maximum likelihood: two demonstrations."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import klkit
from klkit.lab.base import Check, LabContext, SectionResult, save_figure, torch_threads
from klkit.losses import cross_entropy_loss

_LOG2 = math.log(2.0)


def categorical_demo(n: int, seed: int) -> dict[str, Any]:
    """Fit q to n categorical samples by minimising the mean cross-entropy loss; compare with the frequencies.

    Returns the true p, the empirical frequencies, the fitted q, and the decomposition numbers.
    """
    import torch

    rng = np.random.default_rng(seed)
    p_true = np.array([0.35, 0.25, 0.15, 0.12, 0.08, 0.05])
    k = p_true.size
    samples = rng.choice(k, size=n, p=p_true)
    freq = np.bincount(samples, minlength=k) / n
    y = torch.from_numpy(samples)

    theta = torch.zeros(k, dtype=torch.float64, requires_grad=True)  # logits of q, shared by every sample
    opt = torch.optim.LBFGS(
        [theta], lr=1.0, max_iter=100, tolerance_grad=1e-11, tolerance_change=1e-16, line_search_fn="strong_wolfe"
    )

    def closure() -> Any:
        opt.zero_grad()
        loss = cross_entropy_loss(theta.expand(n, k), y)  # mean over samples of −log q(y_i)
        loss.backward()
        return loss

    opt.step(closure)
    q_fit = torch.softmax(theta.detach(), 0).numpy()
    loss_fit = float(cross_entropy_loss(theta.detach().expand(n, k), y))

    # mean NLL of the samples under q = H(freq) + KL(freq‖q) for any q (checked on random q's)
    qs = rng.dirichlet(np.ones(k), size=20)
    nll = np.array([float(cross_entropy_loss(np.log(q)[None].repeat(n, 0), samples)) for q in qs])
    d = klkit.decompose(np.broadcast_to(freq, qs.shape), qs)
    decomposition_error = float(np.max(np.abs(nll - (d.entropy + d.kl_divergence))))
    h_freq = float(klkit.entropy(freq))
    return {
        "n": n,
        "p_true": p_true.tolist(),
        "frequencies": freq.tolist(),
        "q_fit": q_fit.tolist(),
        "max_abs_q_minus_freq": float(np.max(np.abs(q_fit - freq))),
        "loss_at_optimum": loss_fit,
        "entropy_of_frequencies": h_freq,
        "kl_frequencies_q_fit": float(klkit.kl_divergence(freq, q_fit)),
        "decomposition_max_error": decomposition_error,
        "min_loss_over_random_q": float(nll.min()),
    }


def digits_demo(seed: int, C: float = 1.0, grad_tol: float = 1e-8) -> dict[str, Any]:
    """Softmax regression on sklearn's digits by minimising mean CE + L2, vs sklearn's LogisticRegression.

    Our objective, mean CE + ½ λ ‖W‖² with λ = 1 / (C n), has the same minimiser as sklearn's
    C Σ_i CE_i + ½ ‖W‖² (divide by C n); the intercept is not penalised in either. L-BFGS runs until
    the largest gradient entry is below ``grad_tol`` (or stops improving).
    """
    import torch
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixel intensities 0..16 → [0, 1]
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    n, d = X_tr.shape
    k = 10
    lam = 1.0 / (C * n)
    Xt, Xe = torch.from_numpy(X_tr), torch.from_numpy(X_te)
    yt, ye = torch.from_numpy(y_tr), torch.from_numpy(y_te)
    W = torch.zeros(d, k, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [W, b],
        lr=1.0,
        max_iter=25,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def objective() -> Any:
        opt.zero_grad()
        loss = cross_entropy_loss(Xt @ W + b, yt) + 0.5 * lam * (W * W).sum()
        loss.backward()
        return loss

    with torch.no_grad():  # step 0: W = 0, b = 0, every class 1/10, CE = ln 10
        curve: list[tuple[int, float, float]] = [
            (0, float(cross_entropy_loss(Xt @ W + b, yt)), float(cross_entropy_loss(Xe @ W + b, ye)))
        ]
    previous = math.inf
    for step in range(60):
        value = float(opt.step(objective).detach())
        with torch.no_grad():
            curve.append(
                (step + 1, float(cross_entropy_loss(Xt @ W + b, yt)), float(cross_entropy_loss(Xe @ W + b, ye)))
            )
        grad = float(torch.cat([W.grad.reshape(-1), b.grad]).abs().max())
        if grad < grad_tol or value >= previous:
            break
        previous = value
    with torch.no_grad():
        z_tr, z_te = (Xt @ W + b), (Xe @ W + b)
        train_ce, test_ce = float(cross_entropy_loss(z_tr, yt)), float(cross_entropy_loss(z_te, ye))
        logp_te = torch.log_softmax(z_te, 1).numpy()
        loglik_te = float(logp_te[np.arange(len(y_te)), y_te].sum())  # log-likelihood of the test labels
        acc = float((z_te.argmax(1) == ye).double().mean())
        objective_ours = train_ce + 0.5 * lam * float((W * W).sum())

    clf = LogisticRegression(C=C, tol=1e-10, max_iter=10_000)  # lbfgs, multinomial, intercept not penalised
    clf.fit(X_tr, y_tr)
    proba = clf.predict_proba(X_te)
    sk_test = float(log_loss(y_te, proba, labels=np.arange(k)))
    sk_train = float(log_loss(y_tr, clf.predict_proba(X_tr), labels=np.arange(k)))
    Wsk = torch.from_numpy(clf.coef_.T.copy())
    objective_sk = sk_train + 0.5 * lam * float((Wsk * Wsk).sum())
    return {
        "n_train": n,
        "n_test": len(y_te),
        "C": C,
        "weight_decay_lambda": lam,
        "train_ce_nats": train_ce,
        "test_ce_nats": test_ce,
        "train_ce_bits": train_ce / _LOG2,
        "test_ce_bits": test_ce / _LOG2,
        "test_accuracy": acc,
        "test_log_likelihood": loglik_te,
        "test_ce_equals_minus_mean_loglik": abs(test_ce + loglik_te / len(y_te)),
        "sklearn_test_log_loss": sk_test,
        "sklearn_train_log_loss": sk_train,
        "sklearn_test_accuracy": float(clf.score(X_te, y_te)),
        "test_log_loss_difference": abs(test_ce - sk_test),
        "max_coefficient_difference": float((W.detach() - Wsk).abs().max()),
        "objective_ours": objective_ours,
        "objective_sklearn": objective_sk,
        "lbfgs_steps": len(curve) - 1,
        "final_max_gradient": grad,
        "curve": curve,
    }


def run(ctx: LabContext) -> SectionResult:
    import matplotlib.pyplot as plt

    n = 5_000 if ctx.quick else 50_000
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    # one BLAS/OpenMP thread: on a busy 2-core machine, spinning BLAS threads made the small matrix
    # products of sklearn's L-BFGS ten times slower
    with torch_threads(1), threadpool_limits(1):
        ctx.progress(f"fitting q to {n:,} categorical samples")
        cat = categorical_demo(n, ctx.seed)
        ctx.progress("softmax regression on digits (klkit loss + L-BFGS) vs sklearn")
        dig = digits_demo(ctx.seed, grad_tol=1e-6 if ctx.quick else 1e-8)

    checks = [
        Check(
            f"minimising the mean CE loss over q on {n:,} samples gives the empirical frequencies",
            f"max |q − frequency| = {cat['max_abs_q_minus_freq']:.1e}",
            cat["max_abs_q_minus_freq"] <= 1e-6,
        ),
        Check(
            "at the optimum CE = H(empirical) + KL(empirical‖q) with KL = 0",
            f"CE = {cat['loss_at_optimum']:.10f}, H = {cat['entropy_of_frequencies']:.10f}, "
            f"KL = {cat['kl_frequencies_q_fit']:.1e} nats",
            abs(cat["loss_at_optimum"] - cat["entropy_of_frequencies"]) <= 1e-9 and cat["kl_frequencies_q_fit"] <= 1e-9,
        ),
        Check(
            "for any q, the mean loss = H(empirical) + KL(empirical‖q) (20 random q's)",
            f"worst error = {cat['decomposition_max_error']:.1e}; smallest of those losses "
            f"{cat['min_loss_over_random_q']:.4f} > H = {cat['entropy_of_frequencies']:.4f}",
            cat["decomposition_max_error"] <= 1e-12 and cat["min_loss_over_random_q"] > cat["entropy_of_frequencies"],
        ),
        Check(
            "digits: the test CE loss is the negative mean log-likelihood of the test labels",
            f"|CE + mean log-lik| = {dig['test_ce_equals_minus_mean_loglik']:.1e}",
            dig["test_ce_equals_minus_mean_loglik"] <= 1e-12,
        ),
        Check(
            f"digits: test log-loss equals sklearn LogisticRegression(C={dig['C']:g}) on the same objective "
            f"(λ = 1/(C·n) = {dig['weight_decay_lambda']:.3g}) within 1e-4 nats",
            f"klkit {dig['test_ce_nats']:.6f} vs sklearn {dig['sklearn_test_log_loss']:.6f} nats "
            f"(|Δ| = {dig['test_log_loss_difference']:.1e}; max |ΔW| = {dig['max_coefficient_difference']:.1e})",
            dig["test_log_loss_difference"] <= 1e-4,
        ),
        Check(
            "digits: a useful classifier (test accuracy ≥ 0.9)",
            f"test CE {dig['test_ce_nats']:.4f} nats = {dig['test_ce_bits']:.4f} bits; train "
            f"{dig['train_ce_nats']:.4f} nats = {dig['train_ce_bits']:.4f} bits; accuracy "
            f"{dig['test_accuracy']:.3f} (sklearn {dig['sklearn_test_accuracy']:.3f})",
            dig["test_accuracy"] >= 0.9,
        ),
    ]

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    idx = np.arange(len(cat["p_true"]))
    ax1.bar(idx - 0.27, cat["p_true"], 0.27, label="true p", color="0.7")
    ax1.bar(idx, cat["frequencies"], 0.27, label=f"empirical frequencies (n = {n:,})", color="C0")
    ax1.bar(idx + 0.27, cat["q_fit"], 0.27, label="q minimising the CE loss", color="C3")
    ax1.set(xlabel="category", ylabel="probability")
    ax1.set_title("The CE minimiser is the empirical frequencies", fontsize=11)
    ax1.legend(fontsize=9)
    steps, tr, te = zip(*dig["curve"], strict=True)
    ax2.plot(steps, tr, label="train CE (nats)", color="C0")
    ax2.plot(steps, te, label="test CE (nats)", color="C3")
    ax2.axhline(dig["sklearn_test_log_loss"], color="k", ls=":", lw=1, label="sklearn test log-loss")
    ax2.set(xlabel="L-BFGS step (up to 25 iterations each; 0: all classes 1/10)", ylabel="cross-entropy loss (nats)")
    ax2.set_title("Digits: as the CE loss falls, the likelihood rises", fontsize=11)
    likelihood = ax2.twinx()
    likelihood.plot(steps, np.exp(-np.array(te)), color="C2", ls="--", label="test likelihood per label, exp(−CE)")
    likelihood.set_ylabel("exp(−CE) = geometric-mean p(true label)", color="C2")
    likelihood.set_ylim(0, 1.02)
    handles = [h for a in (ax2, likelihood) for h in a.get_legend_handles_labels()[0]]
    ax2.legend(handles, [h.get_label() for h in handles], fontsize=9, loc="center right")
    fig.tight_layout()
    fig_path = save_figure(ctx, fig, "losses")

    table = (
        "<table><tr><th>digits (1,797 images, 70/30 split)</th><th>nats</th><th>bits</th></tr>"
        f'<tr><td>train CE (klkit loss)</td><td class="num">{dig["train_ce_nats"]:.6f}</td>'
        f'<td class="num">{dig["train_ce_bits"]:.6f}</td></tr>'
        f'<tr><td>test CE (klkit loss)</td><td class="num">{dig["test_ce_nats"]:.6f}</td>'
        f'<td class="num">{dig["test_ce_bits"]:.6f}</td></tr>'
        f'<tr><td>test log-loss, sklearn LogisticRegression</td><td class="num">{dig["sklearn_test_log_loss"]:.6f}</td>'
        f'<td class="num">{dig["sklearn_test_log_loss"] / _LOG2:.6f}</td></tr>'
        f'<tr><td>objective mean CE + ½λ‖W‖²: klkit / sklearn</td><td class="num">{dig["objective_ours"]:.8f}</td>'
        f'<td class="num">{dig["objective_sklearn"]:.8f}</td></tr></table>'
    )
    numbers = {"categorical": cat, "digits": {k: v for k, v in dig.items() if k != "curve"}}
    return SectionResult(
        key="losses",
        title="Cross-entropy loss = negative log-likelihood = maximum likelihood",
        claim="The cross-entropy loss of a classifier is the negative mean log-likelihood of the labels, so "
        "minimising it is maximum-likelihood estimation: for categorical data the minimiser is the empirical "
        "distribution, where the loss equals its entropy (the KL term vanishes).",
        how=f"(a) {n:,} samples of a 6-category distribution; q's logits fitted by L-BFGS on "
        "klkit.losses.cross_entropy_loss; the loss decomposed with klkit.decompose. (b) Softmax regression on "
        "sklearn's digits, mean CE + ½λ‖W‖² minimised by L-BFGS in float64, compared with "
        "sklearn.linear_model.LogisticRegression with C = 1/(λ n), the same objective scaled by C n.",
        checks=checks,
        figures=[fig_path],
        tables_html=[table],
        numbers=numbers,
        intuition="A classifier's cross-entropy loss on an example is −log of the probability it gave the right "
        "label: the surprise of the truth under the model. Averaged over a data set it is the cross-entropy "
        "between the data's label distribution and the model's, so it splits into the labels' own entropy (the "
        "part no model can remove) plus the KL from the data to the model (the part training removes). "
        "Minimising it is the same as maximising the likelihood of the labels, because the log turns the "
        "product of probabilities into a sum.",
        example="A one-hot label c with q_c = 0.7: the loss is −ln 0.7 = 0.357 nats (0.515 bits); with q_c = 0.99 "
        "it is 0.010 nats. Three examples with q of the true labels 0.7, 0.9 and 0.5: mean loss (0.357 + 0.105 + "
        "0.693)/3 = 0.385 nats, likelihood 0.7 × 0.9 × 0.5 = 0.315 = e^(−3 × 0.385).",
        captions={
            fig_path.name: "Left: fitting q to samples by minimising the mean cross-entropy loss lands exactly on "
            "the empirical frequencies (blue and red bars equal), not on the true p (grey): that is maximum "
            "likelihood, and the remaining loss is the entropy of the frequencies. Right: softmax regression on "
            "digits, starting from the uniform guess (CE = ln 10 = 2.30 nats, likelihood 0.1 per label); as "
            "L-BFGS lowers the cross-entropy (solid), the test likelihood per label, exp(−CE), rises "
            "(green dashes): the two are the same curve read through −log."
        },
    )
