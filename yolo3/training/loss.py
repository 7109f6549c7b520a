"""YOLOv3 loss with keras-yolo3's semantics, made safe for empty images and zero-size boxes.

Per head, with ``obj`` the target objectness (1 where an anchor is responsible for a box):

- xy: binary cross-entropy between the predicted offset in the cell (sigmoid of tx, ty, with
  Darknet's ``scale_x_y``) and the true fractional offset, weighted by ``obj * (2 - w*h)``;
- wh: ``0.5 * (tw - log(w * input_w / anchor_w))**2`` (and likewise for h), same weight;
- obj: cross-entropy of the objectness logit; background predictions whose best IoU with any
  true box of the image exceeds ``ignore_thresh`` are not punished;
- cls: binary cross-entropy of each class logit (multi-label), where ``obj`` is 1.

All terms are summed over cells, anchors and heads and divided by the batch size. Options:
``box_loss="ciou"`` replaces xy + wh by ``(1 - CIoU) * (2 - w*h)`` and ``label_smoothing`` eps
turns class targets into ``y * (1 - eps) + eps / 2``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from ..core.boxes import box_iou_cxcywh, ciou_cxcywh
from ..ops.decode import decode_head

__all__ = ["yolo_loss"]


_EPS = 1e-9


_MAX_LOG_WH = 10.0  # exp() beyond this is a box thousands of inputs wide; keeps IoU finite


def _ignore_mask(pred_box: tf.Tensor, true_boxes: tf.Tensor, thresh: float) -> tf.Tensor:
    """1 where a prediction may be punished as background: best IoU with the image's true boxes
    (B, M, 4 relative xywh, zero rows = padding) is below ``thresh``. Shape (B, H, W, A, 1)."""
    shape = tf.shape(pred_box)
    flat = tf.reshape(pred_box, [shape[0], -1, 4])
    valid = tf.logical_and(true_boxes[..., 2] > 0, true_boxes[..., 3] > 0)  # (B, M)
    # Padding rows come last: only look at as many columns as the fullest image has boxes.
    m = tf.reduce_max(tf.reduce_sum(tf.cast(valid, tf.int32), axis=1))
    iou = box_iou_cxcywh(flat, true_boxes[:, :m])  # (B, N, m)
    iou = tf.where(valid[:, None, :m], iou, tf.zeros_like(iou))
    best = tf.reduce_max(tf.concat([iou, tf.zeros_like(iou[..., :1])], axis=-1), axis=-1)
    ignore = tf.cast(best < thresh, tf.float32)
    return tf.stop_gradient(tf.reshape(ignore, tf.concat([shape[:-1], [1]], 0)))


def _mse_box_terms(raw5, true_xywh, obj, box_scale, grid, grid_wh, input_wh, anchors, scale: float):
    """keras-yolo3's box terms of one head, summed: (xy cross-entropy, wh squared error), each
    weighted by ``obj * box_scale`` (target objectness times (2 - w*h), shapes (B, H, W, A, 1))."""
    # Offset of the centre inside its cell; with scale_x_y the sigmoid target moves inward.
    frac = true_xywh[..., 0:2] * grid_wh - grid
    target_sig = (frac + 0.5 * (scale - 1.0)) / scale
    target_sig = tf.where(obj > 0, tf.clip_by_value(target_sig, 0.0, 1.0), tf.zeros_like(target_sig))
    xy = obj * box_scale * tf.nn.sigmoid_cross_entropy_with_logits(labels=target_sig, logits=raw5[..., 0:2])
    ratio = true_xywh[..., 2:4] * input_wh / tf.constant(anchors)
    target_wh = tf.where(obj > 0, tf.math.log(tf.maximum(ratio, _EPS)), tf.zeros_like(ratio))
    wh = obj * box_scale * 0.5 * tf.square(target_wh - raw5[..., 2:4])
    return tf.reduce_sum(xy), tf.reduce_sum(wh)


def _cell_grid(shape: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """For a head of shape (B, H, W, A, 5+C): each cell's (column, row) as (1, H, W, 1, 2) float32,
    and the grid's (W, H)."""
    grid_wh = tf.cast(tf.stack([shape[2], shape[1]]), tf.float32)
    col = tf.cast(tf.range(shape[2]), tf.float32)
    row = tf.cast(tf.range(shape[1]), tf.float32)
    return tf.stack(tf.meshgrid(col, row), axis=-1)[None, :, :, None, :], grid_wh


def _boxes_for_ignore(true_xywh: tf.Tensor, obj: tf.Tensor, true_boxes: tf.Tensor | None) -> tf.Tensor:
    """The (B, M, 4) true boxes the ignore mask compares predictions with: all of each image's boxes
    when given, else those assigned to this head (keras-yolo3), responsible slots first."""
    if true_boxes is not None:
        return tf.cast(true_boxes, tf.float32)
    batch = tf.shape(obj)[0]
    own = tf.reshape(true_xywh * obj, [batch, -1, 4])
    # Move the responsible slots to the front so padding comes last (see _ignore_mask).
    order = tf.argsort(tf.reshape(obj, [batch, -1]), axis=1, direction="DESCENDING", stable=True)
    return tf.gather(own, order, batch_dims=1)


def yolo_loss(
    y_true: Sequence[tf.Tensor],
    y_pred: Sequence[tf.Tensor],
    heads: Sequence,
    input_size,
    true_boxes: tf.Tensor | None = None,
    ignore_thresh: float | None = None,
    box_loss: str = "mse",
    label_smoothing: float = 0.0,
) -> dict[str, tf.Tensor]:
    """The YOLOv3 loss of a batch, as a dict of scalars: ``loss`` (the total) and its parts
    ``xy``, ``wh`` (or ``box`` with CIoU), ``obj``, ``cls``.

    Args:
        y_true: per head (B, H, W, A, 5+C) from :func:`yolo3.training.targets.assign_targets`
            (cxcywh relative to the network input, 0..1; objectness; one-hot classes).
        y_pred: per head the raw model output (B, H, W, A*(5+C)), in the same head order.
        heads: per head a :class:`yolo3.core.heads.HeadSpec` (anchors, num_classes, scale_x_y,
            ignore_thresh) in the same order.
        input_size: (h, w) network input pixels (ints or a tensor).
        true_boxes: (B, M, 4) relative (0..1) cxcywh of all boxes of each image (zero rows = padding,
            after the real ones; :func:`yolo3.training.targets.pad_boxes`) for the ignore mask -- without
            it, each head uses the boxes assigned to that head (keras-yolo3's behaviour).
        ignore_thresh: overrides the heads' value (IoU, 0..1).
        box_loss: ``"mse"`` (keras-yolo3's xy cross-entropy + wh squared error) or ``"ciou"``.
        label_smoothing: eps; class targets become ``y * (1 - eps) + eps / 2``; 0 for none.

    Returns:
        Scalar float32 tensors, each summed over cells, anchors and heads and divided by the batch size:
        ``loss`` and ``xy``, ``wh``, ``obj``, ``cls`` (``box`` in place of xy, wh with CIoU).

    Raises:
        ValueError: ``box_loss`` is neither ``"mse"`` nor ``"ciou"``.
    """
    if box_loss not in ("mse", "ciou"):
        raise ValueError(f"box_loss must be 'mse' or 'ciou', got {box_loss!r}")
    input_size = tf.cast(tf.convert_to_tensor(input_size), tf.float32)
    input_wh = tf.stack([input_size[1], input_size[0]])
    batch = tf.cast(tf.shape(y_pred[0])[0], tf.float32)
    parts = {"xy": 0.0, "wh": 0.0, "box": 0.0, "obj": 0.0, "cls": 0.0}
    for true, raw, head in zip(y_true, y_pred, heads):
        anchors = np.asarray(head.anchors, np.float32).reshape(-1, 2)
        num_classes = int(head.num_classes)
        scale = float(head.scale_x_y)
        thresh = float(head.ignore_thresh if ignore_thresh is None else ignore_thresh)
        true = tf.cast(true, tf.float32)
        raw5, pred_box = decode_head(raw, anchors, num_classes, input_size, scale, max_log_wh=_MAX_LOG_WH)
        obj = true[..., 4:5]
        true_xywh = true[..., 0:4]
        true_cls = true[..., 5:]
        if label_smoothing:
            true_cls = true_cls * (1.0 - label_smoothing) + 0.5 * label_smoothing
        shape = tf.shape(raw5)
        grid, grid_wh = _cell_grid(shape)
        box_scale = 2.0 - true_xywh[..., 2:3] * true_xywh[..., 3:4]

        if box_loss == "mse":
            xy, wh = _mse_box_terms(raw5, true_xywh, obj, box_scale, grid, grid_wh, input_wh, anchors, scale)
            parts["xy"] += xy
            parts["wh"] += wh
        else:
            ciou = ciou_cxcywh(pred_box, true_xywh)[..., None]
            parts["box"] += tf.reduce_sum(obj * box_scale * (1.0 - ciou))

        ignore = _ignore_mask(pred_box, _boxes_for_ignore(true_xywh, obj, true_boxes), thresh)
        obj_ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=obj, logits=raw5[..., 4:5])
        parts["obj"] += tf.reduce_sum(obj * obj_ce + (1.0 - obj) * obj_ce * ignore)
        cls_ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=true_cls, logits=raw5[..., 5:])
        parts["cls"] += tf.reduce_sum(obj * cls_ce)

    keys = ("xy", "wh", "obj", "cls") if box_loss == "mse" else ("box", "obj", "cls")
    out = {k: tf.convert_to_tensor(parts[k], tf.float32) / batch for k in keys}
    out["loss"] = tf.add_n([out[k] for k in keys])
    return out
