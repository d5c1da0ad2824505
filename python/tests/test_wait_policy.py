"""The pools' wait policy from Python: set and read back, OpenMP's names, bad values raise,
$LATENT_WAIT_POLICY read by a fresh process, and training bit-identical under every policy."""

import os
import subprocess
import sys

import numpy as np
import pytest

import latent
from conftest import PYDIR


@pytest.fixture
def restore_policy():
    before = latent.wait_policy()
    yield
    latent.set_wait_policy(before)


def test_set_and_get(restore_policy):
    for name, want in [("spin", latent.WaitPolicy.SPIN), ("spin-then-park", latent.WaitPolicy.SPIN_THEN_PARK),
                       ("park", latent.WaitPolicy.PARK), ("active", latent.WaitPolicy.SPIN),
                       ("Passive", latent.WaitPolicy.PARK), (latent.WaitPolicy.SPIN, latent.WaitPolicy.SPIN), (2, 2)]:
        latent.set_wait_policy(name)
        assert latent.wait_policy() == want, name


def test_bad_values_raise_and_change_nothing(restore_policy):
    latent.set_wait_policy("park")
    with pytest.raises(ValueError):
        latent.set_wait_policy("turbo")
    with pytest.raises(latent.InvalidArgument, match="wait policy 7"):
        latent.set_wait_policy(7)
    assert latent.wait_policy() == latent.WaitPolicy.PARK


@pytest.mark.parametrize("value,want", [("passive", "PARK"), ("spin", "SPIN"), ("nonsense", "SPIN_THEN_PARK"),
                                        (None, "SPIN_THEN_PARK")])
def test_the_environment_sets_the_default(value, want):
    env = {k: v for k, v in os.environ.items() if k != "LATENT_WAIT_POLICY"}
    if value is not None:
        env["LATENT_WAIT_POLICY"] = value
    r = subprocess.run([sys.executable, "-c", "import latent; print(latent.wait_policy().name)"],
                       cwd=str(PYDIR), env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == want


def test_training_is_bit_identical_under_every_policy(restore_policy):
    x = np.random.default_rng(3).random((1024, 64), dtype=np.float32)
    results = {}
    for policy in ("spin", "spin-then-park", "park"):
        latent.set_wait_policy(policy)
        with latent.Network(input_dim=64, encoder=[48], code=16, seed=1) as net:
            latent.Trainer(epochs=2, batch_size=128, learning_rate=1e-3, seed=2, threads=2).fit(net, latent.Dataset(x))
            results[policy] = net.params.copy()
    assert np.array_equal(results["spin"], results["park"])
    assert np.array_equal(results["spin"], results["spin-then-park"])
