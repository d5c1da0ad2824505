"""The input scaling travels with the model (docs/data.md): stored by a fit on a scaled
dataset, saved, and applied by the model itself in raw-input mode."""

import numpy as np
import pytest

import latent


def raw_rows(n, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, n, 1))
    j = np.arange(6)
    return (100.0 * j + (j + 1) * (a * np.cos(0.7 * j) + b * np.sin(0.7 * j))).astype(np.float32)


def test_raw_rows_give_what_the_scaled_rows_give_and_the_file_keeps_it(tmp_path):
    train = latent.Dataset(raw_rows(512, 1))
    train.scale("z_score")
    net = latent.Network(input_dim=6, encoder=[8], code=2, output_activation="identity", loss="mse", seed=3)
    assert net.scaling[0] == latent.Scaling.NONE
    latent.Trainer(epochs=40, batch_size=32, learning_rate=1e-2, seed=0).fit(net, train)
    method, mean, std = net.scaling
    assert method == latent.Scaling.Z_SCORE
    x = raw_rows(32, 2)
    assert mean.shape == (6,) and std.shape == (6,)
    by_hand = ((x - mean) / std).astype(np.float32)
    want = net.encode(by_hand)
    net.raw_input = True
    np.testing.assert_array_equal(net.encode(x), want)
    path = tmp_path / "net.latent"
    net.save(str(path))
    served = latent.Network.load(str(path))
    assert served.raw_input
    np.testing.assert_array_equal(served.encode(x), want)
    # Reconstructions come back in raw units: the error is small next to the features' scale.
    r = served.reconstruct(x)
    assert np.abs(r - x).mean() < 0.2 * np.abs(x - x.mean(axis=0)).mean()
    with pytest.raises(latent.ShapeMismatch):
        served.set_scaling("z_score", [0.0] * 5, [1.0] * 5)
    with pytest.raises(latent.InvalidArgument):
        served.set_scaling("z_score", [0.0] * 6, [-1.0] * 6)
