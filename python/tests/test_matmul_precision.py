"""bfloat16 matrix products from Python: set and read back under PyTorch's and JAX's names, bad
values raise and change nothing, $LATENT_MATMUL_PRECISION read by a fresh process, and a network
trained with bf16 products differs from the f32 one by rounding only."""

import os
import subprocess
import sys

import numpy as np
import pytest

import latent
from conftest import PYDIR


@pytest.fixture
def restore_precision():
    before = latent.matmul_precision()
    yield
    latent.set_matmul_precision(before)


def test_set_and_get(restore_precision):
    assert latent.matmul_precision() == latent.MatmulPrecision.F32
    for name in ["f32", "float32", "highest", latent.MatmulPrecision.F32, 0]:
        latent.set_matmul_precision(name)
        assert latent.matmul_precision() == latent.MatmulPrecision.F32, name
    for name in ["bf16", "BFloat16", "medium", latent.MatmulPrecision.BF16, 1]:
        if latent.bf16_available():
            latent.set_matmul_precision(name)
            assert latent.matmul_precision() == latent.MatmulPrecision.BF16, name
        else:
            with pytest.raises(latent.Unsupported, match="AVX-512 BF16"):
                latent.set_matmul_precision(name)


def test_bad_values_raise_and_change_nothing(restore_precision):
    latent.set_matmul_precision("f32")
    with pytest.raises(ValueError):
        latent.set_matmul_precision("fp8")
    with pytest.raises(latent.InvalidArgument, match="matmul precision 7"):
        latent.set_matmul_precision(7)
    assert latent.matmul_precision() == latent.MatmulPrecision.F32


@pytest.mark.parametrize("value,want", [("bf16", "BF16"), ("medium", "BF16"), ("f32", "F32"), ("fp16", "F32"),
                                        (None, "F32")])
def test_environment_sets_the_default(value, want):
    env = dict(os.environ, PYTHONPATH=PYDIR)
    env.pop("LATENT_MATMUL_PRECISION", None)
    if value is not None:
        env["LATENT_MATMUL_PRECISION"] = value
    out = subprocess.run([sys.executable, "-c", "import latent; print(latent.matmul_precision().name, "
                          "latent.bf16_available())"], env=env, capture_output=True, text=True, check=True)
    name, available = out.stdout.split()
    assert name == (want if available == "True" else "F32")


def test_bf16_training_is_f32_training_up_to_rounding(restore_precision):
    if not latent.bf16_available():
        pytest.skip("this CPU has no AVX-512 BF16")
    rng = np.random.default_rng(0)
    x = rng.random((512, 64), dtype=np.float32)
    codes = {}
    for p in ["f32", "bf16", "bf16"]:
        latent.set_matmul_precision(p)
        net = latent.Network(64, 8, encoder=[32], activation="relu", output_activation="sigmoid", seed=3)
        latent.Trainer(epochs=3, batch_size=64, seed=3, threads=1).fit(net, x)
        codes.setdefault(p, []).append(net.encode(x))
    assert np.array_equal(codes["bf16"][0], codes["bf16"][1]), "two bf16 runs differ"
    assert not np.array_equal(codes["f32"][0], codes["bf16"][0]), "bf16 gave the f32 bits"
    np.testing.assert_allclose(codes["bf16"][0], codes["f32"][0], atol=0.05)
