"""A folder of pictures read in name order as a video (``yolo_video.py --input FOLDER``)."""
from __future__ import annotations

import os

import cv2
import numpy as np

__all__ = ["FrameFolder", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class FrameFolder:
    """A folder of pictures read in name order as a video, with the few ``cv2.VideoCapture`` methods the
    video loop uses (``read``, ``get``, ``isOpened``, ``release``); 30 fps, the first picture's size."""

    def __init__(self, folder: str):
        self.files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                            if f.lower().endswith(IMAGE_EXTENSIONS))
        self.index = 0
        first = cv2.imread(self.files[0]) if self.files else None
        self.size = (first.shape[1], first.shape[0]) if first is not None else (0, 0)

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoCapture's name
        return bool(self.files)

    def read(self) -> tuple[bool, np.ndarray | None]:
        while self.index < len(self.files):
            frame = cv2.imread(self.files[self.index])
            self.index += 1
            if frame is not None:
                return True, frame
        return False, None

    def get(self, prop: int) -> float:
        values = {cv2.CAP_PROP_FPS: 30.0, cv2.CAP_PROP_FRAME_COUNT: float(len(self.files)),
                  cv2.CAP_PROP_FRAME_WIDTH: float(self.size[0]), cv2.CAP_PROP_FRAME_HEIGHT: float(self.size[1])}
        return values.get(prop, 0.0)

    def release(self) -> None:
        self.index = len(self.files)
