"""W0's ceiling: the exercise step as a hand-written C loop (exercise_loop.c, shipped with the package),
compiled here with the system C compiler (``cc -O2``, baseline x86-64) and called through ctypes, one
epoch per call. ctypes releases the GIL during the call, so the loop also serves as the two-thread
control of the scaling section."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
import time
from importlib import resources

import numpy as np

from .timing import Impl
from .workloads import LR, Workload

_SOURCE = "exercise_loop.c"


def compile_exercise_loop() -> ctypes.CDLL:
    """Compile exercise_loop.c into a shared library in a fresh temporary directory and load it.
    RuntimeError if there is no C compiler on PATH or it fails (with its output)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler (cc or gcc) on PATH")
    folder = tempfile.mkdtemp(prefix="skipnet-bench-")
    src, lib = os.path.join(folder, "loop.c"), os.path.join(folder, "loop.so")
    with open(src, "w") as f:
        f.write(resources.files(__package__).joinpath(_SOURCE).read_text())
    done = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", lib, src, "-lm"], check=False,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{cc} failed on {_SOURCE} (exit {done.returncode}): {done.stderr.strip()}")
    return ctypes.CDLL(lib)


class CLoop(Impl):
    """The exercise step as the hand-written C loop, one epoch per call; X (n, 1), y (n, 1) float64."""

    name = "C loop"

    def __init__(self, w: Workload, X: np.ndarray, y: np.ndarray):
        self.fn = compile_exercise_loop().exercise_epoch
        dp = ctypes.POINTER(ctypes.c_double)
        self.fn.argtypes = [dp, dp, ctypes.c_long, dp, ctypes.c_double, dp]
        self.fn.restype = ctypes.c_double
        self.x, self.y = np.ascontiguousarray(X[:, 0]), np.ascontiguousarray(y[:, 0])
        self.w = np.empty(4)
        self.losses = np.empty(len(self.x))
        self.ptrs = [a.ctypes.data_as(dp) for a in (self.x, self.y, self.w, self.losses)]

    def block(self, steps: int) -> tuple[float, int]:
        epochs = max(1, round(steps / len(self.x)))
        x, y, w, losses = self.ptrs
        self.w[...] = 0.5
        t = time.perf_counter()
        for _ in range(epochs):
            self.fn(x, y, len(self.x), w, LR, losses)
        return time.perf_counter() - t, epochs * len(self.x)
