"""What a fit at the Trainer's defaults, and a fit with each learning-rate schedule, costs against the same
fit without it: W0-W4, fits of 2 and of 20 epochs, on one CPU.

    python bench/defaults_cost.py [--workloads W0,W1,W2,W3,W4] [--repeats 3] [--epochs 2,20] [--block 0.1]
    python bench/defaults_cost.py --fit-by-fit 1000 --workloads W0 --epochs 2

Variants, each a Trainer(net, loss="l1", optimizer="sgd", lr, batch_size, epochs) of the workload
(skipnet/_bench/workloads.py) from its fixed start, every fit as a first fit, each variant shuffling from a
seed of its own (see fits()):
  defaults          nothing else set (diagnostics every 10 epochs, shuffling, divergence guard, fused)
  diagnose=False    the same with diagnose=False: the baseline of every ratio
  step only         shuffle=False, divergence_factor=None, diagnose=False: the row "skipnet fused" of
                    `skipnet bench` (what shuffling and the divergence guard cost is the rest)
  <Schedule>        diagnose=False and schedule=<Schedule>, for every schedule skipnet.schedules defines
Each repeat times one block of whole fits (at least --block seconds) of every variant, in an order that
rotates from repeat to repeat (skipnet/_bench/timing.py); reported are the median time per fit and the
paired ratio to diagnose=False (the median over repeats of the ratio of the two times of one repeat).
With --fit-by-fit ROUNDS, each round times one fit of every variant instead (an order shuffled anew each
round, so that no variant always runs right after the same one: see round_orders), and the
ratios are medians over rounds: on a machine whose speed comes in bursts, steadier for short fits.
The process runs on one CPU (os.sched_setaffinity where there is one) with BLAS held to one thread.
By default about 5 minutes on a 2-core AMD EPYC (Zen 3), two-thirds of it W3's fits of 20 epochs
(7 s each); on a shared machine a single repeat can be twice as slow, so quote figures of --repeats 5 or
more.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import random
import statistics
import sys

from skipnet import schedules
from skipnet._bench import WORKLOADS
from skipnet._bench.host import describe, host_lines
from skipnet._bench.implementations import STEP_ONLY, SkipnetFit
from skipnet._bench.report import fmt_seconds
from skipnet._bench.timing import interleave, settle_seconds

BASELINE = "diagnose=False"
STEP = "step only"
# the arguments a schedule cannot do without: every epoch a new rate (the most a schedule changes)
REQUIRED = {"step_size": 1, "gamma": 0.9}


def builtin_schedules() -> dict[str, schedules.Schedule]:
    """One instance of every public Schedule subclass that skipnet.schedules defines, built with its defaults
    and REQUIRED's values for the arguments that have none (RuntimeError for an argument not there)."""
    found = {}
    for name, cls in vars(schedules).items():
        if not (isinstance(cls, type) and issubclass(cls, schedules.Schedule) and cls is not schedules.Schedule
                and cls.__module__ == schedules.__name__ and not name.startswith("_")):
            continue
        needed = [p.name for p in inspect.signature(cls).parameters.values()
                  if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        missing = [p for p in needed if p not in REQUIRED]
        if missing:
            raise RuntimeError(f"schedules.{name} needs {missing}: add a value to REQUIRED in {__file__}")
        args = {p: REQUIRED[p] for p in needed}
        found[f"{name}({', '.join(f'{k}={v}' for k, v in args.items())})"] = cls(**args)
    return found


def variants() -> dict[str, dict]:
    """Variant name -> the Trainer options beyond loss, optimizer, lr, batch_size and epochs."""
    out = {"defaults": {}, BASELINE: {"diagnose": False}, STEP: dict(STEP_ONLY)}
    out.update({name: {"diagnose": False, "schedule": s} for name, s in builtin_schedules().items()})
    return out


def fits(w, X, y, epochs: int) -> list[SkipnetFit]:
    """One SkipnetFit of every variant, each shuffling from a seed of its own (the defaults' 0, then 1, 2,
    ...). With one seed, the fits of one round would draw the same row orders; a width-1 network's
    steps branch on the data (bench/row_orders.py), so a fit right after another with the same orders
    and the same trajectory (the defaults and diagnose=False train alike) runs on a branch predictor
    that has learnt them: 10% faster on W0's 2-epoch fits, which made every ratio to diagnose=False
    about 0.1 too high. A user's fits each draw new orders."""
    return [SkipnetFit(w, X, y, options={**options, "seed": seed} if seed else options, name=variant,
                       fit_epochs=epochs, whole_fits=True)
            for seed, (variant, options) in enumerate(variants().items())]


@contextlib.contextmanager
def one_cpu():
    """The process on its lowest allowed CPU and BLAS on one thread, as far as this platform allows;
    yields what was done, and restores both afterwards."""
    done = []
    with contextlib.ExitStack() as stack:
        if hasattr(os, "sched_setaffinity"):
            allowed = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {min(allowed)})
            stack.callback(os.sched_setaffinity, 0, allowed)
            done.append(f"pinned to CPU {min(allowed)}")
        else:
            done.append("not pinned (no os.sched_setaffinity here)")
        try:
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(1))
            done.append("BLAS on 1 thread")
        except ImportError:
            done.append("BLAS threads not limited (no threadpoolctl)")
        yield "; ".join(done)


def measure(name: str, epochs: list[int], repeats: int, block: float, log=print) -> dict:
    """{epochs: {variant: (median seconds per fit, paired ratio to BASELINE)}} of workload ``name``. The
    variants are built once; the first fit length calibrates the blocks (and warms up), the longer ones
    reuse that calibration, so that W3's 7-second fits are not run untimed."""
    w = WORKLOADS[name]
    X, y = w.data()
    impls = fits(w, X, y, epochs[0])
    makers = [(impl.name, lambda impl=impl: impl) for impl in impls]
    out, steps = {}, None
    for count in epochs:
        for impl in impls:
            impl.fit_epochs = count
        res = interleave(f"{name}, fits of {count} epochs", makers, repeats, block, lambda line: None,
                         settle_seconds(1), steps)
        per_fit = impls[0].steps_per_epoch * count
        out[count] = {v: (res.median(v) * per_fit, res.ratio(v, BASELINE)) for v in res.per_step}
        # the same block length for the next fit length, in whole fits (SkipnetFit rounds to them)
        steps = {v: max(1, int(block / res.median(v))) for v in res.per_step}
        log(f"\n{name} ({w.description}), fits of {count} epochs ({per_fit} steps), {repeats} repeats:")
        log(f"  {'variant':<42} {'median/fit':>11}   ÷ {BASELINE} (paired)")
        for v, (seconds, ratio) in out[count].items():
            log(f"  {v:<42} {fmt_seconds(seconds):>11}   {ratio:.3g}")
    return out


def round_orders(items: list, rounds: int, seed: int = 0) -> list[list]:
    """The order of ``items`` in each of ``rounds`` rounds: a new shuffle each round (from ``seed``). A
    rotating order keeps each item behind the same one in every round, and a fit runs faster or slower
    after some fits than after others (what the caches and branch predictors hold), so the variant
    behind which the baseline always ran would move every ratio; shuffled, each runs behind all others."""
    rng = random.Random(seed)
    orders = []
    for _ in range(rounds):
        order = list(items)
        rng.shuffle(order)
        orders.append(order)
    return orders


def measure_fit_by_fit(name: str, epochs: list[int], rounds: int, log=print) -> dict:
    """As measure, but each round times one fit of every variant, in an order shuffled anew each round
    (round_orders), and the ratio is the median over rounds of the two fits' times of one round: no
    blocks, so a burst of other work on the machine spoils a round, not a variant's whole block."""
    w = WORKLOADS[name]
    X, y = w.data()
    impls = fits(w, X, y, epochs[0])
    out = {}
    for count in epochs:
        times = {impl.name: [] for impl in impls}
        for impl in impls:  # a warm-up fit each
            impl.fit_epochs = count
            impl.block(impl.steps_per_epoch * count)
        for order in round_orders(impls, rounds):
            for impl in impls:  # the schedules' fresh copies, before the round: between two fits, every
                impl.prepare()  # variant's fit is preceded by the same work (SkipnetFit.prepare)
            for impl in order:
                elapsed, _ = impl.block(impl.steps_per_epoch * count)
                times[impl.name].append(elapsed)
        base = times[BASELINE]
        out[count] = {v: (statistics.median(t), statistics.median(a / b for a, b in zip(t, base)))
                      for v, t in times.items()}
        log(f"\n{name} ({w.description}), fits of {count} epochs, fit by fit, {rounds} rounds:")
        log(f"  {'variant':<42} {'median/fit':>11}   ÷ {BASELINE} (paired)")
        for v, (seconds, ratio) in out[count].items():
            log(f"  {v:<42} {fmt_seconds(seconds):>11}   {ratio:.3g}")
    return out


def summary(results: dict) -> str:
    """One Markdown row per workload and fit length: the baseline's time per fit and every ratio."""
    first = next(iter(next(iter(results.values())).values()))
    others = [v for v in first if v != BASELINE]
    lines = [f"| workload | epochs | {BASELINE} / fit | " + " | ".join(f"{v} ÷" for v in others) + " |",
             "|---" * (3 + len(others)) + "|"]
    for name, by_epochs in results.items():
        for count, row in by_epochs.items():
            lines.append(f"| {name} | {count} | {fmt_seconds(row[BASELINE][0])} | "
                         + " | ".join(f"{row[v][1]:.3g}" for v in others) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated, out of W0-W4")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (default 3)")
    parser.add_argument("--epochs", default="2,20", help="fit lengths in epochs, comma-separated (default 2,20)")
    parser.add_argument("--block", type=float, default=0.1, help="seconds of fits per variant and repeat, at "
                        "least one fit (default 0.1)")
    parser.add_argument("--fit-by-fit", type=int, default=0, metavar="ROUNDS",
                        help="instead of blocks: ROUNDS rounds of one fit of every variant each, in an order "
                        "shuffled anew each round (ratios per round)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        parser.error(f"--workloads: unknown {unknown}; choose from {','.join(WORKLOADS)}")
    try:
        epochs = sorted({int(e) for e in args.epochs.split(",") if e.strip()})
    except ValueError:
        parser.error(f"--epochs: whole numbers separated by commas, got {args.epochs!r}")
    if not epochs or epochs[0] < 1:
        parser.error(f"--epochs: at least one fit length, each >= 1, got {args.epochs!r}")
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if not args.block > 0:
        parser.error(f"--block must be > 0 seconds, got {args.block}")
    if args.fit_by_fit < 0:
        parser.error(f"--fit-by-fit must be >= 1 rounds (0: blocks), got {args.fit_by_fit}")
    with one_cpu() as how:
        for line in host_lines(describe()):
            print(line)
        if args.fit_by_fit:
            print(f"{how}; fit by fit, {args.fit_by_fit} rounds")
            results = {name: measure_fit_by_fit(name, epochs, args.fit_by_fit) for name in names}
        else:
            print(f"{how}; {args.repeats} repeats, blocks of >= {args.block:g} s")
            results = {name: measure(name, epochs, args.repeats, args.block) for name in names}
    print(f"\nPaired ratios to diagnose=False (medians over {'rounds' if args.fit_by_fit else 'repeats'}):\n")
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
