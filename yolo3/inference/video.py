"""Video input/output and the overlapped read -> detect -> draw/write loop used for videos and folders.

Sources: a video file, a stream URL, or a webcam index (``"0"`` opens camera 0 as an integer, which
is what OpenCV needs). Frames are converted BGR -> RGB before they reach the model. Output video
codec follows the extension: ``.mp4``/``.m4v``/``.mov`` -> mp4v, ``.avi``/``.mkv`` -> MJPG (the codecs
the pip OpenCV wheels can write; avc1 cannot). Output keeps the source's frame rate and size.

:func:`pipelined_detect` keeps three things busy at once: a reader thread (decoding, colour
conversion, batching), the detector in the calling thread, and a writer thread (drawing, encoding,
JSON records). OpenCV and TensorFlow release the GIL, so reading and writing overlap inference.
"""
from __future__ import annotations

import math
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import cv2
import numpy as np
from tqdm import tqdm

from ..core.files import refuse_overwriting, temporary_sibling
from ..errors import Yolo3Error
from .frame_folder import FrameFolder

__all__ = ["VideoOpenError", "parse_source", "open_capture", "fourcc_for", "open_writer", "VideoStats",
           "pipelined_detect", "process_video", "can_display", "DEFAULT_FPS"]


#: frame rate written when the source reports none (webcams, some streams)
DEFAULT_FPS = 30.0


_FOURCC_BY_EXTENSION = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class VideoOpenError(Yolo3Error, OSError):
    """A video source or output that OpenCV cannot open; ``str()`` is one line for the user."""


def parse_source(source: str | int) -> str | int:
    """A webcam index ("0", "1", ...) as an int, anything else (file, URL) unchanged.

    Args:
        source: what the user gave: a webcam index (int or digits), a video file or a stream URL.

    Returns:
        The int index, or the stripped text.
    """
    if isinstance(source, int):
        return source
    text = str(source).strip()
    return int(text) if text.isdigit() else text


def open_capture(source: str | int) -> cv2.VideoCapture:
    """Open a video file, stream URL, webcam index or folder of frames (read in name order).

    Args:
        source: a video file, stream URL (``scheme://...``), webcam index (see :func:`parse_source`) or a
            folder of pictures (:class:`~yolo3.inference.frame_folder.FrameFolder`).

    Returns:
        The opened capture (the caller releases it).

    Raises:
        VideoOpenError: the file does not exist, or OpenCV cannot open the source.
    """
    src = parse_source(source)
    if isinstance(src, str) and "://" not in src and not os.path.exists(src):
        raise VideoOpenError(f"video file not found: {src}")
    capture = FrameFolder(src) if isinstance(src, str) and os.path.isdir(src) else cv2.VideoCapture(src)
    if not capture.isOpened():
        capture.release()
        what = f"camera {src}" if isinstance(src, int) else f"{src} (no pictures)" if os.path.isdir(src) else src
        raise VideoOpenError(f"cannot open video source {what}")
    return capture


def fourcc_for(path: str) -> str:
    """The FourCC OpenCV can write for this output extension.

    Args:
        path: the output video file; only its extension (case-insensitive) counts.

    Returns:
        The four-character code, e.g. ``"mp4v"`` for ``.mp4``, ``"MJPG"`` for ``.avi``.

    Raises:
        ValueError: an extension other than .mp4, .m4v, .mov, .avi, .mkv.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in _FOURCC_BY_EXTENSION:
        raise ValueError(f"unsupported video output extension {ext or '(none)'!r} for {path}; "
                         f"use one of {', '.join(sorted(_FOURCC_BY_EXTENSION))}")
    return _FOURCC_BY_EXTENSION[ext]


def source_fps(capture: cv2.VideoCapture) -> float:
    fps = capture.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and math.isfinite(fps) and 0 < fps <= 1000 else DEFAULT_FPS


def open_writer(path: str, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """A VideoWriter for ``path`` at ``fps`` with frame ``size`` (width, height).

    Args:
        path: the output video file (its extension picks the codec, see :func:`fourcc_for`).
        fps: frames per second written into the file.
        size: frame (width, height) in pixels.

    Returns:
        The opened writer (the caller releases it).

    Raises:
        VideoOpenError: an unsupported extension, a missing output folder, or a file OpenCV cannot write.
    """
    try:
        code = fourcc_for(path)
    except ValueError as exc:
        raise VideoOpenError(str(exc)) from None
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise VideoOpenError(f"output folder does not exist: {folder}")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*code), fps, size)
    if not writer.isOpened():
        raise VideoOpenError(f"cannot write video {path} with codec {code}")
    return writer


_END = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class _Pipeline:
    """The queues and the reader/writer threads of one :func:`pipelined_detect` call."""

    def __init__(self, items: Iterable[tuple[Any, np.ndarray]], handle: Callable[[Any, np.ndarray, Any], None],
                 batch_size: int, on_batch: Callable[[int], None] | None, queue_batches: int):
        self.items, self.handle, self.on_batch = items, handle, on_batch
        self.batch_size = max(int(batch_size), 1)
        self.stop = threading.Event()
        self.inbox: queue.Queue = queue.Queue(maxsize=queue_batches)
        self.outbox: queue.Queue = queue.Queue(maxsize=queue_batches)
        self.handled = 0
        self.writer_error: list[BaseException] = []

    def read(self) -> None:
        """Reader thread: batches of (key, image) into the inbox, then _END (or the failure)."""
        batch: list = []
        try:
            for key, image in self.items:
                if self.stop.is_set():
                    return
                batch.append((key, image))
                if len(batch) == self.batch_size:
                    if not _put(self.inbox, batch, self.stop):
                        return
                    batch = []
            if batch:
                _put(self.inbox, batch, self.stop)
            _put(self.inbox, _END, self.stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            _put(self.inbox, _Failure(exc), self.stop)

    def write(self) -> None:
        """Writer thread: ``handle`` every detected image in order until _END or a handler error."""
        while True:
            item = self.outbox.get()
            if item is _END:
                return
            batch, detections = item
            try:
                for (key, image), det in zip(batch, detections):
                    self.handle(key, image, det)
                    self.handled += 1
                if self.on_batch is not None:
                    self.on_batch(len(batch))
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                self.writer_error.append(exc)
                self.stop.set()
                return

    def detect(self, detector, kwargs: dict) -> BaseException | None:
        """Calling thread: detect every batch of the inbox; returns the failure that ended it, if any."""
        try:
            while not self.stop.is_set():
                try:
                    item = self.inbox.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is _END:
                    return None
                if isinstance(item, _Failure):
                    return item.exc
                detections = detector.detect([image for _, image in item], **kwargs)
                if not _put(self.outbox, (item, detections), self.stop):
                    return None
        except BaseException as exc:  # KeyboardInterrupt included: finish what was detected
            return exc
        return None

    def finish(self, reader: threading.Thread, writer: threading.Thread) -> None:
        """Stop the reader; let the writer drain what was queued."""
        self.stop.set()
        while True:
            try:
                self.outbox.put(_END, timeout=0.1)
                break
            except queue.Full:
                if not writer.is_alive():
                    break
        writer.join()
        reader.join(timeout=5)


def pipelined_detect(detector, items: Iterable[tuple[Any, np.ndarray]],
                     handle: Callable[[Any, np.ndarray, Any], None], batch_size: int = 1,
                     pad_multiple: int | None = None, on_batch: Callable[[int], None] | None = None,
                     queue_batches: int = 2) -> int:
    """Detect on ``items`` in batches and call ``handle(key, image, detections)`` for each, in order, in a
    writer thread; returns the number of images handled.

    Exceptions from the reader or the handler stop the loop and are re-raised here; so is
    KeyboardInterrupt, after the frames already detected have been handled.

    Args:
        detector: anything with ``detect(list of uint8 RGB images, [pad_multiple=]) -> list``.
        items: (key, uint8 RGB image) pairs, produced in a reader thread.
        handle: called with (key, image, detections) for each image, in order.
        batch_size: images a ``detect`` call.
        pad_multiple: passed on to ``detector.detect`` when given.
        on_batch: called with the batch length after each handled batch (progress bars).
        queue_batches: batches waiting at most between the threads.
    """
    pipeline = _Pipeline(items, handle, batch_size, on_batch, queue_batches)
    reader = threading.Thread(target=pipeline.read, name="yolo3-reader", daemon=True)
    writer = threading.Thread(target=pipeline.write, name="yolo3-writer", daemon=True)
    reader.start()
    writer.start()
    try:
        failure = pipeline.detect(detector, {} if pad_multiple is None else {"pad_multiple": pad_multiple})
    finally:
        pipeline.finish(reader, writer)
    if pipeline.writer_error:
        raise pipeline.writer_error[0]
    if failure is not None:
        raise failure
    return pipeline.handled


@dataclass
class VideoStats:
    """What :func:`process_video` did: ``frames`` handled, wall ``seconds``, ``fps`` of the whole
    loop, the source's frame rate ``source_fps``, frame ``size`` (width, height) and the video file
    ``written`` (None when no frame was written)."""

    frames: int
    seconds: float
    fps: float
    source_fps: float
    size: tuple[int, int]
    written: str | None = None


class _VideoOutput:
    """The output video, written to a hidden temporary file beside it and moved into place by
    :meth:`close` only if frames were written and the run ended well (or was interrupted)."""

    def __init__(self, path: str | None, fps: float):
        self.path, self.fps = path, fps
        self.tmp: str | None = None
        self.writer = None
        self.frames = 0

    def write(self, bgr: np.ndarray) -> None:
        if self.writer is None:
            h, w = bgr.shape[:2]
            self.tmp = temporary_sibling(self.path)
            self.writer = open_writer(self.tmp, self.fps, (w, h))
        self.writer.write(bgr)
        self.frames += 1

    def close(self, keep: bool) -> str | None:
        if self.writer is not None:
            self.writer.release()
        if self.tmp is None:
            return None
        if keep and self.frames:
            os.replace(self.tmp, self.path)
            return self.path
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)
        return None


def _frames(capture: cv2.VideoCapture, max_frames: int | None) -> Iterator[tuple[int, np.ndarray]]:
    index = 0
    decoded = None  # OpenCV decodes into the previous frame's array (the RGB copy below is what leaves)
    while max_frames is None or index < max_frames:
        ok, frame = capture.read(decoded) if decoded is not None else capture.read()
        decoded = frame if isinstance(capture, cv2.VideoCapture) else None
        if not ok or frame is None:
            return
        if frame.ndim == 2:
            rgb = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        elif frame.shape[2] == 4:
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
        else:
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        yield index, rgb
        index += 1


def can_display() -> bool:
    """Whether OpenCV can open a window here (not with opencv-python-headless or without a display)."""
    try:
        cv2.namedWindow("yolo3")
        return True
    except cv2.error:
        return False


def process_video(detector, source: str | int, output: str | None = None, batch_size: int = 1,
                  records: list | None = None, show: bool = False, progress: bool = True,
                  max_frames: int | None = None, draw: bool | None = None) -> VideoStats:
    """Detect on every frame of ``source`` (file, URL or webcam index) until the stream ends.

    Args:
        detector: a :class:`yolo3.inference.detector.Detector` (or anything with its ``detect``,
            ``draw`` and ``class_names``).
        source: a video file, stream URL or webcam index (see :func:`parse_source`).
        output: video file to write with the detections drawn (same fps and size as the source).
        batch_size: frames detected together in one batch.
        records: a list that receives one ``{"image": frame index, "width", "height",
            "detections": [...]}`` dict per frame (boxes in frame pixels).
        show: display a window (only if OpenCV has a GUI; otherwise a warning); ``q`` stops.
        progress: show a tqdm progress bar.
        max_frames: stop after that many frames (default: until the stream ends).
        draw: draw the detections on the frames; default only when they are written or shown.

    Returns:
        A :class:`VideoStats` of the run.

    Raises:
        VideoOpenError: the source or output cannot be opened.
        ValueError: ``output`` has an unsupported extension (see :func:`fourcc_for`).
    """

    capture = open_capture(source)
    fps = source_fps(capture)
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    if total <= 0 or isinstance(parse_source(source), int):
        total = None
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if output:
        fourcc_for(output)  # fail before reading a frame
        refuse_overwriting(output, [source] if isinstance(parse_source(source), str) else [], "output video")
    if show and not can_display():
        print("warning: --show ignored: this OpenCV build has no display support "
              "(opencv-python-headless) or no display is available", flush=True)
        show = False
    draw = bool(output or show) if draw is None else draw
    state: dict[str, Any] = {"size": (width, height)}
    video_out = _VideoOutput(output, fps)
    bar = tqdm(total=total, unit="frame", desc="video", disable=not progress, dynamic_ncols=True)
    def handle(index: int, image: np.ndarray, det) -> None:
        h, w = image.shape[:2]
        state["size"] = (w, h)
        if records is not None:
            records.append(det.record(index, image.shape, detector.class_names))
        if not draw:
            return
        drawn = detector.draw(image, det)  # a copy of its own: converted to BGR in place
        drawn = cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR, dst=drawn)
        if output:
            video_out.write(drawn)
        if show:
            cv2.imshow("yolo3", drawn)
            if cv2.waitKey(1) & 0xFF == ord("q"):
                raise KeyboardInterrupt

    start = time.perf_counter()
    frames, keep = 0, False
    try:
        frames = pipelined_detect(detector, _frames(capture, max_frames), handle, batch_size=batch_size,
                                  pad_multiple=1, on_batch=bar.update)
        keep = True
    except KeyboardInterrupt:  # the frames written so far are kept, as a stopped recording
        keep = True
        raise
    finally:
        seconds = time.perf_counter() - start
        bar.close()
        capture.release()
        written = video_out.close(keep=keep)
        if show:
            cv2.destroyAllWindows()
    return VideoStats(frames=frames, seconds=seconds, fps=frames / seconds if seconds > 0 else 0.0,
                      source_fps=fps, size=state["size"], written=written)
