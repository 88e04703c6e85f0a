"""HTML views for notebooks (``_repr_html_``), built without any plotting library.

``curve_svg`` draws loss curves as an inline SVG (log scale when they span more than a decade);
``history_html`` is a History's view; ``table_html`` a small key/value table. Pure NumPy: usable from
the core modules (trainer, diagnostics) without matplotlib.
"""

from __future__ import annotations

from html import escape

import numpy as np

from ._format import fmt

WIDTH, HEIGHT, PAD = 420, 200, 44


def curve_svg(curves: dict, xlabel: str = "epoch", ylabel: str = "loss") -> str:
    """``curves`` (name -> 1-D sequence of floats; non-finite points skipped) as an inline SVG plot."""
    colours = ["#2471a3", "#e67e22", "#27ae60", "#8e44ad"]
    data = {k: np.asarray(v, dtype=float) for k, v in curves.items() if len(v)}
    finite = np.concatenate([v[np.isfinite(v)] for v in data.values()]) if data else np.empty(0)
    if finite.size == 0:
        return "<p><i>no finite loss to plot</i></p>"
    positive = finite[finite > 0]
    log = positive.size == finite.size and positive.max() / positive.min() > 10
    lo, hi = (np.log10(positive.min()), np.log10(positive.max())) if log else (finite.min(), finite.max())
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    n = max(len(v) for v in data.values())
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-size="10" '
           'font-family="Helvetica, Arial, sans-serif">'),
           f'<rect x="{PAD}" y="8" width="{WIDTH - PAD - 8}" height="{HEIGHT - PAD - 8}" fill="none" stroke="#999"/>']
    for i, (name, v) in enumerate(data.items()):
        xs = PAD + (np.arange(len(v)) / max(n - 1, 1)) * (WIDTH - PAD - 8)
        with np.errstate(divide="ignore", invalid="ignore"):
            ys = np.log10(v) if log else v
        ys = 8 + (hi - ys) / (hi - lo) * (HEIGHT - PAD - 8)
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y, ok in zip(xs, ys, np.isfinite(ys)) if ok)
        colour = colours[i % len(colours)]
        out.append(f'<polyline class="curve" fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
        out.append(f'<text x="{WIDTH - 12}" y="{22 + 13 * i}" text-anchor="end" fill="{colour}">{escape(name)}</text>')
    top, bottom = (10 ** hi, 10 ** lo) if log else (hi, lo)
    out += [f'<text x="{PAD - 4}" y="14" text-anchor="end">{fmt(top, 3)}</text>',
            f'<text x="{PAD - 4}" y="{HEIGHT - PAD}" text-anchor="end">{fmt(bottom, 3)}</text>',
            f'<text x="{PAD}" y="{HEIGHT - PAD + 14}">1</text>',
            f'<text x="{WIDTH - 8}" y="{HEIGHT - PAD + 14}" text-anchor="end">{n}</text>',
            f'<text x="{(WIDTH + PAD) / 2}" y="{HEIGHT - 8}" text-anchor="middle">{escape(xlabel)}</text>',
            (f'<text x="12" y="{(HEIGHT - PAD) / 2}" transform="rotate(-90 12 {(HEIGHT - PAD) / 2})" '
            f'text-anchor="middle">{escape(ylabel)}{" (log scale)" if log else ""}</text>'), "</svg>"]
    return "\n".join(out)


def table_html(rows, css_class: str) -> str:
    """(key, value) rows as a two-column HTML table."""
    cells = "".join(f"<tr><th style='text-align:left'>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>"
                    for k, v in rows)
    return f"<table class='{css_class}'>{cells}</table>"


def history_html(history) -> str:
    """A History's view: the loss curve inline and what the fit did."""
    curves = {"training loss": history.epoch_loss}
    if len(history.val_loss):
        curves["validation loss"] = history.val_loss
    rows = [("epochs run", history.epochs_run), ("steps run", history.steps_run),
            ("final loss", fmt(history.final_loss)), ("stopped", history.stopped_reason or "after the last epoch")]
    if len(history.val_loss):
        rows.append(("final validation loss", fmt(history.val_loss[-1])))
    rows += [("warning", str(w)) for w in history.warnings[:5]]
    return f"<div class='skipnet-history'>{curve_svg(curves)}{table_html(rows, 'skipnet-history-facts')}</div>"
