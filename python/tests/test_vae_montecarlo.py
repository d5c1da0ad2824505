"""Vae and MonteCarlo basics."""

import numpy as np
import pytest

import latent


def test_vae_trains_and_samples(tmp_path, digits):
    x, _ = digits
    ds = latent.Dataset(x)
    vae = latent.Vae(64, 4, encoder=[32], decoder=[32], seed=1)
    assert (vae.input_dim, vae.latent_dim) == (64, 4)
    before = vae.elbo(ds, samples=1, seed=0)
    tr = vae.fit(ds, epochs=10, batch_size=32, learning_rate=3e-3)
    after = vae.elbo(ds, samples=1, seed=0)
    assert len(tr.history()) == 10
    # Measured: negative ELBO per example 52.1 -> 25.3 after 10 epochs (seeds 1, 2).
    assert after.neg_elbo < 0.65 * before.neg_elbo, (before, after)
    assert after.neg_elbo == pytest.approx(after.reconstruction + after.kl)
    mean, logvar = vae.encode(x[:5], logvar=True)
    assert mean.shape == logvar.shape == (5, 4)
    z = vae.sample_prior(7, seed=3)
    assert z.shape == (7, 4) and np.array_equal(z, vae.sample_prior(7, seed=3))
    gen = vae.generate(z)
    assert gen.shape == (7, 64) and np.all((gen >= 0) & (gen <= 1))
    assert vae.log_likelihood(x[:3], samples=8).shape == (3,)
    path = tmp_path / "v.latent"
    vae.save(path)
    with latent.Vae.load(path) as back:
        assert np.array_equal(back.encode(x[:5]), mean)
    with pytest.raises(latent.BadFormat):
        latent.Network.load(path)


def test_montecarlo_minimizes_a_python_loss():
    target = np.array([1.5, -2.0, 0.25])
    calls = []

    def loss(p):
        calls.append(1)
        return float(np.sum((p - target) ** 2))

    mc = latent.MonteCarlo(3, max_iterations=200, init_samples=200, samples=50, elite=10, seed=7)
    mc.set_prior("uniform", -5, 5)
    best = mc.minimize(loss)
    assert np.allclose(best, target, atol=1e-3), best
    assert mc.best_loss < 1e-6 and mc.evaluations == len(calls)
    assert len(mc.history()) == mc.iterations > 0
    lo, hi = mc.intervals(loss, level=0.95, temperature=0.01)
    assert np.all(lo <= best) and np.all(best <= hi)


def test_montecarlo_loss_exception_propagates():
    def loss(p):
        raise KeyError("inside the loss")

    mc = latent.MonteCarlo(2, max_iterations=10, init_samples=20, samples=10, elite=2)
    with pytest.raises(KeyError, match="inside the loss"):
        mc.minimize(loss)


def test_montecarlo_fits_a_network_with_a_python_link():
    # Points near a 2-D plane in 4-D; an autoencoder 4-[2]-4 whose code is scaled by a
    # positive link parameter, fitted without gradients (KernelML's non-linear parameters).
    rng = np.random.default_rng(3)
    ab = rng.uniform(-1, 1, size=(300, 2))
    x = np.stack([ab[:, 0], ab[:, 1], 0.5 * ab[:, 0] - ab[:, 1], ab[:, 0] + ab[:, 1]], axis=1)
    data = latent.Dataset(x.astype(np.float32))
    net = latent.Network(4, 2, output_activation="identity", loss="mse")
    before = net.loss(data)
    p = net.params.size
    calls = []

    def scale(t, h):
        calls.append(1)
        h *= t[0]

    mc = latent.MonteCarlo(p + 1, samples=100, max_iterations=150, seed=4)
    mc.set_prior("uniform", 0.0, 2.0, first=p, count=1)
    mc.set_constraint("positive", 1e-6, 0.0, first=p, count=1)
    link = mc.fit_network(net, data, batch_size=100, runs=3, link=scale, link_layer=0, link_params=1)
    assert link.shape == (1,) and link[0] > 0 and len(calls) > 1000
    assert mc.best_loss < 0.1 * before, (mc.best_loss, before)
    assert np.array_equal(net.params, mc.best[:p].astype(np.float32))
    with pytest.raises(latent.ShapeMismatch):
        latent.MonteCarlo(p, seed=1).fit_network(net, data, link=scale, link_layer=0, link_params=1)

    def broken(t, h):
        raise RuntimeError("inside the link")

    mc2 = latent.MonteCarlo(p + 1, samples=20, max_iterations=5, init_samples=20, elite=5)
    with pytest.raises(RuntimeError, match="inside the link"):
        mc2.fit_network(net, data, link=broken, link_layer=0, link_params=1)
