"""Ctrl-C during a fit: it takes effect at the next whole step, within a fraction of a second, leaves a
consistent trainer (weights, optimizer state, counters, schedule, History), and ``resume()`` finishes the
fit bit for bit as an uninterrupted one would. Fused calls pause every PAUSE_SECONDS to make that so; a fit
paused after every few steps (mid-epoch) equals one that never paused."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import skipnet as sn
from skipnet import trainer as trainer_module

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signals reach the main thread only")


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, np.sin(X[:, :1]) + X[:, 1:2] * X[:, 2:]


def _trainer(fused, optimizer="adam", schedule=None, epochs=6, batch_size=10, seed=0):
    net = sn.Network.mlp(3, (8, 8), skip="first-to-output", seed=seed)
    return sn.Trainer(net, loss="mse", optimizer=optimizer, lr=0.01, momentum=0.9 if optimizer == "sgd" else 0.0,
                      batch_size=batch_size, epochs=epochs, schedule=schedule, seed=seed, fused=fused,
                      diagnose=False)


def _state(trainer, hist):
    opt = trainer.optimizer
    buffers = [opt.exp_avg, opt.exp_avg_sq] if opt.name == "adam" else [opt.buffer]
    return {"params": trainer.net.internals.params.copy(), "opt": [b.copy() for b in buffers],
            "opt_steps": opt.steps, "steps": trainer.step_count, "epochs": trainer.epoch_count,
            "rng": str(trainer.rng.bit_generator.state), "step_loss": hist.step_loss.copy(),
            "epoch_loss": hist.epoch_loss.copy(), "lr": hist.lr.copy(), "stopped": hist.stopped_reason}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        elif isinstance(a[key], list):
            for x, y in zip(a[key], b[key]):
                np.testing.assert_array_equal(x, y, err_msg=key)
        else:
            assert a[key] == b[key], key


class _InterruptAtStep:
    """A schedule (constant rate) that presses Ctrl-C when asked for the rate of step ``at``."""

    def __init__(self, at, lr=0.01):
        self.at, self.rate, self.pressed = at, lr, False

    def lr(self, step, epoch):
        if step == self.at and not self.pressed:  # the fused path may ask for a rate twice
            self.pressed = True
            os.kill(os.getpid(), signal.SIGINT)
        return self.rate


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per-op"])
@pytest.mark.parametrize("at", [0, 7, 10, 33, 58])  # first step, mid-epoch, an epoch's first, the last but one
def test_interrupted_then_resumed_equals_uninterrupted(fused, at, monkeypatch):
    monkeypatch.setattr(trainer_module, "PAUSE_SECONDS", 1e-5)  # fused calls pause after a step or two
    X, y = _data()
    reference = _trainer(fused, schedule=_InterruptAtStep(at=-1))
    expected = _state(reference, reference.fit(X, y))

    trainer = _trainer(fused, schedule=_InterruptAtStep(at=at))
    with pytest.raises(KeyboardInterrupt, match="resume"):
        trainer.fit(X, y)
    # consistent at a whole step: every counter and the History agree
    hist = trainer.history
    assert trainer.step_count == trainer.optimizer.steps == len(hist.step_loss) == len(hist.lr)
    assert trainer.step_count >= 1 if fused else trainer.step_count == at + 1
    assert trainer.epoch_count == len(hist.epoch_loss)
    _assert_same(_state(trainer, trainer.resume()), expected)
    with pytest.raises(RuntimeError, match="no interrupted fit"):
        trainer.resume()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fused_calls_that_pause_mid_epoch_match_calls_that_never_pause(optimizer, monkeypatch):
    X, y = _data(n=97)  # a last, smaller batch in each epoch
    monkeypatch.setattr(trainer_module, "PAUSE_SECONDS", 0.0)  # never pauses
    whole = _trainer(True, optimizer=optimizer, schedule=sn.CosineLR(warmup=5))
    expected = _state(whole, whole.fit(X, y))
    per_op = _trainer(False, optimizer=optimizer, schedule=sn.CosineLR(warmup=5))
    _assert_same(_state(per_op, per_op.fit(X, y)), expected)
    monkeypatch.setattr(trainer_module, "PAUSE_SECONDS", 1e-7)  # pauses after nearly every step
    paused = _trainer(True, optimizer=optimizer, schedule=sn.CosineLR(warmup=5))
    _assert_same(_state(paused, paused.fit(X, y)), expected)


def test_width1_scalar_path_pauses_and_resumes_bitwise(monkeypatch):
    X, y = np.linspace(-1, 1, 13)[:, None], np.linspace(1, -1, 13)[:, None]

    def run(pause):
        monkeypatch.setattr(trainer_module, "PAUSE_SECONDS", pause)
        net = sn.Network.exercise()
        trainer = sn.Trainer(net, loss="l1", lr=0.01, batch_size=4, epochs=50, diagnose=False)
        return _state(trainer, trainer.fit(X, y))

    _assert_same(run(1e-7), run(0.0))


def test_ctrl_c_stops_a_long_fused_fit_promptly():
    """131,072 epochs of 8 rows in one multi-epoch call used to hold Ctrl-C for 22-118 s; 2**21 epochs
    here, so that the fit outlasts the timer on a fast machine."""
    X, y = _data(n=8)
    trainer = _trainer(True, optimizer="sgd", epochs=1 << 21, batch_size=8)
    sent = []

    def press():
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.1, press)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            trainer.fit(X, y)
        latency = time.perf_counter() - sent[0]
    finally:
        timer.cancel()
    assert trainer.epoch_count < 1 << 21
    assert trainer.step_count == trainer.optimizer.steps == len(trainer.history.step_loss)
    # PAUSE_SECONDS is 0.05; a loaded machine may add scheduling delay, never tens of seconds
    assert latency < 1.0, latency
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_a_new_fit_discards_the_interrupted_one():
    X, y = _data()
    trainer = _trainer(False, schedule=_InterruptAtStep(at=3))
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(X, y)
    trainer.schedule = None
    trainer.fit(X, y)
    with pytest.raises(RuntimeError, match="no interrupted fit"):
        trainer.resume()


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "per-op"])
def test_ctrl_c_in_the_last_step_still_interrupts_with_the_fit_whole(fused):
    X, y = _data()
    reference = _trainer(fused)
    expected = _state(reference, reference.fit(X, y))
    trainer = _trainer(fused, schedule=_InterruptAtStep(at=59))  # 6 epochs of 10 steps
    with pytest.raises(KeyboardInterrupt, match="nothing left to do"):
        trainer.fit(X, y)
    _assert_same(_state(trainer, trainer.history), expected)
    with pytest.raises(RuntimeError, match="no interrupted fit"):
        trainer.resume()


def test_a_width1_fit_resumed_mid_epoch_on_the_fused_path_equals_the_uninterrupted_one():
    """The scalar path's loop starts only at epoch starts; a fit resumed mid-epoch (here interrupted on
    the per-op path) takes the general fused loop for its steps, with the same bits."""
    X, y = np.linspace(-1, 1, 13)[:, None], np.linspace(1, -1, 13)[:, None]

    def trainer(fused, schedule=None):
        return sn.Trainer(sn.Network.exercise(), loss="l1", lr=0.01, batch_size=4, epochs=5,
                          diagnose=False, fused=fused, schedule=schedule)

    reference = trainer(True, _InterruptAtStep(at=-1))
    expected = _state(reference, reference.fit(X, y))
    interrupted = trainer(False, _InterruptAtStep(at=5))  # 4 steps an epoch: mid-epoch
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(X, y)
    interrupted.fused = True
    _assert_same(_state(interrupted, interrupted.resume()), expected)
