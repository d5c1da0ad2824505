"""Streamed training from .npy files (latent.NpyStream, Network.fit_stream): the streamed fit
equals the in-memory fit when one window holds every row, shards equal the file, the block
shuffle learns, and bad files raise the library's errors."""

import numpy as np
import pytest

import latent


def _net(seed=0):
    return latent.Network(16, 4, [8], seed=seed)


def _rows(n=2000, seed=1):
    rng = np.random.default_rng(seed)
    base = rng.random((8, 16), dtype=np.float32)
    return np.clip(base[rng.integers(0, 8, n)] + 0.05 * rng.standard_normal((n, 16)), 0, 1).astype(np.float32)


def test_one_window_stream_equals_in_memory_fit_and_shards_equal_the_file(tmp_path):
    x = _rows()
    np.save(tmp_path / "x.npy", x)
    kw = dict(epochs=3, batch_size=32, seed=5, threads=1)
    mem = _net()
    mem.fit(x, **kw)
    streamed = _net()
    t = streamed.fit_stream(tmp_path / "x.npy", **kw)
    assert np.array_equal(streamed.params, mem.params)
    assert len(t.history()) == 3
    shards = tmp_path / "shards"
    shards.mkdir()
    np.save(shards / "a.npy", x[:700])
    np.save(shards / "b.npy", x[700:].astype(np.float64))
    s = latent.NpyStream(shards)
    assert s.shape == (2000, 16)
    from_shards = _net()
    from_shards.fit_stream(s, **kw)
    assert np.array_equal(from_shards.params, mem.params)
    listed = _net()
    listed.fit_stream([shards / "a.npy", shards / "b.npy"], **kw)
    assert np.array_equal(listed.params, mem.params)


def test_block_shuffled_stream_learns_and_repeats(tmp_path):
    x = _rows(4000)
    np.save(tmp_path / "x.npy", x)
    runs = []
    for _ in range(2):
        net = _net()
        t = net.fit_stream(tmp_path / "x.npy", block_rows=50, window_blocks=4, epochs=5, batch_size=32,
                           seed=2, threads=1)
        runs.append((net.params.copy(), [h.train_loss for h in t.history()]))
    assert np.array_equal(runs[0][0], runs[1][0])
    losses = runs[0][1]
    assert losses[-1] < 0.5 * losses[0], losses


def test_bad_files_raise(tmp_path):
    with pytest.raises(latent.LatentIOError):
        latent.NpyStream(tmp_path / "missing.npy")
    np.save(tmp_path / "ints.npy", np.zeros((4, 3), np.int32))
    with pytest.raises(latent.BadFormat):
        latent.NpyStream(tmp_path / "ints.npy")
    np.save(tmp_path / "fortran.npy", np.asfortranarray(np.zeros((4, 3), np.float32)))
    with pytest.raises(latent.BadFormat):
        latent.NpyStream(tmp_path / "fortran.npy")
    np.save(tmp_path / "a.npy", np.zeros((4, 3), np.float32))
    np.save(tmp_path / "b.npy", np.zeros((4, 5), np.float32))
    with pytest.raises(latent.ShapeMismatch):
        latent.NpyStream([tmp_path / "a.npy", tmp_path / "b.npy"])
    s = latent.NpyStream(tmp_path / "a.npy")
    with pytest.raises(latent.InvalidArgument):
        s.set_shuffle(0, 4)
    with pytest.raises(latent.ShapeMismatch):
        _net().fit_stream(s, epochs=1)
    with pytest.raises(latent.Unsupported):
        latent.Network(3, 2).fit_stream(
            s, epochs=1, validation_fraction=0.5)
