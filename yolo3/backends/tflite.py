"""Running a TFLite file written by ``export.py --format tflite``: letterbox, interpreter, NMS.

The ``.tflite`` file holds the network and Darknet's decoding (see :mod:`yolo3.export.api`): input
``images`` float32 (1, net_h, net_w, 3) letterboxed RGB 0..1, outputs ``boxes`` (1, N, 4) centre
x, centre y, width, height as fractions of the network input and ``scores`` (1, N, C) objectness x
class probability. What TFLite's builtin ops cannot do well stays outside, done here with the same
TensorFlow functions as :class:`yolo3.inference.detector.Detector`, so the semantics are identical:

- the letterbox (images of any size need dynamic shapes; :func:`yolo3.ops.letterbox.letterbox`);
- per-class NMS (``tf.image.combined_non_max_suppression`` is no TFLite builtin; bundling it would
  need the Flex delegate, which phone runtimes do not ship) and the mapping of boxes back to image
  pixels (:func:`yolo3.ops.decode.batched_nms`, :func:`yolo3.ops.letterbox.boxes_to_image`).

On a device without TensorFlow, reproduce those two steps (docs/export.md describes them).
The interpreter is LiteRT's (``ai_edge_litert``) when installed, else ``tf.lite.Interpreter``.
"""
from __future__ import annotations

import os
import warnings
from typing import Sequence

import numpy as np

from ..core.detections import Detections, detect_images

__all__ = ["TFLiteDetector", "make_interpreter"]


def make_interpreter(model_path: str, threads: int | None = None):
    """A TFLite interpreter for ``model_path`` (LiteRT's if installed, else TensorFlow's), with
    ``threads`` CPU threads (default: all cores)."""
    threads = int(threads or os.cpu_count() or 1)
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():  # TF 2.21 warns that tf.lite.Interpreter moves to LiteRT
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_path=model_path, num_threads=threads)
    return Interpreter(model_path=model_path, num_threads=threads)


class TFLiteDetector:
    """Detect with a TFLite file from ``export.py --format tflite`` (float32, float16 or int8).

    ``score``, ``iou``, ``max_boxes``: as :class:`yolo3.inference.detector.Detector` (keep objectness x class
    probability > score; per-class NMS at IoU > iou). ``class_names``: optional list whose length
    must match the model's classes. ``threads``: interpreter threads (default all cores).
    :meth:`detect` returns the same :class:`yolo3.core.detections.Detections` as the Detector.
    """

    def __init__(self, model_path: str | os.PathLike, score: float = 0.25, iou: float = 0.45,
                 max_boxes: int = 100, class_names: Sequence[str] | None = None,
                 threads: int | None = None):
        model_path = os.fspath(model_path)
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"TFLite model not found: {model_path}")
        self.interpreter = make_interpreter(model_path, threads)
        signatures = self.interpreter.get_signature_list()
        if "serving_default" not in signatures or set(signatures["serving_default"]["outputs"]) != {
                "boxes", "scores"}:
            raise ValueError(f"{model_path} was not written by export.py --format tflite "
                             f"(signatures: {signatures})")
        self._runner = self.interpreter.get_signature_runner("serving_default")
        input_details = self._runner.get_input_details()["images"]
        batch, net_h, net_w, _ = (int(v) for v in input_details["shape"])
        self.batch_size = batch
        self.net_size = (net_h, net_w)
        self.num_classes = int(self._runner.get_output_details()["scores"]["shape"][-1])
        if class_names is not None and len(class_names) != self.num_classes:
            raise ValueError(f"{len(class_names)} class names but the model predicts "
                             f"{self.num_classes} classes")
        self.class_names = list(class_names) if class_names is not None else [
            f"class_{i}" for i in range(self.num_classes)]
        self.score, self.iou, self.max_boxes = float(score), float(iou), int(max_boxes)
        self._build_functions()

    def _build_functions(self) -> None:
        import tensorflow as tf

        from ..ops.decode import batched_nms
        from ..ops.letterbox import boxes_to_image, letterbox

        net_size, score, iou, max_boxes = self.net_size, self.score, self.iou, self.max_boxes
        image_spec = tf.TensorSpec([None, None, None, 3], tf.uint8)
        sizes_spec = tf.TensorSpec([None, 2], tf.int32)
        self._letterbox_fn = tf.function(lambda images, sizes: letterbox(images, sizes, net_size),
                                         input_signature=[image_spec, sizes_spec], jit_compile=True)

        @tf.function(input_signature=[tf.TensorSpec([None, None, 4], tf.float32),
                                      tf.TensorSpec([None, None, self.num_classes], tf.float32),
                                      sizes_spec])
        def postprocess(boxes, scores, sizes):
            scores = tf.where(scores > score, scores, tf.zeros_like(scores))
            return tuple(batched_nms(boxes_to_image(boxes, sizes, net_size), scores, iou, score, max_boxes))

        self._post_fn = postprocess

    def network(self, net_input: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Letterboxed float32 (B, net_h, net_w, 3) -> boxes (B, N, 4), scores (B, N, C), one
        interpreter call per ``batch_size`` images."""
        boxes, scores = [], []
        step = self.batch_size
        for start in range(0, net_input.shape[0], step):
            chunk = np.ascontiguousarray(net_input[start:start + step], np.float32)
            out = self._runner(images=chunk)
            boxes.append(out["boxes"])
            scores.append(out["scores"])
        return np.concatenate(boxes), np.concatenate(scores)

    def run_batch(self, batch: np.ndarray, sizes: np.ndarray):
        """Zero-padded uint8 (B, H, W, 3) + (B, 2) sizes -> padded numpy NMS results (boxes (B, K, 4)
        image pixels, scores (B, K), class_ids (B, K), count (B,)), like Detector.run_batch."""
        net_input = self._letterbox_fn(batch, sizes).numpy()
        boxes, scores = self.network(net_input)
        return tuple(t.numpy() for t in self._post_fn(boxes, scores, sizes))

    def detect(self, images: Sequence[np.ndarray], pad_multiple: int = 128) -> list[Detections]:
        """uint8 (H, W, 3) RGB images of any sizes -> one :class:`Detections` each."""
        return detect_images(self.run_batch, images, pad_multiple)

    def detect_one(self, image: np.ndarray) -> Detections:
        return self.detect([image])[0]
