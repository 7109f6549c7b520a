"""ByteTrack (Zhang et al., ECCV 2022, "ByteTrack: Multi-Object Tracking by Associating Every Detection
Box"): high-score detections are matched first to every confirmed track (tracked or lost), then the
low-score ones to the tracks still unmatched that were tracked last frame, so an occluded object whose
score drops keeps its track; new tracks start only from high scores."""
from __future__ import annotations

import numpy as np

from .association import assign
from .base import Tracker, TrackingError

__all__ = ["ByteTracker"]

#: ByteTrack's fixed thresholds of the second (low-score) and the tentative-track matching (1 - IoU)
LOW_MATCH_THRESH = 0.5
TENTATIVE_MATCH_THRESH = 0.7


class ByteTracker(Tracker):
    """ByteTrack behind the common interface (:meth:`~yolo3.tracking.base.Tracker.update`, ``reset()``).

    Parameters carry ultralytics' names where they mean the same thing. The defaults were tuned on the
    synthetic presets of ``benchmarks/bench_tracking.py`` (seeds 1-3, checked on seeds 101-103): lower
    score thresholds than ByteTrack's 0.5 / 0.6 and a longer buffer than its 30 frames keep occluded
    objects, and matching on IoU alone (no score fusion) swaps fewer ids where objects cross.

    Args:
        track_high_thresh: detections scoring at least this take part in the first matching; default 0.4.
        track_low_thresh: detections scoring at least this (and below ``track_high_thresh``) take part in
            the second matching; lower ones are ignored; default 0.1.
        new_track_thresh: smallest score that starts a new track; default 0.5.
        track_buffer: frames (at 30 fps) a lost track is kept; default 60.
        match_thresh: largest cost of a first-stage match (1 - IoU, x score with ``fuse_score``); default 0.8.
        fuse_score: multiply IoU by the detection score in the first and tentative matchings; default False.
        frame_rate: the video's frames per second, scales ``track_buffer``; default 30.
        min_hits: matched frames in a row before a new track is reported; default 2 (ByteTrack's).
        per_class: match only within a class; default False (class-agnostic, majority class).
        motion_noise: ``"scaled"`` (default, ByteTrack's noise) or ``"constant"`` (``trackers``' SORT's).
    """

    def __init__(self, track_high_thresh: float = 0.4, track_low_thresh: float = 0.1,
                 new_track_thresh: float = 0.5, track_buffer: int = 60, match_thresh: float = 0.8,
                 fuse_score: bool = False, frame_rate: float = 30.0, min_hits: int = 2, per_class: bool = False,
                 motion_noise: str = "scaled"):
        if not 0 <= track_low_thresh <= track_high_thresh <= 1:
            raise TrackingError(f"need 0 <= track_low_thresh <= track_high_thresh <= 1, got {track_low_thresh} "
                                f"and {track_high_thresh}")
        self.track_high_thresh, self.track_low_thresh = track_high_thresh, track_low_thresh
        self.fuse_score = fuse_score
        super().__init__(track_buffer, frame_rate, min_hits, match_thresh, new_track_thresh, per_class,
                         motion_noise)

    def _match(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray):
        """ByteTrack's three matchings: high scores to confirmed tracks, low scores to the tracks still
        unmatched that were tracked last frame, remaining high scores to tentative tracks."""
        table = self._table
        high = np.flatnonzero(scores >= self.track_high_thresh)
        low = np.flatnonzero((scores >= self.track_low_thresh) & (scores < self.track_high_thresh))
        fused = scores if self.fuse_score else None

        def match(rows: np.ndarray, dets: np.ndarray, max_cost: float, fuse: np.ndarray | None):
            r, c = assign(self._cost(rows, dets, fuse, classes), max_cost)
            return rows[r], dets[c]

        confirmed = np.flatnonzero(table.ids > 0)
        rows1, dets1 = match(confirmed, high, self.match_thresh, fused)
        tracked = (table.ids > 0) & (table.misses == 0)
        tracked[rows1] = False
        rows2, dets2 = match(np.flatnonzero(tracked), low, LOW_MATCH_THRESH, None)
        free = np.zeros(len(boxes), bool)
        free[high] = True
        free[dets1] = False
        left = np.flatnonzero(free)
        rows3, dets3 = match(np.flatnonzero(table.ids == 0), left, TENTATIVE_MATCH_THRESH, fused)
        free[dets3] = False
        return np.concatenate([rows1, rows2, rows3]), np.concatenate([dets1, dets2, dets3]), np.flatnonzero(free)
