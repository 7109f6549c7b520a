"""SORT (Bewley et al., 2016, "Simple Online and Realtime Tracking"): a constant-velocity Kalman filter
per box and one Hungarian matching of every detection to the predicted boxes on IoU."""
from __future__ import annotations

import numpy as np

from .association import assign
from .base import Tracker, others

__all__ = ["SortTracker"]


class SortTracker(Tracker):
    """SORT behind the common interface (:meth:`~yolo3.tracking.base.Tracker.update`, ``reset()``).

    Args:
        track_buffer: frames (at 30 fps) a lost track is kept (SORT's ``max_age``); default 30.
        frame_rate: the video's frames per second, scales ``track_buffer``; default 30.
        min_hits: matched frames in a row before a track is reported; default 3 (SORT's).
        match_thresh: largest 1 - IoU of a match; default 0.7 (SORT's IoU >= 0.3).
        new_track_thresh: smallest score that starts a track; default 0.25.
        per_class: match only within a class; default False (class-agnostic, majority class).
        motion_noise: ``"scaled"`` (default, ByteTrack's noise) or ``"constant"`` (``trackers``' SORT's).
    """

    def __init__(self, track_buffer: int = 30, frame_rate: float = 30.0, min_hits: int = 3,
                 match_thresh: float = 0.7, new_track_thresh: float = 0.25, per_class: bool = False,
                 motion_noise: str = "scaled"):
        super().__init__(track_buffer, frame_rate, min_hits, match_thresh, new_track_thresh, per_class,
                         motion_noise)

    def _match(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray):
        """One Hungarian matching of every track with every detection."""
        rows, cols = assign(self._cost(np.arange(len(self._table)), np.arange(len(boxes)), None, classes),
                            self.match_thresh)
        return rows, cols, others(len(boxes), cols)
