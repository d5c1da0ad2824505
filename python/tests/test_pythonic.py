"""Network.fit, and the VAE's iwae_bound, generate_random and interpolate from Python."""

import numpy as np

import latent


def test_network_fit_trains_and_returns_its_trainer(digits):
    x, _ = digits
    net = latent.Network(input_dim=64, encoder=[32], code=8, seed=1)
    before = net.mse(latent.Dataset(x[:500]))
    tr = net.fit(x[:1000], epochs=20, batch_size=32, learning_rate=3e-3, seed=2)
    after = net.mse(latent.Dataset(x[:500]))
    assert len(tr.history()) == 20
    assert after < 0.5 * before, (before, after)


def test_vae_bounds_samples_and_interpolation(digits):
    x, _ = digits
    vae = latent.Vae(64, 4, encoder=[32], decoder=[32], seed=3)
    vae.fit(x[:1000], epochs=15, batch_size=32, learning_rate=3e-3, seed=1)
    elbo = vae.elbo(latent.Dataset(x[1000:1200]), samples=1, seed=0)
    iwae = vae.iwae_bound(x[1000:1200], samples=50, seed=0)
    # The importance-weighted bound is tighter than the ELBO (Burda et al. 2016).
    assert iwae > -elbo.neg_elbo, (iwae, elbo)
    z = vae.sample_prior(5, seed=1)
    a = vae.generate_random(z, seed=7)
    assert a.shape == (5, 64) and set(np.unique(a)) <= {0.0, 1.0}, "Bernoulli draws"
    np.testing.assert_array_equal(a, vae.generate_random(z, seed=7))
    zs, xs = vae.interpolate(x[0], x[1], steps=6)
    assert zs.shape == (6, 4) and xs.shape == (6, 64)
    np.testing.assert_allclose(zs[0], vae.encode(x[:1])[0], atol=1e-6)
    np.testing.assert_allclose(zs[-1], vae.encode(x[1:2])[0], atol=1e-6)
