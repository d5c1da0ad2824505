"""The inference cache limit from Python: set and read back, 0 keeps nothing, a limit keeps a
bounded workspace and the codes stay the same bits, bad values raise and change nothing, and
$LATENT_INFERENCE_CACHE_MB read by a fresh process."""

import os
import subprocess
import sys

import numpy as np
import pytest

import latent
from conftest import PYDIR


@pytest.fixture
def restore_limit():
    before = latent.inference_cache().limit
    yield
    latent.set_inference_cache_limit(before)


# In a fresh process, so that no other test's model holds a workspace.
_KEEPING = """
import numpy as np
import latent

rng = np.random.default_rng(4)
x = rng.random((300, 24), dtype=np.float32)
net = latent.Network(24, 8, encoder=[32], seed=4)
latent.Trainer(epochs=1, batch_size=50, seed=4, threads=1).fit(net, x)
latent.set_inference_cache_limit(0)
first = net.encode(x)
assert latent.inference_cache() == (0, 0), latent.inference_cache()
latent.set_inference_cache_limit(4_000_000)
again = net.encode(x)
limit, held = latent.inference_cache()
assert limit == 4_000_000 and 0 < held <= limit, (limit, held)
assert np.array_equal(first, again) and np.array_equal(first, net.encode(x))
latent.set_inference_cache_limit(1)
assert latent.inference_cache() == (1, 0), "lowering the limit frees what was kept at once"
net.close()
assert latent.inference_cache().held == 0, latent.inference_cache()
print("kept", held)
"""


def test_limit_zero_keeps_nothing_and_a_limit_keeps_a_bounded_workspace():
    out = subprocess.run([sys.executable, "-c", _KEEPING], cwd=PYDIR, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("kept ")


def test_bad_values_raise_and_change_nothing(restore_limit):
    latent.set_inference_cache_limit(1 << 20)
    for bad, err in [(-1, ValueError), (1.5, TypeError), ("8", TypeError), (None, TypeError), (True, TypeError)]:
        with pytest.raises(err):
            latent.set_inference_cache_limit(bad)
    assert latent.inference_cache().limit == 1 << 20
    latent.set_inference_cache_limit(np.int64(3 << 20))
    assert latent.inference_cache().limit == 3 << 20


@pytest.mark.parametrize("value,want", [("8", 8 << 20), (None, 256 << 20)])
def test_environment_is_read_by_a_fresh_process(value, want):
    env = dict(os.environ)
    env.pop("LATENT_INFERENCE_CACHE_MB", None)
    if value is not None:
        env["LATENT_INFERENCE_CACHE_MB"] = value
    out = subprocess.run([sys.executable, "-c", "import latent; print(latent.inference_cache().limit)"],
                         env=env, cwd=PYDIR, capture_output=True, text=True, check=True)
    assert int(out.stdout) == want
