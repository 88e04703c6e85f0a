"""Row orders of shuffled epochs (csrc/orders.h, K.draw_orders): uniform permutations drawn from the
trainer's NumPy Generator, the same whether drawn one epoch at a time (per-op path) or many at once
(fused path), safe to share between threads, and refused with a clear error for bad arguments."""

import threading
from itertools import permutations

import numpy as np
import pytest

from skipnet import _kernels as K
from skipnet.trainer import _permutation


def _chi_square(counts: np.ndarray) -> float:
    expected = counts.sum() / counts.size
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, 1000])
def test_every_row_is_a_permutation(n):
    out = np.full((4, n), -1, np.int64)
    K.draw_orders(np.random.default_rng(n), out)
    for row in out:
        assert sorted(row.tolist()) == list(range(n))


def test_orders_are_uniform():
    """Every order of 3 rows equally often, and every row equally often at every position of 8 (chi-square
    against uniform, seeded, below the 99.99th percentiles: 25.7 at 5 degrees of freedom, 94.6 at 49)."""
    rng = np.random.default_rng(0)
    out = np.empty((60000, 3), np.int64)
    K.draw_orders(rng, out)
    index = {p: i for i, p in enumerate(permutations(range(3)))}
    counts = np.bincount([index[tuple(row)] for row in out.tolist()], minlength=6)
    assert _chi_square(counts) < 25.7, counts
    out = np.empty((40000, 8), np.int64)
    K.draw_orders(rng, out)
    positions = np.zeros((8, 8))
    for position in range(8):
        positions[position] = np.bincount(out[:, position], minlength=8)
    assert _chi_square(positions) < 94.6, positions
    assert len({tuple(row) for row in out[:2000].tolist()}) > 1900  # 8! orders: hardly any repeats


def test_the_same_generator_state_draws_the_same_orders():
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    first = np.empty((3, 50), np.int64)
    K.draw_orders(rng, first)
    rng.bit_generator.state = state
    again = np.stack([_permutation(rng, 50) for _ in range(3)])
    np.testing.assert_array_equal(first, again)
    other = np.empty((3, 50), np.int64)
    K.draw_orders(np.random.default_rng(6), other)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("bits", [np.random.MT19937, np.random.Philox, np.random.SFC64])
def test_any_bit_generator_serves(bits):
    out = np.empty((2, 100), np.int64)
    K.draw_orders(np.random.Generator(bits(1)), out)
    assert all(sorted(row) == list(range(100)) for row in out.tolist())


def test_threads_sharing_a_generator_take_turns():
    """The bit generator's lock is held while drawing: every order drawn in 8 threads from one generator
    is whole, and together they use the stream as the same draws made one after another do."""
    rng = np.random.default_rng(9)
    outs = [np.empty((50, 200), np.int64) for _ in range(8)]
    threads = [threading.Thread(target=K.draw_orders, args=(rng, out)) for out in outs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for out in outs:
        assert (np.sort(out, axis=1) == np.arange(200)).all()
    serial = np.random.default_rng(9)
    expected = np.empty((400, 200), np.int64)
    K.draw_orders(serial, expected)
    drawn = {tuple(row) for out in outs for row in out.tolist()}
    assert drawn == {tuple(row) for row in expected.tolist()}
    assert rng.bit_generator.state == serial.bit_generator.state


def test_bad_arguments_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        K.draw_orders(np.random.RandomState(0), np.empty((1, 3), np.int64))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        K.draw_orders(None, np.empty((1, 3), np.int64))
    for out in (np.empty((1, 3), np.int32), np.empty(3, np.int64), np.empty((1, 3)), [[0, 1, 2]]):
        with pytest.raises(TypeError, match="2-D int64"):
            K.draw_orders(rng, out)
    read_only = np.empty((1, 3), np.int64)
    read_only.flags.writeable = False
    with pytest.raises(TypeError, match="writable"):
        K.draw_orders(rng, read_only)
    with pytest.raises(ValueError, match="C-contiguous"):
        K.draw_orders(rng, np.empty((3, 4), np.int64)[:, ::2])
    huge = np.lib.stride_tricks.as_strided(np.empty(1, np.int64), shape=(1, K.MAX_ORDER_ROWS + 1), strides=(0, 0))
    with pytest.raises(ValueError, match="at most 4294967295 rows can be shuffled"):
        K.draw_orders(rng, huge)
