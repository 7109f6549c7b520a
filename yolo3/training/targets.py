"""Training targets: which anchor of which head is responsible for each ground-truth box.

Each box goes to the anchor with the best width/height IoU over *all* anchors of the model
(boxes and anchors compared as if centred on each other) and is written at the head whose mask
holds that anchor, in the grid cell containing the box centre. Centres are computed exactly in
float (keras-yolo3 floor-divided ``(x_min + x_max) // 2``), grid indices are clamped to the grid,
and when two boxes land in the same cell and anchor the later one wins (as in keras-yolo3), the
same way on every run. A box whose best anchor is in no mask is not trained on (as in Darknet).

A head with ``iou_thresh`` below 1 (YOLOv4's ``[yolo] iou_thresh=0.213``) also makes every anchor n of
its own mask with shape IoU(box, anchor n) > iou_thresh a positive for the box, in the same cell,
whether or not the best anchor is in this head (AlexeyAB darknet ``src/yolo_layer.c``,
``process_batch``, the ``// iou_thresh`` loop after the best-anchor block; shape IoU as Darknet's
default ``iou_thresh_kind=iou``). Where a best-anchor positive and such an extra one share a slot,
the best-anchor one is kept (then the later box, as above). Darknet instead sums both boxes' box
deltas in that slot, averages them and marks both classes; here a slot holds one box.

Target tensor of one head for one image: float32 (H, W, A, 5 + C) holding, in the responsible
slots, ``x, y, w, h`` (box centre and size relative to the network input, 0..1), objectness 1 and
a one-hot class vector; zeros elsewhere. Everything is TensorFlow so it runs inside ``tf.data``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import tensorflow as tf

from ..core.boxes import wh_iou
from ..core.heads import get_head_specs, model_anchors

__all__ = ["TargetSpec", "target_spec_from_model", "assign_targets", "pad_boxes"]


@dataclass(frozen=True)
class TargetSpec:
    """What target assignment needs to know about a model.

    ``anchors``: float32 (N, 2) all anchors (width, height) in network-input pixels;
    ``masks``: per head, the indices into ``anchors`` it predicts; ``strides``: per head, input
    pixels per grid cell (32, 16, 8 for YOLOv3); ``num_classes``; ``iou_thresh``: per head,
    Darknet's ``iou_thresh`` (None or 1.0: only the best anchor is a positive).
    """

    anchors: np.ndarray
    masks: tuple[tuple[int, ...], ...]
    strides: tuple[int, ...]
    num_classes: int
    iou_thresh: tuple[float, ...] | None = None

    def head_iou_thresh(self, head: int) -> float:
        """Head ``head``'s ``iou_thresh`` (1.0 when the spec has none)."""
        return 1.0 if self.iou_thresh is None else float(self.iou_thresh[head])

    @property
    def num_heads(self) -> int:
        return len(self.masks)

    def grid_sizes(self, input_size: Sequence[int]) -> list[tuple[int, int]]:
        """(rows, cols) of each head's grid (input size floor-divided by the head's stride).

        Args:
            input_size: (height, width) of the network input in pixels.
        """
        h, w = int(input_size[0]), int(input_size[1])
        return [(h // s, w // s) for s in self.strides]

    def max_stride(self) -> int:
        return max(self.strides)


def target_spec_from_model(model) -> TargetSpec:
    """Read anchors/masks/classes from the model's YoloHead layers and measure each head's stride.

    Args:
        model: a YOLO Keras model with YoloHead layers; run once on a 64x64 zero image to measure strides.
    """

    specs = get_head_specs(model)
    probe = 64
    outs = model(np.zeros((1, probe, probe, 3), np.float32), training=False)
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    strides = tuple(int(probe // int(o.shape[1])) for o in outs)
    return TargetSpec(
        anchors=model_anchors(model),
        masks=tuple(tuple(s.mask) for s in specs),
        strides=strides,
        num_classes=specs[0].num_classes,
        iou_thresh=tuple(float(s.iou_thresh) for s in specs),
    )


def assign_targets(
    boxes: tf.Tensor,
    input_size: Sequence[int],
    spec: TargetSpec,
) -> tuple[tf.Tensor, ...]:
    """Targets of one image.

    Args:
        boxes: float32 (N, 5) ``x_min, y_min, x_max, y_max`` in network-input pixels and class
            id; boxes with zero width or height are ignored.
        input_size: (height, width) of the network input in pixels (Python ints).
        spec: the model's anchors, masks, strides and class count (:func:`target_spec_from_model`).

    Returns:
        One float32 tensor (H_l, W_l, A_l, 5 + C) a head, in the spec's head order: cxcywh relative to
        the input (0..1), objectness 1 and one-hot class in the responsible slots, zeros elsewhere.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    boxes = tf.reshape(boxes, [-1, 5])
    in_h, in_w = float(input_size[0]), float(input_size[1])
    num_classes = spec.num_classes
    xy = (boxes[:, 0:2] + boxes[:, 2:4]) * 0.5
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    valid = tf.logical_and(wh[:, 0] > 0, wh[:, 1] > 0)
    xy = tf.boolean_mask(xy, valid)
    wh = tf.boolean_mask(wh, valid)
    cls = tf.cast(tf.boolean_mask(boxes[:, 4], valid), tf.int32)
    scale = tf.constant([in_w, in_h], tf.float32)
    xy_rel = xy / scale
    wh_rel = wh / scale
    anchors = tf.constant(np.asarray(spec.anchors, np.float32).reshape(-1, 2))
    best = tf.argmax(wh_iou(wh, anchors), axis=1, output_type=tf.int32)  # (N,)
    shape_iou = wh_iou(wh, anchors)  # (N, all anchors), for iou_thresh
    count = tf.shape(best)[0]
    position = tf.range(count, dtype=tf.int32)
    values = tf.concat([xy_rel, wh_rel, tf.ones_like(xy_rel[:, :1]),
                        tf.one_hot(cls, num_classes, dtype=tf.float32)], axis=1)  # (N, 5 + C)
    outputs = []
    for head, (mask, (gh, gw)) in enumerate(zip(spec.masks, spec.grid_sizes(input_size))):
        num_anchors = len(mask)
        match = tf.equal(best[:, None], tf.constant(mask, tf.int32)[None, :])  # (N, A)
        positive = match
        iou_thresh = spec.head_iou_thresh(head)
        if iou_thresh < 1.0:  # Darknet's iou_thresh: more anchors of this mask per box
            positive = tf.logical_or(match, tf.gather(shape_iou, list(mask), axis=1) > iou_thresh)
        pairs = tf.cast(tf.where(positive), tf.int32)  # (P, 2): box, slot k of the mask
        sel, k = pairs[:, 0], pairs[:, 1]
        sel_xy = tf.gather(xy_rel, sel)
        i = tf.clip_by_value(tf.cast(tf.floor(sel_xy[:, 0] * gw), tf.int32), 0, gw - 1)
        j = tf.clip_by_value(tf.cast(tf.floor(sel_xy[:, 1] * gh), tf.int32), 0, gh - 1)
        # Several boxes in one cell+anchor: a best-anchor match beats an iou_thresh one, then the last box
        # wins (keras-yolo3's overwrite), deterministically.
        linear = (j * gw + i) * num_anchors + k
        order = tf.gather(position, sel) + 1 + count * tf.cast(tf.gather_nd(match, pairs), tf.int32)
        winner = tf.tensor_scatter_nd_max(tf.zeros([gh * gw * num_anchors], tf.int32), linear[:, None], order)
        keep = tf.equal(tf.gather(winner, linear), order)
        indices = tf.boolean_mask(tf.stack([j, i, k], axis=1), keep)
        updates = tf.boolean_mask(tf.gather(values, sel), keep)
        outputs.append(tf.scatter_nd(indices, updates, [gh, gw, num_anchors, 5 + num_classes]))
    return tuple(outputs)


def pad_boxes(boxes: tf.Tensor, input_size: Sequence[int], max_boxes: int) -> tf.Tensor:
    """The first ``max_boxes`` valid boxes of one image as float32 (max_boxes, 4) ``x, y, w, h``
    relative to the input (0..1), zero rows after them; used by the loss's ignore mask.

    Args:
        boxes: (N, 5) ``x_min, y_min, x_max, y_max, class`` in network-input pixels; boxes with zero width
            or height are skipped.
        input_size: (height, width) of the network input in pixels.
        max_boxes: rows of the result; further boxes are dropped.
    """
    boxes = tf.reshape(tf.convert_to_tensor(boxes, tf.float32), [-1, 5])
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    boxes = tf.boolean_mask(boxes, tf.logical_and(wh[:, 0] > 0, wh[:, 1] > 0))[:max_boxes]
    scale = tf.constant([float(input_size[1]), float(input_size[0])], tf.float32)
    xywh = tf.concat([(boxes[:, 0:2] + boxes[:, 2:4]) * 0.5 / scale, (boxes[:, 2:4] - boxes[:, 0:2]) / scale], 1)
    pad = max_boxes - tf.shape(xywh)[0]
    return tf.reshape(tf.pad(xywh, [[0, pad], [0, 0]]), [max_boxes, 4])
