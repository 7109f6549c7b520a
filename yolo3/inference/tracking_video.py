"""Tracking in the video loop: a tracker per video, track ids drawn on the boxes in one colour per id,
trails, counting lines, ``track_id`` in the JSON records and MOTChallenge lines.

:class:`TrackingDetector` wraps a detector for :func:`yolo3.inference.video.process_video`: its
``detect`` tracks each frame right after detecting it (frames arrive in order), and hands on
:class:`TrackedDetections` that carry the frame's tracks and a snapshot of the trails and counts, so
drawing and JSON records in the writer thread show that frame's state. :class:`VideoTracking` holds
what one video needs; :func:`track_video` resets it first, so each video's ids start at 1.
"""
from __future__ import annotations

import colorsys
import os
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..core.detections import Detections
from ..tracking import Tracker, Tracks
from ..tracking.counting import LineCounter
from ..tracking.mot import mot_lines
from .drawing import draw_detections, text_color_for
from .video import VideoStats, open_capture, parse_source, process_video, source_fps

__all__ = ["VideoTracking", "TrackedDetections", "TrackingDetector", "track_video", "draw_tracks", "id_color"]


def id_color(track_id: int) -> tuple[int, int, int]:
    """A saturated RGB colour (0..255) for a track id; neighbouring ids differ (golden-ratio hues)."""
    r, g, b = colorsys.hsv_to_rgb((track_id * 0.618033988749895) % 1.0, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


@dataclass
class TrackedDetections(Detections):
    """A frame's detections with what tracking made of them: ``tracks`` (confirmed, matched this frame),
    ``trails`` (track id -> centre points, oldest first, pixels) and ``totals`` (per counting line,
    ``{"in": n, "out": m}`` after this frame)."""

    tracks: Tracks | None = None
    trails: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    totals: list[dict[str, int]] = field(default_factory=list)
    min_score: float = 0.0

    def to_list(self, class_names) -> list[dict]:
        """As :meth:`Detections.to_list`, each with ``track_id`` (None where no confirmed track took the
        detection); detections below ``min_score`` (kept for the tracker alone) only where a track took them."""
        ids = {} if self.tracks is None else dict(zip(self.tracks.detection_index.tolist(), self.tracks.ids.tolist()))
        items = super().to_list(class_names)
        return [{**item, "track_id": ids.get(i)} for i, item in enumerate(items)
                if i in ids or float(self.scores[i]) >= self.min_score]


class VideoTracking:
    """What tracking one video needs: the tracker, its counting lines, trails and MOTChallenge lines.

    Args:
        tracker: a :class:`~yolo3.tracking.base.Tracker` (its ``reset`` starts each video).
        trails: points of each track's trail to keep and draw (0: none).
        lines: counting lines, each (x1, y1, x2, y2) in frame pixels.
        min_score: detections below this (kept only for the tracker, e.g. ByteTrack's low scores) go into
            the JSON records only where a track took them.
    """

    def __init__(self, tracker: Tracker, trails: int = 0, lines: list[tuple[float, float, float, float]] | None = None,
                 min_score: float = 0.0):
        self.tracker, self.trails, self.min_score = tracker, trails, min_score
        self.counters = [LineCounter(line) for line in lines or []]
        self.reset()

    def reset(self) -> None:
        """A new video: ids from 1 again, counts and trails emptied, no MOTChallenge lines."""
        self.tracker.reset()
        for counter in self.counters:
            counter.reset()
        self.history: dict[int, deque] = {}
        self.mot: list[str] = []
        self.frames = 0

    def step(self, detections: Detections) -> TrackedDetections:
        """Track the next frame; updates counts, trails and the MOTChallenge lines (1-based frames)."""
        tracks = self.tracker.update(detections.boxes, detections.scores, detections.class_ids)
        self.frames += 1
        for counter in self.counters:
            counter.update(tracks)
        trails = {}
        if self.trails:
            centres = (tracks.boxes[:, :2] + tracks.boxes[:, 2:]) / 2
            for ident, (x, y) in zip(tracks.ids.tolist(), centres.tolist()):
                points = self.history.setdefault(ident, deque(maxlen=self.trails))
                points.append((int(x), int(y)))
                trails[ident] = list(points)
        self.mot += mot_lines(self.frames, tracks)
        return TrackedDetections(detections.boxes, detections.scores, detections.class_ids, tracks=tracks,
                                 trails=trails, totals=[c.totals() for c in self.counters], min_score=self.min_score)

    def count_lines(self, class_names: list[str]) -> list[str]:
        """One text line per counting line and class: ``line 1 (x1,y1,x2,y2) person: in 3, out 1``."""
        lines = []
        for n, counter in enumerate(self.counters, 1):
            where = ",".join(f"{v:g}" for v in counter.line)
            classes = sorted({c for c, _ in counter.counts})
            if not classes:
                lines.append(f"line {n} ({where}): in 0, out 0")
            for c in classes:
                lines.append(f"line {n} ({where}) {_name(class_names, c)}: in {counter.counts[(c, 'in')]}, "
                             f"out {counter.counts[(c, 'out')]}")
        return lines


def _name(class_names: list[str], class_id: int) -> str:
    return class_names[class_id] if 0 <= class_id < len(class_names) else str(class_id)


def draw_tracks(image: np.ndarray, tracked: TrackedDetections, class_names: list[str],
                lines: list[tuple[float, float, float, float]] = ()) -> np.ndarray:
    """A copy of the uint8 RGB ``image`` with the frame's tracks (``#id class score``, one colour an id),
    their trails, and the counting ``lines`` with the frame's counts."""
    tracks = tracked.tracks
    names = [f"#{i} {_name(class_names, c)}" for i, c in zip(tracks.ids.tolist(), tracks.class_ids.tolist())]
    colors = [id_color(i) for i in tracks.ids.tolist()]
    out = draw_detections(image, tracks.boxes, tracks.scores, np.arange(len(tracks)), names, colors or None)
    thickness = max(1, int(round(sum(out.shape[:2]) / 600)))
    for ident, points in tracked.trails.items():
        if len(points) > 1:
            cv2.polylines(out, [np.array(points, np.int32)], False, id_color(ident), thickness, cv2.LINE_AA)
    for line, totals in zip(lines, tracked.totals):
        _draw_line(out, line, totals, thickness)
    return out


def _draw_line(out: np.ndarray, line, totals: dict[str, int], thickness: int) -> None:
    x1, y1, x2, y2 = (int(round(v)) for v in line)
    color = (255, 255, 0)
    cv2.line(out, (x1, y1), (x2, y2), color, thickness + 1, cv2.LINE_AA)
    label = f"in {totals['in']}  out {totals['out']}"
    scale = max(0.5, sum(out.shape[:2]) / 1800)
    (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    top = max(y1 - th - base - 4, 0)
    cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + base + 4), color, -1)
    cv2.putText(out, label, (x1 + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, text_color_for(color),
                thickness, cv2.LINE_AA)


class TrackingDetector:
    """A detector for :func:`~yolo3.inference.video.process_video` that tracks what it detects.

    Args:
        detector: the :class:`~yolo3.inference.detector.Detector` (anything with ``detect`` and
            ``class_names``).
        tracking: the video's :class:`VideoTracking`.
    """

    def __init__(self, detector, tracking: VideoTracking):
        self.detector, self.tracking = detector, tracking
        self.class_names = list(detector.class_names)

    def detect(self, images, **kwargs) -> list[TrackedDetections]:
        """Detect a batch of frames (in video order) and track each."""
        return [self.tracking.step(d) for d in self.detector.detect(images, **kwargs)]

    def draw(self, image: np.ndarray, detections: TrackedDetections) -> np.ndarray:
        """The frame with its tracks, trails and counting lines drawn (see :func:`draw_tracks`)."""
        return draw_tracks(image, detections, self.class_names, [c.line for c in self.tracking.counters])


def track_video(detector, source: str | int, tracking: VideoTracking, **options) -> VideoStats:
    """Detect and track every frame of one video (file, URL, webcam index or folder of frames); ids start at 1.

    Args:
        detector: a :class:`~yolo3.inference.detector.Detector`.
        source: what :func:`~yolo3.inference.video.process_video` accepts.
        tracking: the tracking state, reset first; its tracker's frame rate is set to a video file's.
        **options: :func:`~yolo3.inference.video.process_video`'s keyword arguments (``output``, ``records`` ...).
    """
    tracking.reset()
    src = parse_source(source)
    if isinstance(src, str) and "://" not in src and os.path.isfile(src):  # not for cameras and streams
        capture = open_capture(src)
        tracking.tracker.set_frame_rate(source_fps(capture))
        capture.release()
    return process_video(TrackingDetector(detector, tracking), source, **options)
