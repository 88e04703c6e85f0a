"""Optimizer state is kept once, in the flat buffers twin to the parameters (skipnet/optimizers.py): the
numpy backend's reference optimizer updates named views of them, as the cython kernels update them whole.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from _helpers import assert_close

import skipnet as sn
from skipnet.optimizers import make_optimizer

rng = np.random.default_rng(0)
X, Y = rng.normal(size=(12, 3)), rng.normal(size=(12, 2))
SETTINGS = {"sgd": {"momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-2},
            "sgd nesterov": {"momentum": 0.8, "nesterov": True},
            "adam": {"weight_decay": 1e-2}}


def _state(opt) -> list[np.ndarray]:
    return [opt.buffer] if opt.name == "sgd" else [opt.exp_avg, opt.exp_avg_sq]


def _stepped(backend, dtype, kind, steps, written=None):
    """(network, optimizer) after ``steps`` full-batch steps; ``written`` (a function of the state
    buffers) overwrites the state before the last step."""
    net = sn.Network.mlp(3, (5, 4), 2, skip="first-to-output", dtype=dtype, seed=1, backend=backend)
    opt = make_optimizer(net, kind.split()[0], **SETTINGS[kind])
    for step in range(steps):
        if written is not None and step == steps - 1:
            written(_state(opt))
        net.gradients(X, Y, loss="mse")
        opt.step(0.05)
    return net, opt


@pytest.mark.parametrize("kind", list(SETTINGS))
def test_the_state_buffers_are_the_state_on_both_backends(kind, dtype):
    """Values written into the public state buffers between steps are what the next step uses, on the
    numpy backend as on the cython one (the buffers are not copies of a state kept elsewhere)."""
    def write(state):
        for k, buffer in enumerate(state):
            buffer[...] = np.linspace(0.5, 2.0, buffer.size) * (k + 1)

    results = {backend: _stepped(backend, dtype, kind, 3, write) for backend in ("cython", "numpy")}
    untouched, _ = _stepped("numpy", dtype, kind, 3)
    (cy_net, cy_opt), (np_net, np_opt) = results["cython"], results["numpy"]
    for a, b in zip(_state(np_opt), _state(cy_opt)):
        assert_close(a, b, dtype)
    assert_close(np_net.internals.params, cy_net.internals.params, dtype)
    assert not np.allclose(np_net.internals.params, untouched.internals.params)  # the write took effect


@pytest.mark.parametrize("kind", list(SETTINGS))
def test_a_numpy_backend_state_survives_pickling_bit_for_bit(kind, dtype):
    def trainer():
        net = sn.Network.mlp(3, (5, 4), 2, dtype=dtype, seed=1, backend="numpy")
        return sn.Trainer(net, loss="mse", optimizer=kind.split()[0], lr=0.05, batch_size=5, epochs=2, seed=2,
                          **SETTINGS[kind])

    straight, pickled = trainer(), trainer()
    straight.fit(X, Y)
    pickled.fit(X, Y)
    pickled = pickle.loads(pickle.dumps(pickled))
    for t in (straight, pickled):
        t.fit(X, Y)
    np.testing.assert_array_equal(pickled.net.internals.params, straight.net.internals.params)
    for a, b in zip(_state(pickled.optimizer), _state(straight.optimizer)):
        np.testing.assert_array_equal(a, b)
        assert a.any()


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_reset_zeroes_the_state_and_the_next_step_starts_the_momentum(backend, dtype):
    net, opt = _stepped(backend, dtype, "sgd", 2)
    assert opt.buffer.any()
    opt.reset()
    assert not opt.buffer.any() and opt.steps == 0
    net.gradients(X, Y, loss="mse")
    core = net.internals
    # the first step takes d = g + weight_decay p itself as the buffer (not momentum 0 + (1 - dampening) d)
    expected = (core.grads.astype(np.float64) + 1e-2 * core.params).astype(dtype)
    opt.step(0.05)
    if backend == "numpy":
        np.testing.assert_array_equal(opt.buffer, expected)
    else:
        assert_close(opt.buffer, expected, dtype)


def test_count_steps_adds_to_steps_within_its_bound():
    net = sn.Network.mlp(2, (3,), seed=0)
    opt = sn.optimizers.Adam(net)
    opt.count_steps(5)
    opt.count_steps(0)
    assert opt.steps == 5 and type(opt.steps) is int
    for bad, error in ((-1, ValueError), (1.5, TypeError), (True, TypeError), ("2", TypeError)):
        with pytest.raises(error, match="count"):
            opt.count_steps(bad)
    assert opt.steps == 5
    opt.steps = 2**62 - 1
    with pytest.raises(ValueError, match="steps must stay <= 4611686018427387904"):
        opt.count_steps(2)
    assert opt.steps == 2**62 - 1
    trainer = sn.Trainer(net, epochs=1)
    trainer.step_count = 2**62
    with pytest.raises(ValueError, match="step_count and epoch_count must stay"):
        trainer.fit(np.ones((4, 2)), np.ones((4, 1)))
