"""`skipnet exercise`: set a backpropagation exercise (new) and check a hand computation of it (check)."""

from __future__ import annotations

import sys
from pathlib import Path

from .. import exercises


def add_parser(sub) -> None:
    p = sub.add_parser(
        "exercise", help="set a backpropagation exercise and check a hand computation of it",
        description="Set a one-step backpropagation exercise (new) and grade a worked answer sheet line by "
                    "line (check): an error carried forward is not counted twice. Exit status of check: 0 "
                    "when every line is right, 1 when one is wrong, carried or missing, 2 for bad input.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    new = actions.add_parser("new", help="write an exercise as JSON beside its Markdown worksheet",
                             description="Write EXERCISE.json and the worksheet beside it (same name, .md).")
    new.add_argument("--seed", type=int, default=None,
                     help="draw a random exercise from this seed (default: the seed exercise of skipnet's design)")
    new.add_argument("--phenomenon", choices=sorted(exercises.PHENOMENA), default=None,
                     help="ask for an exercise that shows this (needs --seed)")
    new.add_argument("--out", default="exercise.json", help="the exercise's JSON file (default exercise.json)")
    new.add_argument("--solution", action="store_true", help="also write the worked solution (.solution.md)")
    new.set_defaults(run=run_new)
    chk = actions.add_parser("check", help="grade a hand computation",
                             description="Grade ANSWERS (one 'symbol = value' per line, e.g. 'z2 = 0.375' "
                                         "or 'dL/dW0 = 3/4'; '#' starts a comment) against EXERCISE (a JSON "
                                         "file from 'skipnet exercise new', or 'seed' for the seed exercise).")
    chk.add_argument("exercise", metavar="EXERCISE")
    chk.add_argument("answers", metavar="ANSWERS")
    chk.set_defaults(run=run_check)
    p.set_defaults(run=lambda args: _need_action(p))


def _need_action(parser) -> int:
    parser.print_help()
    return 2


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path}: not a UTF-8 text file") from None
    except IsADirectoryError:
        raise ValueError(f"{what} {path}: is a directory, expected a file") from None


def run_new(args) -> int:
    if args.seed is None:
        if args.phenomenon is not None:
            raise ValueError("--phenomenon needs --seed (the seed exercise is fixed)")
        ex = exercises.seed_exercise()
    else:
        ex = exercises.generate(seed=args.seed, phenomenon=args.phenomenon)
    out = Path(args.out)
    if out.suffix.lower() != ".json":
        raise ValueError(f"--out {out}: expected a .json file name (the worksheet goes beside it as .md)")
    sheet = out.with_suffix(".md")
    out.write_text(ex.to_json(), encoding="utf-8")
    sheet.write_text(ex.worksheet(), encoding="utf-8")
    written = [out, sheet]
    if args.solution:
        solution = out.with_suffix(".solution.md")
        solution.write_text(ex.solution(), encoding="utf-8")
        written.append(solution)
    print(ex.worksheet())
    print("wrote " + ", ".join(map(str, written)))
    print(f"check a worked sheet with: skipnet exercise check {out} ANSWERS (one 'symbol = value' per line)")
    return 0


def run_check(args) -> int:
    if args.exercise == "seed" and not Path("seed").exists():
        ex = exercises.seed_exercise()
    else:
        ex = exercises.Exercise.from_json(_read(args.exercise, "EXERCISE"))
    answers = exercises.parse_answers(_read(args.answers, "ANSWERS"), source=f"ANSWERS {args.answers}")
    if not answers:
        raise ValueError(f"ANSWERS {args.answers}: no 'symbol = value' line")
    result = exercises.check(ex, answers)
    print(result)
    sys.stdout.flush()
    return 0 if result.all_right else 1
