"""Score, Jacobian, tangents and the exact contractive penalty from Python (docs/manifold.md)."""

import numpy as np
import pytest

import latent


def deep_net(**kw):
    return latent.Network(input_dim=6, encoder=[5, 4], code=3, activation="tanh", seed=2,
                          output_activation="identity", loss="mse", **kw)


def test_jacobian_matches_finite_differences_and_tangents_its_svd():
    net = deep_net()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 6)).astype(np.float32)
    j = net.jacobian(x)
    assert j.shape == (4, 3, 6) and j.dtype == np.float32
    assert np.allclose(net.jacobian(x[1]), j[1], rtol=1e-6, atol=1e-7)  # the product kernel may block differently
    # Central differences in float64 of the float32 codes (h = 0.05, 4th order).
    h = 0.05
    for r in range(2):
        fd = np.zeros((3, 6))
        for i in range(6):
            def at(d):
                xx = x[r].astype(np.float64).copy()
                xx[i] += d
                return net.encode(xx.astype(np.float32)).astype(np.float64)
            fd[:, i] = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h)
        # Measured: 1.6e-6 at most (the float32 codes' rounding / h); limit 2e-5.
        assert np.abs(j[r] - fd).max() < 2e-5
    dirs, values = net.tangents(x[0], 2)
    assert dirs.shape == (2, 6) and values.shape == (3,)
    assert np.all(np.diff(values) <= 0)
    assert np.allclose(dirs @ dirs.T, np.eye(2), atol=1e-5)
    assert np.allclose(np.linalg.norm(j[0] @ dirs.T, axis=0), values[:2], rtol=1e-4)
    assert np.allclose(np.linalg.svd(j[0].astype(np.float64), compute_uv=False), values, rtol=1e-4, atol=1e-7)
    with pytest.raises(latent.InvalidArgument):
        net.tangents(x[0], 4)  # more than min(code, input) = 3


def test_score_is_the_scaled_reconstruction_residual():
    net = latent.Network(input_dim=2, code=16, activation="tanh", output_activation="identity", loss="mse",
                         corruption="gaussian", corruption_level=0.25, seed=1)
    x = np.random.default_rng(1).normal(size=(10, 2)).astype(np.float32)
    s = net.score(x)  # sigma 0: the network's own 0.25
    assert np.allclose(s, (net.reconstruct(x) - x) / 0.0625, rtol=1e-4, atol=1e-4)
    assert np.allclose(net.score(x, sigma=0.5), (net.reconstruct(x) - x) / 0.25, rtol=1e-4, atol=1e-4)
    plain = latent.Network(input_dim=2, code=4, output_activation="identity", loss="mse")
    with pytest.raises(latent.InvalidArgument, match="has none"):
        plain.score(x)
    with pytest.raises(latent.InvalidArgument):
        plain.score(x, sigma=float("nan"))


def test_memory_layers_have_no_jacobian():
    net = latent.Network(input_dim=4, code=2, code_connection="memory")
    with pytest.raises(latent.Unsupported, match="memory"):
        net.jacobian(np.zeros(4, np.float32))


def test_exact_contractive_mode_trains_saves_and_loads(tmp_path):
    net = deep_net(contractive_weight=0.1, contractive_exact=True)
    assert net.contractive_exact is True
    assert "exact, whole encoder" in net.describe()
    x = np.random.default_rng(3).uniform(-1, 1, (64, 6)).astype(np.float32)
    tr = latent.Trainer(epochs=3, batch_size=16, learning_rate=1e-2, seed=1)
    assert tr.fit(net, latent.Dataset(x)) is True
    hist = tr.history()
    assert hist[-1].train_penalty > 0
    path = tmp_path / "exact.latent"
    net.save(path)
    back = latent.Network.load(path)
    assert back.contractive_exact is True
    assert np.array_equal(back.params, net.params)
    back.contractive_exact = False
    assert back.contractive_exact is False
    # A stochastic encoder refuses the exact mode (its weight is non-zero).
    st = latent.Network(input_dim=6, encoder=[5], code=3, activation="sigmoid", encoder_stochastic=["bernoulli"],
                        contractive_weight=0.1)
    with pytest.raises(latent.InvalidArgument, match="deterministic"):
        st.contractive_exact = True
    assert st.contractive_exact is False
