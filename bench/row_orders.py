"""What the order of the rows does to one fused kernel call: the same call of a workload's epochs (SGD,
the workload's rate, from its fixed start) with the rows in order, in one fixed shuffle, in one of a
few shuffles taken in turn, and in a new shuffle every call, which is what a fit with shuffle=True
(the Trainer's default) gives the kernel.

    python bench/row_orders.py [--workloads W0,W1] [--epochs 2] [--calls 600] [--rotation 10]

A shuffle that repeats call after call lets the CPU's branch predictor learn where the branches of
the steps go; a new shuffle each call does not. Differences between the first three rows and the last
come from branches whose outcome follows the data (the L1 loss's sign, a ReLU's in the backward pass):
the scalar path of a width-1 network keeps them as branches, which run faster than masks even when
half of them miss (bench/README.md, "The exercise network's rows in order and shuffled"). Reported:
the median time per call and per step, and the ratio to the rows in order. One CPU, BLAS on one thread.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from defaults_cost import one_cpu

from skipnet._bench import WORKLOADS
from skipnet._bench.host import describe, host_lines
from skipnet._bench.report import fmt_seconds
from skipnet._bench.workloads import LR
from skipnet.optimizers import make_optimizer

ORDERS = ("in order", "one fixed shuffle", "shuffles in rotation", "a new shuffle each call")


def order_sets(n_rows: int, epochs: int, calls: int, rotation: int, rng: np.random.Generator) -> dict:
    """Per kind of ORDERS, the (epochs, n_rows) int64 row orders of each call."""
    def shuffled() -> np.ndarray:
        return np.stack([rng.permutation(n_rows) for _ in range(epochs)])

    in_order = np.tile(np.arange(n_rows), (epochs, 1))
    fixed = shuffled()
    turns = [shuffled() for _ in range(rotation)]
    fresh = [shuffled() for _ in range(calls)]
    return {ORDERS[0]: [in_order] * calls, ORDERS[1]: [fixed] * calls,
            ORDERS[2]: [turns[c % rotation] for c in range(calls)], ORDERS[3]: fresh}


def measure(name: str, epochs: int, calls: int, rotation: int) -> dict[str, float]:
    """{kind of ORDERS: median seconds per call} of ``calls`` calls of each kind, the kinds interleaved
    call by call, every call from the workload's start."""
    w = WORKLOADS[name]
    X, y = w.data()
    net = w.make(0)
    core = net.internals
    start = core.params.copy()
    optimizer = make_optimizer(net, "sgd")
    spe = -(-X.shape[0] // w.batch)
    steps = epochs * spe
    lrs, losses, totals = np.array([LR]), np.empty(steps + 1), np.empty(epochs)
    orders = order_sets(X.shape[0], epochs, calls, rotation, np.random.default_rng(0))
    times: dict[str, list[int]] = {kind: [] for kind in ORDERS}
    with core.engine.fused(w.batch) as fused:
        fused.bind(X, y, None, loss="l1", divergence_factor=None, sample_weight=None,
                   **optimizer.fused_arguments())
        try:
            for call in range(calls + 1):  # call 0: a warm-up of each kind, not kept
                for kind in ORDERS:
                    core.params[...] = start
                    rows = orders[kind][max(call - 1, 0)]
                    t = time.perf_counter_ns()
                    fused.run(rows, lrs, losses, totals, steps, spe, 0, None)
                    if call:
                        times[kind].append(time.perf_counter_ns() - t)
        finally:
            fused.unbind()
    return {kind: statistics.median(t) * 1e-9 for kind, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default="W0,W1", help="comma-separated, out of W0-W4 (default W0,W1)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per kernel call (default 2)")
    parser.add_argument("--calls", type=int, default=600, help="timed calls of each kind (default 600)")
    parser.add_argument("--rotation", type=int, default=10, help="shuffles taken in turn (default 10)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        parser.error(f"--workloads: unknown {unknown}; choose from {','.join(WORKLOADS)}")
    for option in ("epochs", "calls", "rotation"):
        if getattr(args, option) < 1:
            parser.error(f"--{option} must be >= 1, got {getattr(args, option)}")
    with one_cpu() as how:
        for line in host_lines(describe()):
            print(line)
        print(f"{how}; {args.calls} calls of {args.epochs} epochs per kind, interleaved; "
              f"{args.rotation} shuffles in rotation")
        for name in names:
            w = WORKLOADS[name]
            steps = args.epochs * -(-w.n_samples // w.batch)
            result = measure(name, args.epochs, args.calls, args.rotation)
            print(f"\n{name} ({w.description}), {steps} steps per call:")
            print(f"  {'rows':<26} {'median/call':>12} {'per step':>10}   ÷ in order")
            for kind, seconds in result.items():
                print(f"  {kind:<26} {fmt_seconds(seconds):>12} {fmt_seconds(seconds / steps):>10}   "
                      f"{seconds / result[ORDERS[0]]:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
