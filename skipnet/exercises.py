"""Backpropagation exercises worked by hand, set and checked in exact arithmetic.

    from skipnet import exercises
    ex = exercises.seed_exercise()          # DESIGN.md section 1: 1-1-1 relu/relu/identity, skip 0 -> 2
    ex = exercises.generate(seed=7)         # a random problem of the same family, reproducible from its seed
    print(ex.worksheet())                   # Markdown, no answers
    c = exercises.check(ex, {"z2": "0.275", "yhat": 0.275})
    c.first_error, c.wrong, c.carried, c.score; print(c)

An exercise is a chain of ReLU units (layers of width 1, one input, one output), the output layer
identity, optional biases, a learned skip from the first unit into the output, L1 or MSE loss on one
sample and one SGD step. Every value is a ``fractions.Fraction``: the key is exact, never rounded.

Symbols are those of ``Trace.table``'s second column (z0, h0, ..., yhat, L, dL/dyhat, dL/dz2, ...,
dL/dW0, ..., dL/dS0) and, for the SGD update, the new parameters under their own names (W0, ..., S0).
A check grades like a teacher: each line is compared with its formula evaluated on the student's own
earlier values (the key's where the student left a line out), so a slip is counted once, where it
happened, and the lines that only carried it forward are listed apart.

Pure Python: nothing here needs NumPy or the compiled kernels.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from numbers import Rational, Real
from types import MappingProxyType

__all__ = ["PHENOMENA", "SEED_WORKED_VALUES", "Check", "Exercise", "check", "generate", "parse_answers", "seed_exercise"]

#: what ``generate(phenomenon=...)`` can be asked to show
PHENOMENA = {
    "dead_after_step": "a ReLU unit that is alive in this step is dead (z <= 0) after the SGD update",
    "skip_only_gradient": "the skip carries the only gradient to the first unit: the chain's share of "
                          "dL/dh0 is 0 (a later unit is dead) while the skip's is not",
}

#: the hand-written seed's own worked values (DESIGN.md section 1): right but for one slip,
#: z2 = 0.5·0.25 + 0.5·0.5 written as 0.275, which yhat and L then carry
SEED_WORKED_VALUES = {"z0": "0.5", "h0": "0.5", "z1": "0.25", "h1": "0.25", "z2": "0.275", "yhat": "0.275",
                      "L": "3.275", "dL/dyhat": "1", "dL/dz2": "1", "dL/dh1": "0.5", "W0": "-0.25"}

#: decimals are accepted within this relative tolerance (relative to max(1, |value|)); fractions are exact
DEFAULT_TOLERANCE = Fraction(1, 1000)


# ---------------------------------------------------------------------------------------------- numbers
def to_decimal(value: Fraction) -> str:
    """A Fraction as people write it: a terminating decimal (0.375), else the fraction (1/3)."""
    value = Fraction(value)
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    if places == 0:
        return str(value.numerator)
    text = f"{abs(value.numerator) * 10 ** places // value.denominator:0{places + 1}d}"
    text = (text[:-places] + "." + text[-places:]).rstrip("0").rstrip(".")
    return ("-" if value < 0 else "") + text


def _cell(text: str) -> str:
    """Text for a Markdown table cell (|x| would end the cell)."""
    return text.replace("|", "\\|")


def _paren(text: str) -> str:
    return f"({text})" if text.startswith("-") else text


def to_fraction(value, name: str = "value") -> tuple[Fraction, bool]:
    """``value`` (int, Fraction, float, or a string "0.275", "3/8", "-1/4") as (Fraction, exact).

    ``exact`` is False for decimals (a float or a string with a decimal point), which a check accepts
    within its tolerance. ValueError/TypeError name ``name``.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or a string like '0.375' or '3/8', got a bool")
    if isinstance(value, Rational):
        return Fraction(value), True
    if isinstance(value, Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        return Fraction(repr(value)), False  # the decimal the user wrote, not the binary float
    if isinstance(value, str):
        text = value.strip().replace("−", "-").replace(" ", "")
        try:
            result = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{name}: {value!r} is not a number (write 0.375, 3/8 or -1/4)") from None
        return result, not any(c in text for c in ".eE")
    raise TypeError(f"{name} must be a number or a string like '0.375' or '3/8', got {type(value).__name__}")


# ---------------------------------------------------------------------------------------------- formulas
class _Expr:
    """A formula over named values: evaluated exactly, written with symbols or with numbers."""

    def value(self, env) -> Fraction:
        raise NotImplementedError

    def text(self, env=None) -> str:  # env None: symbols, else the numbers of env
        raise NotImplementedError


@dataclass(frozen=True)
class _Ref(_Expr):
    name: str           # symbol in the table, or a given (x, y, lr, W0, ...) when given=True
    given: bool = False

    def value(self, env):
        return env(self.name, self.given)

    def text(self, env=None):
        return self.name if env is None else to_decimal(self.value(env))


@dataclass(frozen=True)
class _Op(_Expr):
    kind: str  # add, mul, sub, abs, sq, relu, relu', sign, twice
    args: tuple

    def value(self, env):
        v = [a.value(env) for a in self.args]
        if self.kind == "add":
            return sum(v, Fraction(0))
        if self.kind == "mul":
            return math.prod(v, start=Fraction(1))
        if self.kind == "sub":
            return v[0] - v[1]
        if self.kind == "abs":
            return abs(v[0])
        if self.kind == "sq":
            return v[0] ** 2
        if self.kind == "relu":
            return max(v[0], Fraction(0))
        if self.kind == "relu'":
            return Fraction(int(v[0] > 0))  # relu'(0) = 0, as PyTorch
        if self.kind == "sign":
            return Fraction((v[0] > 0) - (v[0] < 0))
        if self.kind == "twice":
            return 2 * v[0]
        raise AssertionError(self.kind)

    def text(self, env=None):
        parts = [a.text(env) for a in self.args]
        if env is not None and self.kind in ("add", "sub", "mul"):  # a negative number after an operator
            parts = [p if i == 0 and self.kind != "mul" else _paren(p) for i, p in enumerate(parts)]
        joined = {"add": " + ", "mul": " · " if self._spaced else "·", "sub": " - "}
        if self.kind in joined:
            return joined[self.kind].join(parts)
        if self.kind == "abs":
            return f"|{parts[0]}|"
        if self.kind == "sq":
            return f"({parts[0]})^2"
        if self.kind == "twice":
            return f"2·({parts[0]})"
        return f"{self.kind}({parts[0]})"

    @property
    def _spaced(self) -> bool:  # "dL/dz2 · W2" reads better spaced, "W2·h1" as the trace writes it
        return any(isinstance(a, _Ref) and a.name.startswith("dL/") for a in self.args)


def _add(*a):
    return a[0] if len(a) == 1 else _Op("add", a)


def _mul(*a):
    return _Op("mul", a)


@dataclass(frozen=True)
class Line:
    """One line of the hand computation: ``symbol = formula``, in section forward, backward, gradient or
    update (as ``Trace.table``)."""
    section: str
    symbol: str
    formula: _Expr


# ---------------------------------------------------------------------------------------------- exercise
@dataclass
class Exercise:
    """One SGD step on a chain of width-1 layers, to be worked by hand.

    ``n_layers`` layers (``n_layers - 1`` ReLU units then the identity output), weights ``W0..``, biases
    ``b0..`` when ``bias``, the learned skip ``S0`` from layer 0 into the output; one sample (x, y),
    loss ``"l1"`` or ``"mse"``, SGD learning rate ``lr``. All numbers are Fractions. Read-only once
    made: ``answers`` (symbol -> Fraction) is the key of exactly these numbers.
    """

    n_layers: int
    params: dict            # symbol (W0, b0, ..., S0) -> Fraction
    x: Fraction
    y: Fraction
    loss: str = "l1"
    lr: Fraction = Fraction(1)
    bias: bool = False
    seed: int | None = None
    phenomenon: str | None = None
    lines: list = field(init=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.n_layers, int) or isinstance(self.n_layers, bool) or not 3 <= self.n_layers <= 5:
            raise ValueError(f"n_layers must be an int from 3 to 5 (2-4 ReLU units and the output), "
                             f"got {self.n_layers!r}")
        if self.loss not in ("l1", "mse"):
            raise ValueError(f"loss must be 'l1' or 'mse', got {self.loss!r}")
        self.x = to_fraction(self.x, "x")[0]
        self.y = to_fraction(self.y, "y")[0]
        self.lr = to_fraction(self.lr, "lr")[0]
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {to_decimal(self.lr)}")
        expected = self.parameter_symbols
        if not isinstance(self.params, Mapping) or set(self.params) != set(expected):
            got = sorted(self.params) if isinstance(self.params, Mapping) else type(self.params).__name__
            raise ValueError(f"params must give exactly {expected}, got {got}")
        self.params = MappingProxyType({s: to_fraction(self.params[s], f"params[{s!r}]")[0] for s in expected})
        self.lines = tuple(self._build_lines())
        self.answers = MappingProxyType(self.evaluate({}))
        self._sealed = True

    def __setattr__(self, name: str, value) -> None:
        if getattr(self, "_sealed", False):
            raise AttributeError(f"Exercise.{name} is read-only: an exercise and its key are fixed (make a new "
                                 "Exercise, or exercises.generate(...), for another)")
        object.__setattr__(self, name, value)

    # ---------------------------------------------------------------- structure
    @property
    def parameter_symbols(self) -> list[str]:
        """W0, (b0,) W1, (b1,) ..., S0: the order of the network's parameters."""
        out = []
        for k in range(self.n_layers):
            out += [f"W{k}"] + ([f"b{k}"] if self.bias else [])
        return out + ["S0"]

    @property
    def symbols(self) -> list[str]:
        """Every line's symbol, in the order of the table."""
        return [line.symbol for line in self.lines]

    def _build_lines(self) -> list[Line]:
        n, out = self.n_layers, self.n_layers - 1
        G = lambda s: _Ref(s, given=True)
        R = _Ref
        lines = []
        for k in range(n):
            src = G("x") if k == 0 else R(f"h{k - 1}")
            terms = [_mul(G(f"W{k}"), src)]
            if k == out:
                terms.append(_mul(G("S0"), R("h0")))
            if self.bias:
                terms.append(G(f"b{k}"))
            lines.append(Line("forward", f"z{k}", _add(*terms)))
            if k < out:
                lines.append(Line("forward", f"h{k}", _Op("relu", (R(f"z{k}"),))))
        lines.append(Line("forward", "yhat", R(f"z{out}")))
        diff = _Op("sub", (R("yhat"), G("y")))
        lines.append(Line("forward", "L", _Op("abs" if self.loss == "l1" else "sq", (diff,))))
        lines.append(Line("backward", "dL/dyhat", _Op("sign" if self.loss == "l1" else "twice", (diff,))))
        lines.append(Line("backward", f"dL/dz{out}", R("dL/dyhat")))
        for k in range(out - 1, -1, -1):
            terms = [_mul(R(f"dL/dz{k + 1}"), G(f"W{k + 1}"))]
            if k == 0:
                terms.append(_mul(R(f"dL/dz{out}"), G("S0")))
            lines.append(Line("backward", f"dL/dh{k}", _add(*terms)))
            lines.append(Line("backward", f"dL/dz{k}", _mul(R(f"dL/dh{k}"), _Op("relu'", (R(f"z{k}"),)))))
        for s in self.parameter_symbols:
            if s == "S0":
                formula = _mul(R(f"dL/dz{out}"), R("h0"))
            elif s.startswith("W"):
                k = int(s[1:])
                formula = _mul(R(f"dL/dz{k}"), G("x") if k == 0 else R(f"h{k - 1}"))
            else:
                formula = R(f"dL/dz{s[1:]}")
            lines.append(Line("gradient", f"dL/d{s}", formula))
        for s in self.parameter_symbols:
            lines.append(Line("update", s, _Op("sub", (G(s), _mul(G("lr"), R(f"dL/d{s}"))))))
        return lines

    def _given(self, name: str) -> Fraction:
        return {"x": self.x, "y": self.y, "lr": self.lr}[name] if name in ("x", "y", "lr") else self.params[name]

    def evaluate(self, student: dict) -> dict:
        """Each line's formula (symbol -> Fraction) on the values before it: ``student``'s (symbol ->
        Fraction) where given, else those computed."""
        values: dict = {}

        def env(name, given):
            return self._given(name) if given else student.get(name, values[name])

        for line in self.lines:
            values[line.symbol] = line.formula.value(env)
        return values

    def numbers(self, line: Line, values: dict) -> str:
        """``line``'s formula written with the numbers of ``values`` (symbol -> Fraction) and the givens."""
        return line.formula.text(lambda name, given: self._given(name) if given else values[name])

    def next_forward(self) -> dict:
        """z of every layer after the SGD step (symbol -> Fraction): whether a unit died."""
        new = {s: self.answers[s] for s in self.parameter_symbols}
        h, out = self.x, {}
        h0 = None
        for k in range(self.n_layers):
            z = new[f"W{k}"] * h + (new[f"b{k}"] if self.bias else 0)
            if k == self.n_layers - 1:
                z += new["S0"] * h0
            out[f"z{k}"] = z
            h = max(z, Fraction(0))
            h0 = h if k == 0 else h0
        return out

    # ---------------------------------------------------------------- text
    def describe(self) -> str:
        """The problem in words: network, data, loss and step."""
        n, out = self.n_layers, self.n_layers - 1
        acts = ", ".join(["relu"] * out + ["identity"])
        p = ", ".join(f"{s} = {to_decimal(v)}" for s, v in self.params.items())
        loss = "L = |yhat - y|" if self.loss == "l1" else "L = (yhat - y)^2"
        return (f"A network with one input and {n} layers of width 1 (activations {acts}), "
                f"{'with' if self.bias else 'without'} biases, and a learned skip S0 from layer 0 into the "
                f"output layer {out}: z{out} = W{out}·h{out - 1} + S0·h0{f' + b{out}' if self.bias else ''}.\n"
                f"Parameters: {p}.\nOne sample: x = {to_decimal(self.x)}, y = {to_decimal(self.y)}. "
                f"Loss {self.loss}: {loss}. One SGD step with lr = {to_decimal(self.lr)}; relu'(0) = 0.")

    def worksheet(self) -> str:
        """The exercise as Markdown: the problem and an empty table of every line to compute."""
        rows = [f"| {line.symbol} | {_cell(line.formula.text())} |  |" for line in self.lines]
        return "\n".join([f"# Backpropagation exercise{self._title()}", "", self.describe(), "",
                          "Compute every line, in order (write decimals or fractions such as 3/8):", "",
                          "| symbol | formula | value |", "| --- | --- | --- |", *rows, ""])

    def solution(self) -> str:
        """The worked solution as Markdown: every line with its formula, its numbers and its value."""
        rows = [f"| {line.symbol} | {_cell(line.formula.text() + ' = ' + self.numbers(line, self.answers))} | "
                f"{to_decimal(self.answers[line.symbol])} |" for line in self.lines]
        return "\n".join([f"# Solution{self._title()}", "", self.describe(), "",
                          "| symbol | formula | value |", "| --- | --- | --- |", *rows, ""])

    def _title(self) -> str:
        return "" if self.seed is None else f" (seed {self.seed})"

    # ---------------------------------------------------------------- files
    def to_dict(self) -> dict:
        """A JSON-ready description (numbers as exact strings); ``Exercise.from_dict`` reads it back."""
        return {"format": "skipnet-exercise", "version": 1, "n_layers": self.n_layers, "bias": self.bias,
                "loss": self.loss, "lr": str(self.lr), "x": str(self.x), "y": str(self.y),
                "params": {s: str(v) for s, v in self.params.items()}, "seed": self.seed,
                "phenomenon": self.phenomenon}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data) -> Exercise:
        if not isinstance(data, dict) or data.get("format") != "skipnet-exercise":
            raise ValueError("not a skipnet exercise (expected a JSON object with format 'skipnet-exercise')")
        if data.get("version") != 1:
            raise ValueError(f"unsupported skipnet exercise version {data.get('version')!r} (expected 1)")
        missing = [k for k in ("n_layers", "params", "x", "y") if k not in data]
        if missing:
            raise ValueError(f"skipnet exercise lacks {', '.join(missing)}")
        if not isinstance(data["params"], dict):
            raise ValueError("skipnet exercise: params must be an object symbol -> number")  # noqa: TRY004  # noqa: TRY004 - bad file content
        bias = data.get("bias", False)
        if not isinstance(bias, bool):
            raise ValueError(f"skipnet exercise: bias must be true or false, got {bias!r}")  # noqa: TRY004  # noqa: TRY004
        seed = data.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"skipnet exercise: seed must be an integer or null, got {seed!r}")
        phenomenon = data.get("phenomenon")
        if phenomenon is not None and phenomenon not in PHENOMENA:
            raise ValueError(f"skipnet exercise: unknown phenomenon {phenomenon!r}")
        return cls(n_layers=data["n_layers"], params=dict(data["params"]), x=data["x"], y=data["y"],
                   loss=data.get("loss", "l1"), lr=data.get("lr", "1"), bias=bias, seed=seed,
                   phenomenon=phenomenon)

    @classmethod
    def from_json(cls, text: str) -> Exercise:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a skipnet exercise: invalid JSON ({exc})") from None
        return cls.from_dict(data)


def seed_exercise() -> Exercise:
    """The exercise of DESIGN.md section 1: layers 1-1-1 (relu, relu, identity), no biases, the learned
    skip 0 -> 2, every weight 1/2, x = 1, y = -3, L1 loss, SGD lr 1."""
    half = Fraction(1, 2)
    return Exercise(n_layers=3, params={"W0": half, "W1": half, "W2": half, "S0": half}, x=1, y=-3)


# ---------------------------------------------------------------------------------------------- generate
_WEIGHTS = [Fraction(v, 4) for v in (-4, -3, -2, -1, 1, 2, 3, 4)]
_BIASES = [Fraction(v, 4) for v in (-2, -1, 0, 1, 2)]
_INPUTS = [Fraction(v) for v in (1, 2, -1)] + [Fraction(1, 2)]
_TARGETS = [Fraction(v) for v in (-3, -2, -1, 1, 2, 3)]
_RATES = [Fraction(1), Fraction(1, 2), Fraction(1, 4)]
#: "short" numbers: every value of the key has a denominator and a size at most these
MAX_DENOMINATOR, MAX_ABS = 256, 64


def _shows(ex: Exercise, phenomenon: str | None) -> bool:
    a = ex.answers
    if any(v.denominator > MAX_DENOMINATOR or abs(v) > MAX_ABS for v in a.values()):
        return False
    if phenomenon is None:
        return True
    out = ex.n_layers - 1
    if phenomenon == "dead_after_step":
        after = ex.next_forward()
        return any(a[f"z{k}"] > 0 and after[f"z{k}"] <= 0 for k in range(out))
    if phenomenon == "skip_only_gradient":
        chain = a["dL/dz1"] * ex.params["W1"]
        return a["z0"] > 0 and chain == 0 and a[f"dL/dz{out}"] * ex.params["S0"] != 0
    raise AssertionError(phenomenon)


def generate(seed: int = 0, phenomenon: str | None = None, n_relu: int | None = None, bias: bool | None = None,
             loss: str | None = None, max_tries: int = 20000) -> Exercise:
    """A random exercise of the seed's family, the same for the same arguments.

    ``n_relu`` ReLU units (2-4; random when None) before the identity output, ``bias`` (random when
    None), ``loss`` "l1" or "mse" (random when None), weights in quarters, lr 1, 1/2 or 1/4: every
    value of the key stays short (denominator <= 256, size <= 64). ``phenomenon`` (a key of
    ``PHENOMENA``) asks for a problem that shows it. ValueError when no draw within ``max_tries`` does.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if phenomenon is not None and phenomenon not in PHENOMENA:
        raise ValueError(f"phenomenon must be one of {sorted(PHENOMENA)} or None, got {phenomenon!r}")
    if n_relu is not None and (not isinstance(n_relu, int) or isinstance(n_relu, bool) or not 2 <= n_relu <= 4):
        raise ValueError(f"n_relu must be 2, 3 or 4, got {n_relu!r}")
    if bias is not None and not isinstance(bias, bool):
        raise TypeError(f"bias must be True, False or None, got {bias!r}")
    if loss is not None and loss not in ("l1", "mse"):
        raise ValueError(f"loss must be 'l1', 'mse' or None, got {loss!r}")
    rng = random.Random(seed)
    for _ in range(max_tries):
        n = (n_relu if n_relu is not None else rng.randint(2, 4)) + 1
        b = bias if bias is not None else rng.random() < 0.5
        params = {}
        for k in range(n):
            params[f"W{k}"] = rng.choice(_WEIGHTS)
            if b:
                params[f"b{k}"] = rng.choice(_BIASES)
        params["S0"] = rng.choice(_WEIGHTS)
        ex = Exercise(n_layers=n, params=params, x=rng.choice(_INPUTS), y=rng.choice(_TARGETS),
                      loss=loss or rng.choice(["l1", "mse"]), lr=rng.choice(_RATES), bias=b, seed=seed,
                      phenomenon=phenomenon)
        if _shows(ex, phenomenon):
            return ex
    raise ValueError(f"no exercise showing {phenomenon!r} found in {max_tries} draws from seed {seed}")


# ---------------------------------------------------------------------------------------------- check
@dataclass(frozen=True)
class LineResult:
    """One line of a checked sheet: the student's value, what their own earlier values give, the key."""
    symbol: str
    status: str                 # "right", "wrong", "carried" or "missing"
    given: Fraction | None
    expected: Fraction          # the formula on the student's own earlier values
    key: Fraction
    formula: str                # symbols
    numbers: str                # the formula with the numbers it was evaluated on


@dataclass(frozen=True)
class Check:
    """The grading of a hand computation.

    ``first_error``: the first line wrong on its own (None when none is); ``wrong``: every such line;
    ``carried``: lines right for the student's own earlier values but not the key's (an error carried
    forward, not counted again); ``missing``: lines not answered; ``score``: the share of all lines
    right on their own terms (right or carried), 0-1.
    """

    exercise: Exercise
    lines: list
    tolerance: Fraction

    def _with(self, status):
        return [r.symbol for r in self.lines if r.status == status]

    @property
    def wrong(self) -> list[str]:
        return self._with("wrong")

    @property
    def carried(self) -> list[str]:
        return self._with("carried")

    @property
    def missing(self) -> list[str]:
        return self._with("missing")

    @property
    def first_error(self) -> str | None:
        wrong = self.wrong
        return wrong[0] if wrong else None

    @property
    def score(self) -> float:
        good = sum(r.status in ("right", "carried") for r in self.lines)
        return good / len(self.lines)

    @property
    def all_right(self) -> bool:
        return all(r.status == "right" for r in self.lines)

    def explain(self, r: LineResult) -> str:
        """One line in words, with the student's numbers."""
        if r.status == "wrong":
            return (f"{r.symbol} = {r.formula} = {r.numbers} = {to_decimal(r.expected)}, "
                    f"not {to_decimal(r.given)}")
        if r.status == "carried":
            return (f"{r.symbol} = {to_decimal(r.given)} follows from your earlier values "
                    f"({r.numbers}); the key has {to_decimal(r.key)}")
        if r.status == "missing":
            return f"{r.symbol}: no answer (the key has {to_decimal(r.key)})"
        return f"{r.symbol} = {to_decimal(r.given)}: right"

    def summary(self) -> str:
        n = len(self.lines)
        right = sum(r.status == "right" for r in self.lines)
        return (f"{right} of {n} lines right, {len(self.wrong)} wrong, {len(self.carried)} carried forward, "
                f"{len(self.missing)} missing; score {self.score:.2f}")

    def __str__(self) -> str:
        out = [self.summary()]
        if self.first_error is not None:
            out.append(f"first error: {self.first_error}")
        out += ["  " + self.explain(r) for r in self.lines if r.status == "wrong"]
        if self.carried:
            out.append("carried forward (right for your earlier values, so not counted again): "
                       + ", ".join(self.carried))
        if self.missing:
            out.append("missing: " + ", ".join(self.missing))
        if self.all_right:
            out.append("every line is right")
        out.append(f"(decimals are accepted within {to_decimal(self.tolerance)} of the value, relative to "
                   "max(1, |value|); fractions must be exact)")
        return "\n".join(out)

    def _repr_html_(self) -> str:
        from html import escape
        colour = {"right": "#1a7f37", "wrong": "#cf222e", "carried": "#9a6700", "missing": "#6e7781"}
        rows = "".join(
            f"<tr><td><code>{escape(r.symbol)}</code></td><td><code>{escape(r.formula)}</code></td>"
            f"<td>{'' if r.given is None else escape(to_decimal(r.given))}</td><td>{escape(to_decimal(r.key))}</td>"
            f"<td style='color:{colour[r.status]}'>{r.status}</td>"
            f"<td>{escape(self.explain(r)) if r.status in ('wrong', 'carried') else ''}</td></tr>"
            for r in self.lines)
        return (f"<div class='skipnet-check'><p><b>{escape(self.summary())}</b></p><table>"
                "<tr><th>symbol</th><th>formula</th><th>yours</th><th>key</th><th>status</th><th></th></tr>"
                f"{rows}</table></div>")


def parse_answers(text: str, source: str = "answers") -> dict:
    """``symbol = value`` lines (blank lines and ``#`` comments skipped) as a dict symbol -> string.
    ValueError names ``source`` and the line."""
    out = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        symbol, sep, value = line.rpartition("=")
        symbol, value = symbol.strip(), value.strip()
        if not sep or not symbol or not value:
            raise ValueError(f"{source} line {number}: expected 'symbol = value', got {raw.strip()!r}")
        if symbol in out:
            raise ValueError(f"{source} line {number}: {symbol} is answered twice")
        out[symbol] = value
    return out


def check(exercise: Exercise, answers: dict, tolerance=DEFAULT_TOLERANCE) -> Check:
    """Grade ``answers`` (symbol -> number or string such as "0.275", "3/8", "-1/4") for ``exercise``.

    Each line is compared with its formula evaluated on the student's own earlier values (the key's
    where a line is not answered): exact for fractions and integers, within ``tolerance`` relative to
    max(1, |value|) for decimals. Unknown symbols are a ValueError naming them.
    """
    if not isinstance(exercise, Exercise):
        raise TypeError(f"exercise must be a skipnet.exercises.Exercise, got {type(exercise).__name__}")
    if not isinstance(answers, dict):
        raise TypeError(f"answers must be a dict symbol -> value, got {type(answers).__name__}")
    tolerance = to_fraction(tolerance, "tolerance")[0]
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {to_decimal(tolerance)}")
    unknown = [s for s in answers if s not in exercise.answers]
    if unknown:
        raise ValueError(f"answers name unknown symbols {unknown}; the exercise's are {exercise.symbols}")
    student = {s: to_fraction(v, f"answers[{s!r}]") for s, v in answers.items()}
    values = {s: v for s, (v, _) in student.items()}
    own = exercise.evaluate(values)  # each line on the student's earlier values
    env_values = {**exercise.answers, **values}

    def close(given, exact, target):
        if given == target:
            return True
        return not exact and abs(given - target) <= tolerance * max(1, abs(target))

    results = []
    for line in exercise.lines:
        s = line.symbol
        key = exercise.answers[s]
        # the numbers this line was evaluated on: the student's earlier values, the key's where missing
        numbers = exercise.numbers(line, env_values)
        if s not in student:
            status, given = "missing", None
        else:
            given, exact = student[s]
            status = ("wrong" if not close(given, exact, own[s]) else
                      "right" if close(given, exact, key) else "carried")
        results.append(LineResult(s, status, given, own[s], key, line.formula.text(), numbers))
    return Check(exercise, tuple(results), tolerance)
