"""MOTChallenge text files: detections, tracks and ground truth, read with ``file:line`` errors and
written atomically.

One box a line, comma-separated (spaces around the commas are allowed), frames 1-based, boxes as
left, top, width, height in pixels:

- detections: ``frame,-1,x,y,w,h,score[,class]``; columns after the 8th are ignored, a missing or
  negative class reads as 0;
- tracks: ``frame,id,x,y,w,h,score,-1,-1,-1`` (what :func:`write_mot` writes);
- ground truth: ``frame,id,x,y,w,h[,flag[,class[,visibility]]]``; a 0 ``flag`` marks a box that is not
  evaluated (MOT17's convention, :mod:`yolo3.tracking.metrics` ignores it).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .base import TrackingError, Tracks

__all__ = ["MotFormatError", "MotRows", "read_mot", "write_mot", "mot_lines", "iter_frames", "sequence_files",
           "read_seqinfo"]


class MotFormatError(TrackingError):
    """A malformed MOTChallenge line (``file:line: what``) or an unreadable file."""


@dataclass
class MotRows:
    """The rows of one MOTChallenge file, N of them, in file order.

    Attributes:
        frames: (N,) int64, 1-based.
        ids: (N,) int64 (-1 in detection files).
        boxes: (N, 4) float64 xyxy pixels (converted from the file's x, y, w, h).
        scores: (N,) float64: the score (detections, tracks) or the evaluation flag (ground truth; 1 when absent).
        classes: (N,) int64: the 8th column where there is one and it is >= 0, else 0.
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def num_frames(self) -> int:
        """The largest frame number (0 when empty)."""
        return int(self.frames.max()) if len(self.frames) else 0


def _parse_line(text: str, min_columns: int) -> tuple[int, int, float, float, float, float, float, int]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) < min_columns:
        raise ValueError(f"{len(parts)} column(s), need at least {min_columns}")
    try:
        frame, ident = int(float(parts[0])), int(float(parts[1]))
        x, y, w, h = (float(v) for v in parts[2:6])
        score = float(parts[6]) if len(parts) > 6 and parts[6] else 1.0
        klass = int(float(parts[7])) if len(parts) > 7 and parts[7] else 0
    except ValueError:
        raise ValueError(f"not numbers: {text.strip()[:60]!r}") from None
    if frame < 1 or float(parts[0]) != frame:
        raise ValueError(f"frame must be an integer >= 1, got {parts[0]}")
    if not all(np.isfinite([x, y, w, h, score])):
        raise ValueError("box or score is not finite")
    if w < 0 or h < 0:
        raise ValueError(f"negative width or height ({w:g}, {h:g})")
    return frame, ident, x, y, w, h, score, max(klass, 0)


def read_mot(path: str, kind: str = "det") -> MotRows:
    """Read a MOTChallenge file (``kind`` ``"det"``, ``"tracks"`` or ``"gt"``); blank lines are skipped.

    Raises:
        MotFormatError: ``path:line: what is wrong`` for the first malformed line, or the file cannot be read.
    """
    min_columns = {"det": 7, "tracks": 7, "gt": 6}[kind]
    rows = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    rows.append(_parse_line(text, min_columns))
                except ValueError as exc:
                    raise MotFormatError(f"{path}:{number}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MotFormatError(f"cannot read {path}: {exc}") from None
    table = np.array(rows, dtype=np.float64).reshape(-1, 8)
    x, y, w, h = table[:, 2], table[:, 3], table[:, 4], table[:, 5]
    return MotRows(frames=table[:, 0].astype(np.int64), ids=table[:, 1].astype(np.int64),
                   boxes=np.stack([x, y, x + w, y + h], axis=1), scores=table[:, 6],
                   classes=table[:, 7].astype(np.int64))


def iter_frames(rows: MotRows, num_frames: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(frame, row indices) for every frame 1..``num_frames`` (default the last in ``rows``), empty ones too."""
    last = rows.num_frames if num_frames is None else num_frames
    order = np.argsort(rows.frames, kind="stable")
    sorted_frames = rows.frames[order]
    bounds = np.searchsorted(sorted_frames, np.arange(1, last + 2))
    for frame in range(1, last + 1):
        yield frame, order[bounds[frame - 1]:bounds[frame]]


def mot_lines(frame: int, tracks: Tracks) -> list[str]:
    """MOTChallenge track lines ``frame,id,x,y,w,h,score,-1,-1,-1`` of one frame's tracks."""
    lines = []
    for (x1, y1, x2, y2), ident, score in zip(tracks.boxes.tolist(), tracks.ids.tolist(), tracks.scores.tolist()):
        lines.append(f"{frame},{ident},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4f},-1,-1,-1\n")
    return lines


def write_mot(path: str, lines: list[str]) -> None:
    """Write ``lines`` to ``path`` atomically (a temporary file beside it, then renamed).

    Raises:
        MotFormatError: the folder does not exist or is not writable.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".txt", dir=folder)
    except OSError as exc:
        raise MotFormatError(f"cannot write {path}: {exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(lines)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def sequence_files(path: str, kind: str = "det") -> dict[str, str]:
    """Sequence name -> file: one file (named by its stem), a folder of ``*.txt`` files, or a
    MOTChallenge folder of sequences (``<seq>/det/det.txt`` or ``<seq>/gt/gt.txt`` for ``kind`` "gt").

    Raises:
        MotFormatError: ``path`` does not exist or holds no such file.
    """
    if os.path.isfile(path):
        return {os.path.splitext(os.path.basename(path))[0]: path}
    if not os.path.isdir(path):
        raise MotFormatError(f"no such file or folder: {path}")
    found = {}
    inner = "gt/gt.txt" if kind == "gt" else "det/det.txt"
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if name.endswith(".txt") and os.path.isfile(full):
            found[name[:-4]] = full
        elif os.path.isfile(os.path.join(full, inner)):
            found[name] = os.path.join(full, inner)
    if not found:
        raise MotFormatError(f"no .txt files (nor <sequence>/{inner}) in {path}")
    return found


def read_seqinfo(sequence_file: str) -> dict[str, str]:
    """The ``[Sequence]`` keys (lower-cased: ``seqlength``, ``framerate`` ...) of the MOTChallenge
    ``seqinfo.ini`` of ``<seq>/gt/gt.txt`` or ``<seq>/det/det.txt``; empty when there is none."""
    ini = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(sequence_file))), "seqinfo.ini")
    info = {}
    if os.path.isfile(ini):
        with open(ini, encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.partition("=")
                if sep:
                    info[key.strip().lower()] = value.strip()
    return info
