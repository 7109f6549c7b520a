"""Validation mAP during training."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..core.heads import get_head_specs

__all__ = ["MeanAPCallback"]


class MeanAPCallback(keras.callbacks.Callback):
    """Every ``every`` epochs: VOC mAP@``iou`` of the inference model on a letterboxed validation
    set, logged as ``val_map`` (NaN on the other epochs, so CSV columns stay aligned).

    ``dataset`` yields ``(images (B, H, W, 3), boxes (B, M, 5))`` with boxes in network pixels
    x1, y1, x2, y2, class and zero-size padding rows (:func:`yolo3.training.pipeline.make_eval_dataset`).
    Boxes are compared in network pixels, which gives the same IoUs as in the original images
    (the letterbox scales uniformly). Decoding and NMS are yolo3.ops.decode's (as the Detector's).
    """

    def __init__(self, inference_model: keras.Model, dataset: tf.data.Dataset, num_classes: int,
                 every: int = 5, iou: float = 0.5, score: float = 0.001, max_boxes: int = 100,
                 enabled: bool = True):
        super().__init__()
        self.inference_model = inference_model
        self.dataset = dataset
        self.num_classes = num_classes
        self.every = max(int(every), 1)
        self.iou = iou
        self.score = score
        self.max_boxes = max_boxes
        self.enabled = enabled
        self.history: list[tuple[int, float]] = []
        self._fn = None

    def _detect_fn(self):
        from ..ops.decode import batched_nms, class_scores, decode_heads

        model = self.inference_model
        specs = get_head_specs(model)
        score, max_boxes = self.score, self.max_boxes

        @tf.function(reduce_retracing=True)
        def detect(images):
            raw = model(images, training=False)
            raw = list(raw) if isinstance(raw, (list, tuple)) else [raw]
            size = tf.shape(images)[1:3]
            decoded = decode_heads(raw, specs, (size[0], size[1]))
            wh = tf.cast(tf.stack([size[1], size[0]]), tf.float32)
            xy, bwh = decoded.boxes[..., :2] * wh, decoded.boxes[..., 2:] * wh
            corners = tf.concat([xy - bwh / 2, xy + bwh / 2], axis=-1)
            scores = class_scores(decoded.objectness, decoded.class_probs, score)
            return tuple(batched_nms(corners, scores, 0.45, score, max_boxes))

        return detect

    def evaluate(self) -> float:
        from ..core.detections import Detections
        from ..datasets.annotations import AnnotatedImage

        try:
            from ..evaluation.metrics import evaluate_voc
        except ImportError:
            print("\nwarning: yolo3.evaluation.metrics is not available; no validation mAP this time", flush=True)
            return float("nan")

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
