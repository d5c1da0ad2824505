"""What an outside test of the binding found (stop 41), each checked as a user would meet it:
closing a handle a fit uses, copying a handle, Ctrl-C during a fit, a fork()ed child, a library
of another version, integers that do not fit their C fields, and a Dataset where an array is
taken. Each test fails against the binding before the fix (a crash, a hang, a silent wrap)."""

import copy
import multiprocessing
import os
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest

import latent
from conftest import PYDIR

RNG = np.random.default_rng(41)
X = RNG.random((400, 16), dtype=np.float32)


def _net(**kw):
    return latent.Network(16, 4, encoder=[12], seed=1, **kw)


# --- closing what a fit uses -----------------------------------------------------------------


@pytest.mark.parametrize("which", ["net", "data", "trainer"])
def test_closing_what_a_fit_uses_from_its_callback_is_busy(which):
    net, data, tr = _net(), latent.Dataset(X), latent.Trainer(epochs=3, batch_size=50, threads=1)
    target = {"net": net, "data": data, "trainer": tr}[which]
    seen = []

    def progress(p):
        with pytest.raises(latent.Busy, match="in use by a running fit"):
            target.close()
        seen.append(p.epoch)

    assert tr.fit(net, data, progress=progress) is True
    assert seen == [0, 1, 2]
    # Still usable after the fit, and closing works then.
    assert net.encode(X[:2]).shape == (2, 4) and data.rows == 400
    target.close()
    target.close()


def test_closing_a_model_from_another_thread_during_a_fit_is_busy():
    net, tr = _net(), latent.Trainer(epochs=40, batch_size=20, threads=1)
    started, outcome = threading.Event(), {}

    def progress(p):
        started.set()

    def closer():
        started.wait(30)
        try:
            net.close()
            outcome["closed"] = True
        except latent.Busy:
            outcome["busy"] = True

    t = threading.Thread(target=closer)
    t.start()
    tr.fit(net, X, progress=progress)
    t.join()
    assert outcome == {"busy": True}
    assert np.all(np.isfinite(net.encode(X[:3])))


# --- copies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: latent.Dataset(X), lambda: latent.Trainer(), lambda: latent.MonteCarlo(3)])
def test_handles_without_a_copy_refuse_copy_deepcopy_and_pickle(make):
    h = make()
    for f in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match="owns a library handle and cannot be copied"):
            f(h)
    del h  # one free, no double free


def test_a_network_copy_is_an_independent_model():
    net = _net()
    c = copy.copy(net)
    assert np.array_equal(c.encode(X[:5]), net.encode(X[:5]))
    net.close()
    assert c.encode(X[:5]).shape == (5, 4)


# --- Ctrl-C ------------------------------------------------------------------------------------

_INTERRUPT = r"""
import os, signal, sys, threading, time
import numpy as np
import latent

x = np.random.default_rng(1).random((3000, 64), dtype=np.float32)
with_cb = sys.argv[1] == "cb"
for run in range(5):
    net = latent.Network(64, 8, encoder=[64], seed=run)
    tr = latent.Trainer(epochs=1000, batch_size=30, threads=1)
    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    t0 = time.time()
    try:
        tr.fit(net, x, progress=(lambda p: None) if with_cb else None)
        print("not interrupted"); sys.exit(2)
    except KeyboardInterrupt:
        pass
    assert time.time() - t0 < 30, "the interrupt waited for the end of the fit"
    assert 0 < len(tr.history()) < 1000
    assert net.encode(x[:2]).shape == (2, 8)  # still usable
print("interrupted 5 of 5")
"""


@pytest.mark.parametrize("mode", ["cb", "nocb"])
def test_ctrl_c_stops_a_fit_with_keyboardinterrupt(mode):
    out = subprocess.run([sys.executable, "-c", _INTERRUPT, mode], cwd=PYDIR, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and "interrupted 5 of 5" in out.stdout, out.stdout + out.stderr
    assert "Exception ignored" not in out.stderr, out.stderr


# --- fork ----------------------------------------------------------------------------------------


def _child_fit(q):
    net = latent.Network(16, 4, encoder=[12], seed=1)
    latent.Trainer(epochs=2, batch_size=50, threads=2).fit(net, X)
    q.put(net.encode(X[:3]).tolist())


def test_a_forked_child_trains_after_the_parent_did():
    # In a fresh interpreter: forking this test process (with pytest's threads) proves nothing.
    code = (
        "import multiprocessing as mp, numpy as np, latent\n"
        "import test_outside_findings as t\n"
        "net = latent.Network(16, 4, encoder=[12], seed=1)\n"
        "latent.Trainer(epochs=2, batch_size=50, threads=2).fit(net, t.X)\n"
        "want = net.encode(t.X[:3]).tolist()\n"
        "ctx = mp.get_context('fork'); q = ctx.Queue(); p = ctx.Process(target=t._child_fit, args=(q,))\n"
        "p.start(); got = q.get(timeout=60); p.join(60)\n"
        "assert p.exitcode == 0 and got == want, (p.exitcode, got, want)\n"
        "print('child ok')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PYDIR), os.path.dirname(__file__)]))
    out = subprocess.run([sys.executable, "-c", code], cwd=PYDIR, env=env, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0 and "child ok" in out.stdout, out.stdout + out.stderr


# --- another library -----------------------------------------------------------------------------


def test_a_library_that_is_not_latent_is_an_importerror():
    import ctypes.util

    libm = ctypes.util.find_library("m")
    if libm is None:
        pytest.skip("no libm to stand in for a foreign library")
    env = dict(os.environ, LATENT_LIBRARY=libm)
    out = subprocess.run([sys.executable, "-c", "import latent"], cwd=PYDIR, env=env, capture_output=True,
                         text=True)
    assert out.returncode != 0 and "ImportError" in out.stderr and "AttributeError" not in out.stderr, out.stderr


# --- integers -----------------------------------------------------------------------------------


def test_integers_that_do_not_fit_are_refused_not_wrapped():
    with pytest.raises(ValueError, match="input_dim"):
        latent.Network(2**32 + 10, 4, encoder=[8])
    with pytest.raises(TypeError, match="code"):
        latent.Network(16, 2.7, encoder=[8])
    with pytest.raises(TypeError, match="string"):
        latent.Network(16, 4, encoder="32")
    with pytest.raises(ValueError, match="threads"):
        latent.Trainer(threads=-1)
    with pytest.raises(ValueError, match="samples"):
        latent.MonteCarlo(3, samples=-1)
    with pytest.raises(TypeError, match="epochs"):
        latent.Trainer(epochs="2")
    with pytest.raises(ValueError, match="int32"):
        latent.Dataset(X[:3]).labels = [0, 1, 2**32 + 1]
    # What is meant stays accepted: integral floats, NumPy integers, bools.
    tr = latent.Trainer(epochs=2.0, batch_size=np.int64(50), shuffle=True)
    assert tr.params["epochs"] == 2 and tr.params["batch_size"] == 50 and tr.params["shuffle"] == 1


# --- a Dataset where an array is taken ------------------------------------------------------


def test_a_dataset_is_taken_wherever_an_array_is():
    net = _net()
    d = latent.Dataset(X[:20])
    codes = net.encode(d)
    assert np.array_equal(codes, net.encode(X[:20]))
    assert np.array_equal(net.decode(latent.Dataset(codes)), net.decode(codes))
    vae = latent.Vae(16, 3, encoder=[8], decoder=[8], seed=2)
    assert np.array_equal(vae.encode(d), vae.encode(X[:20]))


# --- supervised defaults -------------------------------------------------------------------------


def test_a_regressor_fits_real_targets_without_setting_its_output():
    # Real-valued targets (negative and above 1): the sigmoid output default refused them.
    y = (X[:, :2] * 4.0 - 1.5).astype(np.float32)
    data = latent.Dataset(X, targets=y)
    net = latent.Network(16, 6, encoder=[24], task="regress", outputs=2, seed=3)
    latent.Trainer(epochs=30, batch_size=40, learning_rate=3e-3, threads=1).fit(net, data)
    pred = net.predict(X)
    mse = float(np.mean((pred - y) ** 2))
    assert mse < 0.1 * float(np.var(y)), (mse, float(np.var(y)))
    # An explicit output activation is kept: a sigmoid head cannot reach these targets.
    sig = latent.Network(16, 6, encoder=[24], task="regress", outputs=2, seed=3, output_activation="sigmoid")
    with pytest.raises(latent.LatentError, match="sigmoid|range|output"):
        latent.Trainer(epochs=1, threads=1).fit(sig, data)


def test_the_pyod_detector_sets_n_features_in():
    est = pytest.importorskip("latent.estimators")
    if getattr(est, "AutoencoderDetector", None) is None:
        pytest.skip("PyOD is not installed")
    det = est.AutoencoderDetector(epochs=1, seed=1, threads=1).fit(X)
    assert det.n_features_in_ == 16
