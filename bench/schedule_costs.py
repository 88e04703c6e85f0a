"""What a built-in schedule costs a fit outside the kernel: ``start`` on a fresh copy (every fit plans
anew), and the rates of one kernel call as the Trainer's fused path asks for them (``step_rates`` into a
buffer for a per-step schedule, ``epoch_rates`` for a per-epoch one), warm; then the cosine fill itself
(``K.cosine_rates``) over phases of several lengths.

    python bench/schedule_costs.py [--steps-per-epoch 1000] [--epochs 2] [--repeat 5] [--number 3000]

The defaults are W0's 2-epoch fit (1,000 steps an epoch). Times are the best of ``--repeat`` timeit
runs of ``--number`` calls, on one CPU. Inside a fit, after a kernel call and other fits' code, the same
Python runs 2-4x slower (bench/README.md): these are lower bounds, for comparing builds.
"""

from __future__ import annotations

import argparse
import copy
import math
import timeit

import numpy as np
from defaults_cost import builtin_schedules, one_cpu

from skipnet import _kernels as K
from skipnet._bench.host import describe, host_lines

PHASES = (1_400, 2_000, 6_000, 14_000, 20_000)  # steps of a cosine phase (its block: their square roots)


def best(call, number: int, repeat: int) -> float:
    """Seconds per call: the best of ``repeat`` timeit runs of ``number`` calls."""
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number


def schedule_costs(spe: int, epochs: int, number: int, repeat: int) -> dict[str, tuple[float, float]]:
    """Schedule name -> (seconds of start on a fresh copy, seconds of one kernel call's rates)."""
    out = {}
    steps = spe * epochs
    for name, schedule in builtin_schedules().items():
        fresh = iter([copy.deepcopy(schedule) for _ in range(number * repeat)])
        start = best(lambda copies=fresh: next(copies).start(0.1, spe, epochs), number, repeat)
        started = copy.deepcopy(schedule)
        started.start(0.1, spe, epochs)
        if started.per == "step":
            buffer = np.empty(steps)
            rates = best(lambda s=started, buffer=buffer: s.step_rates(buffer, 0), number, repeat)
        else:
            rates = best(lambda s=started: s.epoch_rates(0, epochs), number, repeat)
        out[name] = (start, rates)
    return out


def fill_costs(number: int, repeat: int) -> dict[int, float]:
    """Steps of a cosine phase -> seconds of K.cosine_rates over all of them."""
    out = {}
    for length in PHASES:
        rates = np.empty(length)
        block = math.isqrt(length)
        out[length] = best(lambda r=rates, b=block, n=length: K.cosine_rates(r, 0, 0.0, 0.5, 0.0, math.pi / n, b),
                           max(1, number // 10), repeat)
    return out


def report(costs: dict[str, tuple[float, float]], fills: dict[int, float], spe: int, epochs: int) -> str:
    """The two tables, as printed."""
    lines = [f"\nstart on a fresh copy, and one call's rates ({epochs} epochs of {spe} steps):",
             f"  {'schedule':<42} {'start':>9} {'rates':>9}"]
    lines += [f"  {name:<42} {start * 1e6:7.2f} µs {rates * 1e6:7.2f} µs" for name, (start, rates) in costs.items()]
    lines.append("\nK.cosine_rates over a whole phase:")
    lines += [f"  {length:>7} steps (block {math.isqrt(length):>3}): {seconds * 1e6:7.2f} µs, "
              f"{seconds / length * 1e9:.2f} ns a step" for length, seconds in fills.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps-per-epoch", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--number", type=int, default=3000)
    args = parser.parse_args(argv)
    for name in ("steps_per_epoch", "epochs", "repeat", "number"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    print("\n".join(host_lines(describe())))
    with one_cpu() as how:
        print(how)
        costs = schedule_costs(args.steps_per_epoch, args.epochs, args.number, args.repeat)
        fills = fill_costs(args.number, args.repeat)
    print(report(costs, fills, args.steps_per_epoch, args.epochs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
