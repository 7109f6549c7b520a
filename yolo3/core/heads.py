"""Head metadata of a YOLO model: which anchors, classes and scale each output uses."""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np

from .layers import YoloHead

__all__ = ["HeadSpec", "head_layers", "get_head_specs", "model_anchors", "model_num_classes", "model_net_size",
           "head_specs_to_json", "head_specs_from_json"]


@dataclass(frozen=True)
class HeadSpec:
    """One YOLO output.

    Args:
        anchors: float32 (A, 2) width, height in network-input pixels.
        mask: their indices in the model's full anchor list.
        num_classes: classes predicted.
        scale_x_y: Darknet's xy scale (1.0 for YOLOv3).
        net_size: (height, width) the network was configured for (the cfg's).
        ignore_thresh: the loss's ignore threshold.
        name: the head layer's name.
        darknet_loss: train with Darknet's (YOLOv4) loss and the keys below (see
            :class:`yolo3.core.layers.YoloHead`); False keeps keras-yolo3's loss.
        iou_thresh: extra positives: anchors of the mask whose shape IoU with a box exceeds it (1.0: off).
        iou_loss: "mse", "giou", "diou" or "ciou".
        iou_normalizer: box loss weight.
        obj_normalizer: objectness loss weight.
        cls_normalizer: carried, no effect (Darknet applies it only with ``counters_per_class``).
        max_delta: clip of the IoU losses' box gradient components; None: off.
        label_smooth_eps: class targets ``y * (1 - eps) + eps / 2``.
    """

    anchors: np.ndarray
    mask: tuple[int, ...]
    num_classes: int
    scale_x_y: float
    net_size: tuple[int, int]
    ignore_thresh: float
    name: str
    darknet_loss: bool = False
    iou_thresh: float = 1.0
    iou_loss: str = "mse"
    iou_normalizer: float = 1.0
    obj_normalizer: float = 1.0
    cls_normalizer: float = 1.0
    max_delta: float | None = None
    label_smooth_eps: float = 0.0

    @property
    def num_anchors(self) -> int:
        return int(self.anchors.shape[0])

    @property
    def channels(self) -> int:
        return self.num_anchors * (5 + self.num_classes)


def head_layers(model) -> list[YoloHead]:
    """The :class:`YoloHead` layer behind each model output, in output order.

    Args:
        model: a Keras YOLO model (converted, built from a cfg or by the factory).

    Raises:
        ValueError: an output is not a YoloHead.
    """
    heads = []
    for out in model.outputs:
        layer = out._keras_history.operation if hasattr(out, "_keras_history") else None
        if not isinstance(layer, YoloHead):
            raise ValueError(
                f"model output {getattr(out, 'name', out)!r} is not a YoloHead layer; "
                "convert the model with convert.py or build it with yolo3.modeling.factory")
        heads.append(layer)
    return heads


def get_head_specs(model) -> list[HeadSpec]:
    """The :class:`HeadSpec` of each model output, in output order.

    Args:
        model: a Keras YOLO model.
    """
    specs = []
    for layer in head_layers(model):
        specs.append(HeadSpec(
            anchors=np.asarray(layer.anchors, np.float32).reshape(-1, 2),
            mask=tuple(layer.mask),
            num_classes=layer.num_classes,
            scale_x_y=layer.scale_x_y,
            net_size=(int(layer.net_size[0]), int(layer.net_size[1])),
            ignore_thresh=layer.ignore_thresh,
            name=layer.name,
            **{k: getattr(layer, k) for k in _LOSS_KEYS},
        ))
    return specs


#: the per-head Darknet loss keys, with their defaults (what an old model or JSON without them gets)
_LOSS_KEYS = {f.name: f.default for f in fields(HeadSpec) if f.name not in (
    "anchors", "mask", "num_classes", "scale_x_y", "net_size", "ignore_thresh", "name")}


def model_anchors(model) -> np.ndarray:
    """All anchors (N, 2) of the model, in network pixels, ordered as the cfg lists them.

    Args:
        model: a Keras YOLO model.

    Returns:
        float32 (N, 2) anchor width, height.
    """
    layer = head_layers(model)[0]
    return np.asarray(layer.all_anchors, np.float32).reshape(-1, 2)


def model_num_classes(model) -> int:
    """Classes the model predicts (every head predicts the same ones).

    Args:
        model: a Keras YOLO model.
    """
    return get_head_specs(model)[0].num_classes


def model_net_size(model) -> tuple[int, int]:
    """(height, width) the network was configured for, in pixels.

    Args:
        model: a Keras YOLO model.
    """
    return get_head_specs(model)[0].net_size


def head_specs_to_json(specs: Sequence[HeadSpec]) -> str:
    """The specs as JSON text (what an ONNX export stores in its metadata).

    Args:
        specs: the head specs, in output order.
    """
    return json.dumps([{
        "name": s.name, "anchors": np.asarray(s.anchors, float).tolist(), "mask": list(s.mask),
        "num_classes": s.num_classes, "scale_x_y": s.scale_x_y, "net_size": list(s.net_size),
        "ignore_thresh": s.ignore_thresh, **{k: getattr(s, k) for k in _LOSS_KEYS}} for s in specs])


def head_specs_from_json(text: str) -> list[HeadSpec]:
    """The specs :func:`head_specs_to_json` wrote (older text without the loss keys gets their defaults).

    Args:
        text: its JSON text.
    """
    return [HeadSpec(anchors=np.asarray(d["anchors"], np.float32).reshape(-1, 2), mask=tuple(d["mask"]),
                     num_classes=int(d["num_classes"]), scale_x_y=float(d["scale_x_y"]),
                     net_size=(int(d["net_size"][0]), int(d["net_size"][1])),
                     ignore_thresh=float(d["ignore_thresh"]), name=str(d["name"]),
                     **{k: d.get(k, default) for k, default in _LOSS_KEYS.items()})
            for d in json.loads(text)]
