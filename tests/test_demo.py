"""skipnet demo: the numbers of sections a-g (the data structure, not the text), the report files, the CLI."""

import base64
import json
import math
import re
import sys

import numpy as np
import pytest

import skipnet as sn
from skipnet import datasets
from skipnet import diagnostics as D
from skipnet.cli import main
from skipnet.demo import EXERCISE_NAMES, LN2, LN2_LR, LN2_NETWORK, run_demo
from skipnet.report import write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def report():
    return run_demo(quick=True)


def test_a_hand_step_has_the_exercise_values(report):
    a = report.hand_step
    assert a.values == {"z0": 0.5, "h0": 0.5, "z1": 0.25, "h1": 0.25, "yhat": 0.375}
    assert a.loss == 3.375
    assert [a.grads[n] for n in EXERCISE_NAMES] == [0.75, 0.25, 0.25, 0.5]
    assert [a.new_weights[n] for n in EXERCISE_NAMES] == [-0.25, 0.25, 0.25, 0.0]
    rows = {(sec, sym): (formula, value) for sec, sym, formula, value in a.table}
    assert rows[("gradient", "dL/dW0")] == ("dL/dz0 · x = 0.75 · 1", "0.75")
    assert rows[("backward", "dL/dh0")][1] == "0.75" and "dL/dz2 · S0" in rows[("backward", "dL/dh0")][0]
    assert rows[("update", "S0")] == ("S0 - lr · dL/dS0 = 0.5 - 1 · 0.5", "0")


def test_b_next_step_is_dead_and_training_stops(report):
    b = report.next_step
    assert b.loss == 3.0 and b.yhat == 0.0
    assert [b.grads[n] for n in EXERCISE_NAMES] == [0.0, 0.0, 0.0, 0.0] and b.all_gradients_zero
    assert b.dead_units == {0: [0], 1: [0]}
    assert b.trainer_step_loss == [3.375, 3.0] and b.trainer_epochs_run == 2
    assert b.trainer_stopped_reason.startswith("zero gradient")
    assert [w["kind"] for w in b.trainer_warnings] == ["dead_units", "zero_gradient"]


def test_c_regression_loss_falls(report):
    c = report.regression
    assert c.epoch_loss[0] == c.first_loss and c.epoch_loss[-1] == c.final_loss
    assert c.final_loss < 0.1 * c.first_loss
    assert c.final_loss < 3 * c.noise_floor
    assert len(c.prediction) == len(c.x_grid)


def test_d_ln2_study_finds_stuck_runs_and_names_each_cause(report):
    d = report.ln2
    assert d.n_seeds == len(d.runs) >= 50
    assert 0.1 <= d.fraction_stuck <= 0.9, d.fraction_stuck
    assert d.n_stuck == len(d.stuck_runs) == sum(d.causes.values())
    for run in d.stuck_runs:
        assert abs(run["final_loss"] - LN2) < d.stuck_tolerance
        assert run["cause"] in D.CAUSES and run["cause"] != "none", run
        assert "ln 2" in run["explanation"]
        if run["cause"] == "dead_layer":
            assert run["dead_layers"] and run["constant_output"]
    assert d.causes.get("dead_layer", 0) > 0
    for run in d.runs:
        if not run["stuck"]:
            assert abs(run["final_loss"] - LN2) >= d.stuck_tolerance
    fixes = {f["name"]: f for f in d.fixes}
    assert set(fixes) == {"init='he'", "skip", "lr 0.3"}
    for fix in fixes.values():
        assert fix["n"] == d.n_stuck and fix["seeds"] == [r["seed"] for r in d.stuck_runs]
        assert fix["recovered"] == sum(v < d.recovered_below for v in fix["final_losses"])
    assert fixes["skip"]["recovered"] > d.n_stuck / 2 and fixes["init='he'"]["recovered"] > d.n_stuck / 2


def test_d_a_stuck_run_reproduces_outside_the_demo(report):
    d = report.ln2
    run = next(r for r in d.stuck_runs if r["cause"] == "dead_layer")
    X, y = datasets.moons(200, noise=0.1, seed=0)
    net = sn.Network.mlp(seed=run["seed"], **LN2_NETWORK)
    hist = sn.Trainer(net, loss="bce", optimizer="sgd", lr=LN2_LR, batch_size=32, epochs=d.epochs,
                      seed=run["seed"]).fit(X, y)
    assert hist.final_loss == run["final_loss"]
    assert D.dead_units(net, X).dead_layers == run["dead_layers"]
    assert D.output_spread(net, X).constant


def test_e_learning_rates(report):
    e = report.learning_rates
    assert e.small < e.good < e.large
    assert e.diverged["reason"].startswith("diverged at step") and e.diverged["lr"] == e.large
    assert e.diverged["warnings"][-1]["kind"] == "divergence"
    assert all(math.isfinite(v) for v in e.diverged["step_loss"])  # the guard keeps only finite losses
    assert e.curves["small"][-1] > 2 * e.curves["good"][-1]
    large_rows = [g for g in e.grid if g["lr"] == e.large]
    assert all(g["stopped_reason"] for g in large_rows)
    s = e.schedule
    assert s["rate"]["constant"] == [e.good] * len(s["rate"]["constant"])
    cosine = s["rate"]["cosine"]
    assert cosine[0] == pytest.approx(e.good / 3) and max(cosine) == pytest.approx(e.good) and cosine[-1] < e.good
    f = e.lr_find
    assert f["suggestion"] is not None and f["lrs"][0] < f["suggestion"] < f["best_lr"]
    assert f["trained_final_loss"] < 0.5 * f["trained_first_loss"]


def test_f_skips_carry_larger_early_gradients(report):
    f = report.skips
    plain, residual = f.weight_grad["plain"], f.weight_grad["residual"]
    assert len(plain) == len(residual) == f.depth + 1
    early = f.depth // 2
    assert all(residual[k] > 10 * plain[k] for k in range(early)), (plain, residual)
    assert f.first_layer_ratio == pytest.approx(residual[0] / plain[0]) and f.first_layer_ratio > 100
    assert f.final_loss["residual"] < 0.5 * f.final_loss["plain"]


def test_report_to_dict_is_json(report):
    data = json.loads(json.dumps(report.to_dict()))
    assert data["hand_step"]["loss"] == 3.375 and data["ln2"]["n_stuck"] == report.ln2.n_stuck
    summary = report.summary()
    assert summary.count("\n") >= 5 and "3.375" in summary


def _image_sources(text):
    return re.findall(r'<img[^>]*\ssrc="([^"]+)"', text)


def test_report_files_and_every_image_is_a_png(report, tmp_path):
    pytest.importorskip("matplotlib")
    paths = write_report(report, tmp_path / "out")
    assert paths["plots_error"] is None and len(paths["figures"]) >= 6
    html = paths["html"].read_text(encoding="utf-8")
    sources = _image_sources(html)
    assert len(sources) == len(paths["figures"])
    for src in sources:
        if src.startswith("data:"):
            assert src.startswith("data:image/png;base64,")
            assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG_SIGNATURE)
        else:
            file = paths["html"].parent / src
            assert file.is_file() and file.read_bytes().startswith(PNG_SIGNATURE)
    for figure in paths["figures"]:
        assert figure.read_bytes().startswith(PNG_SIGNATURE)
    markdown = paths["markdown"].read_text(encoding="utf-8")
    for name in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown):
        assert (paths["markdown"].parent / name).read_bytes().startswith(PNG_SIGNATURE)
    def no_nan(token):
        raise AssertionError(f"report.json is not strict JSON: {token}")

    data = json.loads(paths["json"].read_text(), parse_constant=no_nan)
    assert data["next_step"]["loss"] == 3.0 and data["hand_step"]["grads"]["skips.0.weight"] == 0.5
    for heading in ("a. The hand step", "b. The next step", "c. Many steps", "d. Stuck at ln 2",
                    "e. Learning rates", "f. Why skips help", "g. Check a hand computation"):
        assert heading in html and heading in markdown


def test_report_without_matplotlib_keeps_tables_and_says_how(report, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    paths = write_report(report, tmp_path)
    assert paths["figures"] == [] and "skipnet[plot]" in paths["plots_error"]
    html = paths["html"].read_text(encoding="utf-8")
    assert not _image_sources(html) and "pip install &#x27;skipnet[plot]&#x27;" in html
    assert "<table>" in html and "skipnet[plot]" in paths["markdown"].read_text()
    assert not list(tmp_path.glob("*.png"))


def test_cli_demo_writes_the_report(report, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("skipnet.demo.run_demo", lambda quick, n_jobs: report)
    assert main(["demo", "--quick", "--out", str(tmp_path), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "a. hand step: loss 3.375" in out and "report.html" in out
    assert (tmp_path / "report.html").is_file() and (tmp_path / "report.md").is_file()
    assert main(["demo", "--jobs", "0", "--out", str(tmp_path)]) == 2


def test_quick_and_full_profiles():
    from skipnet.demo import DemoConfig

    full, quick = DemoConfig.make(False), DemoConfig.make(True)
    assert full.ln2_seeds >= 100 and quick.ln2_seeds < full.ln2_seeds and quick.quick
    assert DemoConfig.make(True, n_jobs=2).n_jobs == 2
    assert np.isclose(LN2, math.log(2))


# ------------------------------------------------------------------ g, and sentences made from numbers
def test_g_hand_check_of_the_seed(report):
    g = report.hand_check
    assert g.first_error == "z2" and g.wrong == ["z2"] and g.carried == ["yhat", "L"]
    assert ("z2", "0.275", "0.375", "wrong") in [tuple(r) for r in g.rows]
    assert "z2 = W2·h1 + S0·h0 = 0.5·0.25 + 0.5·0.5 = 0.375, not 0.275" in g.explanation


def test_hand_check_section_in_both_files(report, tmp_path):
    paths = write_report(report, tmp_path / "out", plots=False)
    for text in (paths["markdown"].read_text(encoding="utf-8"), paths["html"].read_text(encoding="utf-8")):
        assert "g. Check a hand computation" in text
        assert "0.5·0.25 + 0.5·0.5 = 0.375, not 0.275" in text
        assert "first error: z2" in text


def test_compare_words():
    from skipnet.demo import compare, seed_range

    assert compare(0.02323, 0.02314) == "level"  # the schedule's 0.4% is no help
    assert compare(0.128, 0.023) == "worse" and compare(0.023, 0.128) == "better"
    assert compare(math.inf, 1.0) == "worse" and compare(1.0, math.inf) == "better"
    assert seed_range(1) == "seed 0" and seed_range(60) == "seeds 0-59"


def _sentence(markdown, start):
    return next(line for line in markdown.splitlines() if line.startswith(start))


def test_comparing_sentences_follow_the_numbers(report, tmp_path):
    from skipnet.demo import VERDICT_WORDS, compare

    md = write_report(report, tmp_path / "out", plots=False)["markdown"].read_text(encoding="utf-8")
    e = report.learning_rates
    cosine, constant = e.schedule["final_loss"]["cosine"], e.schedule["final_loss"]["constant"]
    schedule = _sentence(md, "CosineLR(")
    assert f"{VERDICT_WORDS[compare(cosine, constant)]} the constant rate's" in schedule
    if compare(cosine, constant) != "better":
        assert "warm-up kept" not in schedule  # no claim that the schedule helped
    f = e.lr_find
    verdict = compare(f["trained_final_loss"], f["grid_best_loss"])
    finder = _sentence(md, "Trained at the suggested rate")
    assert f"{VERDICT_WORDS[verdict]} the best rate of the grid" in finder
    assert f["verdict"] == verdict and f["grid_best_loss"] == min(
        np.median([g["final_loss"] for g in e.grid if g["lr"] == lr]) for lr in e.lrs
        if all(math.isfinite(g["final_loss"]) for g in e.grid if g["lr"] == lr))
    assert "seeds 0-0" not in md and ("seed 0." in md or report.config.lr_seeds > 1)
    skips = _sentence(md, "Without skips")
    s = report.skips
    assert VERDICT_WORDS[compare(s.final_loss["residual"], s.final_loss["plain"])] in skips
    regression = _sentence(md, "The loss ")
    c = report.regression
    assert ("falls" in regression) == (compare(c.final_loss, c.first_loss) == "better")


def test_sentences_for_the_other_outcomes(report):
    """The words change with the numbers: a schedule that helps, a suggestion that matches the grid."""
    import copy

    from skipnet.report import _lr_find_sentence, _schedule_sentence

    s = copy.deepcopy(report.learning_rates.schedule)
    s["final_loss"] = {"cosine": 0.01, "constant": 0.02}
    assert "better than" in _schedule_sentence(s) and "warm-up kept" in _schedule_sentence(s)
    s["final_loss"] = {"cosine": 0.03, "constant": 0.02}
    assert "worse than" in _schedule_sentence(s) and "hurts" in _schedule_sentence(s)
    f = dict(report.learning_rates.lr_find, trained_final_loss=report.learning_rates.lr_find["grid_best_loss"])
    assert "level with the best rate" in _lr_find_sentence(f) and "too safe" not in _lr_find_sentence(f)
