"""ONNX export from Python: Network.export_onnx and Vae.export_onnx for every part, served by ONNX
Runtime and compared with latent (docs/serving.md); what cannot be exported raises."""

import numpy as np
import pytest

import latent

from conftest import skip


@pytest.fixture(scope="module")
def ort():
    try:
        import onnxruntime
    except ImportError:
        skip("onnxruntime for python3", "python3 -m pip install onnxruntime onnx")
    return onnxruntime


def run(ort, path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def test_network_parts_run_in_onnx_runtime(tmp_path, digits, ort):
    x, _ = digits
    x = np.ascontiguousarray(x[:1000], np.float32)
    net = latent.Network(input_dim=64, encoder=[32], code=8, activation="gelu", seed=1)
    latent.Trainer(epochs=3, batch_size=32, learning_rate=3e-3, seed=2).fit(net, latent.Dataset(x))
    codes = net.encode(x)
    for part, feed, want in [
        ("encoder", x, codes),
        (latent.OnnxPart.DECODER, codes, net.decode(codes)),
        ("reconstruction", x, net.reconstruct(x)),
        (3, x, net.predict(x)),
    ]:
        path = tmp_path / f"{part}.onnx"
        net.export_onnx(path, part=part)
        name = "code" if latent.OnnxPart.coerce(part) == latent.OnnxPart.DECODER else "x"
        (got,) = run(ort, path, {name: feed})
        assert got.shape == want.shape
        assert np.max(np.abs(got - want)) <= 1e-5, part


def test_classifier_predict_gives_probabilities(tmp_path, digits, ort):
    x, y = digits
    clf = latent.Network(input_dim=64, encoder=[32], code=16, task="classify", outputs=10, seed=4)
    latent.Trainer(epochs=2, batch_size=32, learning_rate=3e-3, seed=5).fit(clf, latent.Dataset(x, labels=y))
    clf.export_onnx(tmp_path / "clf.onnx", part="predict")
    (p,) = run(ort, tmp_path / "clf.onnx", {"x": np.asarray(x, np.float32)})
    assert np.allclose(p.sum(1), 1, atol=1e-5)
    assert np.max(np.abs(p - clf.predict(x))) <= 1e-5


def test_vae_parts_run_in_onnx_runtime(tmp_path, digits, ort):
    x, _ = digits
    x = np.ascontiguousarray(x[:500], np.float32)
    vae = latent.Vae(64, 4, [32], [32], activation="relu", seed=3)
    latent.Trainer(epochs=2, batch_size=32, learning_rate=3e-3, seed=2).fit(vae, latent.Dataset(x))
    mean, logvar = vae.encode(x, logvar=True)
    vae.export_onnx(tmp_path / "enc.onnx")
    got_mean, got_logvar = run(ort, tmp_path / "enc.onnx", {"x": x})
    assert np.max(np.abs(got_mean - mean)) <= 1e-5 and np.max(np.abs(got_logvar - logvar)) <= 1e-5
    vae.export_onnx(tmp_path / "dec.onnx", part="decoder")
    (gen,) = run(ort, tmp_path / "dec.onnx", {"z": mean})
    assert np.max(np.abs(gen - vae.generate(mean))) <= 1e-5
    vae.export_onnx(tmp_path / "rec.onnx", part="reconstruction")
    (rec,) = run(ort, tmp_path / "rec.onnx", {"x": x})
    assert np.max(np.abs(rec - vae.reconstruct(x))) <= 1e-5
    with pytest.raises(latent.InvalidArgument):
        vae.export_onnx(tmp_path / "p.onnx", part="predict")


def test_what_cannot_be_exported_raises(tmp_path):
    net = latent.Network(input_dim=6, encoder=[4], code=2, encoder_connections=["memory"], seed=1)
    with pytest.raises(latent.Unsupported, match="memory layer"):
        net.export_onnx(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(ValueError, match="unknown value"):
        net.export_onnx(tmp_path / "m.onnx", part="everything")
    with pytest.raises(latent.InvalidArgument):
        net.export_onnx(tmp_path / "m.onnx", part=9)
