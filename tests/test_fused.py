"""The fused path (whole epochs per kernel call) against the per-op path and the NumPy reference.

The fused path runs the per-op path's cores in the same order, so on the batch path the two agree to the
last bit; width-1 networks take the scalar path, which agrees exactly at batch size 1 and to rounding
above it (sums over rows in another order). Guards, schedules, callbacks, random draws and optimizer state
must behave as on the per-op path.
"""

import functools
import threading
import tracemalloc

import numpy as np
import pytest
from _helpers import assert_close, assert_same_states, failed_fit_states, random_architecture, random_targets

import skipnet as sn
from skipnet import _kernels as K

OPTIMIZERS = [
    {"optimizer": "sgd"},
    {"optimizer": "sgd", "momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-3},
    {"optimizer": "sgd", "momentum": 0.8, "nesterov": True},
    {"optimizer": "adam", "weight_decay": 1e-4},
]


def _architecture(rng, loss):
    n_inputs, layers, skips = random_architecture(rng)
    while loss == "cross_entropy" and layers[-1].units < 2:
        n_inputs, layers, skips = random_architecture(rng)
    return n_inputs, layers, skips


def _fit_both(make_net, X, y, **options):
    """(history, network, trainer) for the fused and the per-op path from the same start."""
    out = []
    for fused in (True, False):
        net = make_net()
        trainer = sn.Trainer(net, fused=fused, **options)
        out.append((trainer.fit(X, y), net, trainer))
    return out


def _assert_same_run(fused, per_op, exact=True, dtype="float64"):
    (hf, nf, tf), (hp, np_, tp) = fused, per_op
    assert hf.stopped_reason == hp.stopped_reason
    assert [str(w) for w in hf.warnings] == [str(w) for w in hp.warnings]
    assert (hf.steps_run, hf.epochs_run) == (hp.steps_run, hp.epochs_run)
    assert (tf.step_count, tf.epoch_count, tf.optimizer.steps) == (tp.step_count, tp.epoch_count, tp.optimizer.steps)
    np.testing.assert_array_equal(hf.lr, hp.lr)
    if exact:
        for a, b in [(hf.step_loss, hp.step_loss), (hf.epoch_loss, hp.epoch_loss), (hf.val_loss, hp.val_loss),
                     (nf.internals.params, np_.internals.params)]:
            np.testing.assert_array_equal(a, b)
    else:
        assert_close(hf.step_loss, hp.step_loss, dtype, scale=np.abs(hp.step_loss).max())
        assert_close(nf.internals.params, np_.internals.params, dtype, scale=100 * np.abs(np_.internals.params).max())


@pytest.mark.parametrize("case", range(8))
@pytest.mark.parametrize("loss", ["l1", "mse", "bce", "cross_entropy"])
def test_fused_is_the_per_op_path_bit_for_bit(case, loss, dtype):
    rng = np.random.default_rng(100 + case)
    n_inputs, layers, skips = _architecture(rng, loss)
    X = rng.normal(size=(29, n_inputs))  # 29 rows: a partial last batch at every batch size below
    y = random_targets(rng, loss, 29, layers[-1].units)
    options = OPTIMIZERS[case % len(OPTIMIZERS)]
    runs = _fit_both(lambda: sn.Network(n_inputs, layers, skips, dtype=dtype, seed=case), X, y, loss=loss,
                     lr=0.02, batch_size=int(rng.integers(1, 9)), epochs=5, shuffle=bool(case % 2), seed=case,
                     **options)
    _assert_same_run(*runs)
    opt_f, opt_p = runs[0][2].optimizer, runs[1][2].optimizer
    for name in ("buffer", "exp_avg", "exp_avg_sq"):
        if hasattr(opt_f, name):
            np.testing.assert_array_equal(getattr(opt_f, name), getattr(opt_p, name))


@pytest.mark.parametrize("case", range(4))
def test_fused_both_product_paths_and_simd(case, blas_path, simd):
    rng = np.random.default_rng(200 + case)
    n_inputs, layers, skips = _architecture(rng, "mse")
    X, y = rng.normal(size=(40, n_inputs)), rng.normal(size=(40, layers[-1].units))
    runs = _fit_both(lambda: sn.Network(n_inputs, layers, skips, dtype="float32", seed=case), X, y,
                     loss="mse", lr=0.01, batch_size=7, epochs=3, **OPTIMIZERS[case])
    _assert_same_run(*runs)


@pytest.mark.parametrize("case", range(6))
def test_fused_follows_the_reference_over_many_steps(case, dtype, simd):
    rng = np.random.default_rng(300 + case)
    loss = ["l1", "mse", "bce", "cross_entropy"][case % 4]
    n_inputs, layers, skips = _architecture(rng, loss)
    X = rng.normal(size=(50, n_inputs))
    y = random_targets(rng, loss, 50, layers[-1].units)
    hists, nets = [], []
    for backend in ("cython", "numpy"):
        net = sn.Network(n_inputs, layers, skips, dtype=dtype, seed=case, backend=backend)
        hists.append(sn.Trainer(net, loss=loss, lr=0.01, batch_size=8, epochs=12, seed=3,
                                **OPTIMIZERS[case % len(OPTIMIZERS)]).fit(X, y))
        nets.append(net)
    assert hists[0].steps_run == hists[1].steps_run == 12 * 7
    assert_close(hists[0].step_loss, hists[1].step_loss, dtype, scale=np.abs(hists[1].step_loss).max())
    scale = np.abs(nets[1].internals.params).max() * (100 if dtype == "float32" else 1)
    assert_close(nets[0].internals.params, nets[1].internals.params, dtype, scale=scale)


def _width1_network(rng, dtype, seed):
    """A random chain of width-1 layers (the exercise's kind): relu or identity, biases, skips."""
    depth = int(rng.integers(1, 6))
    layers = [sn.Dense(1, "relu" if rng.random() < 0.8 else "identity", bool(rng.integers(2)))
              for _ in range(depth - 1)] + [sn.Dense(1, "identity", bool(rng.integers(2)))]
    skips = [sn.Skip(src, dst, identity=bool(rng.random() < 0.5))
             for dst in range(1, depth) for src in range(-1, dst - 1) if rng.random() < 0.5]
    rng.shuffle(skips)
    return sn.Network(1, layers, skips, dtype=dtype, seed=seed)


@pytest.mark.parametrize("case", range(24))
def test_width1_networks_take_the_scalar_path(case, dtype):
    rng = np.random.default_rng(400 + case)
    net = _width1_network(rng, dtype, case)
    assert net.internals.engine.make_fused(1).scalar
    loss = ["l1", "mse", "bce"][case % 3]
    batch = 1 if case % 2 == 0 else int(rng.integers(2, 6))
    X = rng.normal(size=(21, 1))
    y = random_targets(rng, loss, 21, 1)
    options = OPTIMIZERS[case % len(OPTIMIZERS)] if case % 3 else {"optimizer": "sgd", "weight_decay": 0.01}
    runs = _fit_both(lambda: sn.Network(1, net.layers, net.skips, dtype=dtype, seed=case), X, y, loss=loss,
                     lr=0.05, batch_size=batch, epochs=4, shuffle=bool(case % 4 < 2), seed=case, **options)
    _assert_same_run(*runs, exact=batch == 1, dtype=dtype)


def test_exercise_stops_after_two_steps_on_both_paths():
    runs = _fit_both(sn.Network.exercise, [[1.0]], [[-3.0]], loss="l1", lr=1.0, batch_size=1, epochs=100,
                     shuffle=False)
    _assert_same_run(*runs)
    hist, net, _ = runs[0]
    np.testing.assert_array_equal(hist.step_loss, [3.375, 3.0])
    assert hist.stopped_reason.startswith("zero gradient") and "dead" in hist.stopped_reason
    assert hist.epochs_run == 2
    assert [net.parameters()[n][0, 0] for n in ("layers.0.weight", "layers.1.weight", "layers.2.weight",
                                                "skips.0.weight")] == [-0.25, 0.25, 0.25, 0.0]


@pytest.mark.parametrize("shuffle", [False, True])
def test_zero_gradient_stop_inside_a_multi_epoch_call(shuffle):
    # The exercise on several copies of its sample: the first epoch's first step kills both ReLUs, so the
    # second epoch has only zero gradients; the kernel must return there (not run all 50 epochs), and the
    # shuffling generator must end where the per-op path leaves it.
    X, y = np.ones((6, 1)), np.full((6, 1), -3.0)
    runs = _fit_both(sn.Network.exercise, X, y, loss="l1", lr=1.0, batch_size=2, epochs=50, shuffle=shuffle,
                     seed=7)
    _assert_same_run(*runs)
    assert runs[0][0].epochs_run == 2
    assert runs[0][2].rng.bit_generator.state == runs[1][2].rng.bit_generator.state


def test_momentum_keeps_training_through_zero_gradient_epochs():
    runs = _fit_both(sn.Network.exercise, np.ones((3, 1)), np.full((3, 1), -3.0), loss="l1", lr=1.0,
                     momentum=0.9, batch_size=1, epochs=6, shuffle=True, seed=1)
    _assert_same_run(*runs)
    assert runs[0][0].stopped_reason is None and runs[0][0].epochs_run == 6


@pytest.mark.parametrize("dtype_", ["float32", "float64"])
def test_divergence_guard_matches_per_op(dtype_):
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(64, 2)), rng.normal(size=(64, 1)) * 10
    runs = _fit_both(lambda: sn.Network.mlp(2, (16, 16), skip="first-to-output", seed=0, dtype=dtype_), X, y,
                     loss="mse", lr=1e6, batch_size=16, epochs=50)
    _assert_same_run(*runs)
    hist, net, _ = runs[0]
    assert hist.stopped_reason.startswith("diverged at step") and hist.warnings[-1].kind == "divergence"
    assert np.isfinite(net.internals.params).all() and np.isfinite(hist.step_loss).all()


def test_divergence_factor_and_width1_divergence_match_per_op():
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(40, 1)), rng.normal(size=(40, 1)) * 5
    for make in (sn.Network.exercise, lambda: sn.Network.mlp(1, (4, 4), skip="first-to-output", seed=1)):
        runs = _fit_both(make, X, y, loss="mse", lr=3.0, batch_size=1, epochs=20, divergence_factor=2.0)
        _assert_same_run(*runs)
        assert "exceeds 2 x the first loss" in runs[0][0].stopped_reason


@pytest.mark.parametrize("make", [sn.Network.exercise,
                                  lambda: sn.Network.mlp(1, (3, 3), skip="first-to-output", seed=2)])
def test_non_finite_update_stops_with_the_per_op_message(make):
    # a finite loss, but lr x gradient overflows: the update makes a parameter infinite
    runs = _fit_both(make, [[10.0], [20.0]], [[-300.0], [500.0]], loss="mse", lr=1e308, batch_size=1, epochs=3,
                     shuffle=False, divergence_factor=None)
    _assert_same_run(*runs)
    hist, net, _ = runs[0]
    assert "made a parameter non-finite" in hist.stopped_reason and "lr=1e+308" in hist.stopped_reason
    assert np.isfinite(net.internals.params).all()


def test_per_step_schedules_validation_and_callbacks_match_per_op():
    class Decay:
        def lr(self, step, epoch):
            return 0.05 / (1 + 0.1 * step)

    class Plateau:  # feedback between epochs: the fused path must run one epoch per call
        def start(self, base_lr, steps_per_epoch, epochs):
            self.rate, self.best, self.seen = base_lr, np.inf, []

        def lr(self, step, epoch):
            return self.rate

        def epoch_end(self, epoch, loss):
            self.seen.append(loss)
            if loss > 0.999 * self.best:
                self.rate /= 2
            self.best = min(self.best, loss)

    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(50, 3)), rng.normal(size=(50, 2))
    Xv, yv = rng.normal(size=(10, 3)), rng.normal(size=(10, 2))

    def make():
        return sn.Network.mlp(3, (8, 8), 2, skip="first-to-output", seed=3)

    for schedule in (Decay(), Plateau()):
        calls = {True: [], False: []}
        hists = []
        for fused in (True, False):
            def callback(trainer, epoch, history, seen=calls[fused]):
                seen.append((epoch, history.steps_run, float(history.epoch_loss[-1])))
                return epoch == 5

            net = make()
            hist = sn.Trainer(net, loss="mse", lr=0.05, batch_size=8, epochs=20, schedule=schedule, seed=4,
                              fused=fused, callbacks=[callback]).fit(X, y, validation=(Xv, yv))
            hists.append((hist, net))
        assert calls[True] == calls[False] and len(calls[True]) == 6
        (hf, nf), (hp, np_) = hists
        assert hf.stopped_reason == hp.stopped_reason == "callback"
        for a, b in [(hf.step_loss, hp.step_loss), (hf.lr, hp.lr), (hf.val_loss, hp.val_loss),
                     (nf.internals.params, np_.internals.params)]:
            np.testing.assert_array_equal(a, b)
    assert len(set(hf.lr)) > 1


def test_schedule_error_mid_epoch_leaves_the_per_op_state():
    class Breaks:
        def lr(self, step, epoch):
            if step == 11:
                raise ArithmeticError("no rate for step 11")
            return 0.01

    states = failed_fit_states(Breaks, ArithmeticError)
    assert_same_states(states)
    assert states[0][0] == "no rate for step 11" and states[0][2] == 11


def test_second_fit_continues_across_paths():
    rng = np.random.default_rng(9)
    X, y = rng.normal(size=(33, 3)), rng.normal(size=(33, 1))
    nets = [sn.Network.mlp(3, (6, 6), skip="first-to-output", seed=2) for _ in range(2)]
    a = sn.Trainer(nets[0], loss="l1", optimizer="adam", lr=0.01, batch_size=8, epochs=3, seed=5)
    a.fit(X, y)
    a.fused = False
    a.fit(X, y)
    sn.Trainer(nets[1], loss="l1", optimizer="adam", lr=0.01, batch_size=8, epochs=6, seed=5,
               fused=False).fit(X, y)
    np.testing.assert_array_equal(nets[0].internals.params, nets[1].internals.params)


def test_two_threads_train_two_networks_bit_identically_to_serial():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(2000, 2)).astype(np.float32)
    y = (np.sin(X[:, :1]) * X[:, 1:]).astype(np.float32)

    def make(seed):
        return sn.Network.mlp(2, (16, 16), skip="first-to-output", dtype="float32", seed=seed)

    def train(net, out, i):
        out[i] = sn.Trainer(net, loss="l1", lr=0.01, batch_size=32, epochs=8, seed=i).fit(X, y).step_loss

    serial_nets, serial = [make(0), make(1)], [None, None]
    for i, net in enumerate(serial_nets):
        train(net, serial, i)
    thread_nets, threaded = [make(0), make(1)], [None, None]
    workers = [threading.Thread(target=train, args=(net, threaded, i)) for i, net in enumerate(thread_nets)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for i in range(2):
        np.testing.assert_array_equal(threaded[i], serial[i])
        np.testing.assert_array_equal(thread_nets[i].internals.params, serial_nets[i].internals.params)


@pytest.mark.parametrize("make,shuffle", [(sn.Network.exercise, False), (sn.Network.exercise, True),
                                          (lambda: sn.Network.mlp(2, (8, 8), skip="first-to-output",
                                                                  dtype="float32", seed=0), False)])
def test_no_per_step_allocation_in_a_long_fused_run(make, shuffle):
    rng = np.random.default_rng(11)
    net = make()
    n = 20000
    X = rng.normal(size=(n, net.n_inputs)).astype(net.dtype)
    y = rng.normal(size=(n, 1)).astype(net.dtype)
    # (diagnostics off: their checks run a forward pass over the whole training set now and then)
    trainer = sn.Trainer(net, loss="l1", lr=1e-4, batch_size=1, epochs=2, shuffle=shuffle, diagnose=False)
    trainer.fit(X[:100], y[:100])  # warm-up: workspaces, kernel objects
    tracemalloc.start()
    try:
        hist = trainer.fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    steps = hist.steps_run
    assert steps == 2 * n
    recorded = hist.step_loss.nbytes + hist.lr.nbytes  # the History: 16 bytes per step
    orders = 8 * 2 * n if shuffle else 0  # this fit's row orders, allocated once
    # a single Python object per step would add 24+ bytes x 40,000 steps = 960 KB
    assert peak <= recorded + orders + 256 * 1024, (peak, recorded, orders)


@pytest.mark.parametrize("make,batch", [(sn.Network.exercise, 1),
                                        (lambda: sn.Network.mlp(2, (6, 6), skip="first-to-output", seed=3,
                                                                dtype="float32"), 4)], ids=["scalar", "batch"])
@pytest.mark.parametrize("first_step", [0, 3])
def test_per_epoch_rates_give_the_bits_of_the_same_rates_per_step(make, batch, first_step):
    """FusedNet.run(lrs_per_epoch=True): one rate per epoch of the call (the first for the epoch of
    first_step) trains as those rates repeated for every step of their epoch, on the scalar loop (the
    exercise from an epoch's start) and the batch loop."""
    rng = np.random.default_rng(5)
    n, epochs = 19, 3
    dtype = make().dtype
    X, y = rng.normal(size=(n, make().n_inputs)).astype(dtype), rng.normal(size=(n, 1)).astype(dtype)
    spe = -(-n // batch)
    steps = epochs * spe - first_step
    epoch_rates = np.array([0.05, 0.02, 0.01])
    orders = np.array([rng.permutation(n) for _ in range(epochs)])
    runs = []
    for lrs, per_epoch in ((np.repeat(epoch_rates, spe)[first_step:], False), (epoch_rates, True)):
        net = make()
        losses, totals = np.empty(steps + 1), np.empty(epochs)
        with net.internals.engine.fused(batch) as fused:
            fused.bind(X, y, None, np.zeros_like(net.internals.params), None, "l1", "sgd")
            result = fused.run(orders, lrs, losses, totals, steps, spe, 0, None, first_step, lrs_per_epoch=per_epoch)
            fused.unbind()
        runs.append((result, losses[:steps], totals, net.internals.params))
    (result, losses, totals, params), (result_e, losses_e, totals_e, params_e) = runs
    assert result == result_e and result[:2] == (steps, "ok")
    np.testing.assert_array_equal(losses, losses_e)
    np.testing.assert_array_equal(totals, totals_e)
    np.testing.assert_array_equal(params, params_e)


def test_fused_run_refuses_buffers_too_short_for_its_steps():
    net = sn.Network.mlp(2, (4,), seed=0)
    X, y = np.ones((10, 2)), np.ones((10, 1))
    with net.internals.engine.fused(5) as fused:  # 2 steps an epoch: 5 steps from step 1 touch 3 epochs
        fused.bind(X, y, None, np.zeros_like(net.internals.params), None, "l1", "sgd")
        ok = {"orders": np.zeros((3, 10), np.int64), "lrs": np.full(5, 0.1), "losses": np.empty(5),
              "totals": np.empty(3)}
        short = {"orders": np.zeros((2, 10), np.int64), "lrs": np.full(4, 0.1), "losses": np.empty(4),
                 "totals": np.empty(2)}
        for name, value in short.items():
            args = {**ok, name: value}
            with pytest.raises(ValueError, match="orders must be" if name == "orders" else "needs lrs"):
                fused.run(args["orders"], args["lrs"], args["losses"], args["totals"], 5, 2, 0, None, 1)
        with pytest.raises(ValueError, match="needs lrs of 1 or 3"):  # one rate per epoch: 3 of them
            fused.run(None, np.full(2, 0.1), ok["losses"], ok["totals"], 5, 2, 0, None, 1, lrs_per_epoch=True)
        with pytest.raises(ValueError, match="n_steps"):
            fused.run(None, ok["lrs"], ok["losses"], ok["totals"], -1, 2, 0, None)
        units = fused.n_units
        with pytest.raises(ValueError, match="unit_epochs >= 3 rows"):
            fused.run(None, ok["lrs"], ok["losses"], ok["totals"], 5, 2, 0, None, 1, unit_max=np.empty(units),
                      unit_epochs=np.empty((2, units)))
        fused.bind_validation(X, y, None)
        with pytest.raises(ValueError, match="val_losses must be a 1-D float64 array of at least 3 entries"):
            fused.run(None, ok["lrs"], ok["losses"], ok["totals"], 5, 2, 0, None, 1, val_losses=np.empty(2))
        assert fused.run(ok["orders"], np.full(3, 0.1), ok["losses"], ok["totals"], 5, 2, 0, None, 1,
                         lrs_per_epoch=True)[:2] == (5, "ok")
        fused.unbind()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_aligned_zeros_start_on_a_cache_line(dtype):
    """The fused workspace's allocator: zeros of the dtype, C-contiguous and writable, the first element
    64-byte aligned whatever the length (NumPy alone aligns to 16 bytes; an empty one has no element)."""
    assert sn._kernels.aligned_zeros(0, dtype).shape == (0,)
    for n in (1, 3, 16, 1000, 4099):
        buffers = [sn._kernels.aligned_zeros(n, dtype) for _ in range(8)]
        for a in buffers:
            assert a.shape == (n,) and a.dtype == dtype and a.flags.c_contiguous and a.flags.writeable
            assert a.ctypes.data % 64 == 0 and not a.any()
        buffers[0][:] = 1  # each its own memory
        assert not any(b.any() for b in buffers[1:])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fused_run_names_an_array_of_the_wrong_kind(dtype):
    """Each array of FusedNet.run is checked by one buffer request: the wrong element type, a strided or
    read-only array where the kernel writes, the wrong number of dimensions or a list get a ValueError
    naming it; a read-only array the kernel only reads (lrs) is taken."""
    net = sn.Network.mlp(2, (4, 3), seed=0, dtype=dtype)
    X, y = np.ones((10, 2), dtype), np.ones((10, 1), dtype)
    units = net.internals.hidden_relu_units
    other = "float32" if dtype == "float64" else "float64"
    with net.internals.engine.fused(5) as fused:
        fused.bind(X, y, None, np.zeros_like(net.internals.params), None, "l1", "sgd")

        def ok():  # 4 steps, 2 epochs, with the dead-unit statistics
            return {"lrs": np.full(4, 0.1), "losses": np.zeros(4), "totals": np.zeros(2),
                    "unit_max": np.zeros(units, dtype), "unit_epochs": np.zeros((2, units), dtype)}

        def run(arrays):
            return fused.run(None, arrays["lrs"], arrays["losses"], arrays["totals"], 4, 2, 0, None,
                             unit_max=arrays["unit_max"], unit_epochs=arrays["unit_epochs"])

        def read_only(a):
            a.flags.writeable = False
            return a

        for name, value in ok().items():
            kind = "float64" if name in ("lrs", "losses", "totals") else dtype
            wrong = {"element type": value.astype("float32" if kind == "float64" else other),
                     "strided": np.repeat(value, 2, axis=-1)[..., ::2],
                     "dimensions": value[None],
                     "list": value.tolist()}
            if name != "lrs":
                wrong["read-only"] = read_only(value.copy())
            for bad in wrong.values():
                with pytest.raises(ValueError, match=f"^{name} must be a .*C-contiguous {value.ndim}-D {kind} array"):
                    run({**ok(), name: bad})
        arrays = ok()
        arrays["lrs"] = read_only(arrays["lrs"])
        assert run(arrays)[:2] == (4, "ok")
        np.testing.assert_array_equal(arrays["unit_epochs"][-1], arrays["unit_max"])
        fused.unbind()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fused_bind_names_an_array_of_the_wrong_kind_or_shape(dtype):
    """bind and bind_validation check every array they take an address of (element type, contiguity,
    dimensions, writability where the kernel writes, and the shape the network needs) with one buffer
    request each, and a ValueError names it: the kernels behind them read and write unchecked."""
    net = sn.Network.mlp(3, (4,), n_outputs=2, seed=0, dtype=dtype)
    other = "float32" if dtype == "float64" else "float64"
    n_params = net.internals.params.shape[0]
    ok = {"X": np.ones((10, 3), dtype), "Y": np.ones((10, 2), dtype), "state1": np.zeros(n_params, dtype)}

    def read_only(a):
        a = a.copy()
        a.flags.writeable = False
        return a

    bad = [("X", np.ones((10, 3), other), "X must be a C-contiguous 2-D"),
           ("X", np.ones((10, 4), dtype), r"X must be \(n, 3\)"),
           ("X", np.ones((10, 6), dtype)[:, ::2], "X must be a C-contiguous"),
           ("Y", np.ones((9, 2), dtype), r"Y must be \(10, 2\)"),
           ("Y", np.ones((10, 1), dtype), r"Y must be \(10, 2\)"),
           ("Y", np.ones(10, dtype), "Y must be a C-contiguous 2-D"),
           ("state1", np.zeros(n_params + 1, dtype), f"state1 must have {n_params} entries"),
           ("state1", read_only(ok["state1"]), "state1 must be a writable"),
           ("state1", np.zeros(n_params, other), "state1 must be a writable C-contiguous 1-D")]
    with net.internals.engine.fused(5) as fused:
        for name, value, match in bad:
            args = {**ok, name: value}
            with pytest.raises(ValueError, match=match):
                fused.bind(args["X"], args["Y"], None, args["state1"], None, "l1", "sgd")
        for weight, match in [(np.ones(9), "sample_weight must have 10 entries"),
                              (np.ones(10, np.float32), "sample_weight must be a C-contiguous 1-D float64")]:
            with pytest.raises(ValueError, match=match):
                fused.bind(ok["X"], ok["Y"], None, ok["state1"], None, "l1", "sgd", sample_weight=weight)
        for T, match in [(np.zeros(10, np.int32), "T must be a C-contiguous 1-D int64"),
                         (np.zeros(9, np.int64), "T must have 10 entries")]:
            with pytest.raises(ValueError, match=match):
                fused.bind(ok["X"], None, T, ok["state1"], None, "cross_entropy", "sgd")
        fused.bind(read_only(ok["X"]), read_only(ok["Y"]), None, ok["state1"], None, "l1", "sgd")  # inputs: read
        with pytest.raises(ValueError, match=r"X must be \(n, 3\)"):
            fused.bind_validation(np.ones((4, 2), dtype), np.ones((4, 2), dtype), None)
        with pytest.raises(ValueError, match=r"Y must be \(4, 2\)"):
            fused.bind_validation(np.ones((4, 3), dtype), np.ones((5, 2), dtype), None)
        fused.bind_validation(np.ones((4, 3), dtype), np.ones((4, 2), dtype), None)
        run = functools.partial(fused.run, None, np.full(2, 0.1), np.zeros(2), np.zeros(1), 2, 2, 0, None)
        for orders, match in [(np.zeros((1, 10), np.int32), "orders must be a C-contiguous 2-D int64"),
                              (np.zeros((1, 9), np.int64), r"orders must be \(1\+, 10\)")]:
            with pytest.raises(ValueError, match=match):
                fused.run(orders, np.full(2, 0.1), np.zeros(2), np.zeros(1), 2, 2, 0, None)
        for best, value, match in [(np.zeros(n_params - 1, dtype), np.zeros(1), f"best must have {n_params}"),
                                   (np.zeros(n_params, other), np.zeros(1), "best must be a writable"),
                                   (np.zeros(n_params, dtype), np.zeros(2), "best_value must have 1 entries"),
                                   (np.zeros(n_params, dtype), None, "best needs best_value")]:
            with pytest.raises(ValueError, match=match):
                run(val_losses=np.zeros(1), best=best, best_value=value)
        assert run(val_losses=np.zeros(1), best=np.zeros(n_params, dtype), best_value=np.zeros(1))[:2] == (2, "ok")
        fused.unbind()


def test_fused_net_guards():
    net = sn.Network.mlp(2, (4, 4), seed=0)
    fused = net.internals.engine.make_fused(3)
    empty = np.empty(1)
    with pytest.raises(RuntimeError, match="bind"):
        fused.run(None, np.array([0.1]), empty, empty, 1, 1, 0, None)
    with pytest.raises(ValueError, match="C-contiguous"):
        fused.bind(np.ones((4, 4))[:, :2], np.ones((4, 1)), None, net.internals.params.copy(), None,
                   "l1", "sgd")
    with pytest.raises(TypeError, match="fused"):
        sn.Trainer(net, fused="yes")
    # one kernel object serves one fit at a time (the network's write guard is the first line)
    state = np.zeros_like(net.internals.params)
    fused.bind(np.ones((4, 2)), np.ones((4, 1)), None, state, None, "l1", "sgd")
    with pytest.raises(RuntimeError, match="already being trained"):
        fused.bind(np.ones((4, 2)), np.ones((4, 1)), None, state, None, "l1", "sgd")
    fused.unbind()
    fused.bind(np.ones((4, 2)), np.ones((4, 1)), None, state, None, "l1", "sgd")


SHAPES = [(1, 1, 1), (3, 1, 5), (5, 7, 1), (1, 9, 4), (33, 17, 9), (64, 16, 16), (130, 300, 3), (8, 0, 5)]


@pytest.mark.parametrize("n,k,m", SHAPES)
def test_register_tiles_against_float64(n, k, m, dtype, simd):
    rng = np.random.default_rng(n + 10 * k + 100 * m)
    old = K.get_blas_threshold()
    K.set_blas_threshold(2**62)
    try:
        X, W = rng.normal(size=(n, k)).astype(dtype), rng.normal(size=(m, k)).astype(dtype)
        dZ = rng.normal(size=(n, m)).astype(dtype)
        Z = rng.normal(size=(n, m)).astype(dtype)
        Z0 = Z.copy()
        K.dense_fwd(X, W, np.empty(0, dtype), Z, False, True)
        dW, dX = np.full((m, k), np.nan, dtype), np.full((n, k), np.nan, dtype)
        K.dense_bwd(dZ, X, W, dW, np.empty(0, dtype), dX, False, True, False)
    finally:
        K.set_blas_threshold(old)
    x, w, dz = X.astype(float), W.astype(float), dZ.astype(float)
    assert_close(Z, Z0 + x @ w.T, dtype, np.abs(Z0) + np.abs(x) @ np.abs(w).T + 1)
    assert_close(dW, dz.T @ x, dtype, np.abs(dz).T @ np.abs(x) + 1)
    assert_close(dX, dz @ w, dtype, np.abs(dz) @ np.abs(w) + 1)


@pytest.mark.parametrize("make", [sn.Network.exercise, lambda: sn.Network.mlp(2, (4, 4), seed=3)])
def test_divergence_on_the_first_step_of_a_fit_keeps_the_weights(make):
    # the first loss overflows: there are no earlier weights, so the fit leaves them as they were
    def huge():
        net = make()
        net.internals.params[...] = 1e200
        return net

    X, y = np.ones((5, huge().n_inputs)), np.zeros((5, 1))
    runs = _fit_both(huge, X, y, loss="mse", lr=0.1, batch_size=2, epochs=3)
    _assert_same_run(*runs)
    hist, net, _ = runs[0]
    assert hist.stopped_reason == "diverged at step 0 (epoch 0): the loss is inf" and hist.steps_run == 0
    assert (net.internals.params == 1e200).all()


@pytest.mark.parametrize("skips", [
    [sn.Skip(-1, 1), sn.Skip(-1, 1)],                                   # 2 layers, a skip repeated
    [sn.Skip(0, 2), sn.Skip(-1, 2), sn.Skip(0, 2)],                     # 3 layers, three into the last
    [sn.Skip(-1, 1), sn.Skip(-1, 1), sn.Skip(0, 2, identity=True)],     # 3 layers, two into layer 1
])
@pytest.mark.parametrize("batch", [1, 3])
def test_width1_networks_with_repeated_skips(skips, batch, dtype):
    """More skips into a layer than the depth-specialised copies hold take the general copy (these
    once ran a copy for another shape: wrong numbers, or reads past the plan)."""
    depth = max(s.dst for s in skips) + 1
    layers = [sn.Dense(1, "relu") for _ in range(depth - 1)] + [sn.Dense(1, "identity")]
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(11, 1)), rng.normal(size=(11, 1))
    runs = _fit_both(lambda: sn.Network(1, layers, skips, dtype=dtype, seed=4), X, y, loss="mse", lr=0.02,
                     batch_size=batch, epochs=3, shuffle=True)
    assert runs[0][1].internals.engine.make_fused(batch).scalar
    _assert_same_run(*runs, exact=batch == 1, dtype=dtype)


def _exercise_with_biases(dtype="float64", seed=0):
    return sn.Network.mlp(1, (1, 1), 1, skip="first-to-output", dtype=dtype, seed=seed)


def test_the_exercise_networks_are_compiled_in_whole():
    assert sn.Network.exercise().internals.engine.make_fused(1).compiled_shape == 0
    assert _exercise_with_biases().internals.engine.make_fused(3).compiled_shape == 1
    assert sn.Network.mlp(1, (1, 1), 1, skip="first-to-output", bias=False).internals.engine.make_fused(1).compiled_shape == 0
    # one flag different (the second layer's activation): the general width-1 copies
    other = sn.Network(1, [sn.Dense(1, "relu", False), sn.Dense(1, "identity", False),
                           sn.Dense(1, "identity", False)], [sn.Skip(0, 2)])
    assert other.internals.engine.make_fused(1).scalar and other.internals.engine.make_fused(1).compiled_shape == -1
    assert sn.Network.mlp(2, (3,)).internals.engine.make_fused(1).compiled_shape == -1


@pytest.mark.parametrize("biases", [False, True])
@pytest.mark.parametrize("loss", ["l1", "mse", "bce"])
@pytest.mark.parametrize("batch,shuffle", [(1, False), (1, True), (3, True)])
def test_compiled_exercise_shapes_match_per_op(biases, loss, batch, shuffle, dtype):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(23, 1))
    y = random_targets(rng, loss, 23, 1)

    def make():
        net = _exercise_with_biases(dtype) if biases else sn.Network.exercise(dtype=dtype)
        net.internals.params[...] = np.random.default_rng(11).uniform(-1, 1, net.internals.params.size)
        return net

    for options in ({}, {"weight_decay": 0.03}, {"schedule": sn.schedules.StepLR(2, gamma=0.5)}):
        assert make().internals.engine.make_fused(batch).compiled_shape == int(biases)
        runs = _fit_both(make, X, y, loss=loss, lr=0.05, batch_size=batch, epochs=6, shuffle=shuffle, seed=2,
                         **options)
        _assert_same_run(*runs, exact=batch == 1, dtype=dtype)
        if batch == 1:
            np.testing.assert_array_equal(runs[0][1].internals.grads, runs[1][1].internals.grads)


@pytest.mark.parametrize("biases", [False, True])
@pytest.mark.parametrize("dtype_", ["float32", "float64"])
def test_compiled_exercise_shapes_keep_the_last_good_weights(biases, dtype_):
    def make():
        return _exercise_with_biases(dtype_) if biases else sn.Network.exercise(dtype=dtype_)

    X, y = np.linspace(0.5, 2, 9)[:, None], np.full((9, 1), 1e3)
    big = 1e308 if dtype_ == "float64" else 1e38
    cases = [((X, y), 1e3, 10.0, "exceeds 10 x the first loss"),
             (([[10.0], [20.0]], [[-300.0], [500.0]]), big, None, "made a parameter non-finite")]
    if dtype_ == "float64":  # (float32 weights overflow before the loss does)
        cases.append(((X, y), 1e150, None, "the loss is inf"))
    for data, lr, factor, reason in cases:
        runs = _fit_both(make, *data, loss="mse", lr=lr, batch_size=1, epochs=3, shuffle=False,
                         divergence_factor=factor)
        _assert_same_run(*runs)
        assert reason in runs[0][0].stopped_reason
        assert np.isfinite(runs[0][1].internals.params).all()


@pytest.mark.parametrize(("n", "k"), [(1, 3), (8, 500), (1000, 7)])
def test_orders_drawn_together_are_the_per_op_paths_draws(n, k):
    """The fused path draws many epochs' row orders at once; they, and the generator after them, are
    those of k draws of one order, one per epoch, as the per-op path draws them."""
    from skipnet.trainer import _draw_orders, _permutation

    one_by_one, together = np.random.default_rng(3), np.random.default_rng(3)
    expected = np.stack([_permutation(one_by_one, n) for _ in range(k)])
    out = np.empty((k, n), np.int64)
    _draw_orders(together, out)
    np.testing.assert_array_equal(out, expected)
    assert together.bit_generator.state == one_by_one.bit_generator.state


@pytest.mark.parametrize("width", [5, 16, 37])
def test_residual_networks_fused_are_the_per_op_path_bit_for_bit(width, dtype, blas_path, simd):
    """A residual block's identity skip and ReLU come out of the product's epilogue in the fused path."""
    rng = np.random.default_rng(width)
    X, y = rng.normal(size=(45, 6)), rng.normal(size=(45, 2))
    runs = _fit_both(lambda: sn.Network.mlp(6, (width,) * 4, 2, skip="residual", dtype=dtype, seed=width), X, y,
                     loss="mse", lr=0.01, batch_size=16, epochs=3)
    _assert_same_run(*runs)
