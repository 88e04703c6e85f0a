"""`skipnet demo`: the exercise and the experiments that explain it, as a report."""

from __future__ import annotations

import os


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo", help="run the exercise and the experiments that explain it; write an HTML/Markdown report",
        description="Reproduce and explain the exercise: (a) the hand step, (b) the dead next step, (c) a "
                    "falling loss curve, (d) runs stuck at ln 2 and their fixes, (e) learning rates, schedules "
                    "and the range test, (f) why skips help. Writes report.html (plots embedded), report.md, "
                    "report.json and the PNG plots into --out, and prints a summary.")
    p.add_argument("--out", default="skipnet-demo", help="output directory (default ./skipnet-demo)")
    p.add_argument("--quick", action="store_true", help="fewer seeds and epochs (the full demo takes seconds too)")
    p.add_argument("--jobs", type=int, default=None,
                   help="parallel workers for the seed and learning-rate sweeps (default: every core; "
                        "1 with --quick)")
    p.add_argument("--no-plots", action="store_true", help="write the report without figures")
    p.set_defaults(run=run)


def run(args) -> int:
    import time

    from ..demo import run_demo
    from ..report import write_report

    if args.jobs is not None and args.jobs == 0:
        raise ValueError("--jobs must be a positive number of workers or -1 (every core)")
    _check_folder(args.out)
    start = time.perf_counter()
    report = run_demo(quick=args.quick, n_jobs=args.jobs)
    paths = write_report(report, args.out, plots=not args.no_plots)
    print(f"skipnet demo ({'quick' if args.quick else 'full'}): {time.perf_counter() - start:.1f} s")
    print(report.summary())
    print(f"report: {paths['html']} (also report.md, report.json, {len(paths['figures'])} PNG files)")
    if paths["plots_error"]:
        print(f"no plots: {paths['plots_error']}")
    return 0


def _check_folder(path: str) -> None:
    """Before the experiments run: --out must be a folder, or a new one whose nearest existing parent is
    a writable folder (write_report creates it)."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise ValueError(f"--out {path} exists and is not a folder")
    existing = os.path.abspath(path)
    while not os.path.isdir(existing):
        existing = os.path.dirname(existing)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {path}: the folder {existing} is not writable")
