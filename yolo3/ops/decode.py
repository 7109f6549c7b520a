"""Decoding raw YOLO head outputs into boxes and class scores, and per-class NMS, with Darknet semantics.

Darknet (``yolo_layer.c`` ``get_yolo_detections`` + ``box.c`` ``do_nms_sort``):

- per anchor and cell: ``x = (col + sigmoid(tx)*s - (s-1)/2) / W`` (``s`` = scale_x_y), ``y`` likewise,
  ``w = exp(tw) * anchor_w / net_w``, ``h = exp(th) * anchor_h / net_h``;
- an anchor is kept when ``objectness > thresh``; its class scores are
  ``objectness * sigmoid(class logit)``, set to 0 unless ``> thresh`` (so the objectness filter is
  implied by the score filter);
- per class: sort by that class's score, greedily drop later boxes whose IoU with a kept one is
  ``> nms`` (0.45); a box can survive under several classes.

``tf.image.combined_non_max_suppression`` does exactly this per class (it also suppresses on
IoU strictly greater than the threshold and keeps scores strictly greater than the score
threshold; tests/test_decode.py checks it against a transcription of ``do_nms_sort``) and is the
fastest NMS on CPU, so :func:`batched_nms` uses it.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import tensorflow as tf

from ..core.heads import HeadSpec

__all__ = ["DecodedHeads", "NmsResult", "decode_head", "decode_heads", "class_scores", "batched_nms"]


class DecodedHeads(NamedTuple):
    """All anchors of all heads, concatenated in head order (then row, column, anchor).

    ``boxes``: float32 (B, N, 4) centre x, centre y, width, height as fractions of the network
    input (0..1 inside it); ``objectness``: (B, N) sigmoid objectness; ``class_probs``: (B, N, C)
    sigmoid class probabilities (not multiplied by objectness).
    """

    boxes: tf.Tensor
    objectness: tf.Tensor
    class_probs: tf.Tensor


class NmsResult(NamedTuple):
    """Padded per-image results: ``boxes`` (B, K, 4) as given to NMS, ``scores`` (B, K),
    ``class_ids`` int32 (B, K), ``count`` int32 (B,) valid rows at the start of each image."""

    boxes: tf.Tensor
    scores: tf.Tensor
    class_ids: tf.Tensor
    count: tf.Tensor


def decode_head(raw: tf.Tensor, anchors: np.ndarray, num_classes: int, input_size,
                scale_x_y: float = 1.0, max_log_wh: float | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """Reshape and decode one raw head output: the one decoder of the loss and of inference.

    Args:
        raw: (B, H, W, A*(5+C)) logits of one head convolution.
        anchors: (A, 2) anchor width, height in network-input pixels.
        num_classes: C.
        input_size: (height, width) of the network input in pixels: Python numbers or a tensor.
        scale_x_y: Darknet's xy scale (1.0 for YOLOv3).
        max_log_wh: clip tw, th at this value before ``exp`` (the loss uses 10 so that IoUs stay finite
            on wild predictions); None (inference) leaves them as they are, like Darknet.

    Returns:
        ``(logits, boxes)``: logits float32 (B, H, W, A, 5+C) the reshaped raw values (tx, ty, tw, th,
        objectness, classes) and boxes float32 (B, H, W, A, 4) centre x, centre y, width, height as
        fractions (0..1) of the network input.
    """
    anchors = np.asarray(anchors, np.float32).reshape(-1, 2)
    shape = tf.shape(raw)
    grid_h, grid_w = shape[1], shape[2]
    logits = tf.cast(tf.reshape(raw, [shape[0], grid_h, grid_w, anchors.shape[0], 5 + num_classes]), tf.float32)
    xy = tf.sigmoid(logits[..., 0:2])
    if scale_x_y != 1.0:
        xy = xy * scale_x_y - 0.5 * (scale_x_y - 1.0)
    col = tf.cast(tf.range(grid_w), tf.float32)
    row = tf.cast(tf.range(grid_h), tf.float32)
    grid = tf.stack(tf.meshgrid(col, row), axis=-1)[None, :, :, None, :]  # (1, H, W, 1, 2) col, row
    xy = (grid + xy) / tf.cast(tf.stack([grid_w, grid_h]), tf.float32)
    twh = logits[..., 2:4] if max_log_wh is None else tf.minimum(logits[..., 2:4], max_log_wh)
    input_size = tf.cast(tf.convert_to_tensor(input_size), tf.float32)
    input_wh = tf.stack([input_size[1], input_size[0]])
    wh = tf.exp(twh) * tf.constant(anchors) / input_wh  # exp(t) * anchor / net, Darknet's order
    return logits, tf.concat([xy, wh], axis=-1)


def decode_heads(raw_outputs: Sequence[tf.Tensor], head_specs: Sequence[HeadSpec],
                 input_size: Sequence[int] | None = None) -> DecodedHeads:
    """Decode raw head convolutions ``(B, H, W, A*(5+C))`` (one per spec, same order).

    Any head layout works (yolov3, tiny, spp, yolov4, yolov4-tiny).

    Args:
        raw_outputs: the model's raw outputs, one per head (a single tensor for a one-head model).
        head_specs: the :class:`HeadSpec` of each output.
        input_size: (height, width) of the network input the outputs came from (anchor sizes are
            divided by it, as Darknet does when a network runs at another size than its cfg);
            default the specs' ``net_size``.
    """
    if isinstance(raw_outputs, (tf.Tensor,)) or hasattr(raw_outputs, "shape"):
        raw_outputs = [raw_outputs]
    if len(raw_outputs) != len(head_specs):
        raise ValueError(f"{len(raw_outputs)} outputs but {len(head_specs)} head specs")
    num_classes = {spec.num_classes for spec in head_specs}
    if len(num_classes) != 1:
        raise ValueError(f"heads disagree on the number of classes: {sorted(num_classes)}")
    net_h, net_w = (input_size if input_size is not None else head_specs[0].net_size)
    parts = []
    for raw, spec in zip(raw_outputs, head_specs):
        logits, boxes = decode_head(raw, spec.anchors, spec.num_classes, (float(net_h), float(net_w)),
                                    spec.scale_x_y)
        batch, n = tf.shape(logits)[0], tf.reduce_prod(tf.shape(logits)[1:4])
        parts.append((tf.reshape(boxes, [batch, n, 4]),
                      tf.reshape(tf.sigmoid(logits[..., 4]), [batch, n]),
                      tf.reshape(tf.sigmoid(logits[..., 5:]), [batch, n, spec.num_classes])))
    if len(parts) == 1:
        return DecodedHeads(*parts[0])
    return DecodedHeads(*(tf.concat(items, axis=1) for items in zip(*parts)))


def class_scores(objectness: tf.Tensor, class_probs: tf.Tensor, score_threshold: float) -> tf.Tensor:
    """Darknet's per-class score ``objectness * class_prob``, zeroed unless ``> score_threshold``: (B, N, C).

    Args:
        objectness: (B, N) sigmoid objectness.
        class_probs: (B, N, C) sigmoid class probabilities.
        score_threshold: keep scores strictly above it.
    """
    prob = objectness[..., None] * class_probs
    return tf.where(prob > score_threshold, prob, tf.zeros_like(prob))


def batched_nms(boxes: tf.Tensor, scores: tf.Tensor, iou_threshold: float = 0.45,
                score_threshold: float = 0.25, max_boxes: int = 100) -> NmsResult:
    """Per-image, per-class greedy NMS (Darknet's ``do_nms_sort``) on a batch.

    ``boxes``: float32 (B, N, 4) corners, in any consistent units (x1, y1, x2, y2 or y1, x1, y2, x2;
    IoU does not depend on the axis order); ``scores``: (B, N, C). Keeps (box, class) pairs with
    score ``> score_threshold``, suppresses a pair when its IoU with a kept pair of the same class
    is ``> iou_threshold``, then returns the ``max_boxes`` best pairs per image, best first.
    Boxes are not clipped.

    Args:
        boxes: (B, N, 4) corners.
        scores: (B, N, C) per-class scores.
        iou_threshold: suppress on IoU above it.
        score_threshold: keep scores above it.
        max_boxes: (box, class) pairs kept per image (the padded size K).
    """
    result = tf.image.combined_non_max_suppression(
        boxes[:, :, None, :], scores,
        max_output_size_per_class=max_boxes, max_total_size=max_boxes,
        iou_threshold=iou_threshold, score_threshold=score_threshold,
        pad_per_class=False, clip_boxes=False)
    return NmsResult(result.nmsed_boxes, result.nmsed_scores,
                     tf.cast(result.nmsed_classes, tf.int32), result.valid_detections)
