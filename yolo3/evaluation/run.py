"""Running a detector over an annotated image set."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .metrics import DetectionsLike

__all__ = ["detect_annotated_images"]


def detect_annotated_images(
    detector: Any,
    paths: Sequence[str],
    batch_size: int = 8,
    progress: bool = True,
    read_image: Callable[[str], np.ndarray] | None = None,
) -> tuple[list[DetectionsLike], list[tuple[int, int]]]:
    """Run ``detector.detect`` over images in batches (tqdm bar); returns detections and (width, height) sizes.

    ``read_image`` defaults to :func:`yolo3.datasets.imageio.read_image_rgb` (uint8 RGB); its errors propagate.
    """
    if read_image is None:
        from ..datasets.imageio import read_image_rgb as read_image
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(paths), desc="detecting", unit="img", disable=None)  # no bar when not a terminal
    dets: list[DetectionsLike] = []
    sizes: list[tuple[int, int]] = []
    try:
        for start in range(0, len(paths), batch_size):
            images = [read_image(p) for p in paths[start:start + batch_size]]
            sizes.extend((im.shape[1], im.shape[0]) for im in images)
            dets.extend(detector.detect(images))
            if bar is not None:
                bar.update(len(images))
    finally:
        if bar is not None:
            bar.close()
    return dets, sizes
