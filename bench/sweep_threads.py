"""How much faster a sweep runs on threads than in a plain loop: sn.sweep(parallel_backend="threading")
against "serial".

The kernels release the GIL, so runs on separate threads overlap wherever time is spent inside a kernel;
Python between kernel calls (the trainer's per-step loop, batch gathering) still runs one thread at a
time. Serial and threaded sweeps are timed interleaved (the order alternates each repeat), after one
untimed warm-up of each, and the script prints medians, the ratio threaded / serial (of the medians,
and the median of each repeat's back-to-back pair) and the cores each mode actually got (CPU seconds per wall second: on a machine busy with other work, below 1 and 2). A
sweep holds BLAS to one thread in every mode, so the runs side by side are the only parallelism.

    python bench/sweep_threads.py                      # every workload, 5 repeats, 2 threads
    python bench/sweep_threads.py --workload medium --repeats 9 --n-jobs 2

Workloads (one sweep = seeds x lrs runs, each a fresh network trained for --epochs epochs):
  small   2-16-16-1, first-to-output skip, bce, batch 32, 512 samples, float64, 32 seeds: the seed
          study's kind (a few ms per run: the sweep's own per-run work in Python counts most here)
  medium  32-128-128-128-1, first-to-output skip, l1, batch 64, 2048 samples, float32 (design.md's W2);
          most of a step is inside the kernels
  large   32-256-256-256-1, the same at batch 256: nearly all of a step is inside the kernels
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

import skipnet as sn
from skipnet.sweep import MLPFactory

WORKLOADS = {
    "small": {"factory": MLPFactory(2, (16, 16), skip="first-to-output"), "n": 512, "loss": "bce",
              "batch_size": 32, "epochs": 20, "seeds": 32},
    "medium": {"factory": MLPFactory(32, (128, 128, 128), skip="first-to-output", dtype="float32"), "n": 2048,
               "loss": "l1", "batch_size": 64, "epochs": 5, "seeds": 4},
    "large": {"factory": MLPFactory(32, (256, 256, 256), skip="first-to-output", dtype="float32"), "n": 2048,
              "loss": "l1", "batch_size": 256, "epochs": 4, "seeds": 4},
}


def make_data(workload: str, n: int):
    rng = np.random.default_rng(0)
    if workload == "small":
        X = rng.normal(size=(n, 2))
        return X, (X[:, 0] * X[:, 1] > 0).astype(float)
    X = rng.normal(size=(n, 32)).astype(np.float32)
    return X, np.tanh(X[:, :4].sum(axis=1, keepdims=True)).astype(np.float32)


def measure(workload: str, seeds: int | None, lrs: list[float], n_jobs: int, repeats: int,
            epochs: int | None) -> dict:
    spec = dict(WORKLOADS[workload])
    factory, n, default_seeds = spec.pop("factory"), spec.pop("n"), spec.pop("seeds")
    seeds = default_seeds if seeds is None else seeds
    if epochs is not None:
        spec["epochs"] = epochs
    X, y = make_data(workload, n)

    def run(backend: str):
        start, cpu = time.perf_counter(), time.process_time()
        rows = sn.sweep(factory, X, y, seeds=range(seeds), lrs=lrs, parallel_backend=backend, n_jobs=n_jobs,
                        as_frame=False, **spec)
        wall = time.perf_counter() - start
        usage[backend].append((time.process_time() - cpu) / wall)
        return wall, rows

    usage = {"serial": [], "threading": []}  # CPU seconds per wall second: the cores each mode got

    _, serial_rows = run("serial")  # warm-up, and the rows to compare
    _, thread_rows = run("threading")
    for v in usage.values():
        v.clear()
    same = all(a.keys() == b.keys() and all(a[k] == b[k] or a[k] != a[k] and b[k] != b[k] for k in a)
               for a, b in zip(serial_rows, thread_rows))  # NaN equals NaN
    times = {"serial": [], "threading": []}
    for rep in range(repeats):
        for backend in (("serial", "threading") if rep % 2 == 0 else ("threading", "serial")):
            times[backend].append(run(backend)[0])
    serial, threaded = statistics.median(times["serial"]), statistics.median(times["threading"])
    # each repeat's pair ran back to back: the median of their ratios is robust to load drifting slowly
    pair_ratio = statistics.median(t / s for s, t in zip(times["serial"], times["threading"]))
    return {"workload": workload, "runs": len(serial_rows), "serial": serial, "threading": threaded,
            "ratio": threaded / serial, "pair_ratio": pair_ratio, "identical": same, "all": times,
            "cores_used": {k: statistics.median(v) for k, v in usage.items()}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", choices=[*WORKLOADS, "all"], default="all")
    p.add_argument("--seeds", type=int, default=None,
                   help="seeds per sweep (default: 32 for small, the seed study's kind; 4 otherwise)")
    p.add_argument("--lrs", default="0.01,0.1", help="learning rates (default 0.01,0.1)")
    p.add_argument("--epochs", type=int, default=None, help="override the workload's epochs")
    p.add_argument("--n-jobs", type=int, default=2, help="threads of the threaded sweep (default 2)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats of each backend (default 5)")
    args = p.parse_args(argv)
    lrs = [float(v) for v in args.lrs.split(",")]
    names = list(WORKLOADS) if args.workload == "all" else [args.workload]
    print(f"cores: {os.cpu_count()}, threads: {args.n_jobs}, repeats: {args.repeats} (interleaved, medians), "
          f"{sys.argv[0]} {' '.join(sys.argv[1:])}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'workload':<9} {'runs':>4} {'serial s':>9} {'threads s':>10} {'ratio':>6} {'pairs':>6} "
          f"{'cores used':>14}  identical rows")
    for name in names:
        r = measure(name, args.seeds, lrs, args.n_jobs, args.repeats, args.epochs)
        print(f"{r['workload']:<9} {r['runs']:>4} {r['serial']:>9.3f} {r['threading']:>10.3f} "
              f"{r['ratio']:>6.2f} {r['pair_ratio']:>6.2f} {r['cores_used']['serial']:>6.2f} {r['cores_used']['threading']:>6.2f}  "
              f"{r['identical']}")
        print("          serial:   " + " ".join(f"{t:.3f}" for t in r["all"]["serial"]))
        print("          threads:  " + " ".join(f"{t:.3f}" for t in r["all"]["threading"]))
    print(f"load average after: {os.getloadavg()[0]:.2f}  (cores used: CPU seconds per wall second, serial "
          "and threaded; below 1 and 2 the machine was busy with other work)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
