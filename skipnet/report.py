"""Render a skipnet.demo.DemoReport: Markdown, self-contained HTML and PNG figures.

The report is first laid out as a list of blocks (headings, paragraphs, tables, preformatted text,
figures); ``to_markdown`` and ``to_html`` render the same blocks, so both files say the same thing.
``write_report(report, out_dir)`` writes ``report.md`` (figures linked as files), ``report.html`` (figures
embedded as base64 data URIs, so the one file opens anywhere), the PNG files beside them and
``report.json`` (every number). Without matplotlib the tables stay and the report says how to get the
plots.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

from ._files import atomic_write
from ._format import fmt
from .demo import EXERCISE_NAMES, VERDICT_WORDS, DemoReport, compare
from .diagnostics import CAUSES
from .reference import LN2

SYMBOLS = dict(zip(EXERCISE_NAMES, ("W0", "W1", "W2", "S0")))
SECTION_TITLES = {"forward": "forward pass", "backward": "backward pass (chain rule)",
                  "gradient": "parameter gradients", "update": "SGD update"}


@dataclass
class Block:
    """One element of the report: kind is h1, h2, h3, p, table, pre, figure or note."""

    kind: str
    text: str = ""
    header: tuple = ()
    rows: tuple = ()
    name: str = ""


def _n(value, digits: int = 4) -> str:
    """A number in plain decimal notation with ``digits`` significant digits."""
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return fmt(float(value), digits)


def _trace_rows(table) -> tuple:
    rows, section = [], None
    for sec, symbol, formula, value in table:
        rows.append((SECTION_TITLES[sec] if sec != section else "", symbol, value, formula))
        section = sec
    return tuple(rows)


# ------------------------------------------------------------------------------------------ sections
def _hand_step(r: DemoReport) -> list[Block]:
    a = r.hand_step
    grads = ", ".join(f"{SYMBOLS[n]} = {fmt(a.grads[n])}" for n in EXERCISE_NAMES)
    new = ", ".join(f"{SYMBOLS[n]} = {fmt(a.new_weights[n])}" for n in EXERCISE_NAMES)
    return [
        Block("h2", "a. The hand step"),
        Block("p", "The exercise's network: one input x; two hidden ReLU units in a chain (h0 = relu(W0 x), "
                   "h1 = relu(W1 h0)); an identity output yhat = W2 h1 + S0 h0, where S0 is a learned skip from "
                   f"the first hidden unit into the output. No biases; every weight {fmt(a.weights[EXERCISE_NAMES[0]])}. "
                   f"One sample x = {fmt(a.x)}, y = {fmt(a.y)}; L1 loss |yhat - y|; SGD with lr = {fmt(a.lr)}."),
        Block("table", header=("", "symbol", "value", "formula"), rows=_trace_rows(a.table)),
        Block("p", f"Loss {fmt(a.loss)} (yhat = {fmt(a.values['yhat'])}: 0.5·0.25 + 0.5·0.5 = 0.125 + 0.25; "
                   "the hand-written solution wrote 0.275, see section g). Gradients: " + grads + ". After one step of "
                   "w - lr·dL/dw: " + new + ". The first weight is now negative: with x = 1 the first ReLU "
                   "will see z0 = -0.25."),
    ]


def _next_step(r: DemoReport) -> list[Block]:
    b = r.next_step
    warnings = tuple((w["kind"], str(w["epoch"]), w["message"]) for w in b.trainer_warnings)
    steps = ", ".join(fmt(v) for v in b.trainer_step_loss)
    return [
        Block("h2", "b. The next step: everything is dead"),
        Block("p", f"With the new weights the loss is {fmt(b.loss)} and every gradient is exactly 0: z0 = -0.25 "
                   "puts the first ReLU on its flat side (relu'(z) = 0 for z <= 0, as in PyTorch), so h0 = 0, z1 = 0 "
                   "and the second ReLU is off too; yhat = 0 whatever W1, W2 and S0 are. No SGD step can change "
                   f"anything: the loss stays {fmt(b.loss)} forever."),
        Block("table", header=("", "symbol", "value", "formula"), rows=_trace_rows(b.table)),
        Block("p", "What skipnet.diagnostics reports:"),
        Block("pre", b.dead_report + "\n" + b.gradient_report),
        Block("p", f"Trainer on the exercise (lr 1, up to 100 epochs of one step): step losses {steps}; it stops "
                   f"after {b.trainer_epochs_run} epochs with stopped_reason:"),
        Block("pre", b.trainer_stopped_reason or "(none)"),
        Block("table", header=("warning", "epoch", "message"), rows=warnings),
    ]


def _regression(r: DemoReport) -> list[Block]:
    c = r.regression
    marks = sorted({0, len(c.epoch_loss) // 10, len(c.epoch_loss) // 2, len(c.epoch_loss) - 1})
    return [
        Block("h2", "c. Many steps: the loss " + _moved(c)),
        Block("p", f"Data: {c.dataset}. Network: {c.network}. Training: {c.training}."),
        Block("figure", name="regression.png",
              text="Training loss per epoch (log scale) and the fitted curve."),
        Block("table", header=("epoch", "training loss"),
              rows=tuple((str(i + 1), _n(c.epoch_loss[i])) for i in marks)),
        Block("p", _regression_sentence(c)),
    ]


def _moved(c) -> str:
    return {"better": "falls", "worse": "rises", "level": "stays level"}[compare(c.final_loss, c.first_loss)]


def _regression_sentence(c) -> str:
    """What the loss did, in words chosen by its numbers."""
    moved = _moved(c)
    floor = compare(c.final_loss, c.noise_floor)
    where = {"level": "level with the noise floor",
             "worse": f"{_n(c.final_loss / c.noise_floor, 2)} times the noise floor" if c.noise_floor > 0 else
                      "above the noise floor",
             "better": "below the noise floor (it fits some of the noise)"}[floor]
    return (f"The loss {moved} from {_n(c.first_loss)} to {_n(c.final_loss)}, {where} {_n(c.noise_floor)} (the "
            "mse of the true function on noisy targets)" + (": not monotonically step by step, since each "
            "mini-batch is a noisy estimate, but over epochs." if moved == "falls" else "."))


def _ln2(r: DemoReport) -> list[Block]:
    d = r.ln2
    cause_rows = tuple((cause, str(count), CAUSES[cause]) for cause, count in d.causes.items())
    run_rows = []
    for run in d.stuck_runs:
        dead = "; ".join(f"layer {k}: {len(u)}" for k, u in run["dead_units"].items()) or "none"
        run_rows.append((str(run["seed"]), _n(run["final_loss"]), run["cause"],
                         ", ".join(map(str, run["dead_at_init"])) or "-",
                         ", ".join(map(str, run["dead_layers"])) or "-", dead,
                         "yes" if run["constant_output"] else "no",
                         "0" if run["constant_output"] else _n(run["output_std"], 2),
                         _n(run["gradient_norm"], 2)))
    examples = []
    for cause in d.causes:
        run = next(x for x in d.stuck_runs if x["cause"] == cause)
        examples.append(f"seed {run['seed']} ({cause}): {run['explanation']}")
    causes = list(d.causes)
    fix_rows = tuple((f["name"], f["description"], f"{f['recovered']}/{f['n']}",
                      *(("{}/{}".format(*f["recovered_by_cause"][c])) for c in causes), _n(f["median_final_loss"]))
                     for f in d.fixes)
    fix_text = []
    for f in d.fixes:
        parts = ", ".join("{} of {} {} runs".format(*f["recovered_by_cause"][c], c) for c in causes)
        fix_text.append(f"{f['name']} recovers {parts}.")
    return [
        Block("h2", "d. Stuck at ln 2 = 0.693"),
        Block("p", f"Data: {d.dataset}. Network: {d.network}. Training: {d.training}."),
        Block("p", "Why this setup: " + d.why),
        Block("p", f"Result: {d.n_stuck} of {d.n_seeds} seeds ({d.fraction_stuck:.0%}) end within "
                   f"{d.stuck_tolerance:g} of ln 2 = {LN2:.4f}. The diagnosis of each stuck run "
                   "(skipnet.diagnostics.diagnose on the trained network) names its cause; of the "
                   f"{d.causes.get('dead_layer', 0)} runs with a dead layer, {d.dead_at_init} had it dead before "
                   "the first step (the initialisation), the others lost it during training:"),
        Block("table", header=("cause", "runs", "meaning"), rows=cause_rows),
        Block("figure", name="ln2_losses.png",
              text="Left: every seed's loss curve (grey: learned; coloured: stuck, by cause). Right: histogram "
                   "of final losses."),
        Block("h3", "Each stuck run"),
        Block("table", header=("seed", "final loss", "cause", "dead layers at init", "dead layers at end",
                               "dead units per layer", "constant output", "output std", "gradient norm"),
              rows=tuple(run_rows)),
        Block("p", "One explanation per cause, as the diagnosis words it:"),
        Block("pre", "\n\n".join(examples) or "(no stuck runs)"),
        Block("h3", "What fixes it"),
        Block("p", f"The {d.n_stuck} stuck seeds trained again, each time with one change (the rest as above); a run "
                   f"recovers when its final loss ends below {_n(d.recovered_below, 3)}."),
        Block("table", header=("fix", "change", "recovered", *(f"of {c}" for c in causes), "median final loss"),
              rows=fix_rows),
        Block("figure", name="ln2_fixes.png", text="Final loss of each stuck seed under each fix."),
        Block("p", " ".join(fix_text) + " A dead layer passes no gradient, so a learning rate cannot revive it; "
                   "init='he' (zero biases, weight variance 2/fan_in) starts from weights that rarely kill a "
                   "whole layer, and the skip from the first hidden layer into the output gives the signal a "
                   "path around the layers behind it, as in the exercise."),
    ]


def _learning_rates(r: DemoReport) -> list[Block]:
    e = r.learning_rates
    rows = []
    for lr in e.lrs:
        runs = [g for g in e.grid if g["lr"] == lr]
        finals = [g["final_loss"] for g in runs if not g["stopped_reason"]]
        stopped = next((g["stopped_reason"] for g in runs if g["stopped_reason"]), "")
        label = {e.small: "too small", e.good: "good", e.large: "too large"}.get(lr, "")
        rows.append((_n(lr), label, ", ".join(_n(v) for v in finals) or "-",
                     f"{len(runs) - len(finals)}/{len(runs)}", stopped))
    f = e.lr_find
    s = e.schedule
    return [
        Block("h2", "e. Learning rates"),
        Block("p", f"Data: {e.dataset}. Network: {e.network}. Training: {e.training}. The same runs at "
                   "several constant rates (skipnet.sweep):"),
        Block("table", header=("lr", "", "final loss per seed", "diverged", "stopped_reason"), rows=tuple(rows)),
        Block("figure", name="learning_rates.png",
              text="Final loss per rate; too small vs good; the too-large run's mini-batch losses."),
        Block("p", f"Too small (lr {_n(e.small)}): every step is tiny and after {len(e.curves['small'])} epochs "
                   f"the loss is still {_n(e.curves['small'][-1])}. Good (lr {_n(e.good)}): "
                   f"{_n(e.curves['good'][-1])}. " + (f"Too large (lr {_n(e.large)}): each step overshoots further and "
                   "the loss explodes; the Trainer's divergence guard stops training and keeps the last weights "
                   "that gave a finite loss:" if e.diverged["reason"] else
                   f"Large (lr {_n(e.large)}): the run did not diverge:")),
        Block("pre", e.diverged["reason"] or "(did not diverge)"),
        Block("h3", "A schedule against a constant rate"),
        Block("p", f"{s['description']}. " + _schedule_sentence(s)),
        Block("figure", name="schedule.png", text="The rate per step and the loss per epoch, for both."),
        Block("h3", "The learning-rate range test"),
        Block("p", "sn.lr_find trains a copy of the network for a few steps with the rate growing exponentially "
                   "and records the loss; the network itself is untouched:"),
        Block("pre", f["text"]),
        Block("figure", name="lr_find.png", text="The range-test curve and a run trained at its suggestion."),
        Block("p", _lr_find_sentence(f)),
    ]


def _schedule_sentence(s: dict) -> str:
    cosine, constant = s["final_loss"]["cosine"], s["final_loss"]["constant"]
    verdict = compare(cosine, constant)
    text = (f"Final loss: cosine {_n(cosine)}, {VERDICT_WORDS[verdict]} the constant rate's {_n(constant)}")
    if verdict == "better":
        return text + (": warm-up kept the first steps, taken with random weights, small, and the decay let "
                       "the last epochs settle instead of bouncing around the minimum at the full rate.")
    if verdict == "level":
        return text + (" (within 2%): here the schedule neither helps nor hurts the final loss; what it "
                       "changes is the path, smooth where the constant rate bounces from epoch to epoch.")
    return text + (": here the schedule hurts; its decaying rate stops the loss before the constant rate "
                   "does.")


def _lr_find_sentence(f: dict) -> str:
    """The range test's suggestion judged against the grid of constant rates trained the same way."""
    trained, best, best_lr = f["trained_final_loss"], f["grid_best_loss"], f["grid_best_lr"]
    verdict = compare(trained, best)
    text = (f"Trained at the suggested rate {_n(f['suggestion'], 3)} with the same settings, the loss goes from "
            f"{_n(f['trained_first_loss'])} to {_n(trained)}: {VERDICT_WORDS[verdict]} the best rate of the grid "
            f"above (lr {_n(best_lr)}: {_n(best)}).")
    if verdict == "worse":
        ratio = best_lr / f["suggestion"]
        return text + (f" The suggestion is on the safe side of the curve, and here too safe: a rate "
                       f"{_n(ratio, 2)} times {'larger' if ratio > 1 else 'smaller'} trained better in the same "
                       "epochs. Take the range test's suggestion as a starting point and try rates up to where "
                       "the curve bottoms out.")
    if verdict == "level":
        return text + " Here the suggestion is as good as the best rate the grid found."
    return text + " Here the suggestion beats every rate of the grid."


def _hand_check(r: DemoReport) -> list[Block]:
    g = r.hand_check
    worked = ", ".join(f"{k} = {v}" for k, v in g.worked.items())
    rows = tuple((sym, worked_value or "-", key, status) for sym, worked_value, key, status in g.rows)
    carried = ", ".join(g.carried) or "nothing"
    return [
        Block("h2", "g. Check a hand computation"),
        Block("p", "skipnet.exercises grades a worked answer sheet line by line, in exact arithmetic: each line "
                   "is compared with its formula evaluated on the student's own earlier values, so a slip counts "
                   "once, where it happened, and the lines that only carried it forward are listed apart. The "
                   f"hand-written solution of the exercise gave: {worked}."),
        Block("pre", "from skipnet import exercises\n"
                     "c = exercises.check(exercises.seed_exercise(), exercises.SEED_WORKED_VALUES)\nprint(c)\n\n"
                     + g.explanation),
        Block("table", header=("symbol", "worked value", "exact key", "status"), rows=rows),
        Block("p", f"The first error is {g.first_error or 'nowhere'}; wrong on its own: {', '.join(g.wrong) or 'nothing'}; "
                   f"carried forward, right for the earlier values: {carried}. The lines not written out are filled "
                   "from the key. The same check from the command line: skipnet exercise check seed ANSWERS, "
                   "with one 'symbol = value' per line."),
    ]


def _skips(r: DemoReport) -> list[Block]:
    f = r.skips
    rows = tuple((str(k), _n(f.weight_grad["plain"][k], 3), _n(f.weight_grad["residual"][k], 3),
                  _n(f.signal_grad["plain"][k], 3), _n(f.signal_grad["residual"][k], 3))
                 for k in range(len(f.weight_grad["plain"])))
    return [
        Block("h2", "f. Why skips help"),
        Block("p", f"A deep ReLU network ({f.depth} hidden layers of {f.width}) on {f.dataset}; {f.training}. "
                   "Gradient norms at initialisation, per layer:"),
        Block("figure", name="skips.png", text="Gradient norm per layer (log scale) and the loss curves."),
        Block("table", header=("layer", "|dL/dW| no skips", "|dL/dW| residual", "|dL/dz| no skips",
                               "|dL/dz| residual"), rows=rows),
        Block("p", _skips_sentence(f)),
    ]


def _skips_sentence(f) -> str:
    plain, residual = f.weight_grad["plain"], f.weight_grad["residual"]
    shrinks = plain[0] < plain[-1]
    first = compare(-plain[0], -residual[0])  # a larger first-layer gradient is "better" here
    text = (f"Without skips the gradient {'shrinks' if shrinks else 'does not shrink'} on its way back to the "
            f"first layer ({_n(plain[-1], 2)} at the last hidden layer, {_n(plain[0], 2)} at the first); with "
            f"residual skips the first layer gets {_n(residual[0], 2)}, "
            + (f"{_n(f.first_layer_ratio, 3)} times more. Each identity skip adds the incoming gradient "
               "unchanged, so the early layers learn as fast as the late ones. " if first == "worse" else
               f"{'as much' if first == 'level' else 'less'}. "))
    verdict = compare(f.final_loss["residual"], f.final_loss["plain"])
    text += (f"Final loss after training: {_n(f.final_loss['residual'])} with skips, {VERDICT_WORDS[verdict]} "
             f"{_n(f.final_loss['plain'])} without them; a constant prediction scores {_n(f.constant_loss)}")
    plain_vs_constant = compare(f.final_loss["plain"], f.constant_loss)
    if plain_vs_constant == "level":
        text += " (the network without skips learned nothing beyond it)"
    if verdict == "better":
        text += ". This is the exercise's skip at scale: a path for the gradient around layers that pass little of it."
    return text + ("" if verdict == "better" else ".")


def blocks(report: DemoReport, plots: bool = True) -> list[Block]:
    """The whole report as blocks; without ``plots`` each figure becomes a note saying how to get it."""
    cfg = report.config
    total = sum(report.seconds.values())
    out = [
        Block("h1", "skipnet demo: the exercise, explained"),
        Block("p", f"{'Quick' if cfg.quick else 'Full'} run, {_n(total, 3)} s of computation. Every number below "
                   "comes from report.json (the same data structure the tests check); `skipnet demo` "
                   "reproduces it exactly."),
    ]
    for section in (_hand_step, _next_step, _regression, _ln2, _learning_rates, _skips, _hand_check):
        out += section(report)
    if not plots:
        out = [Block("note", "Plots need matplotlib: pip install 'skipnet[plot]' (or pip install matplotlib) "
                             "and run skipnet demo again.") if b.kind == "figure" else b for b in out]
        out.insert(2, Block("note", "This report has no plots because matplotlib is not installed: "
                                    "pip install 'skipnet[plot]'."))
    return out


# ------------------------------------------------------------------------------------------ renderers
def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(report_blocks: list[Block]) -> str:
    """Markdown; figures link to the PNG files beside the report."""
    lines = []
    for b in report_blocks:
        if b.kind in ("h1", "h2", "h3"):
            lines += ["#" * int(b.kind[1]) + " " + b.text, ""]
        elif b.kind == "p":
            lines += [b.text, ""]
        elif b.kind == "note":
            lines += ["> " + b.text, ""]
        elif b.kind == "pre":
            lines += ["```", b.text, "```", ""]
        elif b.kind == "table":
            lines.append("| " + " | ".join(map(_md_cell, b.header)) + " |")
            lines.append("|" + "---|" * len(b.header))
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in b.rows]
            lines.append("")
        elif b.kind == "figure":
            lines += [f"![{b.text}]({b.name})", "", f"*{b.text}*", ""]
    return "\n".join(lines)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2}pre{background:#f7f7f7;padding:0.8em;overflow-x:auto;white-space:pre-wrap}
figure{margin:1em 0}img{max-width:100%}figcaption{font-size:0.9em;color:#555}.note{background:#fff4d6;padding:0.6em}"""


def to_html(report_blocks: list[Block], images: dict[str, bytes]) -> str:
    """One self-contained HTML page; figures embedded as data:image/png;base64 URIs."""
    e = html.escape
    body = []
    for b in report_blocks:
        if b.kind in ("h1", "h2", "h3"):
            body.append(f"<{b.kind}>{e(b.text)}</{b.kind}>")
        elif b.kind == "p":
            body.append(f"<p>{e(b.text)}</p>")
        elif b.kind == "note":
            body.append(f'<p class="note">{e(b.text)}</p>')
        elif b.kind == "pre":
            body.append(f"<pre>{e(b.text)}</pre>")
        elif b.kind == "table":
            head = "".join(f"<th>{e(str(h))}</th>" for h in b.header)
            rows = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif b.kind == "figure":
            data = base64.b64encode(images[b.name]).decode("ascii")
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{e(b.text)}">'
                        f"<figcaption>{e(b.text)} ({e(b.name)})</figcaption></figure>")
    title = next((b.text for b in report_blocks if b.kind == "h1"), "skipnet report")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _plain(value):
    """JSON-ready: NumPy scalars as Python numbers, NaN and infinity as null (strict JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write(path: Path, data: bytes | str) -> None:
    """Write atomically (text as UTF-8): a reader never sees half a file, and only a regular file is
    replaced (see ``_files.atomic_write``)."""
    atomic_write(path, data if isinstance(data, bytes) else data.encode("utf-8"), "report file")


def write_report(report: DemoReport, out_dir, plots: bool = True) -> dict:
    """Write report.md, report.html, report.json and the PNG figures into ``out_dir`` (created).

    ``plots=False``, or matplotlib missing, writes the report without figures and says how to get them.
    Returns {"markdown", "html", "json": paths, "figures": [paths], "plots_error": str or None}.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images, error = {}, None
    if plots:
        try:
            from ._plotting import demo_figures

            images = demo_figures(report)
        except ImportError as exc:
            error = str(exc)
    report_blocks = blocks(report, plots=bool(images))
    figures = []
    for name, png in images.items():
        _write(out / name, png)
        figures.append(out / name)
    paths = {"markdown": out / "report.md", "html": out / "report.html", "json": out / "report.json"}
    _write(paths["markdown"], to_markdown(report_blocks))
    _write(paths["html"], to_html(report_blocks, images))
    _write(paths["json"], json.dumps(_plain(report.to_dict()), indent=1, allow_nan=False))
    return {**paths, "figures": figures, "plots_error": error}
