"""Devices from Python: without a GPU every call says so (Unsupported) and the network stays on
the CPU; with one, a network trains there and its codes match its CPU copy."""

import numpy as np
import pytest

import latent


def test_devices_are_listed_or_unsupported():
    d = latent.devices()
    assert isinstance(d, list)
    assert latent.cuda_available() == (len(d) > 0)
    for g in d:
        assert g["name"] and g["total_memory"] > 0


def test_a_network_moves_to_a_gpu_or_stays_on_the_cpu():
    net = latent.Network(input_dim=16, code=4, encoder=[8])
    assert net.device == ("cpu", 0)
    x = np.random.default_rng(0).random((200, 16), dtype=np.float32)
    if not latent.cuda_available():
        with pytest.raises(latent.Unsupported):
            net.to_device("cuda", 0)
        assert net.device == ("cpu", 0)
        with pytest.raises(latent.Unsupported):
            net.set_tf32(True)
        with pytest.raises(latent.InvalidArgument):
            net.to_device("cuda", -1)
        vae = latent.Vae(input_dim=16, latent_dim=2)
        with pytest.raises(latent.Unsupported):
            vae.to_device("cuda")
        assert vae.device == ("cpu", 0)
        return
    net.to_device("cuda", 0)
    assert net.device == ("cuda", 0)
    latent.Trainer(epochs=2).fit(net, latent.Dataset(x))
    gpu = net.encode(x)
    net.to_device("cpu")
    np.testing.assert_allclose(gpu, net.encode(x), rtol=1e-4, atol=1e-5)
