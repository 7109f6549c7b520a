"""SORT (Bewley et al., 2016, "Simple Online and Realtime Tracking"): a constant-velocity Kalman filter
per box and one Hungarian matching of every detection to the predicted boxes on IoU."""
from __future__ import annotations

import numpy as np

from .association import assign
from .base import Tracker, Tracks, others

__all__ = ["SortTracker"]


class SortTracker(Tracker):
    """SORT behind the common interface: ``update(boxes_xyxy, scores, class_ids) -> Tracks``, ``reset()``.

    Args:
        track_buffer: frames (at 30 fps) a lost track is kept (SORT's ``max_age``); default 30.
        frame_rate: the video's frames per second, scales ``track_buffer``; default 30.
        min_hits: matched frames in a row before a track is reported; default 3 (SORT's).
        match_thresh: largest 1 - IoU of a match; default 0.7 (SORT's IoU >= 0.3).
        new_track_thresh: smallest score that starts a track; default 0.25.
        per_class: match only within a class; default False (class-agnostic, majority class).
    """

    def __init__(self, track_buffer: int = 30, frame_rate: float = 30.0, min_hits: int = 3,
                 match_thresh: float = 0.7, new_track_thresh: float = 0.25, per_class: bool = False):
        super().__init__(track_buffer, frame_rate, min_hits, match_thresh, new_track_thresh, per_class)

    def update(self, boxes_xyxy: np.ndarray, scores: np.ndarray | None = None,
               class_ids: np.ndarray | None = None) -> Tracks:
        """Track one frame.

        Args:
            boxes_xyxy: (N, 4) detections, xyxy pixels; NaN/inf or zero-area rows are dropped (counted in
                ``dropped``).
            scores: (N,) detection scores in 0..1 (default all 1).
            class_ids: (N,) integer classes (default all 0).

        Returns:
            The confirmed tracks matched this frame (:class:`~yolo3.tracking.base.Tracks`).
        """
        self.frame_count += 1
        boxes, scores, classes, index = self._inputs(boxes_xyxy, scores, class_ids)
        table = self._table
        self._predict(boxes)
        rows, cols = assign(self._cost(np.arange(len(table)), np.arange(len(boxes)), None, classes), self.match_thresh)
        self._matched(rows, boxes[cols], scores[cols], classes[cols])
        unmatched = others(len(boxes), cols)
        return self._close(rows, cols, unmatched, boxes, scores, classes, index)
