"""Custom Keras layers used by YOLO models; all registered so saved models load with ``safe_mode=True``."""
from __future__ import annotations

import math
from typing import Sequence

import keras
from keras import ops

__all__ = ["YoloHead", "ChannelGroup", "DarknetMaxPool", "IOU_LOSSES"]

#: ``iou_loss`` values (Darknet's ``[yolo] iou_loss``) the loss implements.
IOU_LOSSES = ("mse", "giou", "diou", "ciou")


@keras.saving.register_keras_serializable(package="yolo3")
class YoloHead(keras.layers.Layer):
    """Identity on a raw head convolution (B, H, W, A*(5+C)) that carries the head's metadata.

    The metadata travels inside the saved model so detection cannot pair a model with the wrong
    anchors. Channel layout per cell: anchor-major, each ``tx, ty, tw, th, obj, cls...``.

    Args:
        anchors: this head's (A, 2) anchor width, height in network-input pixels (the ``[yolo]``
            section's masked anchors).
        num_classes: classes C the head predicts.
        mask: indices of ``anchors`` in ``all_anchors``; default ``0..A-1``.
        all_anchors: every anchor (N, 2) of the model in network pixels, in cfg order; default ``anchors``.
        scale_x_y: Darknet's grid-sensitivity factor (1.0 for YOLOv3).
        net_size: the (height, width) in pixels the network was designed for.
        ignore_thresh: Darknet's ``ignore_thresh`` (IoU above which a non-matched prediction is not
            penalised as background).
        backbone_end: the number of leading Darknet sections that form the feature extractor (layers
            named ``*_<i>`` with i below it; model-level, repeated on every head).
        darknet_loss: train this head with Darknet's (AlexeyAB, YOLOv4) loss and the keys below; False
            (YOLOv3 cfgs, whose ``[yolo]`` sections set none of them) keeps keras-yolo3's loss.
        iou_thresh: Darknet's ``iou_thresh``: every anchor of the mask whose shape IoU with a box
            exceeds it is also a positive for that box (1.0: off).
        iou_loss: the box loss: the loss implements ``"mse"``, ``"giou"``, ``"diou"`` and ``"ciou"``
            (:data:`IOU_LOSSES`); another of Darknet's values is carried, and training refuses it.
        iou_normalizer: weight of the box loss.
        obj_normalizer: weight of the objectness loss.
        cls_normalizer: Darknet's ``cls_normalizer`` (Darknet applies it only with
            ``counters_per_class``, so it is carried but does not change the loss).
        max_delta: clip of each box gradient component of the IoU losses; None (or inf): off.
        label_smooth_eps: class targets become ``y * (1 - eps) + eps / 2``.
        **kwargs: passed to :class:`keras.layers.Layer` (``name``, ``dtype``, ...).
    """

    def __init__(
        self,
        anchors: Sequence[Sequence[float]],
        num_classes: int,
        mask: Sequence[int] | None = None,
        all_anchors: Sequence[Sequence[float]] | None = None,
        scale_x_y: float = 1.0,
        net_size: Sequence[int] = (416, 416),
        ignore_thresh: float = 0.5,
        backbone_end: int = 0,
        darknet_loss: bool = False,
        iou_thresh: float = 1.0,
        iou_loss: str = "mse",
        iou_normalizer: float = 1.0,
        obj_normalizer: float = 1.0,
        cls_normalizer: float = 1.0,
        max_delta: float | None = None,
        label_smooth_eps: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.anchors = [[float(w), float(h)] for w, h in anchors]
        self.num_classes = int(num_classes)
        self.mask = [int(m) for m in mask] if mask is not None else list(range(len(self.anchors)))
        self.all_anchors = [[float(w), float(h)] for w, h in (all_anchors or anchors)]
        self.scale_x_y = float(scale_x_y)
        self.net_size = [int(v) for v in net_size]
        self.ignore_thresh = float(ignore_thresh)
        self.backbone_end = int(backbone_end)
        self.darknet_loss = bool(darknet_loss)
        self.iou_thresh = float(iou_thresh)
        self.iou_loss = str(iou_loss)
        self.iou_normalizer = float(iou_normalizer)
        self.obj_normalizer = float(obj_normalizer)
        self.cls_normalizer = float(cls_normalizer)
        self.max_delta = None if max_delta is None or math.isinf(float(max_delta)) else float(max_delta)
        self.label_smooth_eps = float(label_smooth_eps)

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            anchors=self.anchors,
            num_classes=self.num_classes,
            mask=self.mask,
            all_anchors=self.all_anchors,
            scale_x_y=self.scale_x_y,
            net_size=self.net_size,
            ignore_thresh=self.ignore_thresh,
            backbone_end=self.backbone_end,
            darknet_loss=self.darknet_loss,
            iou_thresh=self.iou_thresh,
            iou_loss=self.iou_loss,
            iou_normalizer=self.iou_normalizer,
            obj_normalizer=self.obj_normalizer,
            cls_normalizer=self.cls_normalizer,
            max_delta=self.max_delta,
            label_smooth_eps=self.label_smooth_eps,
        )
        return config


@keras.saving.register_keras_serializable(package="yolo3")
class ChannelGroup(keras.layers.Layer):
    """Darknet ``[route] groups=G group_id=I``: the I-th of G equal channel slices (NHWC).

    Args:
        groups: G, the number of equal slices the channels are cut into.
        group_id: I, the 0-based slice to keep.
        **kwargs: passed to :class:`keras.layers.Layer`.
    """

    def __init__(self, groups: int, group_id: int, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)
        self.group_id = int(group_id)

    def call(self, inputs):
        channels = inputs.shape[-1]
        size = channels // self.groups
        start = size * self.group_id
        return inputs[..., start:start + size]

    def compute_output_shape(self, input_shape):
        c = input_shape[-1]
        return tuple(input_shape[:-1]) + ((c // self.groups) if c is not None else None,)

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups, group_id=self.group_id)
        return config


@keras.saving.register_keras_serializable(package="yolo3")
class DarknetMaxPool(keras.layers.Layer):
    """Max-pooling with Darknet's explicit padding (``pad_before``/``pad_after`` cells of -inf).

    Args:
        size: pooling window (cells, square).
        stride: pooling stride (cells).
        pad_before: -inf cells added above and left.
        pad_after: -inf cells added below and right.
        **kwargs: passed to :class:`keras.layers.Layer`.
    """

    def __init__(self, size: int, stride: int, pad_before: int, pad_after: int, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)
        self.stride = int(stride)
        self.pad_before = int(pad_before)
        self.pad_after = int(pad_after)

    def call(self, inputs):
        pads = [[0, 0], [self.pad_before, self.pad_after], [self.pad_before, self.pad_after], [0, 0]]
        x = ops.pad(inputs, pads, constant_values=float("-inf"))
        return ops.max_pool(x, self.size, self.stride, padding="valid")

    def compute_output_shape(self, input_shape):
        def out(n):
            if n is None:
                return None
            return (n + self.pad_before + self.pad_after - self.size) // self.stride + 1

        return (input_shape[0], out(input_shape[1]), out(input_shape[2]), input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, stride=self.stride, pad_before=self.pad_before, pad_after=self.pad_after)
        return config
