"""What every tracker shares: the :class:`Tracks` it returns, the per-track table, input checks,
cost matrices (class-agnostic or per class) and the life cycle (tentative -> confirmed -> lost -> removed).

A track is *tentative* until it has been matched ``min_hits`` frames in a row (or at once during the
first ``min_hits`` frames of a video, as in SORT), then *confirmed*: only confirmed tracks are reported
and only they get an id, so ids count up 1, 2, 3 ... per tracker instance without gaps and nothing
is ever reported with a placeholder id. A tentative track that misses a frame is dropped; a
confirmed one is *lost* and kept ``track_buffer`` frames (scaled by ``frame_rate / 30``), predicted by
its Kalman filter, so that it can take its id back after an occlusion.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import Yolo3Error
from .association import iou_xyxy, valid_boxes
from .kalman import NOISE_MODELS, KalmanBoxBank

__all__ = ["Tracks", "TrackingError", "Tracker"]


class TrackingError(Yolo3Error):
    """A bad tracker parameter or tracker input; one-line message."""


@dataclass
class Tracks:
    """The confirmed tracks matched in one frame, K of them, in ascending id order.

    Attributes:
        boxes: (K, 4) float64 xyxy pixels, the Kalman-filtered box.
        ids: (K,) int64 track ids, from 1 per tracker instance.
        scores: (K,) float64 score of the detection matched this frame.
        class_ids: (K,) int64 class of the track (its detections' majority vote in class-agnostic mode).
        detection_index: (K,) int64 index of the matched detection in the ``update`` arguments.
    """

    boxes: np.ndarray
    ids: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    detection_index: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


class _Table:
    """Per-track columns, one row a live track (tentative, confirmed or lost), rows aligned with ``kalman``."""

    def __init__(self, motion_noise: str = "scaled") -> None:
        self.kalman = KalmanBoxBank(motion_noise)
        self.ids = np.zeros(0, np.int64)          # 0 while tentative
        self.hits = np.zeros(0, np.int64)         # frames matched in a row
        self.misses = np.zeros(0, np.int64)       # frames since the last match
        self.scores = np.zeros(0)                 # last matched detection's score
        self.class_ids = np.zeros(0, np.int64)    # majority class (or the only class, per-class mode)
        self.votes: list[dict[int, float]] = []   # class -> summed detection scores

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray) -> None:
        n = len(boxes)
        self.kalman.add(boxes)
        self.ids = np.concatenate([self.ids, np.zeros(n, np.int64)])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        self.misses = np.concatenate([self.misses, np.zeros(n, np.int64)])
        self.scores = np.concatenate([self.scores, scores])
        self.class_ids = np.concatenate([self.class_ids, class_ids])
        self.votes += [{int(c): float(s)} for c, s in zip(class_ids, scores)]

    def keep(self, mask: np.ndarray) -> None:
        self.kalman.keep(mask)
        for name in ("ids", "hits", "misses", "scores", "class_ids"):
            setattr(self, name, getattr(self, name)[mask])
        self.votes = [v for v, k in zip(self.votes, mask) if k]

    def vote(self, rows: np.ndarray, class_ids: np.ndarray, scores: np.ndarray) -> None:
        for row, c, s in zip(rows, class_ids, scores):
            votes = self.votes[row]
            votes[int(c)] = votes.get(int(c), 0.0) + float(s)
            self.class_ids[row] = max(votes, key=votes.get)


def _as_inputs(boxes_xyxy, scores, class_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    scores = np.ones(len(boxes)) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
    classes = (np.zeros(len(boxes), np.int64) if class_ids is None
               else np.asarray(class_ids).reshape(-1).astype(np.int64))
    if not len(scores) == len(classes) == len(boxes):
        raise TrackingError(f"update() got {len(boxes)} boxes, {len(scores)} scores and {len(classes)} class ids")
    return boxes, scores, classes


class Tracker:
    """The base of :class:`~yolo3.tracking.sort.SortTracker` and :class:`~yolo3.tracking.bytetrack.ByteTracker`.

    Args:
        track_buffer: frames (at 30 fps) a lost confirmed track is kept for re-identification.
        frame_rate: the video's frames per second; ``track_buffer`` is scaled by ``frame_rate / 30``.
        min_hits: frames in a row a new track must be matched before it is reported.
        match_thresh: largest matching cost (1 - IoU, times the score with ``fuse_score``) of a pair.
        new_track_thresh: smallest detection score that starts a new track.
        per_class: never match a track with a detection of another class (default: class-agnostic,
            a track keeps the score-weighted majority class of its detections).
        motion_noise: the Kalman filter's noise: ``"scaled"`` (ByteTrack's, proportional to the box size)
            or ``"constant"`` (``trackers``' SORT's; see :mod:`yolo3.tracking.kalman`).
    """

    def __init__(self, track_buffer: int, frame_rate: float, min_hits: int, match_thresh: float,
                 new_track_thresh: float, per_class: bool, motion_noise: str = "scaled"):
        if track_buffer < 0 or min_hits < 1 or not frame_rate > 0:
            raise TrackingError(f"need track_buffer >= 0, min_hits >= 1 and frame_rate > 0, got {track_buffer}, "
                                f"{min_hits} and {frame_rate}")
        if not 0 <= match_thresh <= 1 or not 0 <= new_track_thresh <= 1:
            raise TrackingError(f"match_thresh and new_track_thresh must be in [0, 1], got {match_thresh} "
                                f"and {new_track_thresh}")
        self.track_buffer, self.min_hits = int(track_buffer), int(min_hits)
        self.match_thresh, self.new_track_thresh, self.per_class = match_thresh, new_track_thresh, per_class
        if motion_noise not in NOISE_MODELS:
            raise TrackingError(f"motion_noise must be one of {', '.join(NOISE_MODELS)}, got {motion_noise!r}")
        self.motion_noise = motion_noise
        self.set_frame_rate(frame_rate)
        self.reset()

    def set_frame_rate(self, frame_rate: float) -> None:
        """Scale ``track_buffer`` to a video of ``frame_rate`` frames per second (lost tracks are kept
        ``int(frame_rate / 30 * track_buffer)`` frames)."""
        if not frame_rate > 0:
            raise TrackingError(f"frame_rate must be > 0, got {frame_rate}")
        self.frame_rate = float(frame_rate)
        self.max_lost = int(frame_rate / 30.0 * self.track_buffer)

    def reset(self) -> None:
        """Forget every track; the next confirmed track gets id 1 (a new video)."""
        self._table = _Table(self.motion_noise)
        self._next_id = 1
        self.frame_count = 0
        #: detections dropped so far because their box or score was NaN/inf or the box had no area
        self.dropped = 0

    def update(self, boxes_xyxy: np.ndarray, scores: np.ndarray | None = None,
               class_ids: np.ndarray | None = None) -> Tracks:
        """Track one frame.

        Args:
            boxes_xyxy: (N, 4) detections, xyxy pixels; NaN/inf or zero-area rows are dropped (counted in
                ``dropped``).
            scores: (N,) detection scores in 0..1 (default all 1).
            class_ids: (N,) integer classes (default all 0).

        Returns:
            The confirmed tracks matched this frame (:class:`Tracks`).
        """
        self.frame_count += 1
        boxes, scores, classes, index = self._inputs(boxes_xyxy, scores, class_ids)
        self._predict(boxes)
        rows, cols, unmatched = self._match(boxes, scores, classes)
        self._matched(rows, boxes[cols], scores[cols], classes[cols])
        return self._close(rows, cols, unmatched, boxes, scores, classes, index)

    def _match(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray):
        """(track rows, detection rows, unmatched detection rows) of this frame; each tracker's own."""
        raise NotImplementedError

    def _inputs(self, boxes_xyxy, scores, class_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Valid (boxes, scores, classes) and their indices in the caller's arrays; counts the dropped."""
        boxes, scores, classes = _as_inputs(boxes_xyxy, scores, class_ids)
        ok = valid_boxes(boxes, scores)
        self.dropped += int(len(ok) - ok.sum())
        index = np.flatnonzero(ok)
        return boxes[index], scores[index], classes[index], index

    def _predict(self, boxes: np.ndarray) -> None:
        """Every track one frame ahead (its Kalman prediction), and the IoU of the predicted boxes with this
        frame's detections ``boxes``: what every matching of the frame looks at."""
        self._table.kalman.predict()
        self._iou = iou_xyxy(self._table.kalman.boxes(), boxes)

    def _cost(self, rows: np.ndarray, dets: np.ndarray, scores: np.ndarray | None,
              classes: np.ndarray) -> np.ndarray:
        """(len(rows), len(dets)) cost 1 - IoU of tracks ``rows`` and detections ``dets`` (x the detections'
        ``scores`` when given); inf across classes in per-class mode."""
        iou = self._iou[rows][:, dets]
        if scores is not None:
            iou = iou * scores[dets][None, :]
        cost = 1.0 - iou
        if self.per_class:
            cost[self._table.class_ids[rows][:, None] != classes[dets][None, :]] = np.inf
        return cost

    def _matched(self, rows: np.ndarray, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> None:
        """Kalman-correct the tracks ``rows`` with their matched detections; count the hit."""
        t = self._table
        t.kalman.update(rows, boxes)
        t.hits[rows] = np.where(t.misses[rows] == 0, t.hits[rows] + 1, 1)
        t.misses[rows] = 0
        t.scores[rows] = scores
        t.vote(rows, classes, scores)

    def _close(self, rows: np.ndarray, cols: np.ndarray, unmatched: np.ndarray, boxes: np.ndarray,
               scores: np.ndarray, classes: np.ndarray, index: np.ndarray) -> Tracks:
        """Start tracks from the ``unmatched`` detections scoring ``new_track_thresh`` or more, then
        :meth:`_finish` with the tracks ``rows`` matched to the detections ``cols``."""
        t = self._table
        n_old = len(t)
        start = unmatched[scores[unmatched] >= self.new_track_thresh]
        if len(start):
            t.add(boxes[start], scores[start], classes[start])
        updated = np.zeros(len(t), bool)
        det_rows = np.full(len(t), -1, np.int64)
        updated[rows], det_rows[rows] = True, cols
        updated[n_old:], det_rows[n_old:] = True, start
        return self._finish(updated, det_rows, index)

    def _finish(self, updated: np.ndarray, det_rows: np.ndarray, det_index: np.ndarray) -> Tracks:
        """After matching: age the unmatched, confirm, drop the stale, return the confirmed matched tracks.

        Args:
            updated: (N,) bool, rows matched this frame (new tracks included).
            det_rows: (N,) int, the valid-detection row each updated track took (-1 otherwise).
            det_index: valid-detection row -> index in the caller's arrays.
        """
        t = self._table
        t.misses[~updated] += 1
        t.hits[~updated] = 0
        tentative = t.ids == 0
        confirm = tentative & updated & ((t.hits >= self.min_hits) | (self.frame_count <= self.min_hits))
        t.ids[confirm] = np.arange(self._next_id, self._next_id + int(confirm.sum()))
        self._next_id += int(confirm.sum())
        alive = np.where(t.ids == 0, t.misses == 0, t.misses <= self.max_lost)
        report = np.flatnonzero(updated & (t.ids > 0))
        report = report[np.argsort(t.ids[report])]
        tracks = Tracks(boxes=t.kalman.boxes(report), ids=t.ids[report], scores=t.scores[report],
                        class_ids=t.class_ids[report], detection_index=det_index[det_rows[report]])
        if not alive.all():
            t.keep(alive)
        return tracks


def others(n: int, taken: np.ndarray) -> np.ndarray:
    """The indices 0..n-1 not in ``taken`` (ascending)."""
    free = np.ones(n, bool)
    free[taken] = False
    return np.flatnonzero(free)
