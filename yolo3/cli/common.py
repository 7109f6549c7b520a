"""What every command-line tool shares: the help formatter, option parsers and checks, and the
``run`` wrapper that turns the package's errors into ``prog: error: message`` and exit code 2."""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Callable, Sequence

from ..core.files import OutputError, check_output_dir, check_output_file, refuse_overwriting
from ..errors import Yolo3Error, first_names

__all__ = ["HelpFormatter", "UsageError", "parse_size", "size_type", "check_threshold", "check_files", "first_names",
           "fail", "run", "run_tool", "prog_name", "default_model_path", "number_type", "positive_int",
           "non_negative_int", "positive_float", "non_negative_float", "fraction", "OutputError",
           "check_output_file", "check_output_dir", "refuse_overwriting"]

#: exit code of a user error (missing file, bad option or input), as argparse uses for bad flags
USER_ERROR = 2


class UsageError(Yolo3Error):
    """A bad combination of options found after parsing; ``str()`` is the one-line message."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the uninformative None / True / False of optional values and switches."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def parse_size(text: str, flag: str = "--size", multiple: int = 32, *, order: str = "hw") -> tuple[int, int]:
    """The size given to a flag as (height, width) in pixels.

    ``"416"`` -> (416, 416); ``"320x416"`` (or ``"320,416"``) -> (height 320, width 416) with the
    default ``order="hw"``, or (height 416, width 320) with ``order="wh"`` (a flag documented as WxH).

    Args:
        text: the flag's value, ``N`` or two numbers joined by ``x`` or ``,``.
        flag: the flag's name, for the message.
        multiple: both sides must be positive multiples of this (1: any positive size).
        order: ``"hw"`` or ``"wh"``, the order the user writes the two numbers in.

    Raises:
        UsageError: not ``N`` or two numbers, or a side is not a positive multiple of ``multiple``.
    """
    spelled = "HxW" if order == "hw" else "WxH"
    parts = str(text).lower().replace(",", "x").split("x")
    try:
        values = tuple(int(v) for v in parts)
    except ValueError:
        raise UsageError(f"{flag} must be N or {spelled}, got {text!r}") from None
    if len(values) == 1:
        values = (values[0], values[0])
    if len(values) != 2 or min(values) <= 0 or values[0] % multiple or values[1] % multiple:
        what = f"a positive multiple of {multiple}" if multiple > 1 else "positive"
        raise UsageError(f"{flag} must be {what} (N or {spelled}), got {text}")
    return values if order == "hw" else (values[1], values[0])  # type: ignore[return-value]


def size_type(flag: str, multiple: int = 32, order: str = "hw") -> Callable[[str], tuple[int, int]]:
    """An argparse ``type=`` for a size flag: :func:`parse_size`, its message shown as argparse's own
    (``prog: error: argument --size: ...``, exit 2).

    Args:
        flag: the flag's name, for the message.
        multiple: both sides must be positive multiples of this.
        order: ``"hw"`` or ``"wh"``, the order the user writes the two numbers in.
    """
    def convert(text: str) -> tuple[int, int]:
        try:
            return parse_size(text, flag, multiple, order=order)
        except UsageError as exc:  # argparse names the flag itself: "argument --size: expected N or HxW, ..."
            raise argparse.ArgumentTypeError(str(exc).replace(f"{flag} must be", "expected", 1)) from None

    convert.__name__ = "size"
    return convert


def _range_text(low, high, low_open: bool, high_open: bool) -> str:
    if high is None:
        return f"{'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"{'<' if high_open else '<='} {high:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def number_type(kind: type = int, low: float | None = None, high: float | None = None, *, low_open: bool = False,
                high_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type=`` for a number in a range: ``prog: error: argument --lr: expected a number > 0,
    got -1`` and exit 2 for anything else (NaN and infinities included).

    Args:
        kind: ``int`` or ``float``.
        low: the smallest allowed value (None: no bound).
        high: the largest allowed value (None: no bound).
        low_open: ``low`` itself is not allowed.
        high_open: ``high`` itself is not allowed.
    """
    noun = "an integer" if kind is int else "a number"
    wanted = f"{noun} {_range_text(low, high, low_open, high_open)}" if (low, high) != (None, None) else noun

    def convert(text: str):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
        ok = math.isfinite(value)
        ok = ok and (low is None or (value > low if low_open else value >= low))
        ok = ok and (high is None or (value < high if high_open else value <= high))
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text}")
        return value

    convert.__name__ = kind.__name__
    return convert


#: argparse ``type=`` helpers for the common ranges
positive_int = number_type(int, 1)
non_negative_int = number_type(int, 0)
positive_float = number_type(float, 0, low_open=True)
non_negative_float = number_type(float, 0)
fraction = number_type(float, 0, 1)


def check_threshold(value: float, flag: str, low: float = 0.0, high: float = 1.0, high_inclusive: bool = True) -> float:
    """``value`` if ``low <= value <= high`` (``< high`` when not ``high_inclusive``), else :class:`UsageError`.

    Args:
        value: the number the user gave.
        flag: the flag's name, for the message (e.g. ``"--score"``).
        low: the smallest allowed value (inclusive).
        high: the largest allowed value.
        high_inclusive: whether ``high`` itself is allowed.

    Returns:
        ``value`` unchanged.

    Raises:
        UsageError: ``value`` is outside the range.
    """
    ok = low <= value <= high if high_inclusive else low <= value < high
    if not ok:
        bracket = "]" if high_inclusive else ")"
        raise UsageError(f"{flag} must be in [{low:g}, {high:g}{bracket}, got {value:g}")
    return value


def check_files(pairs: Sequence[tuple[str | None, str]]) -> None:
    """Raise :class:`UsageError` for the first ``(path, flag)`` whose path is given but is no file.

    Args:
        pairs: ``(path, flag)`` pairs; a ``None`` path (flag not given) is skipped.

    Raises:
        UsageError: a given path is not an existing file (the message names its flag).
    """
    for path, flag in pairs:
        if path is not None and os.path.isdir(path):
            raise UsageError(f"{flag} {path} is a folder, not a file")
        if path is not None and not os.path.isfile(path):
            raise UsageError(f"{flag} file not found: {path}")


def fail(prog: str, message: str) -> int:
    """Print ``prog: error: message`` (first line only) to stderr; return the user-error exit code.

    Args:
        prog: the program name shown first (see :func:`prog_name`).
        message: the error text; only its first line is printed (``error`` when empty).

    Returns:
        :data:`USER_ERROR` (2).
    """
    line = str(message).strip().splitlines()[0] if str(message).strip() else "error"
    print(f"{prog}: error: {line}", file=sys.stderr, flush=True)
    return USER_ERROR


def run(main: Callable[[], int | None], prog: str) -> int:
    """Call ``main()`` and map the package's errors (:class:`yolo3.errors.Yolo3Error`) to
    ``prog: error: message`` and exit code 2; Ctrl-C to exit code 130. Anything else is a bug
    and keeps its traceback.

    Args:
        main: the tool's entry point; it returns an exit code or ``None`` (0).
        prog: the program name for the error line (see :func:`prog_name`).

    Returns:
        The exit code: ``main()``'s, 2 for a :class:`yolo3.errors.Yolo3Error`, 130 for Ctrl-C.
    """
    try:
        code = main()
    except Yolo3Error as exc:
        return fail(prog, str(exc))
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


def run_tool(argv: Sequence[str] | None, prog: str, build_parser: Callable[[str], argparse.ArgumentParser],
             work: Callable[[argparse.Namespace], int | None]) -> int:
    """What every tool's ``main`` does: parse ``argv`` with ``build_parser(prog)`` (argparse exits 2
    on a bad flag), then :func:`run` ``work(args)``.

    Args:
        argv: command-line arguments (None: ``sys.argv[1:]``).
        prog: program name in usage lines and messages.
        build_parser: the tool's parser factory.
        work: the tool's body, given the parsed arguments; returns the exit code.
    """
    parser = build_parser(prog)
    _errors_as_one_line(parser)
    try:
        args = parser.parse_args(argv)
    except _BadFlag as exc:
        return fail(prog, str(exc))
    return run(lambda: work(args), prog)


class _BadFlag(Exception):
    """argparse's complaint about the command line (bad flag, bad value), as one line."""


def _errors_as_one_line(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` (and its sub-command parsers) raise :class:`_BadFlag` instead of printing the usage
    block and exiting: the tool prints ``prog: error: argument --lr: expected a number > 0, got -1 (see
    --help)``, one line, and exits 2. ``--help`` still prints and exits 0."""
    def error(message: str):
        raise _BadFlag(f"{message} (see --help)")

    parser.error = error  # type: ignore[method-assign]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _errors_as_one_line(sub)


def prog_name(script: str, module: str) -> str:
    """The program name for usage lines and ``prog: error:`` messages, as the user started the tool.

    A console command (``yolo3-eval``) gives its own name, ``python -m yolo3.cli.evaluate`` gives
    that, and a root script or a call from Python gives ``script`` (``eval.py``).

    Args:
        script: the root script's file name, e.g. ``"eval.py"``.
        module: the tool's module, e.g. ``"yolo3.cli.evaluate"``.
    """
    argv0 = sys.argv[0] if sys.argv else ""
    base = os.path.basename(argv0)
    if base.startswith("yolo3-"):
        return os.path.splitext(base)[0]
    here = os.path.dirname(os.path.abspath(__file__))
    if argv0 and os.path.splitext(os.path.abspath(argv0))[0] == os.path.join(here, module.rsplit(".", 1)[-1]):
        return f"python -m {module}"
    return script


def default_model_path(path: str = os.path.join("model_data", "yolov3-tiny.keras")) -> str:
    """The default model: ``path`` from the working directory where it exists, else beside the checkout's
    scripts (the folder above the package) where it exists there, else ``path`` (reported missing).

    Args:
        path: the default, relative to the working directory or the checkout.
    """
    if os.path.exists(path):
        return path
    checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    beside_scripts = os.path.join(checkout, path)
    return beside_scripts if os.path.exists(beside_scripts) else path
