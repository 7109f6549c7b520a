"""Running a TFLite file written by ``export.py --format tflite``: letterbox, interpreter, NMS.

The ``.tflite`` file holds the network and Darknet's decoding (see :mod:`yolo3.export.api`): input
``images`` float32 (1, net_h, net_w, 3) letterboxed RGB 0..1, outputs ``boxes`` (1, N, 4) centre
x, centre y, width, height as fractions of the network input and ``scores`` (1, N, C) objectness x
class probability. What TFLite's builtin ops cannot do well stays outside, done here by the same
:class:`yolo3.ops.postprocess.Postprocessor` as in :class:`yolo3.inference.detector.Detector`, so the
semantics are identical:

- the letterbox (images of any size need dynamic shapes; :meth:`Postprocessor.letterbox_function`);
- per-class NMS (``tf.image.combined_non_max_suppression`` is no TFLite builtin; bundling it would
  need the Flex delegate, which phone runtimes do not ship) and the mapping of boxes back to image
  pixels (:meth:`Postprocessor.select`).

On a device without TensorFlow, reproduce those two steps (docs/export.md describes them).
The interpreter is LiteRT's (``ai_edge_litert``) when installed, else ``tf.lite.Interpreter``.
"""
from __future__ import annotations

import os
import warnings
from typing import Sequence

import numpy as np
import tensorflow as tf

from ..core.detections import BatchDetector
from ..ops.postprocess import Postprocessor, rename_legacy_settings

__all__ = ["TFLiteDetector", "make_interpreter"]


def make_interpreter(model_path: str, threads: int | None = None):
    """A TFLite interpreter for ``model_path``: LiteRT's if installed, else TensorFlow's.

    Args:
        model_path: the ``.tflite`` file.
        threads: CPU threads (default: all cores).
    """
    threads = int(threads or os.cpu_count() or 1)
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        with warnings.catch_warnings():  # TF 2.21 warns that tf.lite.Interpreter moves to LiteRT
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_path=model_path, num_threads=threads)
    return Interpreter(model_path=model_path, num_threads=threads)


class TFLiteDetector(BatchDetector):
    """Detect with a TFLite file from ``export.py --format tflite`` (float32, float16 or int8).

    :meth:`detect` returns the same :class:`yolo3.core.detections.Detections` as
    :class:`yolo3.inference.detector.Detector`: the letterbox before the interpreter and the steps after
    it are :class:`yolo3.ops.postprocess.Postprocessor`'s.

    Args:
        model_path: the ``.tflite`` file.
        class_names: optional list whose length must match the model's classes.
        score_threshold: keep (box, class) pairs with objectness x class probability > this.
        iou_threshold: per-class NMS drops a box whose IoU with a better one of its class is > this.
        max_detections: detections kept per image.
        threads: interpreter threads (default all cores).
        legacy: the earlier keyword names ``score``, ``iou``, ``max_boxes`` keep working.
    """

    def __init__(self, model_path: str | os.PathLike, *, class_names: Sequence[str] | None = None,
                 score_threshold: float = 0.25, iou_threshold: float = 0.45, max_detections: int = 100,
                 threads: int | None = None, **legacy):
        settings = rename_legacy_settings(dict(score_threshold=score_threshold, iou_threshold=iou_threshold,
                                               max_detections=max_detections), legacy, "TFLiteDetector")
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
        batch, net_h, net_w, _ = (int(v) for v in self._runner.get_input_details()["images"]["shape"])
        self.batch_size = batch
        self.input_size = self.net_size = (net_h, net_w)
        self.num_classes = int(self._runner.get_output_details()["scores"]["shape"][-1])
        if class_names is not None and len(class_names) != self.num_classes:
            raise ValueError(f"{len(class_names)} class names but the model predicts "
                             f"{self.num_classes} classes")
        self.class_names = list(class_names) if class_names is not None else [
            f"class_{i}" for i in range(self.num_classes)]
        # the file decodes; the postprocessor letterboxes before it and selects after it
        self.postprocessor = Postprocessor((), self.input_size, **settings)
        self._build_functions()

    score = property(lambda self: self.postprocessor.score_threshold)
    iou = property(lambda self: self.postprocessor.iou_threshold)
    max_boxes = property(lambda self: self.postprocessor.max_detections)

    def _build_functions(self) -> None:
        post = self.postprocessor
        image_spec = tf.TensorSpec([None, None, None, 3], tf.uint8)
        sizes_spec = tf.TensorSpec([None, 2], tf.int32)
        self._letterbox_fn = post.letterbox_function(True, input_signature=[image_spec, sizes_spec])
        self._post_fn = tf.function(post.select, input_signature=[
            tf.TensorSpec([None, None, 4], tf.float32), tf.TensorSpec([None, None, self.num_classes], tf.float32),
            sizes_spec])

    def network(self, net_input: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The file's network and decoding: boxes (B, N, 4), scores (B, N, C), one interpreter call per
        ``batch_size`` images.

        Args:
            net_input: letterboxed float32 (B, net_h, net_w, 3).
        """
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
        image pixels, scores (B, K), class_ids (B, K), count (B,)), like Detector.run_batch.

        Args:
            batch: uint8 (B, H, W, 3) RGB pictures, each in the top-left corner, zero padded.
            sizes: int (B, 2) each picture's (height, width).
        """
        net_input = self._letterbox_fn(batch, sizes).numpy()
        boxes, scores = self.network(net_input)
        return tuple(t.numpy() for t in self._post_fn(boxes, scores, sizes))

