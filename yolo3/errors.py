"""The one base class of every error the package raises for a user's mistake or a bad input.

Scripts map :class:`Yolo3Error` to ``prog: error: message`` and exit code 2 (``yolo3.cli.common``);
``str(error)`` is one line meant for the user. It derives from ``ValueError`` so code that caught
the package's earlier ``ValueError`` subclasses keeps working; errors that are also I/O, import or
runtime failures keep those bases too (``VideoOpenError`` is an ``OSError``, ``OnnxUnavailableError``
an ``ImportError``, ``FetchError`` a ``RuntimeError``).
"""
from __future__ import annotations

__all__ = ["Yolo3Error"]


class Yolo3Error(ValueError):
    """A user-facing problem (missing or malformed file, bad option, mismatched model); one-line message."""
