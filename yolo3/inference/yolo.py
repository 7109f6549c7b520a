"""keras-yolo3's ``YOLO`` class, on top of :class:`yolo3.inference.detector.Detector`."""
from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from ..core.detections import Detections
from ..datasets.imageio import pil_to_rgb_array
from ..resources import resolve_data_path
from .detector import Detector
from .video import can_display, process_video

__all__ = ["YOLO", "detect_video"]


def _default_path(relative: str) -> str:
    """``relative`` if it exists from the working directory, else next to the project's scripts
    (a checkout), else the bundled copy of a ``model_data/`` resource."""
    if os.path.exists(relative):
        return relative
    candidate = Path(__file__).resolve().parents[2] / relative
    return str(candidate) if candidate.exists() else resolve_data_path(relative)


class YOLO:
    """keras-yolo3's ``YOLO`` class on top of :class:`Detector`.

    ``YOLO(model_path=..., anchors_path=..., classes_path=..., score=..., iou=...,
    model_image_size=(416, 416), gpu_num=1)``; ``detect_image(PIL.Image) -> PIL.Image`` with the
    detections drawn (also kept in ``last_detections``); ``close_session()`` frees nothing and is
    kept for compatibility. Options are keyword-only; every option (given or default) also becomes an attribute.

    Args:
        model_path: the model file (default ``model_data/yolov3-tiny.keras``), or a loaded Keras model.
        anchors_path: optional anchors file, checked against the model's anchors.
        classes_path: class-name file, one a line (default ``model_data/coco_classes.txt``, the bundled
            copy where that path does not exist).
        score: score threshold (objectness x class probability), default 0.25.
        iou: per-class NMS IoU threshold, default 0.45.
        model_image_size: network input (height, width), multiples of 32; default the model's.
        gpu_num: accepted for keras-yolo3 compatibility and not used.
        max_boxes: detections kept per image, default 100.
        backend: ``"tf"`` (default) or ``"onnxruntime"``.

    Other keywords (``YOLO(**vars(FLAGS))`` passes keras-yolo3's ``image``, ``input``, ``output`` and
    any flag a user added) become attributes and are otherwise ignored, as in keras-yolo3.

    Raises:
        DetectorError: a bad setting, or files that do not match the model (see :class:`Detector`).
    """

    _defaults = {
        "model_path": "model_data/yolov3-tiny.keras",
        "anchors_path": None,
        "classes_path": "model_data/coco_classes.txt",
        "score": 0.25,
        "iou": 0.45,
        "model_image_size": None,
        "gpu_num": 1,
        "max_boxes": 100,
        "backend": "tf",
    }

    @classmethod
    def get_defaults(cls, name: str):
        """The default of one option, as keras-yolo3's ``YOLO.get_defaults``.

        Args:
            name: the option's name, e.g. ``"score"``.

        Returns:
            Its default value, or the text ``Unrecognized attribute name '<name>'`` for an unknown name.
        """
        if name in cls._defaults:
            return cls._defaults[name]
        return "Unrecognized attribute name '" + name + "'"

    def __init__(self, **kwargs):
        options = {**self._defaults, **kwargs}
        self.__dict__.update(options)
        model = options["model_path"]
        if model == self._defaults["model_path"]:
            model = _default_path(model)
            if not os.path.exists(model) and os.path.isfile("model_data/yolo.h5"):  # keras-yolo3's default
                model = "model_data/yolo.h5"
        classes = options["classes_path"]
        if classes == self._defaults["classes_path"]:
            classes = _default_path(classes)
        load = Detector.from_file if isinstance(model, (str, os.PathLike)) else Detector  # a path or a model
        self.detector = load(model, classes_path=classes, anchors_path=options["anchors_path"],
                             score_threshold=options["score"], iou_threshold=options["iou"],
                             input_size=options["model_image_size"], max_detections=options["max_boxes"],
                             backend=options["backend"])
        self.class_names = self.detector.class_names
        self.anchors = self.detector.anchors
        self.model_image_size = self.detector.input_size
        self.last_detections = Detections()

    def detect_image(self, image):
        """Detect on a PIL image; returns a new PIL image (RGB) with boxes and labels drawn.

        The detections (boxes in the image's pixels) are kept in ``last_detections``.

        Args:
            image: a PIL image in any mode (converted to RGB).

        Returns:
            A new RGB PIL image of the same size with the detections drawn.
        """


        array = pil_to_rgb_array(image)
        self.last_detections = self.detector.detect_one(array)
        return Image.fromarray(self.detector.draw(array, self.last_detections))

    def close_session(self) -> None:
        """Nothing to close with TensorFlow 2; kept so keras-yolo3 code runs unchanged."""


def detect_video(yolo: YOLO, video_path, output_path: str = "") -> None:
    """keras-yolo3's ``detect_video(yolo, video_path, output_path="")``: detect on every frame of a video
    file, stream or webcam index, write the drawn frames to ``output_path`` (if given; same fps and
    size, written atomically) and show them in a window where OpenCV can (``q`` stops).

    Args:
        yolo: a :class:`YOLO`.
        video_path: a video file, a stream URL or a webcam index (``0``).
        output_path: the video file to write (``.mp4``, ``.avi`` ...); empty: none.

    Raises:
        VideoOpenError: the source or output cannot be opened, or the output is the input.
    """
    try:
        process_video(yolo.detector, video_path, output=output_path or None, show=can_display(), progress=True)
    except KeyboardInterrupt:  # keras-yolo3 ran until the stream ended or the window was closed
        pass
    yolo.close_session()
