"""skipnet.exercises: the seed's exact key, grading a hand computation, generated problems, the CLI."""

from fractions import Fraction

import numpy as np
import pytest

import skipnet as sn
from skipnet import exercises
from skipnet.cli import main

F = Fraction
# the hand-written seed's worked values: one slip, z2 = 0.5·0.25 + 0.5·0.5 written as 0.275
SEED_WORKED = {"z0": "0.5", "h0": "0.5", "z1": "0.25", "h1": "0.25", "z2": "0.275", "yhat": "0.275", "L": "3.275"}


def key_as_strings(ex):
    return {s: str(v) for s, v in ex.answers.items()}


def test_seed_answers_exact():
    a = exercises.seed_exercise().answers
    assert all(isinstance(v, Fraction) for v in a.values())
    assert (a["z0"], a["h0"], a["z1"], a["h1"], a["z2"], a["yhat"], a["L"]) == (
        F(1, 2), F(1, 2), F(1, 4), F(1, 4), F(3, 8), F(3, 8), F(27, 8))
    assert [a[f"dL/d{s}"] for s in ("W0", "W1", "W2", "S0")] == [F(3, 4), F(1, 4), F(1, 4), F(1, 2)]
    assert [a[s] for s in ("W0", "W1", "W2", "S0")] == [F(-1, 4), F(1, 4), F(1, 4), 0]
    assert a["dL/dh0"] == F(3, 4)  # 0.5·0.5 through the chain + 1·0.5 through the skip


def test_symbols_are_the_trace_table_symbols():
    t = sn.Network.exercise().trace([[1.0]], [[-3.0]], loss="l1")
    t.apply(lr=1.0)
    ex = exercises.seed_exercise()
    assert ex.symbols == [row[1] for row in t.table]
    for _, symbol, _, value in t.table:
        assert float(ex.answers[symbol]) == float(value), symbol


def test_seed_worked_values_find_z2_and_carry_yhat_and_loss():
    c = exercises.check(exercises.seed_exercise(), SEED_WORKED)
    assert c.first_error == "z2"
    assert c.wrong == ["z2"]
    assert c.carried == ["yhat", "L"]
    assert "z2 = W2·h1 + S0·h0 = 0.5·0.25 + 0.5·0.5 = 0.375, not 0.275" in str(c)


def test_dropping_the_skip_share_of_dh0_is_one_error_carried_forward():
    ex = exercises.seed_exercise()
    sheet = key_as_strings(ex)
    sheet.update({"dL/dh0": "1/4", "dL/dz0": "0.25", "dL/dW0": "0.25", "W0": "0.25"})
    c = exercises.check(ex, sheet)
    assert c.first_error == "dL/dh0" and c.wrong == ["dL/dh0"]
    assert c.carried == ["dL/dz0", "dL/dW0", "W0"]
    assert c.missing == [] and c.score == pytest.approx(20 / 21)  # one line of 21 wrong
    assert "dL/dz1 · W1 + dL/dz2 · S0 = 0.5 · 0.5 + 1 · 0.5 = 0.75, not 0.25" in str(c)


def test_a_fully_right_sheet_scores_one_in_any_notation():
    ex = exercises.seed_exercise()
    sheet = key_as_strings(ex)
    sheet.update({"z2": 0.375, "L": "3.375", "W0": "-1/4", "S0": 0, "dL/dW0": F(3, 4)})
    c = exercises.check(ex, sheet)
    assert c.score == 1 and c.all_right and c.first_error is None and not c.wrong and not c.carried
    assert "every line is right" in str(c)


def test_decimal_tolerance_is_stated_and_fractions_exact():
    ex = exercises.generate(seed=0)
    sym = next(s for s, v in ex.answers.items() if v != 0)
    value = ex.answers[sym]
    near = f"{float(value) + 0.0004 * max(1, abs(float(value))):.6f}"
    assert sym not in exercises.check(ex, {sym: near}).wrong
    assert exercises.check(ex, {sym: str(value + F(1, 10**6))}).wrong == [sym]  # a fraction is exact
    assert exercises.check(ex, {sym: f"{float(value) + 0.01 * max(1, abs(float(value))):.6f}"}).wrong == [sym]
    assert "within 0.001" in str(exercises.check(ex, {}))


def test_missing_lines_use_the_key_and_lower_the_score():
    c = exercises.check(exercises.seed_exercise(), {"z2": "0.275"})
    assert c.wrong == ["z2"] and c.carried == []  # yhat not answered: nothing to carry
    assert c.score == 0 and len(c.missing) == 20
    assert exercises.check(exercises.seed_exercise(), {"z2": "3/8"}).score == pytest.approx(1 / 21)


@pytest.mark.parametrize("answers, error", [
    ({"zz": "1"}, ValueError), ({"z0": "half"}, ValueError), ({"z0": True}, TypeError),
    ({"z0": float("nan")}, ValueError), ({"z0": [1]}, TypeError)])
def test_bad_answers_name_the_symbol(answers, error):
    with pytest.raises(error, match="zz|z0"):
        exercises.check(exercises.seed_exercise(), answers)


def test_generated_exercises_are_reproducible_and_short():
    for seed in range(20):
        ex = exercises.generate(seed=seed)
        assert ex.answers == exercises.generate(seed=seed).answers
        assert ex.to_dict() == exercises.Exercise.from_json(ex.to_json()).to_dict()
        assert 3 <= ex.n_layers <= 5 and ex.loss in ("l1", "mse")
        assert all(v.denominator <= 256 and abs(v) <= 64 for v in ex.answers.values())
    assert len({exercises.generate(seed=s).to_json() for s in range(20)}) > 15


def network_of(ex):
    """The exercise as an sn.Network (float64 holds its quarters exactly)."""
    n = ex.n_layers
    layers = [sn.Dense(1, activation="relu" if k < n - 1 else "identity", bias=ex.bias) for k in range(n)]
    net = sn.Network(n_inputs=1, layers=layers, skips=[sn.Skip(0, n - 1)], seed=0)
    names = {f"W{k}": f"layers.{k}.weight" for k in range(n)} | {f"b{k}": f"layers.{k}.bias" for k in range(n)}
    names["S0"] = "skips.0.weight"
    net.set_parameters({names[s]: np.full((1, 1) if s[0] != "b" else (1,), float(v))
                        for s, v in ex.params.items()})
    return net


@pytest.mark.parametrize("seed", range(6))
def test_generated_keys_match_the_trace(seed):
    ex = exercises.generate(seed=seed)
    t = network_of(ex).trace([[float(ex.x)]], [[float(ex.y)]], loss=ex.loss)
    t.apply(lr=float(ex.lr))
    assert ex.symbols == [row[1] for row in t.table]
    for _, symbol, _, value in t.table:
        assert float(ex.answers[symbol]) == pytest.approx(float(value), abs=1e-12), symbol


def test_phenomenon_dead_after_step():
    for seed in range(3):
        ex = exercises.generate(seed=seed, phenomenon="dead_after_step")
        net = network_of(ex)
        before = net.trace([[float(ex.x)]], [[float(ex.y)]], loss=ex.loss)
        before.apply(lr=float(ex.lr))
        after = net.trace([[float(ex.x)]], [[float(ex.y)]], loss=ex.loss)
        newly_dead = [k for k, units in after.dead_units.items() if units and not before.dead_units[k]]
        assert newly_dead, seed


def test_phenomenon_skip_only_gradient():
    for seed in range(3):
        ex = exercises.generate(seed=seed, phenomenon="skip_only_gradient")
        a, out = ex.answers, ex.n_layers - 1
        assert a["dL/dz1"] == 0 and a["dL/dh0"] == a[f"dL/dz{out}"] * ex.params["S0"] != 0
        assert a["dL/dW0"] != 0  # the first weight still learns, through the skip alone


def test_worksheet_has_no_answers_and_solution_has_every_formula():
    ex = exercises.seed_exercise()
    sheet, solution = ex.worksheet(), ex.solution()
    assert "| z2 | W2·h1 + S0·h0 |  |" in sheet and "0.375" not in sheet
    assert "W2·h1 + S0·h0 = 0.5·0.25 + 0.5·0.5 | 0.375 |" in solution
    assert all(f"| {s} |" in solution for s in ex.symbols)


def test_bad_generate_arguments():
    with pytest.raises(ValueError, match="phenomenon"):
        exercises.generate(phenomenon="levitation")
    with pytest.raises(ValueError, match="n_relu"):
        exercises.generate(n_relu=9)
    with pytest.raises(ValueError, match="format"):
        exercises.Exercise.from_json('{"a": 1}')


def test_cli_round_trip(tmp_path, capsys):
    out = tmp_path / "ex.json"
    assert main(["exercise", "new", "--seed", "4", "--out", str(out)]) == 0
    assert (tmp_path / "ex.md").read_text().startswith("# Backpropagation exercise (seed 4)")
    ex = exercises.Exercise.from_json(out.read_text())
    assert ex.answers == exercises.generate(seed=4).answers
    right = tmp_path / "right.txt"
    right.write_text("# my sheet\n" + "\n".join(f"{s} = {v}" for s, v in ex.answers.items()) + "\n")
    capsys.readouterr()
    assert main(["exercise", "check", str(out), str(right)]) == 0
    assert "every line is right" in capsys.readouterr().out
    seed_sheet = tmp_path / "seed.txt"
    seed_sheet.write_text("\n".join(f"{s} = {v}" for s, v in SEED_WORKED.items()))
    seed_json = tmp_path / "seed.json"
    assert main(["exercise", "new", "--out", str(seed_json)]) == 0
    capsys.readouterr()
    assert main(["exercise", "check", str(seed_json), str(seed_sheet)]) == 1
    assert "first error: z2" in capsys.readouterr().out


@pytest.mark.parametrize("content, needle", [("z0 0.5", "line 1"), ("z0 = 1\nz0 = 2", "twice"),
                                             ("nope = 1", "unknown"), ("", "no 'symbol = value'")])
def test_cli_bad_answers_exit_2_in_one_line(tmp_path, capsys, content, needle):
    answers = tmp_path / "a.txt"
    answers.write_text(content)
    assert main(["exercise", "check", "seed", str(answers)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_bad_exercise_file_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    answers = tmp_path / "a.txt"
    answers.write_text("z0 = 1")
    assert main(["exercise", "check", str(bad), str(answers)]) == 2
    assert "invalid JSON" in capsys.readouterr().err
    assert main(["exercise", "new", "--out", str(tmp_path / "x.txt")]) == 2


def test_check_html_view():
    html = exercises.check(exercises.seed_exercise(), SEED_WORKED)._repr_html_()
    assert "<table>" in html and "0.275" in html and "wrong" in html and "carried" in html


def test_exercise_and_check_are_read_only():
    ex = exercises.seed_exercise()
    with pytest.raises(AttributeError, match="read-only"):
        ex.x = 2
    with pytest.raises(TypeError):
        ex.params["W0"] = 1  # the key stays the key of these numbers
    c = exercises.check(ex, {"z2": "0.275"})
    with pytest.raises(AttributeError):
        c.tolerance = 1
    assert exercises.check(ex, {"z2": "0.275", "yhat": 0.275}).carried == ["yhat"]  # DESIGN.md's example
