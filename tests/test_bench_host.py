"""The host that ``skipnet bench`` reports (CPU model and SIMD flags read from /proc/cpuinfo, or what can be
known elsewhere, and the SIMD level of each of skipnet's code paths), its "skipnet fit (defaults)" row, and
bench/defaults_cost.py run as a user would (tiny blocks; no times are checked)."""

import itertools
import os
import subprocess
import sys

from _helpers import PACKAGE_ROOT

import skipnet._kernels as K
from skipnet._bench import host

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_tile

processor\t: 1
model name\t: some other core
flags\t\t: fpu sse2
"""


def test_cpu_model_and_flags_come_from_the_first_processor(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO)
    assert host.cpu_model(str(info)) == "Intel(R) Xeon(R) Platinum 8488C"
    assert host.cpu_simd_flags(str(info)) == ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                                              "avx512_bf16", "avx512_fp16"]
    info.write_text("model name\t: AMD EPYC\nflags\t\t: fpu sse2 avx fma avx2\n")
    assert host.cpu_model(str(info)) == "AMD EPYC" and host.cpu_simd_flags(str(info)) == ["avx2", "fma"]


def test_without_cpuinfo_the_platform_and_skipnets_own_check_answer(tmp_path, monkeypatch):
    missing = str(tmp_path / "no-cpuinfo")
    monkeypatch.setattr(host.platform, "processor", lambda: "arm")
    assert host.cpu_model(missing) == "arm"
    assert host.cpu_simd_flags(missing) == (["avx2", "fma"] if K.cpu_has_avx2() else [])


def test_simd_paths_are_the_extensions_report():
    paths = host.simd_paths()
    assert list(paths) == ["tiles", "elementwise", "losses", "blas"]
    assert paths["tiles"] == paths["elementwise"] == paths["losses"] == K.get_simd()
    assert isinstance(paths["blas"], str) and paths["blas"]


def test_host_lines_name_the_cpu_its_flags_and_every_path():
    described = host.describe()
    assert described["blas_thresholds"] == K.blas_thresholds()
    assert described["cpu_simd_level"] == K.cpu_simd_level()
    first, second = host.host_lines(described)
    assert first.startswith(f"host: {described['cpu']}; SIMD flags: ")
    assert all(flag in first for flag in described["cpu_flags"])
    assert all(f"{path} {level}" in second for path, level in described["simd_paths"].items())
    assert all(form in second for form in K.blas_thresholds())


def test_the_defaults_row_fits_with_the_trainers_defaults_from_a_first_fit_each_time():
    from skipnet._bench import LR, WORKLOADS
    from skipnet._bench.implementations import DEFAULTS, STEP_ONLY, SkipnetFit, defaults
    from skipnet.schedules import ReduceLROnPlateau
    from skipnet.trainer import Trainer

    w = WORKLOADS["W1"]
    X, y = w.data()
    impl = defaults(w, X, y)
    fresh = Trainer(w.make(0), loss="l1", optimizer="sgd", lr=LR, batch_size=w.batch)
    assert impl.name == DEFAULTS
    for option in ("shuffle", "diagnose", "diagnose_every", "fused", "divergence_factor", "schedule", "seed"):
        assert getattr(impl.trainer, option) == getattr(fresh, option), option
    fused = SkipnetFit(w, X, y)
    assert {k: getattr(fused.trainer, k) for k in STEP_ONLY} == STEP_ONLY and fused.trainer.fused
    # whole fits of exactly fit_epochs epochs, each starting as a first fit (counters, schedule state)
    plateau = ReduceLROnPlateau(mode="max", patience=0, factor=0.5)  # a falling loss: one cut per epoch
    impl = SkipnetFit(w, X, y, options={"diagnose": False, "schedule": plateau}, name="plateau", fit_epochs=2,
                      whole_fits=True)
    seconds, steps = impl.block(6 * impl.steps_per_epoch)
    assert seconds > 0 and steps == 3 * 2 * impl.steps_per_epoch  # three fits of two epochs
    assert impl.trainer.step_count == 2 * impl.steps_per_epoch and impl.trainer.epoch_count == 2
    assert plateau.current is None  # the fits ran on copies: the pristine schedule never started
    assert impl.trainer.schedule.reductions == [(1, LR * 0.5)]  # the last fit's copy, fresh at its start
    assert impl.block(1)[1] == 2 * impl.steps_per_epoch  # never part of a fit


def test_defaults_cost_script_reports_the_host_and_every_variant(tmp_path):
    from skipnet import schedules

    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "defaults_cost.py")
    env = {**os.environ, "PYTHONPATH": PACKAGE_ROOT}
    run = subprocess.run([sys.executable, script, "--workloads", "W0", "--repeats", "1", "--epochs", "2",
                          "--block", "0.002"], capture_output=True, text=True, cwd=tmp_path, env=env, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"host: {host.cpu_model()}; SIMD flags:")
    assert lines[1].startswith("skipnet SIMD in use: tiles ") and "BLAS from m*n*k >= X@W.T 2^" in lines[1]
    assert "pinned to CPU" in lines[2] or "not pinned" in lines[2]
    table = run.stdout[run.stdout.index("W0 (exercise net"):]
    names = [n for n, c in vars(schedules).items()
             if isinstance(c, type) and issubclass(c, schedules.Schedule) and c is not schedules.Schedule
             and not n.startswith("_")]
    assert len(names) >= 5
    for variant in ["defaults", "diagnose=False", "step only", *names]:
        assert f"\n  {variant}" in table, variant
    summary = run.stdout[run.stdout.index("| workload | epochs |"):].splitlines()
    assert len(summary) == 3 and summary[2].startswith("| W0 | 2 | ")
    bad = subprocess.run([sys.executable, script, "--workloads", "W9"], capture_output=True, text=True,
                         cwd=tmp_path, env=env, check=False)
    assert bad.returncode == 2 and "--workloads: unknown ['W9']" in bad.stderr and "Traceback" not in bad.stderr
    by_fit = subprocess.run([sys.executable, script, "--workloads", "W0", "--epochs", "1", "--fit-by-fit", "2"],
                            capture_output=True, text=True, cwd=tmp_path, env=env, check=False)
    assert by_fit.returncode == 0, by_fit.stderr
    assert "fit by fit, 2 rounds" in by_fit.stdout and "medians over rounds" in by_fit.stdout
    table = by_fit.stdout[by_fit.stdout.index("| workload | epochs |"):].splitlines()
    assert table[2].startswith("| W0 | 1 | ") and table[2].count("|") == len(table[0].split("|")) - 1
    negative = subprocess.run([sys.executable, script, "--fit-by-fit", "-1"], capture_output=True, text=True,
                              cwd=tmp_path, env=env, check=False)
    assert negative.returncode == 2 and "--fit-by-fit must be >= 1" in negative.stderr


def test_schedule_costs_script_times_every_schedule_and_the_cosine_fill(tmp_path):
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "schedule_costs.py")
    env = {**os.environ, "PYTHONPATH": PACKAGE_ROOT}
    run = subprocess.run([sys.executable, script, "--number", "20", "--repeat", "1", "--steps-per-epoch", "50"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"host: {host.cpu_model()}; SIMD flags:")
    rows = [line.split() for line in run.stdout.splitlines() if line.endswith("µs") and "(" in line]
    names = [row[0].split("(")[0] for row in rows]
    assert {"StepLR", "ExponentialLR", "CosineLR", "OneCycle", "ReduceLROnPlateau"} <= set(names)
    assert all(float(row[-4]) > 0 and float(row[-2]) > 0 for row in rows)  # start and rates, in µs
    fills = [line for line in run.stdout.splitlines() if "steps (block" in line]
    assert len(fills) == 5 and all("ns a step" in line for line in fills)
    bad = subprocess.run([sys.executable, script, "--epochs", "0"], capture_output=True, text=True,
                         cwd=tmp_path, env=env, check=False)
    assert bad.returncode == 2 and "--epochs must be >= 1" in bad.stderr and "Traceback" not in bad.stderr


def test_an_implementation_can_take_the_block_size_of_another():
    from skipnet._bench.timing import Impl, calibrate

    class Steps(Impl):
        def __init__(self, name, seconds_per_step, follows=None):
            self.name, self.seconds_per_step, self.same_blocks_as, self.calls = name, seconds_per_step, follows, []

        def block(self, steps):
            self.calls.append(steps)
            return steps * self.seconds_per_step, steps

    follower, leader = Steps("defaults", 2.0**-6, follows="fused"), Steps("fused", 2.0**-10)
    lone = Steps("alone", 2.0**-6, follows="not timed here")
    steps = calibrate([follower, leader, lone], block=1.0)
    assert steps == {"fused": 1024, "defaults": 1024, "alone": 64}  # blocks of 1 s, but the follower's
    assert follower.calls == [1024]  # no calibration of its own, one warm-up block of the leader's size
    assert leader.calls[-1] == 1024 and lone.calls[-1] == 64  # their warm-up blocks


def test_defaults_cost_fits_shuffle_from_seeds_of_their_own():
    """No two variants' fits draw the same row orders (a branch predictor would learn them from the fit
    before); the defaults' fit keeps the Trainer's default seed."""
    bench_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
    sys.path.insert(0, bench_dir)
    try:
        import defaults_cost
    finally:
        sys.path.remove(bench_dir)
    from skipnet._bench import WORKLOADS

    w = WORKLOADS["W0"]
    X, y = w.data()
    impls = defaults_cost.fits(w, X, y, 2)
    assert [impl.name for impl in impls] == list(defaults_cost.variants())
    seeds = [impl.trainer.seed for impl in impls]
    assert len(set(seeds)) == len(seeds) and seeds[0] == 0
    assert "seed" not in defaults_cost.variants()["defaults"]
    firsts = {impl.trainer.rng.permutation(len(X)).tobytes() for impl in impls}
    assert len(firsts) == len(impls)


def test_defaults_cost_rounds_put_every_variant_behind_every_other():
    """Fit by fit, each round runs every variant once, in an order shuffled anew each round (the same
    orders from the same seed), so the baseline does not always run right after the same variant."""
    bench_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
    sys.path.insert(0, bench_dir)
    try:
        import defaults_cost
    finally:
        sys.path.remove(bench_dir)
    names = list(defaults_cost.variants())
    orders = defaults_cost.round_orders(names, 400)
    assert all(sorted(order) == sorted(names) for order in orders)
    assert orders == defaults_cost.round_orders(names, 400)
    behind = {name: set() for name in names}  # name -> the variants it ran right after
    for order in orders:
        for before, name in itertools.pairwise(order):
            behind[name].add(before)
    assert all(behind[name] == set(names) - {name} for name in names)
