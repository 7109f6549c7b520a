"""The :class:`Detections` of one picture, and cutting padded batch results into them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = ["Detections", "detect_images"]


#: batches are zero-padded to multiples of this many pixels, so the XLA-compiled letterbox
#: compiles once per size bucket instead of once per picture size
PAD_MULTIPLE = 128


@dataclass
class Detections:
    """Detections of one image: ``boxes`` float32 (N, 4) x1, y1, x2, y2 in original-image pixels
    (not clipped), ``scores`` float32 (N,) objectness x class probability, ``class_ids`` int64 (N,).
    Sorted by score, best first; one box may appear under several classes."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def to_list(self, class_names: Sequence[str]) -> list[dict]:
        """JSON-ready ``[{"class_id", "class", "score", "box": [x1, y1, x2, y2]}, ...]``."""
        return [{"class_id": int(c),
                 "class": class_names[int(c)] if 0 <= int(c) < len(class_names) else str(int(c)),
                 "score": float(s),
                 "box": [float(v) for v in b]}
                for b, s, c in zip(self.boxes, self.scores, self.class_ids)]

    def record(self, image_key, image_shape: Sequence[int], class_names: Sequence[str]) -> dict:
        """The native JSON record of one picture or frame: ``{"image": image_key, "width", "height",
        "detections": [...]}`` (``image_shape``: the picture's (height, width, ...))."""
        return {"image": image_key, "width": int(image_shape[1]), "height": int(image_shape[0]),
                "detections": self.to_list(class_names)}


def detect_images(run_batch, images: Sequence[np.ndarray], pad_multiple: int = PAD_MULTIPLE) -> list[Detections]:
    """Stack uint8 (H, W, 3) RGB ``images`` of any sizes into one zero-padded batch, run
    ``run_batch(batch, sizes)`` (padded NMS results: boxes (B, K, 4), scores (B, K), class_ids
    (B, K), count (B,)) and cut it into one :class:`Detections` an image."""
    from ..ops.letterbox import stack_images

    if len(images) == 0:
        return []
    batch, sizes = stack_images([np.asarray(im) for im in images], multiple=pad_multiple)
    boxes, scores, class_ids, count = run_batch(batch, sizes)
    return [Detections(boxes[b, :n].astype(np.float32), scores[b, :n].astype(np.float32),
                       class_ids[b, :n].astype(np.int64))
            for b, n in enumerate(count.astype(int))]
