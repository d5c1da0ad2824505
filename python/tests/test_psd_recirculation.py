"""Predictive sparse decomposition (latent.Psd) and recirculation training
(Network.fit_recirculation) on the 8x8 digits, from NumPy."""

import numpy as np
import pytest

import latent


def test_psd_learns_an_encoder_that_predicts_sparse_codes(digits):
    x, _ = digits
    train, test = x[:1500], x[1500:]
    with latent.Psd(64, 128, lam=0.5, alpha=1.0, seed=0) as psd:
        assert (psd.input_dim, psd.code_dim) == (64, 128)
        assert psd.params.size == 2 * 64 * 128 + 2 * 128

        def gap():
            f, h = psd.encode(test), psd.encode_optimized(test, iterations=200, tolerance=1e-5)
            return np.linalg.norm(f - h) / np.linalg.norm(h), f, h

        gap0, _, _ = gap()
        energy = psd.fit(train, epochs=10, batch_size=32, learning_rate=3e-3, seed=1)
        g, f, h = gap()
        rec = np.mean(np.sum((psd.decode(h) - test) ** 2, axis=1))
        var = np.mean(np.sum((test - test.mean(0)) ** 2, axis=1))
        # Measured (min-max scaled digits): energy 3.32; gap 1.426 -> 0.416; 69% exact zeros in
        # h*; 84% of |f(x)| below 0.1; squared error per row 0.84 from h*, variance 4.69.
        assert energy < 4.0, energy
        assert g < 0.5 and g < 0.4 * gap0, (gap0, g)
        assert np.mean(h == 0) > 0.6
        assert np.mean(np.abs(f) < 0.1) > 0.75
        assert rec < 0.25 * var, (rec, var)
        assert np.allclose(np.linalg.norm(psd.dictionary, axis=1), 1.0, atol=1e-5)
        # D f(x) and D h*, and one row as a 1-D array.
        assert np.allclose(psd.reconstruct(test[:5]), psd.decode(f[:5]), atol=1e-6)
        assert psd.reconstruct(test[0], iterations=50).shape == (64,)
        with pytest.raises(latent.ShapeMismatch):
            psd.encode(test[:, :10])
        with pytest.raises(latent.InvalidArgument):
            psd.encode_optimized(test, tolerance=-1.0)
    with pytest.raises(latent.InvalidArgument):
        latent.Psd(64, 0)


def test_recirculation_trains_a_one_hidden_layer_autoencoder(digits):
    x, _ = digits
    train = x[:1500]
    with latent.Network(input_dim=64, code=16, code_activation="sigmoid", loss="mse", seed=3) as net:
        before = net.mse(train)
        mse = net.fit_recirculation(train, epochs=20, batch_size=16, learning_rate=2.0, regression=0.75)
        # Measured (min-max scaled digits, sigmoid code): 0.2686 -> 0.0185.
        assert mse == pytest.approx(net.mse(train))
        assert mse < before / 10, (before, mse)
    with latent.Network(input_dim=64, encoder=[32], code=16) as deep:
        with pytest.raises(latent.InvalidArgument, match="one-hidden-layer"):
            deep.fit_recirculation(train)
