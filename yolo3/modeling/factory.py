"""YOLOv3 Keras models: Darknet-53, the full and tiny detectors, saving and weight transfer.

Models are Keras 3 functional models built from Darknet cfg text (see
:mod:`yolo3.modeling.architectures`), so a model built here and one converted from Darknet's cfg share
layer names (``conv_<section>``, ``bn_<section>`` ...) and weights move between them by name.
Input: float32 RGB in 0..1, NHWC. Outputs: raw heads (B, H, W, A*(5+C)), strides 32, 16(, 8).
"""
from __future__ import annotations

import functools
import re
from typing import Sequence

import numpy as np

from ..core.heads import head_layers
from .architectures import (
    DARKNET53_SECTIONS,
    TINY_ANCHORS,
    YOLOV3_ANCHORS,
    darknet53_body_cfg,
    tiny_yolov3_cfg,
    yolov3_cfg,
)
from .builder import build_model_from_cfg
from .cfg import parse_cfg_text

__all__ = ["MODEL_KINDS", "MODEL_CFG_GENERATORS", "darknet_body", "yolo_body", "tiny_yolo_body", "create_model",
           "model_cfg_text", "section_of", "backbone_layers"]


MODEL_KINDS = ("yolov3", "tiny", "yolov3-spp")

#: model kind -> cfg generator ``(num_classes, anchors, size) -> cfg text``; "yolov3-tiny" is an alias of "tiny"
MODEL_CFG_GENERATORS = {
    "yolov3": yolov3_cfg,
    "yolov3-spp": functools.partial(yolov3_cfg, spp=True),
    "tiny": tiny_yolov3_cfg,
    "yolov3-tiny": tiny_yolov3_cfg,
}


def model_cfg_text(kind: str, num_classes: int, anchors: np.ndarray | None = None, size: int = 416) -> str:
    """Darknet cfg text of a model kind (``yolov3``, ``tiny``, ``yolov3-spp``).

    Args:
        kind: a key of :data:`MODEL_CFG_GENERATORS`.
        num_classes: classes the heads predict.
        anchors: (N, 2) anchor sizes in pixels; None for the kind's COCO anchors.
        size: the network size written to the cfg (pixels).
    """
    generator = MODEL_CFG_GENERATORS.get(kind)
    if generator is None:
        raise ValueError(f"unknown model kind '{kind}' (choose from {', '.join(MODEL_KINDS)})")
    return generator(num_classes, anchors, size)


def create_model(
    kind: str,
    num_classes: int,
    anchors: np.ndarray | None = None,
    input_shape: Sequence[int | None] = (None, None, 3),
    size: int = 416,
):
    """Build a fresh (randomly initialised) detector.

    Args:
        kind: one of :data:`MODEL_KINDS` (or another key of :data:`MODEL_CFG_GENERATORS`).
        num_classes: classes the heads predict.
        anchors: (N, 2) anchor (width, height) in network-input pixels; None for the kind's COCO anchors.
        input_shape: (H, W, C) of the input; H and W may be None so one model serves any multiple of 32.
        size: the network size in pixels recorded in the heads' metadata (the default detection size).

    Returns:
        A Keras functional model (input float32 RGB 0..1, NHWC; outputs the raw heads), named after the
        kind (``tiny`` -> ``yolov3-tiny``).

    Raises:
        ValueError: an unknown ``kind``, or an anchor count the architecture cannot split over its heads.
    """
    text = model_cfg_text(kind, num_classes, anchors, size)
    cfg = parse_cfg_text(text, f"<{kind}>")
    name = {"tiny": "yolov3-tiny"}.get(kind, kind)
    return build_model_from_cfg(cfg, input_shape=input_shape, name=name)


def _from_inputs(text: str, inputs, name: str):
    return build_model_from_cfg(parse_cfg_text(text, f"<{name}>"), inputs=inputs, name=name)


def _body_anchors(anchors, default: np.ndarray, num_anchors: int, heads: int, who: str) -> np.ndarray:
    if anchors is None:
        if num_anchors != 3:
            raise ValueError(f"{who}: give anchors when num_anchors is not 3")
        anchors = default
    anchors = np.asarray(anchors, np.float32).reshape(-1, 2)
    if len(anchors) != heads * num_anchors:
        raise ValueError(f"{who} needs {heads} x {num_anchors} anchors, got {len(anchors)}")
    return anchors


def darknet_body(inputs):
    """Darknet-53 feature extractor on ``inputs``: a Model whose output has stride 32, 1024 channels.

    Args:
        inputs: a Keras input tensor (B, H, W, 3), float32 RGB 0..1, H and W multiples of 32.
    """
    return _from_inputs(darknet53_body_cfg(), inputs, "darknet53")


def yolo_body(inputs, num_anchors: int, num_classes: int, anchors: np.ndarray | None = None):
    """YOLOv3 on ``inputs`` with ``num_anchors`` anchors per scale (keras-yolo3's signature).

    Outputs in order: stride 32, 16, 8. For 80 classes: 62,001,757 parameters.

    Args:
        inputs: a Keras input tensor (B, H, W, 3), float32 RGB 0..1, H and W multiples of 32.
        num_anchors: anchors per scale.
        num_classes: classes the heads predict.
        anchors: (3 * num_anchors, 2) anchor sizes in pixels; None for :data:`YOLOV3_ANCHORS`
            (only with ``num_anchors=3``).

    Returns:
        A Keras model with outputs (B, H/s, W/s, num_anchors * (5 + num_classes)), s = 32, 16, 8.

    Raises:
        ValueError: no anchors with ``num_anchors != 3``, or not 3 x ``num_anchors`` of them.
    """
    anchors = _body_anchors(anchors, YOLOV3_ANCHORS, num_anchors, 3, "yolo_body")
    return _from_inputs(yolov3_cfg(num_classes, anchors), inputs, "yolov3")


def tiny_yolo_body(inputs, num_anchors: int, num_classes: int, anchors: np.ndarray | None = None):
    """YOLOv3-tiny on ``inputs``; outputs stride 32, 16. For 80 classes: 8,858,734 parameters.

    Args:
        inputs: a Keras input tensor (B, H, W, 3), float32 RGB 0..1, H and W multiples of 32.
        num_anchors: anchors per scale.
        num_classes: classes the heads predict.
        anchors: (2 * num_anchors, 2) anchor sizes in pixels; None for :data:`TINY_ANCHORS`
            (only with ``num_anchors=3``).

    Raises:
        ValueError: no anchors with ``num_anchors != 3``, or not 2 x ``num_anchors`` of them.
    """
    anchors = _body_anchors(anchors, TINY_ANCHORS, num_anchors, 2, "tiny_yolo_body")
    return _from_inputs(tiny_yolov3_cfg(num_classes, anchors), inputs, "yolov3-tiny")


_SECTION_RE = re.compile(r"^[a-z]+_(\d+)(?:_.*)?$")


def section_of(layer_name: str) -> int | None:
    """Darknet section index encoded in a layer name (``conv_12`` -> 12); None for others.

    Args:
        layer_name: a Keras layer name; ``yolo_*`` (head) layers give None.
    """
    if layer_name.startswith("yolo_"):
        return None
    m = _SECTION_RE.match(layer_name)
    return int(m.group(1)) if m else None


def backbone_layers(model) -> list:
    """The layers of the feature extractor (Darknet-53 for YOLOv3), for ``freeze_body=1``.

    Args:
        model: a YOLO model built from cfg (section-numbered layer names, YoloHead metadata); its heads'
            ``backbone_end`` marks the end, else the first :data:`DARKNET53_SECTIONS` sections.

    Returns:
        The layers whose Darknet section index is below that end, in model order.
    """

    end = head_layers(model)[0].backbone_end
    if end <= 0:
        end = DARKNET53_SECTIONS
    out = []
    for layer in model.layers:
        s = section_of(layer.name)
        if s is not None and s < end:
            out.append(layer)
    return out
