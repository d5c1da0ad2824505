"""Checkpoint and resume from Python: a fit stopped by its progress callback right after
Trainer.checkpoint(), resumed with Trainer.resume() into new objects, ends with the parameters,
history (losses and learning rates) and model file of the uninterrupted fit, bit for bit."""

import numpy as np
import pytest

import latent


def rows(seed=0, n=600, d=16):
    rng = np.random.default_rng(seed)
    basis = rng.random((3, d))
    return np.clip(rng.random((n, 3)) @ basis / 3 + 0.05 * rng.random((n, d)), 0, 1).astype(np.float32)


PARAMS = dict(epochs=6, batch_size=128, learning_rate=0.01, seed=4, threads=1, lr_schedule="cosine",
              warmup_steps=3, validation_fraction=0.2, early_stopping_patience=3)


def history(tr):
    return [(h.train_loss, h.train_penalty, h.valid_loss, h.learning_rate) for h in tr.history()]


def same_history(a, b):
    return len(a) == len(b) and all(np.array_equal(np.array(x), np.array(y), equal_nan=True) for x, y in zip(a, b))


def make_net():
    return latent.Network(input_dim=16, encoder=[12], code=4, seed=1, corruption="masking", corruption_level=0.2)


def make_vae():
    return latent.Vae(16, 3, encoder=[12], decoder=[12], seed=1)


@pytest.mark.parametrize("make", [make_net, make_vae], ids=["network", "vae"])
def test_stopped_and_resumed_fit_is_bit_identical(tmp_path, make):
    x = rows()
    straight, tr = make(), latent.Trainer(**PARAMS)
    assert tr.fit(straight, x) is True
    want = (straight.params.copy(), history(tr))
    straight.save(tmp_path / "straight.latent")

    model, tr = make(), latent.Trainer(**PARAMS)
    ck = tmp_path / "job.ck"

    def progress(p):
        if p.event == latent.Event.EPOCH_END and p.epoch == 2:
            tr.checkpoint(ck)
            return True  # the job's time is up
        return False

    assert tr.fit(model, x, progress=progress) is False
    del model, tr

    tr, model = latent.Trainer.resume(ck)
    assert type(model) is type(straight)
    assert tr.fit(model, x) is True
    assert np.array_equal(model.params, want[0])
    assert same_history(history(tr), want[1])
    model.save(tmp_path / "resumed.latent")
    assert (tmp_path / "resumed.latent").read_bytes() == (tmp_path / "straight.latent").read_bytes()


def test_periodic_checkpoints_and_bad_files(tmp_path):
    x = rows(1)
    ck = tmp_path / "periodic.ck"
    straight, tr = make_net(), latent.Trainer(**PARAMS)
    tr.fit(straight, x)
    net, tr = make_net(), latent.Trainer(**PARAMS, checkpoint_path=str(ck), checkpoint_every=2)
    # Outside a fit there is no state to checkpoint.
    with pytest.raises(latent.InvalidArgument):
        tr.checkpoint(tmp_path / "nothing.ck")
    assert tr.fit(net, x, progress=lambda p: p.epoch == 4) is False
    tr, net = latent.Trainer.resume(ck)
    tr.fit(net, x)
    assert np.array_equal(net.params, straight.params)
    # Other rows are refused; damaged files are BadFormat.
    tr2, net2 = latent.Trainer.resume(ck)
    with pytest.raises(latent.InvalidArgument, match="differ"):
        tr2.fit(net2, rows(2))
    b = ck.read_bytes()
    (tmp_path / "cut.ck").write_bytes(b[:-1])
    (tmp_path / "flip.ck").write_bytes(b[:100] + bytes([b[100] ^ 1]) + b[101:])
    for name in ["cut.ck", "flip.ck"]:
        with pytest.raises(latent.BadFormat):
            latent.Trainer.resume(tmp_path / name)
