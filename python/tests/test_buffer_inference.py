"""Network.infer_in_place: inference on a float32/float64, C- or Fortran-ordered array read where
it lies (latent_network_*_buffer, the calls the R package uses), bit-identical to encode() etc."""

import numpy as np
import pytest

import latent


@pytest.fixture(scope="module")
def net_and_x():
    rng = np.random.default_rng(5)
    # 3000 rows: three of the library's 1024-row inference blocks, and its threaded path.
    x = rng.random((3000, 20), dtype=np.float32)
    net = latent.Network(input_dim=20, encoder=[16], code=4, seed=3)
    latent.Trainer(epochs=2, batch_size=64, seed=3).fit(net, latent.Dataset(x[:500]))
    return net, x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_every_dtype_and_order_matches_the_float_calls_bit_for_bit(net_and_x, dtype, order):
    net, x = net_and_x
    xa = np.asarray(x, dtype=dtype, order=order)
    for what, want in [("encode", net.encode(x)), ("reconstruct", net.reconstruct(x)), ("predict", net.predict(x))]:
        got = net.infer_in_place(xa, what)
        assert got.dtype == dtype and got.flags[order + "_CONTIGUOUS"], what
        np.testing.assert_array_equal(got, want.astype(dtype))
    np.testing.assert_array_equal(net.infer_in_place(xa, "reconstruction_error"), net.reconstruction_error(x))
    assert net.infer_in_place(xa, "loss") == net.loss(latent.Dataset(x))


def test_bad_input_raises_the_library_errors(net_and_x):
    net, x = net_and_x
    with pytest.raises(latent.ShapeMismatch):
        net.infer_in_place(np.asfortranarray(x[:, :19], np.float64))
    bad = np.asfortranarray(x[:4], np.float64)
    bad[1, 2] = np.nan
    with pytest.raises(latent.NonFinite, match="row 1, column 2"):
        net.infer_in_place(bad, "reconstruct")
    with pytest.raises(latent.InvalidArgument, match="no rows"):
        net.infer_in_place(np.zeros((0, 20)), "loss")
    with pytest.raises(ValueError):
        net.infer_in_place(x, "everything")
