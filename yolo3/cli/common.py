"""What every command-line tool shares: the help formatter, option parsers and checks, and the
``run`` wrapper that turns the package's errors into ``prog: error: message`` and exit code 2."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from ..errors import Yolo3Error

__all__ = ["HelpFormatter", "UsageError", "parse_size", "check_threshold", "check_files", "first_names", "fail",
           "run"]

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


def parse_size(text: str, flag: str = "--size", multiple: int = 32) -> tuple[int, int]:
    """The network input size of a flag: ``"416"`` -> (416, 416), ``"320x416"`` (or ``"320,416"``) ->
    (height 320, width 416). Raises :class:`UsageError` unless both are positive multiples of
    ``multiple``."""
    parts = str(text).lower().replace(",", "x").split("x")
    try:
        hw = tuple(int(v) for v in parts)
    except ValueError:
        raise UsageError(f"{flag} must be N or HxW, got {text!r}") from None
    if len(hw) == 1:
        hw = (hw[0], hw[0])
    if len(hw) != 2 or min(hw) <= 0 or hw[0] % multiple or hw[1] % multiple:
        raise UsageError(f"{flag} must be a positive multiple of {multiple} (N or HxW), got {text}")
    return hw  # type: ignore[return-value]


def check_threshold(value: float, flag: str, low: float = 0.0, high: float = 1.0, high_inclusive: bool = True) -> float:
    """``value`` if ``low <= value <= high`` (``< high`` when not ``high_inclusive``), else :class:`UsageError`."""
    ok = low <= value <= high if high_inclusive else low <= value < high
    if not ok:
        bracket = "]" if high_inclusive else ")"
        raise UsageError(f"{flag} must be in [{low:g}, {high:g}{bracket}, got {value:g}")
    return value


def check_files(pairs: Sequence[tuple[str | None, str]]) -> None:
    """Raise :class:`UsageError` for the first ``(path, flag)`` whose path is given but is no file."""
    for path, flag in pairs:
        if path is not None and not os.path.isfile(path):
            raise UsageError(f"{flag} file not found: {path}")


def first_names(items: Sequence[str], limit: int = 5) -> str:
    """``"a, b, c"`` or ``"a, b, c, d, e and 3 more"``: a list of names short enough for one line."""
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def fail(prog: str, message: str) -> int:
    """Print ``prog: error: message`` (first line only) to stderr; return the user-error exit code."""
    line = str(message).strip().splitlines()[0] if str(message).strip() else "error"
    print(f"{prog}: error: {line}", file=sys.stderr, flush=True)
    return USER_ERROR


def run(main: Callable[[], int | None], prog: str) -> int:
    """Call ``main()`` and map the package's errors (:class:`yolo3.errors.Yolo3Error`) to
    ``prog: error: message`` and exit code 2; Ctrl-C to exit code 130. Anything else is a bug
    and keeps its traceback."""
    try:
        code = main()
    except Yolo3Error as exc:
        return fail(prog, str(exc))
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
