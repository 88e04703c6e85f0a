"""The ``skipnet`` command line: one module per command (trace, exercise, demo, train, predict, sweep, bench), each
with ``add_parser(subparsers)`` and ``run(args) -> exit status``.

Failures are one line on stderr, ``skipnet COMMAND: error: MESSAGE``, never a traceback: exit status 2
for bad arguments and for input or output that cannot be used (argparse's own errors included), 1 for a
command that ran but failed (a diverged training), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import bench, demo, exercise, predict, sweep, trace, train
from ._args import Parser
from ._errors import CommandFailed

_COMMANDS = (trace, exercise, demo, train, predict, sweep, bench)

# expected failures of a run, reported in one line: bad values and files (UnicodeDecodeError and the
# JSON and CSV errors are ValueErrors), sizes past the machine (OverflowError, MemoryError), and
# RuntimeError for the library's refusals of a state (e.g. a missing optional dependency's setup)
_REPORTED = (ValueError, TypeError, OSError, OverflowError, MemoryError, RuntimeError)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``skipnet``, with one subcommand per command module."""
    from .. import __version__

    parser = Parser(
        prog="skipnet", description="Train and explain feed-forward ReLU networks with skip connections.",
        epilog="exit status: 0 on success; 1 when a command ran but failed (skipnet train: the training "
               "diverged); 2 for bad arguments, input or output, reported in one line; 130 when interrupted.")
    parser.add_argument("--version", action="version", version=f"skipnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in _COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``skipnet ARGV`` (default: sys.argv[1:]); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except CommandFailed as exc:
        return _fail(args.command, str(exc), exc.code)
    except KeyboardInterrupt:
        return _fail(args.command, "interrupted", 130)
    except BrokenPipeError:  # the reader of stdout went away (`skipnet predict ... | head`): nothing to say
        _silence_stdout()
        return 141
    except _REPORTED as exc:
        return _fail(args.command, _message(exc), 2)


def _fail(command: str, message: str, code: int) -> int:
    print(f"skipnet {command}: error: {message}", file=sys.stderr)
    return code


def _message(exc: BaseException) -> str:
    """One line: the exception's text, and for an OSError the file it concerns (``[Errno 2] ...`` does
    not always name it)."""
    if isinstance(exc, OSError) and exc.strerror:
        files = [str(f) for f in (exc.filename, exc.filename2) if f is not None]
        text = f"{' -> '.join(files)}: {exc.strerror}" if files else exc.strerror
    elif isinstance(exc, MemoryError):
        text = f"out of memory{': ' + str(exc) if str(exc) else ''}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _silence_stdout() -> None:
    """Point stdout at the null device, so that Python's final flush raises no second BrokenPipeError."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (tests, notebooks)
        pass
