"""Figures with matplotlib (the optional ``plot`` extra), drawn off-screen with the Agg backend.

``demo_figures(report)`` returns {file name: PNG bytes} for the demo report; ``plot_lr_find`` draws a
range-test curve (``LRFinderResult.plot``). Importing this module does not import matplotlib; each
function does, and raises ImportError with the install command when it is missing.
"""

from __future__ import annotations

import io
import math

import numpy as np

from .reference import LN2

INSTALL_HINT = "plots need matplotlib: pip install 'skipnet[plot]'"
COLORS = {"plain": "#c0392b", "residual": "#2471a3", "stuck": "#c0392b", "learned": "#7f8c8d",
          "dead_layer": "#c0392b", "saddle": "#e67e22", "other": "#8e44ad", "good": "#27ae60",
          "small": "#2471a3", "large": "#c0392b", "constant": "#7f8c8d", "cosine": "#2471a3"}


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _plain_log_ticks(fig) -> None:
    """Log axes labelled at the decades: in plain decimals (0.001, not 10^-3) while every decade is
    between 0.001 and 10000, else as powers of ten (10^-7 reads better than 0.0000001). An axis within
    about a decade has too few decades to label, so its minor ticks at 2 and 5 times a decade are
    labelled too (not every minor tick: their labels would overlap near each decade)."""
    from matplotlib.ticker import FuncFormatter, LogFormatterMathtext, NullFormatter

    from ._format import fmt

    plain = FuncFormatter(lambda v, _: fmt(v, 3))

    def some_minor(v, _):
        mantissa = v / 10 ** math.floor(math.log10(v) + 1e-9) if v > 0 else 0
        return fmt(v, 3) if any(abs(mantissa - m) < 1e-6 for m in (2, 5)) else ""

    for ax in fig.axes:
        for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            if axis.get_scale() != "log":
                continue
            low, high = min(limits), max(limits)
            if low < 1e-3 or high > 1e4:
                axis.set_major_formatter(LogFormatterMathtext())
                axis.set_minor_formatter(NullFormatter())
                continue
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(FuncFormatter(some_minor) if high / low < 30 else NullFormatter())


def _png(fig) -> bytes:
    _plain_log_ticks(fig)
    # fixed margins: cheaper than bbox_inches="tight", which lays the figure out twice
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.15, top=0.9, wspace=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    _pyplot().close(fig)
    return buffer.getvalue()


def _label(ax, xlabel: str, ylabel: str, title: str, legend: bool = True) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend:
        ax.legend(fontsize=8)


def _epochs(curve) -> np.ndarray:
    return np.arange(1, len(curve) + 1)


# ------------------------------------------------------------------------------------------ lr_find
def _draw_lr_find(ax, lrs, losses, smoothed, suggestion, method: str, best_lr) -> None:
    ax.plot(lrs, losses, color="#bbbbbb", lw=1, label="loss of each step")
    ax.plot(lrs, smoothed, color="#2471a3", lw=2, label="smoothed loss")
    if suggestion is not None:
        ax.axvline(suggestion, color="#27ae60", ls="--", label=f"suggestion ({method}): {suggestion:.3g}")
    ax.axvline(best_lr, color="#c0392b", ls=":", label=f"lowest smoothed loss: {best_lr:.3g}")
    ax.set_xscale("log")
    finite = np.asarray(smoothed)[np.isfinite(smoothed)]
    if finite.size:
        ax.set_ylim(0.8 * finite.min(), min(finite.max(), 4 * finite.min()) * 1.1)
    _label(ax, "learning rate", "loss", "learning-rate range test")


def plot_lr_find(result, ax=None):
    """Raw and smoothed loss of a range test against the rate (log x), with the suggested rate."""
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    _draw_lr_find(ax, result.lrs, result.losses, result.smoothed, result.suggestion, result.method,
                  result.best_lr)
    return ax


# ------------------------------------------------------------------------------------------ demo figures
def _regression(c, plt):
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.semilogy(_epochs(c.epoch_loss), c.epoch_loss, color="#2471a3", label="training loss (mse)")
    left.axhline(c.noise_floor, color="#7f8c8d", ls="--", label=f"noise floor {c.noise_floor:g}")
    _label(left, "epoch", "loss", "(c) the loss falls")
    right.scatter(c.x, c.y, s=6, color="#7f8c8d", label="data")
    right.plot(c.x_grid, np.sin(c.x_grid), color="#27ae60", ls="--", label="sin(x)")
    right.plot(c.x_grid, c.prediction, color="#c0392b", lw=2, label="network")
    _label(right, "x", "y", "fit after training")
    return fig


def _ln2_losses(d, plt):
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.axhline(LN2, color="black", ls="--", lw=1, zorder=1)
    epochs = max(len(run["curve"]) for run in d.runs)
    left.text(epochs, LN2 + 0.02, "ln 2 = 0.693", fontsize=8, ha="right", va="bottom")
    for run in d.runs:
        if not run["stuck"]:
            left.plot(_epochs(run["curve"]), run["curve"], color=COLORS["learned"], lw=0.5, alpha=0.4, zorder=2)
    for run in d.stuck_runs:
        left.plot(_epochs(run["curve"]), run["curve"], color=COLORS.get(run["cause"], COLORS["other"]), lw=0.8,
                  alpha=0.8, zorder=3)
    handles = [plt.Line2D([], [], color=COLORS["learned"], label="learned")]
    handles += [plt.Line2D([], [], color=COLORS.get(c, COLORS["other"]), label=f"stuck: {c}") for c in d.causes]
    left.set_ylim(0, max(1.0, LN2 * 1.3))
    _label(left, "epoch", "training loss (bce)",
           f"(d) {d.n_seeds} seeds: {d.n_stuck} stuck at ln 2 ({d.fraction_stuck:.0%})", legend=False)
    left.legend(handles=handles, fontsize=8, loc="lower left")
    finals = np.asarray(d.final_losses)
    bins = np.linspace(0, max(finals.max(), LN2) * 1.05, 40)
    groups = [("learned", [r["final_loss"] for r in d.runs if not r["stuck"]])]
    groups += [(cause, [r["final_loss"] for r in d.stuck_runs if r["cause"] == cause]) for cause in d.causes]
    right.hist([g[1] for g in groups], bins=bins, stacked=True,
               color=[COLORS.get(name, COLORS["other"]) for name, _ in groups],
               label=[f"{name} ({len(values)})" for name, values in groups])
    right.axvline(LN2, color="black", ls="--", lw=1)
    _label(right, "final training loss", "runs", "final losses (stuck runs by cause)")
    return fig


def _ln2_fixes(d, plt):
    fig, ax = plt.subplots(figsize=(10, 3.4))
    rng = np.random.default_rng(0)
    for i, fix in enumerate(d.fixes):
        values = np.asarray(fix["final_losses"])
        ax.scatter(i + rng.uniform(-0.15, 0.15, values.size), values, s=12,
                   color=np.where(values < d.recovered_below, "#27ae60", "#c0392b"))
    ax.axhline(LN2, color="black", ls="--", lw=1, label="ln 2")
    ax.axhline(d.recovered_below, color="#27ae60", ls=":", lw=1, label="recovered below this")
    ax.set_xticks(range(len(d.fixes)))
    ax.set_xticklabels([f"{f['name']}\n{f['recovered']}/{f['n']} recover" for f in d.fixes])
    _label(ax, "", "final training loss", f"(d) the {d.n_stuck} stuck seeds, trained again with one change each")
    return fig


def _learning_rates(e, plt):
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    lrs = np.asarray(e.lrs)
    for lr in lrs:
        rows = [g for g in e.grid if g["lr"] == lr]
        ok = [g["final_loss"] for g in rows if not g["stopped_reason"]]
        axes[0].scatter([lr] * len(ok), ok, color="#2471a3", s=15)
        if len(ok) < len(rows):
            axes[0].scatter([lr], [max(g["final_loss"] for g in e.grid if math.isfinite(g["final_loss"]))],
                            marker="x", color="#c0392b", s=60, label="diverged (stopped by the guard)")
    axes[0].set_xscale("log")
    axes[0].set_yscale("log")
    _label(axes[0], "learning rate", "final loss", "(e) final loss per rate")
    for label in ("small", "good"):
        curve = e.curves[label]
        axes[1].semilogy(_epochs(curve), curve, color=COLORS[label],
                         label=f"lr {getattr(e, label):g} ({'too small' if label == 'small' else 'good'})")
    _label(axes[1], "epoch", "training loss", "too small vs good")
    steps = e.diverged["step_loss"]
    axes[2].semilogy(np.arange(len(steps)), steps, "o-", color=COLORS["large"], label=f"lr {e.large:g}")
    _label(axes[2], "step", "mini-batch loss", "too large: diverges, training stops")
    return fig


def _schedule(e, plt):
    s = e.schedule
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    for label in ("constant", "cosine"):
        left.plot(s["rate"][label], color=COLORS[label], label=label)
        right.semilogy(_epochs(s["epoch_loss"][label]), s["epoch_loss"][label], color=COLORS[label],
                       label=f"{label}: final {s['final_loss'][label]:.4g}")
    _label(left, "step", "learning rate", "(e) schedule: warm-up then cosine decay")
    _label(right, "epoch", "training loss", "loss: schedule vs constant rate")
    return fig


def _lr_find(e, plt):
    f = e.lr_find
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    _draw_lr_find(left, f["lrs"], f["losses"], f["smoothed"], f["suggestion"], f["method"], f["best_lr"])
    left.set_title("(e) learning-rate range test")
    right.semilogy(_epochs(f["trained_epoch_loss"]), f["trained_epoch_loss"], color="#27ae60")
    _label(right, "epoch", "training loss", f"trained at the suggested lr {f['suggestion']:.3g}", legend=False)
    return fig


def _skips(f, plt):
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    layers = np.arange(len(f.weight_grad["plain"]))
    for label in ("plain", "residual"):
        left.semilogy(layers, f.weight_grad[label], "o-", color=COLORS[label],
                      label="no skips" if label == "plain" else "residual skips")
        right.semilogy(_epochs(f.epoch_loss[label]), f.epoch_loss[label], color=COLORS[label],
                       label=("no skips" if label == "plain" else "residual skips") +
                       f": final {f.final_loss[label]:.3g}")
    _label(left, "layer (0 = first hidden layer)", "|dL/dW| at initialisation",
           f"(f) gradient norm per layer, {f.depth} hidden layers of {f.width}")
    _label(right, "epoch", "training loss", "loss curves")
    return fig


FIGURES = {
    "regression.png": ("regression", _regression),
    "ln2_losses.png": ("ln2", _ln2_losses),
    "ln2_fixes.png": ("ln2", _ln2_fixes),
    "learning_rates.png": ("learning_rates", _learning_rates),
    "schedule.png": ("learning_rates", _schedule),
    "lr_find.png": ("learning_rates", _lr_find),
    "skips.png": ("skips", _skips),
}


def demo_figures(report) -> dict[str, bytes]:
    """Every figure of the demo report as PNG bytes, keyed by file name."""
    plt = _pyplot()
    return {name: _png(draw(getattr(report, section), plt)) for name, (section, draw) in FIGURES.items()}
