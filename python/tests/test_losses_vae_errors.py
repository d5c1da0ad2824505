"""DL4J's losses, the VAE's reconstruction error and the BILBO objective from Python."""

import numpy as np
import pytest

import latent


def test_every_loss_trains_and_scores(digits):
    x, _ = digits
    x = x[:400]
    outputs = {"msle": "softplus", "poisson": "softplus", "kl_divergence": "identity", "mcxent": "identity",
               "binary_cross_entropy": "sigmoid"}
    for loss in latent.Loss:
        out = outputs.get(loss.name.lower(), "sigmoid")
        with latent.Network(input_dim=64, encoder=[32], code=8, loss=loss, output_activation=out, seed=2) as net:
            before = net.reconstruction_error(x).mean()
            latent.Trainer(epochs=5, batch_size=32, learning_rate=3e-3, seed=2).fit(net, latent.Dataset(x))
            after = net.reconstruction_error(x)
            assert after.shape == (400,) and np.all(np.isfinite(after))
            assert after.mean() < before, (loss, before, after.mean())
            if loss in (latent.Loss.KL_DIVERGENCE, latent.Loss.MCXENT):
                # predict is the softmax of the logits the loss trained.
                p = net.predict(x[:3])
                assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    # A pair the loss cannot take: InvalidArgument with the reason.
    with pytest.raises(latent.InvalidArgument, match="softmax"):
        latent.Network(input_dim=64, code=8, loss="mcxent", output_activation="sigmoid")
    with pytest.raises(latent.InvalidArgument, match="positive output"):
        latent.Network(input_dim=64, code=8, loss="poisson", output_activation="tanh")


def test_vae_reconstruction_error_is_the_loss_of_its_reconstruction(digits):
    x, _ = digits
    with latent.Vae(64, 4, encoder=[32], decoder=[32], seed=1) as vae:
        vae.fit(latent.Dataset(x), epochs=3, batch_size=32, learning_rate=3e-3)
        r = vae.reconstruct(x[:50])
        mse = vae.reconstruction_error(x[:50], "mse")
        assert np.allclose(mse, ((r.astype(np.float64) - x[:50]) ** 2).mean(axis=1), rtol=1e-6)
        mae = vae.reconstruction_error(x[:50], latent.Loss.MAE)
        assert np.allclose(mae, np.abs(r.astype(np.float64) - x[:50]).mean(axis=1), rtol=1e-6)
        # The dataset form gives the same numbers; one row gives a scalar.
        assert np.array_equal(vae.reconstruction_error(latent.Dataset(x[:50]), "mse"), mse)
        assert vae.reconstruction_error(x[0], "mse") == mse[0]
        lp = vae.reconstruction_log_probability(x[:5], samples=4, seed=1)
        assert lp.shape == (5,) and np.all(lp < 0)
        with pytest.raises(latent.InvalidArgument):
            vae.reconstruction_error(x[:5], 10)


def test_bilbo_objective(tmp_path, digits):
    x, _ = digits
    with pytest.raises(latent.InvalidArgument, match="constant posterior variance"):
        latent.Vae(64, 4, encoder=[32], decoder=[32], objective="bilbo")
    with latent.Vae(64, 4, encoder=[32], decoder=[32], constant_posterior_variance=1, objective="bilbo",
                    seed=1) as vae:
        assert vae.objective == latent.VaeObjective.BILBO
        before = vae.elbo(latent.Dataset(x)).neg_elbo
        vae.fit(latent.Dataset(x), epochs=5, batch_size=32, learning_rate=3e-3)
        after = vae.elbo(latent.Dataset(x)).neg_elbo
        assert after < 0.8 * before, (before, after)
        assert "objective BILBO" in vae.describe() and "log-variances [" in vae.describe()
        path = tmp_path / "bilbo.latent"
        vae.save(path)
        with latent.Vae.load(path) as back:
            assert back.objective == latent.VaeObjective.BILBO
            assert back.elbo(latent.Dataset(x), seed=3) == vae.elbo(latent.Dataset(x), seed=3)
        vae.objective = "elbo"
        assert vae.objective == latent.VaeObjective.ELBO
