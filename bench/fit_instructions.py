"""Instructions per fit of bench/defaults_cost.py's variants (the defaults, each schedule) against
diagnose=False, counted by valgrind's callgrind: repeatable on a machine too busy to time short fits.

    python bench/fit_instructions.py [--workload W0] [--epochs 2] [--fits 45,405]
                                     [--variants "defaults,CosineLR(),OneCycle()"]

Each variant runs in two processes under ``valgrind --tool=callgrind``, one making the fewer and one
the more fits of --fits (every fit from the workload's fixed start, as defaults_cost.py makes them,
after one fit to warm up); the difference of the two totals over the difference of the fit counts is
the instructions of one fit, start-up and imports cancelled. What is left of the start-up's own
variation (a few million instructions from run to run) is divided by that difference of fit counts;
the children's string hashes are fixed (PYTHONHASHSEED=0), since dictionary lookups in every fit
depend on them.
The runs share the CPUs (one process each). Needs valgrind. The child mode (--child) is what runs under valgrind.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(workload: str, variant: str, fits: int, epochs: int) -> None:
    """``fits`` fits of one variant (after one to warm up), under valgrind."""
    sys.path.insert(0, str(HERE))
    from defaults_cost import variants
    from threadpoolctl import threadpool_limits

    import skipnet.trainer
    from skipnet._bench import WORKLOADS
    from skipnet._bench.implementations import SkipnetFit

    # valgrind runs ~50x slower: the kernel's pause for Ctrl-C (every PAUSE_SECONDS) would split fits
    # that natively end long before it, adding Python round trips a user's fit does not make
    skipnet.trainer.PAUSE_SECONDS = 3600.0
    threadpool_limits(1)
    w = WORKLOADS[workload]
    X, y = w.data()
    fit = SkipnetFit(w, X, y, options=variants()[variant], name=variant, fit_epochs=epochs, whole_fits=True)
    steps = epochs * (len(X) // w.batch)
    for _ in range(fits + 1):
        fit.block(steps)


def instructions(workload: str, variant: str, fits: int, epochs: int, out: Path) -> int:
    """Callgrind's total for a child process making ``fits`` fits."""
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__, "--child",
         "--workload", workload, "--variants", variant, "--fits", str(fits), "--epochs", str(epochs)],
        check=False, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode or not found:
        raise RuntimeError(f"valgrind failed for {variant}:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", default="W0", help="one of W0-W4 (default W0)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per fit (default 2)")
    parser.add_argument("--fits", default="45,405", help="the two fit counts (default 45,405)")
    parser.add_argument("--variants", default="defaults,CosineLR(),OneCycle()",
                        help="comma-separated names from defaults_cost.py, besides diagnose=False")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.workload, args.variants, int(args.fits), args.epochs)
        return 0
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed")
    few, many = (int(f) for f in args.fits.split(","))
    if not 0 <= few < many:
        parser.error(f"--fits: two counts, the first smaller, got {args.fits!r}")
    names = ["diagnose=False"] + [v.strip() for v in args.variants.split(",") if v.strip()]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        runs = {(name, n): pool.submit(instructions, args.workload, name, n, args.epochs, Path(tmp) / f"cg.{i}.{n}")
                for i, name in enumerate(names) for n in (few, many)}
        per_fit = {name: (runs[name, many].result() - runs[name, few].result()) / (many - few) for name in names}
    base = per_fit["diagnose=False"]
    print(f"{args.workload}, fits of {args.epochs} epochs, instructions per fit ({few} and {many} fits):")
    for name, count in per_fit.items():
        print(f"  {name:<24} {count:12,.0f}  {count / base:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
