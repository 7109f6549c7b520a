"""The one base class of every error the package raises for a user's mistake or a bad input.

Scripts map :class:`Yolo3Error` to ``prog: error: message`` and exit code 2 (``yolo3.cli.common``);
``str(error)`` is one line meant for the user. It derives from ``ValueError`` so code that caught
the package's earlier ``ValueError`` subclasses keeps working; errors that are also I/O, import or
runtime failures keep those bases too (``VideoOpenError`` is an ``OSError``, ``OnnxUnavailableError``
an ``ImportError``, ``FetchError`` a ``RuntimeError``).
"""
from __future__ import annotations

from typing import Iterable

__all__ = ["Yolo3Error", "first_names"]


class Yolo3Error(ValueError):
    """A user-facing problem (missing or malformed file, bad option, mismatched model); one-line message."""


def first_names(items: Iterable[object], limit: int = 5, sep: str = ", ") -> str:
    """``"a, b, c"`` or ``"a, b, c, d, e and 3 more"``: a list of names short enough for a one-line message.

    Args:
        items: the names (any objects; ``str()`` is shown).
        limit: how many are shown at most.
        sep: what goes between two shown names.
    """
    items = list(items)
    shown = sep.join(str(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
