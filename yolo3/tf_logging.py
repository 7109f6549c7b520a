"""Make ``TF_CPP_MIN_LOG_LEVEL`` hold for the lines TensorFlow prints while it is imported.

TensorFlow 2.21 (the ``tensorflow-cpu`` wheel at least) logs through Abseil before Abseil's log
is initialised. Those lines go straight to file descriptor 2 and ignore ``TF_CPP_MIN_LOG_LEVEL``::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796131799.939985    3054 port.cc:153] oneDNN custom operations are on. ...

so a command-line script that promises one line on stderr for a user error printed five.
:func:`import_tensorflow` imports TensorFlow with descriptor 2 sent to a temporary file, then
writes back every line except the Abseil lines below the level ``TF_CPP_MIN_LOG_LEVEL`` asks for
(0 INFO, 1 WARNING, 2 ERROR, 3 FATAL) and that preamble. With the variable unset or 0 nothing is
captured: TensorFlow prints what it always prints. This module must not import TensorFlow at
module level; ``yolo3/__init__.py`` calls it before anything imports Keras.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile

_ABSL_LINE = re.compile(r"^([IWEF])\d{4} ")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def min_log_level(environ: dict | None = None) -> int:
    """The integer value of ``TF_CPP_MIN_LOG_LEVEL`` (0 when unset or not a number).

    Args:
        environ: the environment to read; default ``os.environ``.
    """
    value = (os.environ if environ is None else environ).get("TF_CPP_MIN_LOG_LEVEL", "0")
    try:
        return int(value)
    except ValueError:
        return 0


def filter_import_log(text: str, level: int) -> str:
    """Drop Abseil log lines below ``level`` and the uninitialised-log preamble from ``text``.

    Lines that are not Abseil log lines (Python warnings, tracebacks, anything else) are kept; so
    is every continuation line of a kept message. A message's continuation lines (those that do not
    start a new log line) follow the fate of the line that started it.

    Args:
        text: what TensorFlow wrote to stderr while it was imported.
        level: the ``TF_CPP_MIN_LOG_LEVEL`` value (0 INFO, 1 WARNING, 2 ERROR, 3 FATAL); 0 or less keeps
            everything.

    Returns:
        The kept lines, line endings included.
    """
    if level <= 0:
        return text
    kept = []
    keep = True
    for line in text.splitlines(keepends=True):
        match = _ABSL_LINE.match(line)
        if match:
            keep = _SEVERITY[match.group(1)] >= level
        elif line.rstrip("\r\n") == _PREAMBLE:
            keep = False
            continue
        if keep:
            kept.append(line)
        elif not match and not line.startswith(" ") and line.strip():
            # not a continuation of the dropped message: a new, unrelated line
            keep = True
            kept.append(line)
    return "".join(kept)


def import_tensorflow() -> None:
    """Import TensorFlow, holding back the import-time log lines ``TF_CPP_MIN_LOG_LEVEL`` hides.

    Does nothing when TensorFlow is already imported. Where descriptor 2 cannot be redirected
    (no such descriptor, an embedding that replaced it), TensorFlow is imported as it is.
    """
    if "tensorflow" in sys.modules:
        return
    level = min_log_level()
    if level <= 0:
        import tensorflow  # noqa: F401
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        import tensorflow  # noqa: F401
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            rest = filter_import_log(captured.read().decode("utf-8", errors="replace"), level)
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()
