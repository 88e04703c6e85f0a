"""The report of ``skipnet bench``: the table of each workload (median and fastest time per step, paired
ratios), its targets and goals checked, and the lines of the extra sections; every table is printed
through ``log`` and returned as the dict that goes into the JSON."""

from __future__ import annotations

from collections.abc import Callable

from .implementations import DEFAULTS, FUSED
from .timing import Result
from .workloads import GOALS, TARGETS, Workload


def fmt_seconds(seconds: float) -> str:
    """A time with three significant digits in s, ms, us or ns."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def check(result: Result, target: tuple[str, str, str, float]) -> tuple[str, float | None, bool | None]:
    """(text, paired ratio, met) of a target (impl, peer, "<=" or ">=", bound); the ratio and verdict are
    None when either implementation was not timed."""
    impl, peer, op, bound = target
    text = f"{impl} / {peer} {op} {bound:g}"
    if impl not in result.per_step or peer not in result.per_step:
        return text, None, None
    value = result.ratio(impl, peer)
    return text, value, (value <= bound) if op == "<=" else (value >= bound)


def workload_table(w: Workload, res: Result, log: Callable[[str], None]) -> dict:
    """Print the workload's table and its checks; return them for the JSON report."""
    impls = list(res.per_step)
    wide = max([len("implementation"), *map(len, impls)])
    log(f"\n{w.name}: {w.description}")
    log(f"  {'implementation':<{wide}} {'median/step':>12} {'fastest':>10}   paired ratio to: "
        + "  ".join(f"{p:>{max(15, len(p))}}" for p in impls))
    for impl in impls:
        ratios = "  ".join(f"{res.ratio(impl, p):>{max(15, len(p))}.3g}" for p in impls)
        log(f"  {impl:<{wide}} {fmt_seconds(res.median(impl)):>12} {fmt_seconds(res.best(impl)):>10}   "
            f"{'':17}{ratios}")
    for impl, why in res.skipped.items():
        log(f"  {impl}: skipped ({why})")
    defaults_cost = None
    if DEFAULTS in res.per_step and FUSED in res.per_step:
        defaults_cost = res.ratio(DEFAULTS, FUSED)
        log(f"  {DEFAULTS} / {FUSED}: {defaults_cost:.3g} (what a fit at the Trainer's defaults costs per step "
            "against the training step alone)")
    checks, goals = [], []
    for kind, bounds, out in (("target", TARGETS, checks), ("goal", GOALS, goals)):
        for target in bounds.get(w.name, []):
            text, value, ok = check(res, target)
            if kind == "goal" and value is None:
                continue  # the peer is not installed
            out.append({"target": text, "value": value, "met": ok})
            verdict = "n/a" if ok is None else ("met" if ok else "MISSED")
            log(f"  {kind} {text}: {'-' if value is None else f'{value:.3g}'} ({verdict})")
    return {
        "description": w.description,
        "median_per_step": {i: res.median(i) for i in impls},
        "fastest_per_step": {i: res.best(i) for i in impls},
        "paired_ratio": {i: {p: res.ratio(i, p) for p in impls} for i in impls},
        "defaults_over_fused": defaults_cost, "steps_per_block": res.block_steps,
        "per_round": res.per_step, "skipped": res.skipped, "targets": checks, "goals": goals}


def elementwise_table(what: str, speeds: dict, log: Callable[[str], None]) -> None:
    """Print sections.elementwise's result, measured on ``what``."""
    log(f"\nelement-wise kernels, {what} (bytes read + written):")
    for name, v in speeds.items():
        log(f"  {name:<22} {v['GB/s']:6.1f} GB/s  {100 * v['of copy']:5.0f}% of copy")


def scaling_table(ratios: dict, log: Callable[[str], None]) -> None:
    """Print sections.scaling's result."""
    log("\nscaling (W1, fused; the control shows what two threads of plain C get on this machine now):")
    for name, v in ratios.items():
        log(f"  {name}: {v:.3g}")
