"""The exercise, explained: every experiment behind ``skipnet demo``, as a tree of dataclasses.

``run_demo(quick=False)`` returns a DemoReport whose sections hold every number the report shows:

- ``hand_step`` (a): the exercise's forward and backward pass with the chain rule, and the SGD step;
- ``next_step`` (b): the step after it (loss 3, every gradient 0, both ReLUs dead) and the Trainer
  stopping with that reason;
- ``regression`` (c): many steps: a loss curve falling on a small regression problem;
- ``ln2`` (d): binary classification with bce over many seeds: which runs get stuck at ln 2, why, and
  which fix brings them back;
- ``learning_rates`` (e): too small, good and too large rates, a schedule against a constant rate, and
  the learning-rate range test;
- ``skips`` (f): gradient norm per layer of a deep ReLU network with and without residual skips.

skipnet.report renders it (Markdown, self-contained HTML, PNG plots); ``skipnet demo`` does both.
Everything is seeded: the same version gives the same numbers on every run.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from . import datasets, exercises
from . import diagnostics as D
from ._format import fmt
from .network import Network
from .reference import LN2
from .schedules import CosineLR, lr_find
from .sweep import MLPFactory, sweep
from .trainer import Trainer

STUCK_TOLERANCE = 0.005  # a run is stuck at ln 2 when its final loss is within this of ln 2
RECOVERED_BELOW = LN2 - 0.1  # a fixed run counts as recovered when its final loss ends below this
EXERCISE_NAMES = ("layers.0.weight", "layers.1.weight", "layers.2.weight", "skips.0.weight")
LEVEL_RTOL = 0.02  # two final losses within 2% of each other are level: closer than seed-to-seed noise


def compare(value: float, reference: float, rtol: float = LEVEL_RTOL) -> str:
    """"better", "worse" or "level": a loss ``value`` against ``reference`` (lower is better; within
    ``rtol`` relative of each other they are level). Every comparing sentence of the report uses it."""
    if not math.isfinite(value) or not math.isfinite(reference):  # a diverged run is worse than any other
        return "level" if math.isfinite(value) == math.isfinite(reference) else \
            ("better" if math.isfinite(value) else "worse")
    if abs(value - reference) <= rtol * max(abs(value), abs(reference)):
        return "level"
    return "better" if value < reference else "worse"


#: how a comparison reads in a sentence: "X, better than Y"
VERDICT_WORDS = {"better": "better than", "worse": "worse than", "level": "level with"}


def seed_range(n: int) -> str:
    """"seed 0" for one seed, "seeds 0-4" for five."""
    return "seed 0" if n == 1 else f"seeds 0-{n - 1}"


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the experiments; ``DemoConfig.make(quick)`` gives the two standard profiles."""

    quick: bool = False
    n_jobs: int = -1
    ln2_seeds: int = 200
    ln2_epochs: int = 50
    regression_epochs: int = 150
    lr_seeds: int = 3
    lr_epochs: int = 100
    lr_find_steps: int = 100
    skip_depth: int = 16
    skip_epochs: int = 60

    @classmethod
    def make(cls, quick: bool = False, n_jobs: int | None = None) -> DemoConfig:
        if quick:
            config = cls(quick=True, n_jobs=1, ln2_seeds=60, ln2_epochs=25, regression_epochs=40,
                         lr_seeds=1, lr_epochs=30, lr_find_steps=60, skip_depth=12, skip_epochs=20)
        else:
            config = cls()
        if n_jobs is not None:
            config = DemoConfig(**{**asdict(config), "n_jobs": n_jobs})
        return config


# ------------------------------------------------------------------------------------------ sections
@dataclass
class HandStep:
    """(a) One forward/backward pass of the exercise (x = 1, y = -3, L1 loss) and the SGD step (lr 1).

    ``table`` rows are (section, symbol, formula, value) as ``skipnet trace`` prints them; ``values``
    maps each node (z0, h0, z1, h1, yhat) to its value; ``grads`` and ``new_weights`` are keyed by the
    PyTorch parameter names layers.0.weight, layers.1.weight, layers.2.weight, skips.0.weight.
    """

    x: float
    y: float
    lr: float
    weights: dict
    values: dict
    loss: float
    grads: dict
    new_weights: dict
    table: list
    text: str


@dataclass
class NextStep:
    """(b) The pass after the step: the loss, the gradients (all exactly 0), the dead ReLU units, and
    a Trainer run of the exercise that stops by itself with ``stopped_reason``."""

    loss: float
    yhat: float
    grads: dict
    all_gradients_zero: bool
    dead_units: dict
    dead_report: str
    gradient_report: str
    table: list
    text: str
    trainer_step_loss: list
    trainer_epochs_run: int
    trainer_stopped_reason: str | None
    trainer_warnings: list


@dataclass
class HandCheck:
    """(g) The hand-written seed's own worked values checked by skipnet.exercises: ``rows`` are
    (symbol, worked value, key, status) for every line of the exercise; ``explanation`` is the check's
    text (the wrong line with its formula and the numbers)."""

    worked: dict
    rows: list
    first_error: str | None
    wrong: list
    carried: list
    missing: list
    score: float
    explanation: str


@dataclass
class Regression:
    """(c) Many steps on ``sine`` regression: the epoch losses fall; ``noise_floor`` is the mse of the
    true function (noise**2), the best any model can do on average."""

    dataset: str
    network: str
    training: str
    epoch_loss: list
    first_loss: float
    final_loss: float
    noise_floor: float
    x: list
    y: list
    x_grid: list
    prediction: list


@dataclass
class Ln2Study:
    """(d) The same small bce classifier trained from ``n_seeds`` seeds; runs whose final loss is within
    STUCK_TOLERANCE of ln 2 are stuck. Each run: seed, final_loss, stuck, epochs_run, stopped_reason,
    dead_fraction, curve (epoch losses) and, when stuck, its diagnosis (cause, explanation, dead_layers,
    dead_units, dead_at_init, constant_output, output_mean, output_std, gradient_norm). ``causes``
    counts the stuck runs per cause; ``dead_at_init`` how many dead-layer runs had the layer dead before
    training. ``fixes``: the stuck seeds trained again with one change each; a run recovers when its loss
    ends below RECOVERED_BELOW; ``recovered_by_cause`` maps cause -> (recovered, runs)."""

    dataset: str
    network: str
    training: str
    why: str
    n_seeds: int
    lr: float
    epochs: int
    runs: list
    n_stuck: int
    fraction_stuck: float
    causes: dict
    dead_at_init: int
    fixes: list
    stuck_tolerance: float
    recovered_below: float

    @property
    def stuck_runs(self) -> list:
        return [r for r in self.runs if r["stuck"]]

    @property
    def final_losses(self) -> list:
        return [r["final_loss"] for r in self.runs]


@dataclass
class LearningRates:
    """(e) ``grid``: one row per (lr, seed) with final_loss, epochs_run, stopped_reason; ``curves``:
    the epoch losses of seed 0 for the rates labelled ``small``, ``good`` and ``large``;
    ``schedule``: a cosine schedule with warm-up against the constant good rate; ``lr_find``: the
    range-test curve, its suggestion and a run trained at the suggested rate."""

    dataset: str
    network: str
    training: str
    lrs: list
    grid: list
    small: float
    good: float
    large: float
    curves: dict
    diverged: dict
    schedule: dict
    lr_find: dict


@dataclass
class SkipStudy:
    """(f) A deep ReLU network (``depth`` hidden layers of ``width``) with and without residual skips:
    per-layer gradient norms at initialisation (|dL/dW| and |dL/dz|, layer 0 first) and loss curves;
    ``constant_loss`` is what the best constant prediction scores (the variance of y)."""

    dataset: str
    depth: int
    width: int
    training: str
    weight_grad: dict
    signal_grad: dict
    first_layer_ratio: float
    epoch_loss: dict
    final_loss: dict
    constant_loss: float
    warnings: dict


@dataclass
class DemoReport:
    """Every number of ``skipnet demo``: sections a-f, the configuration, and how long each took."""

    config: DemoConfig
    hand_step: HandStep
    next_step: NextStep
    regression: Regression
    ln2: Ln2Study
    learning_rates: LearningRates
    skips: SkipStudy
    hand_check: HandCheck
    seconds: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain Python (JSON-ready) view of the whole report."""
        return asdict(self)

    def summary(self) -> str:
        """A few lines: the key number of each section."""
        a, b, c, d, e, f, g = (self.hand_step, self.next_step, self.regression, self.ln2, self.learning_rates,
                               self.skips, self.hand_check)
        grads = ", ".join(fmt(a.grads[n]) for n in EXERCISE_NAMES)
        new = ", ".join(fmt(a.new_weights[n]) for n in EXERCISE_NAMES)
        fixes = "; ".join(f"{x['name']} {x['recovered']}/{x['n']}" for x in d.fixes)
        causes = ", ".join(f"{n} {c}" for c, n in d.causes.items())
        lf, sched = e.lr_find, e.schedule["final_loss"]
        stopped = (b.trainer_stopped_reason or "").split(":")[0]
        lines = [
            f"a. hand step: loss {fmt(a.loss)}, gradients {grads}; new weights {new}",
            (f"b. next step: loss {fmt(b.loss)}, every gradient 0: {b.all_gradients_zero}, dead ReLUs "
             f"{sum(len(u) for u in b.dead_units.values())}; training stopped after {b.trainer_epochs_run} "
             f"epochs: {stopped}"),
            (f"c. regression: loss {fmt(c.first_loss, 3)} -> {fmt(c.final_loss, 3)} in {len(c.epoch_loss)} "
             f"epochs (noise floor {fmt(c.noise_floor, 3)})"),
            (f"d. ln 2: {d.n_stuck}/{d.n_seeds} seeds ({d.fraction_stuck:.0%}) stuck at 0.693 ({causes}); "
             f"recovered by: {fixes}"),
            (f"e. learning rates: {fmt(e.small)} too small ({fmt(e.curves['small'][-1], 3)}), {fmt(e.good)} "
             f"good ({fmt(e.curves['good'][-1], 3)}), {fmt(e.large)}: "
             f"{e.diverged['reason'] or 'did not diverge'}"),
            (f"   cosine schedule {fmt(sched['cosine'], 3)}, {VERDICT_WORDS[e.schedule['verdict']]} constant "
             f"{fmt(sched['constant'], 3)}; lr_find suggests {fmt(lf['suggestion'], 3)} (trains "
             f"{fmt(lf['trained_first_loss'], 3)} -> {fmt(lf['trained_final_loss'], 3)}, "
             f"{VERDICT_WORDS[lf['verdict']]} the grid's best, lr {fmt(lf['grid_best_lr'])}: "
             f"{fmt(lf['grid_best_loss'], 3)})"),
            (f"f. skips: layer-0 gradient {fmt(f.weight_grad['plain'][0], 2)} without vs "
             f"{fmt(f.weight_grad['residual'][0], 2)} with residual skips ({f.depth} layers); final loss "
             f"{fmt(f.final_loss['plain'], 3)} vs {fmt(f.final_loss['residual'], 3)}"),
            (f"g. hand check of the seed's worked values: first error {g.first_error}, wrong {', '.join(g.wrong)}, "
             f"carried {', '.join(g.carried) or 'nothing'}"),
        ]
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------ helpers
def _describe(n_inputs: int, hidden, n_outputs: int = 1) -> str:
    return "-".join(map(str, (n_inputs, *hidden, n_outputs)))


def _runs(make_network, X, y, seeds, lrs, n_jobs: int, **trainer_options) -> list[dict]:
    """One row per (seed, lr) from skipnet.sweep, with each run's History under "history"; n_jobs=1
    runs them in this process, otherwise in loky worker processes."""
    backend = "serial" if n_jobs == 1 else "loky"
    return sweep(make_network, X, y, seeds=list(seeds), lrs=list(lrs), parallel_backend=backend,
                 n_jobs=n_jobs, keep_history=True, as_frame=False, **trainer_options)


def _train(make_network, seed: int, lr: float, X, y, **trainer_options):
    """One run exactly as a sweep row makes it (network from the seed, trainer shuffling with it)."""
    net = make_network(seed)
    return net, Trainer(net, lr=lr, seed=seed, **trainer_options).fit(X, y)


def _floats(a) -> list:
    return [float(v) for v in np.asarray(a, dtype=np.float64).ravel()]


def _warnings(hist) -> list:
    return [{"kind": w.kind, "epoch": w.epoch, "step": w.step, "message": w.message} for w in hist.warnings]


# ------------------------------------------------------------------------------------------ (a), (b)
def hand_step() -> HandStep:
    """(a) The exercise's first step, by hand."""
    net = Network.exercise()
    weights = {n: float(v[0, 0]) for n, v in net.parameters().items()}
    t = net.trace([[1.0]], [[-3.0]], loss="l1")
    t.apply(lr=1.0)
    values = {"z0": t.z[0], "h0": t.h[0], "z1": t.z[1], "h1": t.h[1], "yhat": t.yhat}
    return HandStep(
        x=1.0, y=-3.0, lr=1.0, weights=weights,
        values={k: float(v[0, 0]) for k, v in values.items()},
        loss=t.loss,
        grads={n: float(g[0, 0]) for n, g in t.grads.items()},
        new_weights={n: float(v[0, 0]) for n, v in t.new_params.items()},
        table=[list(row) for row in t.table], text=str(t))


def next_step() -> NextStep:
    """(b) The step after: everything is dead, the Trainer notices and stops."""
    net = Network.exercise()
    net.trace([[1.0]], [[-3.0]], loss="l1").apply(lr=1.0)
    t = net.trace([[1.0]], [[-3.0]], loss="l1")
    dead = D.dead_units(net, [[1.0]])
    flow = D.gradient_flow(net, [[1.0]], [[-3.0]], loss="l1")
    trained = Network.exercise()
    hist = Trainer(trained, loss="l1", optimizer="sgd", lr=1.0, batch_size=1, epochs=100,
                   shuffle=False).fit([[1.0]], [[-3.0]])
    return NextStep(
        loss=t.loss, yhat=float(t.yhat[0, 0]), grads={n: float(g[0, 0]) for n, g in t.grads.items()},
        all_gradients_zero=t.all_gradients_zero and flow.zero,
        dead_units={k: list(d.units) for k, d in dead.layers.items()}, dead_report=str(dead),
        gradient_report=str(flow), table=[list(row) for row in t.table], text=str(t),
        trainer_step_loss=_floats(hist.step_loss), trainer_epochs_run=hist.epochs_run,
        trainer_stopped_reason=hist.stopped_reason, trainer_warnings=_warnings(hist))


# ------------------------------------------------------------------------------------------ (c)
def hand_check() -> HandCheck:
    """(g) Check the seed's worked values (one slip, z2 written 0.275) against the exact key."""
    ex = exercises.seed_exercise()
    worked = dict(exercises.SEED_WORKED_VALUES)
    c = exercises.check(ex, worked)
    rows = [(r.symbol, worked.get(r.symbol, ""), exercises.to_decimal(r.key), r.status) for r in c.lines]
    return HandCheck(worked=worked, rows=rows, first_error=c.first_error, wrong=c.wrong, carried=c.carried,
                     missing=c.missing, score=c.score, explanation=str(c))


def regression(config: DemoConfig) -> Regression:
    """(c) A 1-32-32-1 network with the exercise's skip learns a noisy sine with Adam."""
    noise = 0.1
    X, y = datasets.sine(256, noise=noise, seed=0)
    net = Network.mlp(1, (32, 32), skip="first-to-output", seed=0)
    hist = Trainer(net, loss="mse", optimizer="adam", lr=0.01, batch_size=32, epochs=config.regression_epochs,
                   seed=0).fit(X, y)
    grid = np.linspace(-np.pi, np.pi, 200)[:, None]
    return Regression(
        dataset=f"sine: 256 points, x ~ U(-pi, pi), y = sin(x) + N(0, {noise}^2)",
        network="1-32-32-1 ReLU, learned skip from hidden layer 0 into the output (as in the exercise)",
        training=f"adam, lr 0.01, batch 32, {config.regression_epochs} epochs, mse",
        epoch_loss=_floats(hist.epoch_loss), first_loss=float(hist.epoch_loss[0]),
        final_loss=hist.final_loss, noise_floor=noise**2, x=_floats(X), y=_floats(y),
        x_grid=_floats(grid), prediction=_floats(net.predict(grid)))


# ------------------------------------------------------------------------------------------ (d)
LN2_NETWORK = {"n_inputs": 2, "hidden": (3, 3, 3)}
LN2_LR = 0.1
LN2_FIXES = (
    ("init='he'", "a new draw: weights N(0, 2/fan_in) and zero biases in the ReLU layers", {"init": "he"}, LN2_LR),
    ("skip", ("the same initial layer weights plus the exercise's learned skip from hidden layer 0 into the "
              "output (skip='first-to-output'; its weight is drawn after the layers')"),
     {"skip": "first-to-output"}, LN2_LR),
    ("lr 0.3", "the same initial weights, a learning rate three times larger", {}, 0.3),
)


def ln2_study(config: DemoConfig) -> Ln2Study:
    """(d) Many seeds of a narrow bce classifier: how many get stuck at ln 2, why, and what fixes it."""
    X, y = datasets.moons(200, noise=0.1, seed=0)
    options = {"loss": "bce", "optimizer": "sgd", "batch_size": 32, "epochs": config.ln2_epochs}
    make = MLPFactory(**LN2_NETWORK)
    rows = _runs(make, X, y, range(config.ln2_seeds), [LN2_LR], config.n_jobs, **options)
    runs = []
    for row in rows:
        stuck = bool(abs(row["final_loss"] - LN2) < STUCK_TOLERANCE)
        run = {"seed": int(row["seed"]), "final_loss": float(row["final_loss"]), "stuck": stuck,
               "epochs_run": int(row["epochs_run"]), "stopped_reason": row["stopped_reason"],
               "dead_fraction": float(row["dead_fraction"]), "curve": _floats(row["history"].epoch_loss)}
        if stuck:
            # the sweep keeps no networks: train this seed again (the same run, bit for bit) to read it
            net, hist = _train(make, run["seed"], LN2_LR, X, y, **options)
            if hist.final_loss != run["final_loss"]:
                raise RuntimeError(f"seed {run['seed']} did not reproduce: {hist.final_loss} vs "
                                   f"{run['final_loss']}")
            diagnosis = D.diagnose(net, X, y, "bce", level=run["final_loss"])
            details = diagnosis.details
            run.update(cause=diagnosis.cause, explanation=diagnosis.explanation,
                       dead_layers=details["dead_layers"], dead_units=details["dead_units"],
                       dead_at_init=D.dead_units(make(run["seed"]), X).dead_layers,
                       constant_output=details["constant_output"], output_mean=details["output_mean"][0],
                       output_std=details["output_std"][0], gradient_norm=details["gradient_norm"])
        runs.append(run)
    stuck_seeds = [r["seed"] for r in runs if r["stuck"]]
    cause_of = {r["seed"]: r["cause"] for r in runs if r["stuck"]}
    causes: dict = {}
    for cause in cause_of.values():
        causes[cause] = causes.get(cause, 0) + 1
    fixes = []
    for name, description, change, lr in LN2_FIXES:
        fixed = _runs(MLPFactory(**{**LN2_NETWORK, **change}), X, y, stuck_seeds, [lr], config.n_jobs,
                      **options) if stuck_seeds else []
        finals = [float(r["final_loss"]) for r in fixed]
        by_cause: dict = {}
        for seed, final in zip(stuck_seeds, finals):
            counts = by_cause.setdefault(cause_of[seed], [0, 0])
            counts[0] += final < RECOVERED_BELOW
            counts[1] += 1
        fixes.append({"name": name, "description": description, "lr": lr, "seeds": stuck_seeds,
                      "final_losses": finals, "n": len(finals),
                      "recovered": sum(v < RECOVERED_BELOW for v in finals),
                      "recovered_by_cause": {c: tuple(v) for c, v in by_cause.items()},
                      "median_final_loss": float(np.median(finals)) if finals else math.nan})
    n_stuck = len(stuck_seeds)
    return Ln2Study(
        dataset="two moons: 200 points (100 per class), noise 0.1",
        network=f"{_describe(2, LN2_NETWORK['hidden'])} ReLU, no skips, PyTorch's default nn.Linear init "
                "(weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)))",
        training=f"sgd, lr {LN2_LR}, batch 32, {config.ln2_epochs} epochs, bce on the logit; "
                 f"{seed_range(config.ln2_seeds)} run by skipnet.sweep (the seed sets the initial weights and "
                 "the shuffling)",
        why=("Hidden layers of only 3 units: for some seeds every unit of a layer has a pre-activation <= 0 for "
             "every input, from the start or after a few updates. Then that layer outputs 0 for every sample, the "
             "output is one constant logit, and bce pulls it to the class balance: logit 0, probability 0.5, "
             "loss ln 2 = 0.6931 for balanced classes. No gradient passes a dead layer, so nothing before "
             "it can ever change. Wide layers rarely lose every unit at once, which is why this setup is "
             "deliberately narrow; it is the situation behind the many 'loss stuck at 0.693' reports."),
        n_seeds=len(runs), lr=LN2_LR, epochs=config.ln2_epochs, runs=runs, n_stuck=n_stuck,
        fraction_stuck=n_stuck / len(runs), causes=causes,
        dead_at_init=sum(bool(r["dead_at_init"]) for r in runs if r["stuck"] and r["cause"] == "dead_layer"),
        fixes=fixes, stuck_tolerance=STUCK_TOLERANCE,
        recovered_below=RECOVERED_BELOW)


# ------------------------------------------------------------------------------------------ (e)
LR_GRID = (1e-4, 1e-3, 1e-2, 0.1, 1.0)


def learning_rates(config: DemoConfig) -> LearningRates:
    """(e) The same regression at several rates, a schedule against a constant rate, and lr_find."""
    X, y = datasets.sine(256, noise=0.1, seed=0)
    hidden = (32, 32)
    options = {"loss": "mse", "optimizer": "sgd", "batch_size": 32, "epochs": config.lr_epochs}
    make = MLPFactory(n_inputs=1, hidden=hidden)
    rows = _runs(make, X, y, range(config.lr_seeds), LR_GRID, config.n_jobs, **options)
    grid = [{"lr": float(r["lr"]), "seed": int(r["seed"]), "final_loss": float(r["final_loss"]),
             "epochs_run": int(r["epochs_run"]), "stopped_reason": r["stopped_reason"]} for r in rows]
    by_lr = {lr: [g for g in grid if g["lr"] == lr] for lr in LR_GRID}

    def median_final(lr):
        finals = [g["final_loss"] for g in by_lr[lr]]
        return float(np.median(finals)) if all(map(math.isfinite, finals)) else math.inf

    small, large = LR_GRID[0], LR_GRID[-1]
    good = min(LR_GRID, key=median_final)
    curves = {}
    for label, lr in (("small", small), ("good", good), ("large", large)):
        row = next(r for r in rows if r["seed"] == 0 and r["lr"] == lr)
        curves[label] = _floats(row["history"].step_loss if label == "large" else row["history"].epoch_loss)
    large_row = next(r for r in rows if r["seed"] == 0 and r["lr"] == large)
    large_hist = large_row["history"]
    diverged = {"lr": large, "reason": large_hist.stopped_reason, "steps_run": large_hist.steps_run,
                "step_loss": _floats(large_hist.step_loss),
                "warnings": _warnings(large_hist)}

    # a schedule against the constant good rate: same network, seed and epochs
    steps_per_epoch = -(-X.shape[0] // options["batch_size"])
    warmup = 2 * steps_per_epoch
    schedule_runs = {}
    for label, schedule in (("constant", None), ("cosine", CosineLR(warmup=warmup))):
        net = make(0)
        hist = Trainer(net, lr=good, seed=0, schedule=schedule, **options).fit(X, y)
        schedule_runs[label] = hist
    schedule = {"description": f"CosineLR(warmup={warmup}): linear warm-up over {warmup} steps "
                               f"(2 epochs) from lr/3 to lr = {fmt(good)}, then cosine decay to 0 at the last step",
                "lr": good, "epoch_loss": {k: _floats(h.epoch_loss) for k, h in schedule_runs.items()},
                "rate": {k: _floats(h.lr) for k, h in schedule_runs.items()},
                "final_loss": {k: h.final_loss for k, h in schedule_runs.items()},
                "verdict": compare(schedule_runs["cosine"].final_loss, schedule_runs["constant"].final_loss)}

    result = lr_find(make(0), X, y, loss="mse", lr_min=1e-5, lr_max=10.0, steps=config.lr_find_steps,
                     batch_size=32)
    trained = make(0)
    hist = Trainer(trained, lr=result.suggestion, seed=0, **options).fit(X, y)
    finder = {"lrs": _floats(result.lrs), "losses": _floats(result.losses), "smoothed": _floats(result.smoothed),
              "suggestion": result.suggestion, "method": result.method, "suggestions": result.suggestions,
              "best_lr": result.best_lr, "stopped_reason": result.stopped_reason, "text": str(result),
              "trained_epoch_loss": _floats(hist.epoch_loss), "trained_first_loss": float(hist.epoch_loss[0]),
              "trained_final_loss": hist.final_loss, "grid_best_lr": good, "grid_best_loss": median_final(good),
              "verdict": compare(hist.final_loss, median_final(good)),
              "grid_neighbours": [lr for lr in LR_GRID if lr / 10 < result.suggestion < lr * 10]}
    return LearningRates(
        dataset="sine: 256 points, y = sin(x) + N(0, 0.1^2)",
        network=f"{_describe(1, hidden)} ReLU, no skips, default init",
        training=f"sgd, batch 32, {config.lr_epochs} epochs, mse; {seed_range(config.lr_seeds)}",
        lrs=list(LR_GRID), grid=grid, small=small, good=good, large=large, curves=curves,
        diverged=diverged, schedule=schedule, lr_find=finder)


# ------------------------------------------------------------------------------------------ (f)
def skip_study(config: DemoConfig) -> SkipStudy:
    """(f) Gradient flow through a deep ReLU network, with and without residual skips."""
    X, y = datasets.sine(256, noise=0.1, seed=0)
    width, depth, lr = 16, config.skip_depth, 0.05
    weight, signal, curves, finals, warnings = {}, {}, {}, {}, {}
    for label, skip in (("plain", None), ("residual", "residual")):
        net = Network.mlp(1, (width,) * depth, skip=skip, seed=0)
        flow = D.gradient_flow(net, X, y, "mse")
        weight[label] = [row["weight_norm"] for row in flow.layers]
        signal[label] = [row["signal_norm"] for row in flow.layers]
        hist = Trainer(net, loss="mse", optimizer="sgd", lr=lr, batch_size=32, epochs=config.skip_epochs,
                       seed=0).fit(X, y)
        curves[label], finals[label] = _floats(hist.epoch_loss), hist.final_loss
        warnings[label] = _warnings(hist)
    return SkipStudy(
        dataset="sine: 256 points, y = sin(x) + N(0, 0.1^2)", depth=depth, width=width,
        training=f"sgd, lr {lr}, batch 32, {config.skip_epochs} epochs, mse, default init, seed 0; "
                 "residual: an identity skip into every second hidden layer from the layer two below",
        weight_grad=weight, signal_grad=signal,
        first_layer_ratio=weight["residual"][0] / weight["plain"][0] if weight["plain"][0] else math.inf,
        epoch_loss=curves, final_loss=finals, constant_loss=D.constant_loss(y, "mse"), warnings=warnings)


# ------------------------------------------------------------------------------------------ all
def run_demo(quick: bool = False, n_jobs: int | None = None, config: DemoConfig | None = None) -> DemoReport:
    """Run every experiment (under a second of training on two cores; ``quick``: fewer seeds) and
    return the DemoReport. ``n_jobs`` sets the parallel workers of the seed and learning-rate sweeps."""
    config = config or DemoConfig.make(quick, n_jobs)
    seconds, parts = {}, {}
    for name, build in (("hand_step", hand_step), ("next_step", next_step),
                        ("regression", lambda: regression(config)), ("ln2", lambda: ln2_study(config)),
                        ("learning_rates", lambda: learning_rates(config)), ("skips", lambda: skip_study(config)),
                        ("hand_check", hand_check)):
        start = time.perf_counter()
        parts[name] = build()
        seconds[name] = time.perf_counter() - start
    return DemoReport(config=config, seconds=seconds, **parts)
