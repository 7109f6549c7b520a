"""Validation mAP during training."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..core.detections import Detections
from ..core.heads import get_head_specs
from ..datasets.annotations import AnnotatedImage
from ..evaluation.metrics import evaluate_voc
from ..ops.postprocess import Postprocessor

__all__ = ["MeanAPCallback"]


class MeanAPCallback(keras.callbacks.Callback):
    """Every ``every`` epochs: VOC mAP@``iou`` of the inference model on a letterboxed validation
    set, logged as ``val_map`` (NaN on the other epochs, so CSV columns stay aligned).

    ``dataset`` yields ``(images (B, H, W, 3), boxes (B, M, 5))`` with boxes in network pixels
    x1, y1, x2, y2, class and zero-size padding rows (:func:`yolo3.training.pipeline.make_eval_dataset`).
    Boxes are compared in network pixels, which gives the same IoUs as in the original images
    (the letterbox scales uniformly). Decoding and NMS are :class:`yolo3.ops.postprocess.Postprocessor`'s
    (as the Detector's).

    Args:
        inference_model: the Keras YOLO model (raw head outputs).
        dataset: the validation batches described above (fixed height and width).
        num_classes: classes of the model.
        every: evaluate every this many epochs.
        iou: IoU of a true positive for the mAP.
        score_threshold: score threshold of the detections.
        max_detections: detections kept per image.
        enabled: False logs NaN every epoch (e.g. on the non-chief workers).
    """

    def __init__(self, inference_model: keras.Model, dataset: tf.data.Dataset, num_classes: int,
                 every: int = 5, iou: float = 0.5, score_threshold: float = 0.001,
                 max_detections: int = 100, enabled: bool = True):
        super().__init__()
        self.inference_model = inference_model
        self.dataset = dataset
        self.num_classes = num_classes
        self.every = max(int(every), 1)
        self.iou = iou
        self.score_threshold = score_threshold
        self.max_detections = max_detections
        self.enabled = enabled
        self.history: list[tuple[int, float]] = []
        self._fn = None
        self._postprocessors: dict[tuple[int, int], Postprocessor] = {}

    def _postprocessor(self, input_size: tuple[int, int]) -> Postprocessor:
        """The Detector's post-processing at ``input_size``, NMS at IoU 0.45 (``iou`` is the mAP's)."""
        if input_size not in self._postprocessors:
            self._postprocessors[input_size] = Postprocessor(
                get_head_specs(self.inference_model), input_size, score_threshold=self.score_threshold,
                iou_threshold=0.45, max_detections=self.max_detections)
        return self._postprocessors[input_size]

    def _detect_fn(self):
        """A ``tf.function``: letterboxed float32 (B, H, W, 3) -> padded NmsResult with boxes in network
        pixels (the pictures are of the network size, so the inverse letterbox is the identity)."""
        model = self.inference_model

        @tf.function(reduce_retracing=True)
        def detect(images):
            height, width = images.shape[1], images.shape[2]
            if height is None or width is None:
                raise ValueError("the validation images need a fixed height and width")
            sizes = tf.tile(tf.constant([[height, width]], tf.int32), [tf.shape(images)[0], 1])
            return tuple(self._postprocessor((height, width))(model(images, training=False), sizes))

        return detect

    def evaluate(self) -> float:
        if self._fn is None:
            self._fn = self._detect_fn()
        gts, dets = [], []
        for images, boxes in self.dataset:
            b, s, c, n = (t.numpy() for t in self._fn(images))
            for i in range(len(n)):
                k = int(n[i])
                dets.append(Detections(b[i, :k].astype(np.float32), s[i, :k].astype(np.float32),
                                       c[i, :k].astype(np.int64)))
                gt = boxes[i].numpy()
                gt = gt[(gt[:, 2] > gt[:, 0]) & (gt[:, 3] > gt[:, 1])]
                gts.append(AnnotatedImage(path=f"val_{len(gts)}", boxes=gt.astype(np.float32)))
        result = evaluate_voc(gts, dets, self.num_classes, iou_threshold=self.iou)
        return float(result.mean_ap)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        value = float("nan")
        if self.enabled and (epoch + 1) % self.every == 0:
            value = self.evaluate()
            self.history.append((epoch + 1, value))
            print(f"\nEpoch {epoch + 1}: val_map (mAP@{self.iou:g}) = {value:.4f}", flush=True)
        logs["val_map"] = value
