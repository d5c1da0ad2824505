"""latent.Pca (latent_pca_fit / latent_pca_transform) against numpy's SVD, and the second link
of MonteCarlo.fit_network on the output layer (KernelML's HIGGS notebook, docs/montecarlo.md)."""

import numpy as np
import pytest

import latent


def test_pca_matches_numpy_svd():
    rng = np.random.default_rng(3)
    # 300 rows, 6 columns of very different spreads, correlated.
    x = (rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6)) * [5, 3, 2, 1, 0.5, 0.1] + 7).astype(np.float32)
    p = latent.Pca(x, 4)
    xd = x.astype(np.float64)
    c = xd - xd.mean(0)
    _, s, vt = np.linalg.svd(c, full_matrices=False)
    assert np.allclose(p.mean, xd.mean(0), atol=1e-9)
    assert np.allclose(p.variance, s[:4] ** 2 / (len(x) - 1), rtol=1e-9)
    assert p.total_variance == pytest.approx((s**2).sum() / (len(x) - 1), rel=1e-9)
    # The same directions up to sign; ours has each component's largest entry positive.
    for i in range(4):
        v = vt[i] * np.sign(vt[i][np.argmax(np.abs(vt[i]))])
        assert np.allclose(p.components[i], v, atol=1e-7), i
    t = p.transform(x)
    assert t.shape == (300, 4) and t.dtype == np.float32
    assert np.allclose(t, c @ p.components.T, atol=1e-3)
    assert np.allclose(p.transform(x[0]), t[0])
    assert np.allclose(p.explained_variance_ratio, p.variance / p.total_variance)


def test_pca_refuses_bad_input():
    x = np.ones((5, 3), np.float32)
    with pytest.raises(latent.InvalidArgument):
        latent.Pca(x, 4)
    with pytest.raises(latent.InvalidArgument):
        latent.Pca(x[:1], 1)
    x[2, 1] = np.nan
    with pytest.raises(latent.NonFinite, match="row 2, column 1"):
        latent.Pca(x, 1)
    p = latent.Pca(np.arange(12, dtype=np.float32).reshape(4, 3), 1)
    with pytest.raises(latent.ShapeMismatch):
        p.transform(np.zeros((2, 4), np.float32))


def test_fit_network_with_an_output_link():
    x = np.random.default_rng(1).standard_normal((64, 4)).astype(np.float32)
    net = latent.Network(input_dim=4, code=2, code_activation="identity", output_activation="identity")
    mc = latent.MonteCarlo(net.params.size + 4, init_samples=100, samples=20, max_iterations=5, seed=1)

    def field_eq(t, h):
        h *= -0.5 * t[0] + t[1]

    def output_side(t, y):
        y[:] = t[0] * (y + t[1])

    links = mc.fit_network(net, x, link=field_eq, link_layer=0, link_params=2,
                           link2=output_side, link2_layer=1, link2_params=2)
    assert links.shape == (4,)
    # Recompute the loss in numpy from the best parameters: what the optimizer reports.
    h = net.encode(x) * (-0.5 * links[0] + links[1])
    y = links[2] * (net.decode(h) + links[3])
    assert np.mean((y - x) ** 2) == pytest.approx(mc.best_loss, rel=1e-5)
