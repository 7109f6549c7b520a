"""The :class:`Detections` of one picture; packing pictures into a batch and cutting padded batch results
into Detections."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = ["Detections", "PAD_MULTIPLE", "EXACT_AFTER", "padded_size", "check_images", "stack_images", "detect_images",
           "split_detections", "BatchDetector"]


#: batches are zero-padded to multiples of this many pixels, so the XLA-compiled letterbox
#: compiles once per size bucket instead of once per picture size
PAD_MULTIPLE = 128

#: a picture size that has come this many times to one detector is no longer padded: its exact
#: letterbox compiles once (about 150 ms on 2 cores) and each later call saves the padding (0.5-0.8 ms)
EXACT_AFTER = 32


@dataclass
class Detections:
    """Detections of one image, sorted by score, best first; one box may appear under several classes.

    Args:
        boxes: float32 (N, 4) x1, y1, x2, y2 in original-image pixels (not clipped).
        scores: float32 (N,) objectness x class probability.
        class_ids: int64 (N,) class indices.
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def to_list(self, class_names: Sequence[str]) -> list[dict]:
        """JSON-ready ``[{"class_id", "class", "score", "box": [x1, y1, x2, y2]}, ...]``.

        Args:
            class_names: names indexed by class id; an id outside them is written as its number.

        Returns:
            One dict a detection, best first; ``box`` in original-image pixels.
        """
        return [{"class_id": int(c),
                 "class": class_names[int(c)] if 0 <= int(c) < len(class_names) else str(int(c)),
                 "score": float(s),
                 "box": [float(v) for v in b]}
                for b, s, c in zip(self.boxes, self.scores, self.class_ids)]

    def record(self, image_key, image_shape: Sequence[int], class_names: Sequence[str]) -> dict:
        """The native JSON record of one picture or frame: ``{"image": image_key, "width", "height",
        "detections": [...]}``.

        Args:
            image_key: what identifies the picture or frame (a file name, a frame index), stored as is.
            image_shape: the picture's (height, width, ...) in pixels.
            class_names: names indexed by class id (see :meth:`to_list`).
        """
        return {"image": image_key, "width": int(image_shape[1]), "height": int(image_shape[0]),
                "detections": self.to_list(class_names)}


def padded_size(size: Sequence[int], multiple: int) -> tuple[int, int]:
    """(height, width) in pixels rounded up to a ``multiple`` (at least 1): the batch size
    :func:`stack_images` pads a picture of that size to."""
    multiple = max(int(multiple), 1)
    return -(-int(size[0]) // multiple) * multiple, -(-int(size[1]) // multiple) * multiple


def check_images(images: Sequence[np.ndarray]) -> None:
    """Raise ValueError unless ``images`` is a non-empty sequence of uint8 (H, W, 3) arrays."""
    if len(images) == 0:
        raise ValueError("no images to stack")
    for im in images:
        if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            raise ValueError(f"expected uint8 (H, W, 3) RGB images, got {im.dtype} {im.shape}")


def stack_images(images: Sequence[np.ndarray], multiple: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pack uint8 (H_i, W_i, 3) images into one zero-padded (B, H, W, 3) array plus int32 (B, 2)
    sizes (height, width), the input of :func:`yolo3.ops.letterbox.letterbox`.

    H and W are the largest height and width rounded up to a ``multiple``: with XLA, each distinct
    batch shape compiles once, so rounding keeps the number of compilations small for folders of
    pictures of many sizes.

    Args:
        images: uint8 (H_i, W_i, 3) RGB pictures.
        multiple: round the batch height and width up to a multiple of this.

    Raises:
        ValueError: no images, or one that is not uint8 (H, W, 3).
    """
    check_images(images)
    sizes = np.array([im.shape[:2] for im in images], np.int32)
    height, width = padded_size(sizes.max(axis=0), multiple)
    if (sizes == (height, width)).all():
        return (images[0][None] if len(images) == 1 else np.stack(images)), sizes
    batch = np.zeros((len(images), height, width, 3), np.uint8)
    for b, im in enumerate(images):
        batch[b, :im.shape[0], :im.shape[1]] = im
    return batch, sizes


def detect_images(run_batch, images: Sequence[np.ndarray], pad_multiple: int = PAD_MULTIPLE) -> list[Detections]:
    """Stack uint8 (H, W, 3) RGB ``images`` of any sizes into one zero-padded batch, run
    ``run_batch(batch, sizes)`` (padded NMS results: boxes (B, K, 4), scores (B, K), class_ids
    (B, K), count (B,)) and cut it into one :class:`Detections` an image.

    Args:
        run_batch: a runtime's batch function (e.g. :meth:`yolo3.inference.detector.Detector.run_batch`).
        images: uint8 (H, W, 3) RGB pictures of any sizes.
        pad_multiple: see :data:`PAD_MULTIPLE`.
    """
    if len(images) == 0:
        return []
    batch, sizes = stack_images([np.asarray(im) for im in images], multiple=pad_multiple)
    return split_detections(*run_batch(batch, sizes))


def split_detections(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray,
                     count: np.ndarray) -> list[Detections]:
    """Padded NMS results (boxes (B, K, 4), scores (B, K), class_ids (B, K), count (B,)) cut into one
    :class:`Detections` an image."""
    return [Detections(boxes[b, :n].astype(np.float32), scores[b, :n].astype(np.float32),
                       class_ids[b, :n].astype(np.int64))
            for b, n in enumerate(np.asarray(count).astype(int))]


class BatchDetector:
    """What every runtime's detector shares: :meth:`detect` and :meth:`detect_one` on pictures of any
    sizes, given the runtime's ``run_batch(batch, sizes)`` (zero-padded uint8 (B, H, W, 3) and int32
    (B, 2) -> padded numpy NMS results: boxes (B, K, 4) picture pixels, scores (B, K), class ids (B, K),
    counts (B,)). Subclasses: :class:`yolo3.inference.detector.Detector`,
    :class:`yolo3.backends.tflite.TFLiteDetector`."""

    def run_batch(self, batch: np.ndarray, sizes: np.ndarray):  # pragma: no cover - abstract
        raise NotImplementedError

    def detect(self, images: Sequence[np.ndarray], pad_multiple: int | None = None) -> list[Detections]:
        """Detect on uint8 (H, W, 3) RGB pictures (sizes may differ), all in one batch.

        Args:
            images: the pictures.
            pad_multiple: pad the batch to a multiple of this many pixels; default
                :meth:`pad_multiple_for` (:data:`PAD_MULTIPLE`, or none for sizes that keep coming).

        Returns:
            One :class:`Detections` a picture, boxes x1, y1, x2, y2 in its pixels.
        """
        return detect_images(self.run_batch, images, self.pad_multiple_for(images, pad_multiple))

    def pad_multiple_for(self, images: Sequence[np.ndarray], pad_multiple: int | None = None) -> int:
        """The padding multiple for a batch of ``images``: ``pad_multiple`` when given; else 1 (no
        padding) when every picture's (height, width) has already come :data:`EXACT_AFTER` times to
        this detector, as the frames of a camera do, else :data:`PAD_MULTIPLE` (one compilation per
        size bucket for folders of pictures of many sizes). Counts the sizes of ``images``."""
        if pad_multiple is not None:
            return int(pad_multiple)
        counts = getattr(self, "_size_counts", None)
        if counts is None:
            counts = self._size_counts = {}
        keys = [tuple(np.shape(im)[:2]) for im in images]
        settled = all(counts.get(k, 0) >= EXACT_AFTER for k in keys)
        for k in keys:
            if k in counts or len(counts) < 4096:  # bounded: a folder of endless sizes stays padded
                counts[k] = counts.get(k, 0) + 1
        return 1 if settled else PAD_MULTIPLE

    def detect_one(self, image: np.ndarray) -> Detections:
        """:meth:`detect` on one uint8 (H, W, 3) RGB picture.

        Args:
            image: uint8 (H, W, 3) RGB picture.

        Returns:
            Its :class:`Detections`, boxes in its pixels.
        """
        return self.detect([image])[0]
