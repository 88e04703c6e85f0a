"""Ctrl-C latency of Trainer.fit: the time from SIGINT to the KeyboardInterrupt, 5 presses per fit kind.

    python bench/interrupt_latency.py

Each fit is long enough to outlast the 0.3 s timer that presses Ctrl-C; medians and maxima in ms.
"""

import os
import signal
import threading
import time

import numpy as np

import skipnet as sn


def measure(make, X, y):
    trainer, sent = make(), []

    def press():
        sent.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.3, press)
    timer.start()
    try:
        trainer.fit(X, y)
    except KeyboardInterrupt:
        return time.perf_counter() - sent[0]
    finally:
        timer.cancel()
    raise RuntimeError("the fit ended before Ctrl-C: make it longer")


def main():
    rng = np.random.default_rng(0)
    small_X, small_y = rng.normal(size=(8, 3)), rng.normal(size=(8, 1))
    big_X, big_y = rng.normal(size=(20000, 64)), rng.normal(size=(20000, 1))
    cases = {
        "8 rows, 2**21 epochs, 8-8 network": (lambda: sn.Trainer(
            sn.Network.mlp(3, (8, 8), seed=0), batch_size=8, epochs=1 << 21, diagnose=False), small_X, small_y),
        "exercise network, 2**21 epochs": (lambda: sn.Trainer(
            sn.Network.exercise(), batch_size=4, epochs=1 << 21, diagnose=False), small_X[:, :1], small_y),
        "20000 x 64 rows, 256-256 network": (lambda: sn.Trainer(
            sn.Network.mlp(64, (256, 256), seed=0), epochs=50, diagnose=False), big_X, big_y),
        "the same, per-op path": (lambda: sn.Trainer(
            sn.Network.mlp(64, (256, 256), seed=0), epochs=50, fused=False), big_X, big_y),
    }
    for name, (make, X, y) in cases.items():
        ms = [1000 * measure(make, X, y) for _ in range(5)]
        print(f"{name}: median {np.median(ms):.1f} ms, max {max(ms):.1f} ms")


if __name__ == "__main__":
    main()
