"""Box geometry in one place: every IoU variant the package uses, with the box format in its name.

Formats: ``xyxy`` is x1, y1, x2, y2 (corners); ``cxcywh`` is centre x, centre y, width, height;
``wh`` is a width, height pair compared as if both boxes shared a centre (anchor matching). Units
are whatever the caller's boxes are in (pixels or 0..1), as long as both arguments agree.
Functions ending in ``_xyxy``/``wh_iou`` on NumPy arrays are NumPy code (evaluation, k-means);
the TensorFlow ones (``box_iou_cxcywh``, ``giou_cxcywh``, ``diou_cxcywh``, ``ciou_cxcywh``, and
``wh_iou`` given tensors) run inside the loss and the ``tf.data`` pipeline.
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

__all__ = ["box_iou_xyxy", "box_iou_cxcywh", "ciou_cxcywh", "giou_cxcywh", "diou_cxcywh", "wh_iou", "cxcywh_to_xyxy",
           "xyxy_to_cxcywh"]

_EPS = 1e-9


def box_iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU (N, M) of xyxy boxes ``a`` (N, 4) and ``b`` (M, 4) (NumPy, float64, continuous coordinates).

    Args:
        a: (N, 4) xyxy boxes (array-like, reshaped to (-1, 4)), pixels or 0..1 like ``b``.
        b: (M, 4) xyxy boxes in the same units as ``a``.

    Returns:
        float64 (N, M) IoU; 0 where the union is 0 (two empty boxes), never NaN.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def box_iou_cxcywh(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """IoU of cxcywh boxes ``a`` (..., N, 4) and ``b`` (..., M, 4) -> (..., N, M) (TensorFlow).

    Args:
        a: float (..., N, 4) cxcywh boxes, pixels or 0..1 like ``b``.
        b: float (..., M, 4) cxcywh boxes in the same units, same leading dimensions.

    Returns:
        float (..., N, M) IoU. The union is floored at 1e-9, so zero-size padding boxes give 0, not NaN.
    """
    a = a[..., :, None, :]
    b = b[..., None, :, :]
    a_min, a_max = a[..., :2] - a[..., 2:] * 0.5, a[..., :2] + a[..., 2:] * 0.5
    b_min, b_max = b[..., :2] - b[..., 2:] * 0.5, b[..., :2] + b[..., 2:] * 0.5
    inter_wh = tf.maximum(tf.minimum(a_max, b_max) - tf.maximum(a_min, b_min), 0.0)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return inter / tf.maximum(union, _EPS)


def ciou_cxcywh(pred: tf.Tensor, true: tf.Tensor) -> tf.Tensor:
    """Complete IoU (Zheng et al. 2020) of matching cxcywh boxes (..., 4) -> (...,) (TensorFlow).

    ``IoU - d^2 / c^2 - alpha * v``: d the centre distance, c the diagonal of the enclosing box,
    ``v = 4/pi^2 (atan(w_t/h_t) - atan(w_p/h_p))^2`` and ``alpha = v / (1 - IoU + v)`` held
    constant for the gradient. Denominators are floored at 1e-9 (zero-size boxes stay finite).

    Args:
        pred: float (..., 4) predicted cxcywh boxes, pixels or 0..1 like ``true``.
        true: float (..., 4) target cxcywh boxes, paired element-wise with ``pred``.

    Returns:
        float (...,) CIoU: 1 for identical boxes, lower (down to below 0) the worse the match.
    """
    p_min, p_max = pred[..., :2] - pred[..., 2:] * 0.5, pred[..., :2] + pred[..., 2:] * 0.5
    t_min, t_max = true[..., :2] - true[..., 2:] * 0.5, true[..., :2] + true[..., 2:] * 0.5
    inter_wh = tf.maximum(tf.minimum(p_max, t_max) - tf.maximum(p_min, t_min), 0.0)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    union = pred[..., 2] * pred[..., 3] + true[..., 2] * true[..., 3] - inter
    iou = inter / tf.maximum(union, _EPS)
    enclose_wh = tf.maximum(p_max, t_max) - tf.minimum(p_min, t_min)
    diag = tf.reduce_sum(tf.square(enclose_wh), -1)
    centre = tf.reduce_sum(tf.square(pred[..., :2] - true[..., :2]), -1)
    atan_t = tf.atan(true[..., 2] / tf.maximum(true[..., 3], _EPS))
    atan_p = tf.atan(pred[..., 2] / tf.maximum(pred[..., 3], _EPS))
    v = 4.0 / (math.pi ** 2) * tf.square(atan_t - atan_p)
    alpha = tf.stop_gradient(v / tf.maximum(1.0 - iou + v, _EPS))
    return iou - centre / tf.maximum(diag, _EPS) - alpha * v


def giou_cxcywh(pred: tf.Tensor, true: tf.Tensor) -> tf.Tensor:
    """Generalized IoU (Rezatofighi et al. 2019) of matching cxcywh boxes (..., 4) -> (...,) (TensorFlow).

    ``IoU - (C - U) / C`` with C the area of the enclosing box and U the union; denominators floored at 1e-9.

    Args:
        pred: float (..., 4) predicted cxcywh boxes, pixels or 0..1 like ``true``.
        true: float (..., 4) target cxcywh boxes, paired element-wise with ``pred``.
    """
    p_min, p_max = pred[..., :2] - pred[..., 2:] * 0.5, pred[..., :2] + pred[..., 2:] * 0.5
    t_min, t_max = true[..., :2] - true[..., 2:] * 0.5, true[..., :2] + true[..., 2:] * 0.5
    inter_wh = tf.maximum(tf.minimum(p_max, t_max) - tf.maximum(p_min, t_min), 0.0)
    inter = inter_wh[..., 0] * inter_wh[..., 1]
    union = pred[..., 2] * pred[..., 3] + true[..., 2] * true[..., 3] - inter
    enclose_wh = tf.maximum(p_max, t_max) - tf.minimum(p_min, t_min)
    enclose = tf.maximum(enclose_wh[..., 0] * enclose_wh[..., 1], _EPS)
    return inter / tf.maximum(union, _EPS) - (enclose - union) / enclose


def diou_cxcywh(pred: tf.Tensor, true: tf.Tensor) -> tf.Tensor:
    """Distance IoU (Zheng et al. 2020) of matching cxcywh boxes (..., 4) -> (...,) (TensorFlow).

    ``IoU - d^2 / c^2``: d the centre distance, c the diagonal of the enclosing box; floored at 1e-9.

    Args:
        pred: float (..., 4) predicted cxcywh boxes, pixels or 0..1 like ``true``.
        true: float (..., 4) target cxcywh boxes, paired element-wise with ``pred``.
    """
    iou = box_iou_cxcywh(pred[..., None, :], true[..., None, :])[..., 0, 0]
    p_min, p_max = pred[..., :2] - pred[..., 2:] * 0.5, pred[..., :2] + pred[..., 2:] * 0.5
    t_min, t_max = true[..., :2] - true[..., 2:] * 0.5, true[..., :2] + true[..., 2:] * 0.5
    diag = tf.reduce_sum(tf.square(tf.maximum(p_max, t_max) - tf.minimum(p_min, t_min)), -1)
    centre = tf.reduce_sum(tf.square(pred[..., :2] - true[..., :2]), -1)
    return iou - centre / tf.maximum(diag, _EPS)


def wh_iou(sizes, anchors):
    """IoU (N, K) of box sizes ``sizes`` (N, 2) and ``anchors`` (K, 2), both width, height, the
    boxes aligned at one point (Darknet's anchor matching and the k-means distance ``1 - IoU``).

    NumPy arrays give a NumPy result in their common float type (float32 for float32 input, which
    k-means over a million boxes relies on); TensorFlow tensors give a tensor, the union floored
    at 1e-12 (used inside ``tf.data``).

    Args:
        sizes: (N, 2) box width, height (NumPy array or TensorFlow tensor), in the units of ``anchors``
            (usually network pixels).
        anchors: (K, 2) anchor width, height, same units.

    Returns:
        (N, K) IoU, a NumPy array or a tensor like the inputs.
    """
    if isinstance(sizes, (tf.Tensor, tf.Variable)) or isinstance(anchors, (tf.Tensor, tf.Variable)):
        inter = (tf.minimum(sizes[:, None, 0], anchors[None, :, 0])
                 * tf.minimum(sizes[:, None, 1], anchors[None, :, 1]))
        union = sizes[:, None, 0] * sizes[:, None, 1] + anchors[None, :, 0] * anchors[None, :, 1] - inter
        return inter / tf.maximum(union, 1e-12)
    sizes = np.asarray(sizes)
    anchors = np.asarray(anchors)
    dtype = np.result_type(sizes.dtype, anchors.dtype, np.float32)
    w = sizes[:, 0:1].astype(dtype, copy=False)
    h = sizes[:, 1:2].astype(dtype, copy=False)
    aw = anchors[None, :, 0].astype(dtype, copy=False)
    ah = anchors[None, :, 1].astype(dtype, copy=False)
    inter = np.minimum(w, aw)
    inter *= np.minimum(h, ah)  # in place: k-means calls this on a million boxes per iteration
    union = (w * h) + (aw * ah)
    union -= inter
    inter /= union
    return inter


def cxcywh_to_xyxy(boxes):
    """(..., 4) cxcywh -> xyxy, NumPy or TensorFlow (same type out).

    Args:
        boxes: (..., 4) centre x, centre y, width, height (any units; the output keeps them).

    Returns:
        (..., 4) x1, y1, x2, y2, a NumPy array or a tensor like ``boxes``.
    """
    cx, cy, w, h = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    stack = tf.stack if isinstance(boxes, (tf.Tensor, tf.Variable)) else np.stack
    return stack([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0], axis=-1)


def xyxy_to_cxcywh(boxes):
    """(..., 4) xyxy -> cxcywh, NumPy or TensorFlow (same type out).

    Args:
        boxes: (..., 4) x1, y1, x2, y2 (any units; the output keeps them).

    Returns:
        (..., 4) centre x, centre y, width, height, a NumPy array or a tensor like ``boxes``.
    """
    x1, y1, x2, y2 = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    stack = tf.stack if isinstance(boxes, (tf.Tensor, tf.Variable)) else np.stack
    return stack([(x1 + x2) / 2.0, (y1 + y2) / 2.0, x2 - x1, y2 - y1], axis=-1)
