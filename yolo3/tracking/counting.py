"""Counting tracks across a line: each track counted at most once per direction, per class.

A track crosses the line segment (x1, y1) -> (x2, y2) when the centre of its box moves from one side
of the line to the other between two of its reported positions and the path between them meets the
segment. Direction ``"in"`` is from the left of the segment to its right as seen walking from (x1, y1)
to (x2, y2) in image coordinates (y down), ``"out"`` the other way.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from .base import TrackingError, Tracks

__all__ = ["LineCounter", "parse_line"]


def parse_line(text: str) -> tuple[float, float, float, float]:
    """``"x1,y1,x2,y2"`` (pixels) -> a 4-tuple of floats.

    Raises:
        TrackingError: not four numbers, or both ends the same point.
    """
    try:
        values = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not all(np.isfinite(values)):
        raise TrackingError(f"a counting line is x1,y1,x2,y2 in pixels, got {text!r}")
    if values[:2] == values[2:]:
        raise TrackingError(f"a counting line needs two different end points, got {text!r}")
    return values  # type: ignore[return-value]


def _side(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sign of the cross product (b - a) x (p - a): > 0 right of a->b in image coordinates."""
    return np.sign((b[0] - a[0]) * (p[..., 1] - a[1]) - (b[1] - a[1]) * (p[..., 0] - a[0]))


class LineCounter:
    """Counts confirmed tracks crossing one line segment, by class and direction.

    Args:
        line: (x1, y1, x2, y2) pixels.
    """

    def __init__(self, line: tuple[float, float, float, float]):
        self.line = tuple(float(v) for v in line)
        self._a, self._b = np.array(self.line[:2]), np.array(self.line[2:])
        self.reset()

    def reset(self) -> None:
        """Forget tracks and counts (a new video)."""
        self._last: dict[int, np.ndarray] = {}
        self._counted: set[tuple[int, str]] = set()
        #: (class id, "in" | "out") -> tracks counted
        self.counts: Counter = Counter()

    def update(self, tracks: Tracks) -> list[tuple[int, int, str]]:
        """Feed one frame's tracks; returns the (track id, class id, direction) counted this frame."""
        centres = (tracks.boxes[:, :2] + tracks.boxes[:, 2:]) / 2
        events = []
        for track_id, class_id, centre in zip(tracks.ids.tolist(), tracks.class_ids.tolist(), centres):
            if _side(centre, self._a, self._b) == 0:
                continue  # on the line: the side it leaves to decides
            previous = self._last.get(track_id)
            self._last[track_id] = centre
            if previous is None or not self._crosses(previous, centre):
                continue
            direction = "in" if _side(centre, self._a, self._b) > 0 else "out"
            if (track_id, direction) in self._counted:
                continue
            self._counted.add((track_id, direction))
            self.counts[(class_id, direction)] += 1
            events.append((track_id, class_id, direction))
        return events

    def _crosses(self, p: np.ndarray, q: np.ndarray) -> bool:
        """Whether the path p -> q goes from one side of the line to the other, meeting the segment."""
        if _side(p, self._a, self._b) == _side(q, self._a, self._b):
            return False
        return _side(self._a, p, q) != _side(self._b, p, q)

    def totals(self) -> dict[str, int]:
        """{"in": n, "out": m} over every class."""
        out = {"in": 0, "out": 0}
        for (_, direction), n in self.counts.items():
            out[direction] += n
        return out
