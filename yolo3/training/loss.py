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

Heads whose ``[yolo]`` section set Darknet's training keys (``HeadSpec.darknet_loss``: YOLOv4 cfgs)
get Darknet's loss instead, per head, written from AlexeyAB darknet ``src/yolo_layer.c``
(``process_batch``, ``delta_yolo_box``, ``delta_yolo_class``) and ``src/box.c`` (``dx_box_iou``), as
the fork ``beric7/YOLOv4_infrastructure`` holds them; Darknet's ``delta`` is minus the gradient of
the loss with respect to the raw head output:

- box, on positives: ``iou_loss=mse``: Darknet's deltas ``(2 - w*h) * iou_normalizer * (t - out)``
  (``out`` the scaled sigmoid for x, y, the raw tw, th for w, h); ``giou``/``diou``/``ciou``: no
  (2 - w*h) weight, ``iou_normalizer`` times Darknet's ``dx_box_iou`` gradient, NaN/Inf set to 0 and
  clipped to ``max_delta``. ``box_grad="darknet"`` (default) gives the raw outputs exactly these
  deltas through a stop-gradient straight-through term: x, y deltas pass to the logits without the
  sigmoid's derivative or ``scale_x_y``, w, h deltas are multiplied by ``exp(t)`` only, as Darknet
  does; the reported value stays ``iou_normalizer * (1 - IoU-kind)`` (mse: ``0.5 * (2 - w*h) *
  iou_normalizer * sum (t - out)^2``). ``box_grad="autodiff"`` differentiates that value through the
  decoded box instead (``max_delta`` then does nothing).
- obj: ``obj_normalizer`` times the cross-entropy of the objectness logit, on positives and on
  negatives whose best IoU with the image's boxes is below ``ignore_thresh`` or whose class
  probabilities are all <= 0.25 (Darknet's ``best_match_iou``); its gradient is Darknet's
  ``obj_normalizer * (target - p)``.
- with ``iou_thresh`` < 1, Darknet's ``averages_yolo_deltas`` divides a positive's box delta by its
  number of positive class deltas (more than 1 only with ``label_smooth_eps``).
- cls, on positives: cross-entropy against ``y * (1 - eps) + eps / 2`` with ``label_smooth_eps``.
  ``cls_normalizer`` does not enter: Darknet multiplies by it only with ``counters_per_class``.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import tensorflow as tf

from ..core.boxes import box_iou_cxcywh, ciou_cxcywh, diou_cxcywh, giou_cxcywh
from ..ops.decode import decode_head

__all__ = ["yolo_loss", "loss_part_names", "BOX_GRADS"]

#: ``box_grad`` values: Darknet's own box gradient (straight-through) or autodiff of the IoU loss
BOX_GRADS = ("darknet", "autodiff")


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


def _keras_yolo3_head_terms(raw5, pred_box, true, ignore, grid, grid_wh, input_wh, anchors, scale: float,
                            box_loss: str, label_smoothing: float) -> dict[str, tf.Tensor]:
    """keras-yolo3's loss of one head, summed over the batch: ``xy``, ``wh`` (or ``box``), ``obj``, ``cls``.

    ``raw5`` (B, H, W, A, 5+C) logits, ``pred_box`` their decoded boxes, ``true`` the head's targets,
    ``ignore`` (B, H, W, A, 1) 1 where a background prediction is punished."""
    obj = true[..., 4:5]
    true_xywh = true[..., 0:4]
    true_cls = true[..., 5:]
    if label_smoothing:
        true_cls = true_cls * (1.0 - label_smoothing) + 0.5 * label_smoothing
    box_scale = 2.0 - true_xywh[..., 2:3] * true_xywh[..., 3:4]
    terms = {}
    if box_loss == "mse":
        terms["xy"], terms["wh"] = _mse_box_terms(raw5, true_xywh, obj, box_scale, grid, grid_wh, input_wh, anchors,
                                                  scale)
    else:
        ciou = ciou_cxcywh(pred_box, true_xywh)[..., None]
        terms["box"] = tf.reduce_sum(obj * box_scale * (1.0 - ciou))
    obj_ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=obj, logits=raw5[..., 4:5])
    terms["obj"] = tf.reduce_sum(obj * obj_ce + (1.0 - obj) * obj_ce * ignore)
    cls_ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=true_cls, logits=raw5[..., 5:])
    terms["cls"] = tf.reduce_sum(obj * cls_ce)
    return terms


def yolo_loss(
    y_true: Sequence[tf.Tensor],
    y_pred: Sequence[tf.Tensor],
    heads: Sequence,
    input_size,
    true_boxes: tf.Tensor | None = None,
    ignore_thresh: float | None = None,
    box_loss: str = "mse",
    label_smoothing: float = 0.0,
    box_grad: str = "darknet",
) -> dict[str, tf.Tensor]:
    """The YOLO loss of a batch, as a dict of scalars: ``loss`` (the total) and its parts
    ``xy``, ``wh`` (or ``box`` with CIoU or Darknet heads), ``obj``, ``cls`` (:func:`loss_part_names`).

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
        box_loss: ``"mse"`` (keras-yolo3's xy cross-entropy + wh squared error) or ``"ciou"``; heads
            with ``darknet_loss`` use their own ``iou_loss`` instead.
        label_smoothing: eps; class targets become ``y * (1 - eps) + eps / 2``; 0 for none (heads with
            ``darknet_loss`` use their ``label_smooth_eps`` instead).
        box_grad: for heads with ``darknet_loss``: ``"darknet"`` (Darknet's box gradient) or ``"autodiff"``.

    Returns:
        Scalar float32 tensors, each summed over cells, anchors and heads and divided by the batch size:
        ``loss`` and ``xy``, ``wh``, ``obj``, ``cls`` (``box`` in place of xy, wh with CIoU and Darknet heads).

    Raises:
        ValueError: ``box_loss`` is neither ``"mse"`` nor ``"ciou"``, or ``box_grad`` is not in :data:`BOX_GRADS`.
    """
    if box_loss not in ("mse", "ciou"):
        raise ValueError(f"box_loss must be 'mse' or 'ciou', got {box_loss!r}")
    if box_grad not in BOX_GRADS:
        raise ValueError(f"box_grad must be 'darknet' or 'autodiff', got {box_grad!r}")
    input_size = tf.cast(tf.convert_to_tensor(input_size), tf.float32)
    input_wh = tf.stack([input_size[1], input_size[0]])
    batch = tf.cast(tf.shape(y_pred[0])[0], tf.float32)
    parts = {"xy": 0.0, "wh": 0.0, "box": 0.0, "obj": 0.0, "cls": 0.0}
    for true, raw, head in zip(y_true, y_pred, heads):
        anchors = np.asarray(head.anchors, np.float32).reshape(-1, 2)
        scale = float(head.scale_x_y)
        thresh = float(head.ignore_thresh if ignore_thresh is None else ignore_thresh)
        true = tf.cast(true, tf.float32)
        raw5, pred_box = decode_head(raw, anchors, int(head.num_classes), input_size, scale, max_log_wh=_MAX_LOG_WH)
        grid, grid_wh = _cell_grid(tf.shape(raw5))
        ignore = _ignore_mask(pred_box, _boxes_for_ignore(true[..., 0:4], true[..., 4:5], true_boxes), thresh)
        if getattr(head, "darknet_loss", False):
            terms = _darknet_head_terms(raw5, pred_box, true, ignore, head, grid, grid_wh, input_wh, anchors, box_grad)
        else:
            terms = _keras_yolo3_head_terms(raw5, pred_box, true, ignore, grid, grid_wh, input_wh, anchors, scale,
                                            box_loss, label_smoothing)
        for key, value in terms.items():
            parts[key] += value

    keys = loss_part_names(heads, box_loss)
    out = {k: tf.convert_to_tensor(parts[k], tf.float32) / batch for k in keys}
    out["loss"] = tf.add_n([out[k] for k in keys])
    return out


def loss_part_names(heads: Sequence, box_loss: str = "mse") -> tuple[str, ...]:
    """The parts :func:`yolo_loss` reports for these heads: ``xy``, ``wh`` for keras-yolo3 heads with
    ``box_loss="mse"``, ``box`` for CIoU or Darknet heads, then ``obj``, ``cls``.

    Args:
        heads: the :class:`yolo3.core.heads.HeadSpec` of each output.
        box_loss: the keras-yolo3 heads' box loss, ``"mse"`` or ``"ciou"``.
    """
    darknet = [bool(getattr(h, "darknet_loss", False)) for h in heads]
    names = []
    if not all(darknet) and box_loss == "mse":
        names += ["xy", "wh"]
    if any(darknet) or box_loss != "mse":
        names.append("box")
    return tuple(names) + ("obj", "cls")


# -- Darknet (YOLOv4) semantics -----------------------------------------------------------------------
# Written from AlexeyAB darknet src/yolo_layer.c (delta_yolo_box, delta_yolo_class, process_batch) and
# src/box.c (dx_box_iou), read in the fork beric7/YOLOv4_infrastructure.

_SAFE_BOX = (0.5, 0.5, 0.5, 0.5)  # stands in for the truth where there is none (masked out afterwards)


def _finite(x: tf.Tensor) -> tf.Tensor:
    """Darknet's ``fix_nan_inf``: NaN and +-Inf become 0."""
    return tf.where(tf.math.is_finite(x), x, tf.zeros_like(x))


def _safe_div(num: tf.Tensor, den: tf.Tensor) -> tf.Tensor:
    """``num / den`` where ``den != 0``, NaN elsewhere (Darknet divides anyway; fix_nan_inf zeroes it)."""
    ok = tf.not_equal(den, 0.0)
    return tf.where(ok, num / tf.where(ok, den, tf.ones_like(den)), tf.fill(tf.shape(num), float("nan")))


def _dx_box_iou(pred: tf.Tensor, truth: tf.Tensor, kind: str) -> tf.Tensor:
    """Darknet's ``dx_box_iou(pred, truth, iou_loss)`` (src/box.c) element-wise: (..., 4) cxcywh in
    network-relative units -> (..., 4) its "gradient" (dx, dy, dw, dh) of the IoU kind, with Darknet's
    own shortcuts (dw = dr - dl not halved; the DIoU term's x sign; CIoU's aspect term without
    1 / (w^2 + h^2)). May hold NaN/Inf where Darknet's would; the caller zeroes them."""
    px, py = pred[..., 0], pred[..., 1]
    pw = tf.where(tf.equal(pred[..., 2], 0.0), tf.ones_like(px), pred[..., 2])  # "avoid nan in dx_box_iou"
    ph = tf.where(tf.equal(pred[..., 3], 0.0), tf.ones_like(px), pred[..., 3])
    tx, ty, tw, th = truth[..., 0], truth[..., 1], truth[..., 2], truth[..., 3]
    zero = tf.zeros_like(px)
    top, bot, left, right = py - ph / 2, py + ph / 2, px - pw / 2, px + pw / 2
    p_t, p_b = tf.minimum(top, bot), tf.maximum(top, bot)
    p_l, p_r = tf.minimum(left, right), tf.maximum(left, right)
    t_t, t_b, t_l, t_r = ty - th / 2, ty + th / 2, tx - tw / 2, tx + tw / 2
    area_p = (p_b - p_t) * (p_r - p_l)
    area_t = (t_b - t_t) * (t_r - t_l)
    ih = tf.minimum(p_b, t_b) - tf.maximum(p_t, t_t)
    iw = tf.minimum(p_r, t_r) - tf.maximum(p_l, t_l)
    inter = iw * ih
    union = area_p + area_t - inter
    dist2 = tf.square(px - tx) + tf.square(py - ty)
    gcw = tf.maximum(p_r, t_r) - tf.minimum(p_l, t_l)
    gch = tf.maximum(p_b, t_b) - tf.minimum(p_t, t_t)
    gc = gcw * gch
    dx_t, dx_b, dx_l, dx_r = -(p_r - p_l), p_r - p_l, -(p_b - p_t), p_b - p_t
    di_t = tf.where(p_t > t_t, -iw, zero)
    di_b = tf.where(p_b < t_b, iw, zero)
    di_l = tf.where(p_l > t_l, -ih, zero)
    di_r = tf.where(p_r < t_r, ih, zero)
    du_t, du_b, du_l, du_r = dx_t - di_t, dx_b - di_b, dx_l - di_l, dx_r - di_r
    dc_t = tf.where(p_t < t_t, -gcw, zero)
    dc_b = tf.where(p_b > t_b, gcw, zero)
    dc_l = tf.where(p_l < t_l, -gch, zero)
    dc_r = tf.where(p_r > t_r, gch, zero)

    def iou_term(di, du):
        return tf.where(union > 0, _safe_div(union * di - inter * du, union * union), zero)

    d_t, d_b, d_l, d_r = iou_term(di_t, du_t), iou_term(di_b, du_b), iou_term(di_l, du_l), iou_term(di_r, du_r)
    d_t = tf.where(top < bot, d_t, d_b)  # "apply grad from prediction min/max for correct corner selection"
    d_b = tf.where(top < bot, d_b, d_t)
    d_l = tf.where(left < right, d_l, d_r)
    d_r = tf.where(left < right, d_r, d_l)
    apart = tf.logical_or(iw <= 0, ih <= 0)
    if kind == "giou":
        def giou_term(du, dc):
            return _safe_div(gc * du - union * dc, gc * gc)

        g_t, g_b, g_l, g_r = giou_term(du_t, dc_t), giou_term(du_b, dc_b), giou_term(du_l, dc_l), giou_term(du_r, dc_r)
        d_t, d_b = tf.where(gc > 0, d_t + g_t, d_t), tf.where(gc > 0, d_b + g_b, d_b)
        d_l, d_r = tf.where(gc > 0, d_l + g_l, d_l), tf.where(gc > 0, d_r + g_r, d_r)
        d_t, d_b = tf.where(apart, g_t, d_t), tf.where(apart, g_b, d_b)
        d_l, d_r = tf.where(apart, g_l, d_l), tf.where(apart, g_r, d_r)
    d_x, d_y, d_w, d_h = d_l + d_r, d_t + d_b, d_r - d_l, d_b - d_t
    if kind in ("diou", "ciou"):
        cw = tf.maximum(right, t_r) - tf.minimum(left, t_l)
        ch = tf.maximum(bot, t_b) - tf.minimum(top, t_t)
        c = cw * cw + ch * ch
        dcw_dx = tf.where(p_r > t_r, 1.0, 0.0) - tf.where(p_l < t_l, 1.0, 0.0)
        dcw_dw = tf.where(p_r > t_r, 0.5, 0.0) - tf.where(p_l < t_l, -0.5, 0.0)
        dch_dy = tf.where(p_b > t_b, 1.0, 0.0) - tf.where(p_t < t_t, 1.0, 0.0)
        dch_dh = tf.where(p_b > t_b, 0.5, 0.0) - tf.where(p_t < t_t, -0.5, 0.0)
        e_x = _safe_div(2 * (tx - px) * c - 2 * cw * dcw_dx * dist2, c * c)
        e_y = _safe_div(2 * (ty - py) * c - 2 * ch * dch_dy * dist2, c * c)
        e_w = _safe_div(2 * cw * dcw_dw * dist2, c * c)
        e_h = _safe_div(2 * ch * dch_dh * dist2, c * c)
        if kind == "ciou":
            diff = tf.atan(tw / th) - tf.atan(pw / ph)
            ar_loss = 4.0 / math.pi ** 2 * tf.square(diff)
            alpha = ar_loss / (1.0 - inter / union + ar_loss + 0.000001)
            e_w += alpha * 8.0 / math.pi ** 2 * diff * ph
            e_h += alpha * -8.0 / math.pi ** 2 * diff * pw
        d_x, d_y = tf.where(c > 0, d_x + e_x, d_x), tf.where(c > 0, d_y + e_y, d_y)
        d_w, d_h = tf.where(c > 0, d_w + e_w, d_w), tf.where(c > 0, d_h + e_h, d_h)
        d_x, d_y = tf.where(apart, e_x, d_x), tf.where(apart, e_y, d_y)
        d_w, d_h = tf.where(apart, e_w, d_w), tf.where(apart, e_h, d_h)
    return tf.stack([d_x, d_y, d_w, d_h], axis=-1)


_IOU_KINDS = {"giou": giou_cxcywh, "diou": diou_cxcywh, "ciou": ciou_cxcywh}


def _darknet_head_terms(raw5, pred_box, true, punish, head, grid, grid_wh, input_wh, anchors,
                        box_grad: str) -> dict[str, tf.Tensor]:
    """Darknet's loss of one head, summed over the batch: ``box``, ``obj``, ``cls`` (see the module docstring).

    ``raw5`` (B, H, W, A, 5+C) logits, ``pred_box`` (B, H, W, A, 4) decoded (tw, th clipped at 10 before
    ``exp``), ``true`` the head's targets, ``punish`` (B, H, W, A, 1) 1 where a negative is punished."""
    if head.iou_loss != "mse" and head.iou_loss not in _IOU_KINDS:
        raise ValueError(f"head {head.name}: iou_loss={head.iou_loss} is not implemented for training "
                         f"(use one of mse, {', '.join(_IOU_KINDS)})")
    pos = true[..., 4:5] > 0
    zero = tf.zeros_like(raw5[..., 0:1])
    truth = tf.where(pos, true[..., 0:4], tf.constant(_SAFE_BOX, tf.float32))
    norm = float(head.iou_normalizer)
    twh = tf.minimum(raw5[..., 2:4], _MAX_LOG_WH)
    if head.iou_loss == "mse":
        # delta_yolo_box, MSE branch: scale * (t - x) * iou_normalizer on Darknet's outputs (x, y after the
        # scaled sigmoid, w, h raw); no fix_nan_inf or max_delta there.
        scale = float(head.scale_x_y)
        out_xy = tf.sigmoid(raw5[..., 0:2]) * scale - 0.5 * (scale - 1.0)
        t_xy = truth[..., 0:2] * grid_wh - grid
        t_wh = tf.math.log(tf.maximum(truth[..., 2:4] * input_wh / tf.constant(anchors), _EPS))
        residual = tf.concat([t_xy - out_xy, t_wh - raw5[..., 2:4]], axis=-1)
        weight = norm * (2.0 - truth[..., 2:3] * truth[..., 3:4])
        value = 0.5 * weight * tf.reduce_sum(tf.square(residual), -1, keepdims=True)
        delta = weight * residual
    else:
        value = norm * (1.0 - _IOU_KINDS[head.iou_loss](pred_box, truth)[..., None])
        if box_grad == "darknet":
            d = _dx_box_iou(pred_box, truth, head.iou_loss)
            delta = norm * tf.concat([d[..., 0:2], d[..., 2:4] * tf.exp(twh)], axis=-1)  # exp(t) only for w, h
            delta = _finite(delta)
            if head.max_delta is not None:
                delta = tf.clip_by_value(delta, -float(head.max_delta), float(head.max_delta))
    eps = float(head.label_smooth_eps)
    labels = true[..., 5:] * (1.0 - eps) + 0.5 * eps
    if box_grad == "darknet":
        if head.iou_thresh < 1.0:
            # averages_yolo_deltas: a positive's box delta is divided by its count of positive class deltas
            classes = tf.reduce_sum(tf.cast(labels - tf.sigmoid(raw5[..., 5:]) > 0, tf.float32), -1, keepdims=True)
            delta = delta / tf.maximum(classes, 1.0)
        delta = tf.stop_gradient(tf.where(pos, _finite(delta), tf.zeros_like(delta)))
        through = -tf.reduce_sum(delta * raw5[..., 0:4])  # d/d raw = -delta: Darknet's gradient
        box = tf.reduce_sum(tf.where(pos, tf.stop_gradient(value), zero)) + (through - tf.stop_gradient(through))
    else:
        box = tf.reduce_sum(tf.where(pos, value, zero))

    obj_ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(pos, tf.float32), logits=raw5[..., 4:5])
    # process_batch spares a negative only when its best IoU passes ignore_thresh *and* some class
    # probability exceeds 0.25 (compare_yolo_class; best_match_iou)
    no_class = tf.reduce_max(tf.sigmoid(raw5[..., 5:]), -1, keepdims=True) <= 0.25
    punish = tf.stop_gradient(tf.logical_or(punish > 0, no_class))
    obj = float(head.obj_normalizer) * tf.reduce_sum(tf.where(pos, obj_ce, tf.where(punish, obj_ce, zero)))
    cls_ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=raw5[..., 5:])
    cls = tf.reduce_sum(tf.where(pos, cls_ce, tf.zeros_like(cls_ce)))
    return {"box": box, "obj": obj, "cls": cls}
