"""YOLO Keras models by kind (YOLOv3, YOLOv3-SPP, tiny, YOLOv4, YOLOv4-tiny) or from any Darknet cfg file.

Models are Keras 3 functional models built from Darknet cfg text (see
:mod:`yolo3.modeling.architectures`), so a model built here and one converted from Darknet's cfg share
layer names (``conv_<section>``, ``bn_<section>`` ...) and weights move between them by name.
Input: float32 RGB in 0..1, NHWC. Outputs: raw heads (B, H, W, A*(5+C)) in cfg order (strides 32, 16,
8 for YOLOv3; 8, 16, 32 for YOLOv4).
"""
from __future__ import annotations

import functools
import os
import re
from typing import Sequence

import numpy as np

from ..core.heads import head_layers
from .architectures import (
    DARKNET53_SECTIONS,
    TINY_ANCHORS,
    YOLOV3_ANCHORS,
    YOLOV4_ANCHORS,
    darknet53_body_cfg,
    tiny_yolov3_cfg,
    tiny_yolov4_cfg,
    yolov3_cfg,
    yolov4_cfg,
)
from .builder import build_model_from_cfg
from .cfg import DarknetCfg, Section, parse_cfg, parse_cfg_text

__all__ = ["MODEL_KINDS", "MODEL_CFG_GENERATORS", "KIND_ANCHORS", "darknet_body", "yolo_body", "tiny_yolo_body",
           "create_model", "model_cfg_text", "is_cfg_path", "default_anchors", "model_cfg", "model_name", "section_of",
           "backbone_layers"]


MODEL_KINDS = ("yolov3", "tiny", "yolov3-spp", "yolov4", "yolov4-tiny")

#: model kind -> cfg generator ``(num_classes, anchors, size) -> cfg text``; "yolov3-tiny" is an alias of "tiny"
MODEL_CFG_GENERATORS = {
    "yolov3": yolov3_cfg,
    "yolov3-spp": functools.partial(yolov3_cfg, spp=True),
    "tiny": tiny_yolov3_cfg,
    "yolov3-tiny": tiny_yolov3_cfg,
    "yolov4": yolov4_cfg,
    "yolov4-tiny": tiny_yolov4_cfg,
}

#: model kind -> its default anchors (N, 2) in network pixels: Darknet's COCO anchors of the kind's cfg
KIND_ANCHORS = {"yolov3": YOLOV3_ANCHORS, "yolov3-spp": YOLOV3_ANCHORS, "tiny": TINY_ANCHORS,
                "yolov3-tiny": TINY_ANCHORS, "yolov4": YOLOV4_ANCHORS, "yolov4-tiny": TINY_ANCHORS}


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


def is_cfg_path(kind: str) -> bool:
    """Whether a model ``kind`` names a cfg file rather than a built-in kind.

    Args:
        kind: a key of :data:`MODEL_CFG_GENERATORS`, or a path to a Darknet ``.cfg`` file.
    """
    return kind not in MODEL_CFG_GENERATORS and (kind.lower().endswith(".cfg") or os.path.isfile(kind))


def _head_anchors(sec: Section) -> np.ndarray:
    """All anchors (N, 2) a ``[yolo]`` section lists; CfgError when missing or odd."""
    values = sec.get_floats("anchors") if "anchors" in sec.options else []
    if not values or len(values) % 2:
        raise sec.error("'anchors' must hold a non-empty, even count of numbers", "anchors")
    return np.asarray(values, np.float32).reshape(-1, 2)


def _detector_cfg(path: str) -> DarknetCfg:
    cfg = parse_cfg(path)
    if not cfg.yolo_sections:
        raise cfg.net.error("the cfg has no [yolo] sections: it is not a YOLO detector")
    return cfg


def default_anchors(kind: str) -> np.ndarray:
    """The anchors a kind trains with when none are given: Darknet's of the kind's cfg, or a cfg file's own
    (its first ``[yolo]`` section's ``anchors``).

    Args:
        kind: a key of :data:`MODEL_CFG_GENERATORS` or a cfg path.

    Returns:
        float32 (N, 2) anchor width, height in network-input pixels.

    Raises:
        ValueError: an unknown kind (not a cfg path either).
        DarknetError: the cfg cannot be read or parsed, or has no ``[yolo]`` section.
    """
    if is_cfg_path(kind):
        return _head_anchors(_detector_cfg(kind).yolo_sections[0])
    if kind not in KIND_ANCHORS:
        raise ValueError(f"unknown model kind '{kind}' (choose from {', '.join(MODEL_KINDS)} or a .cfg file)")
    return KIND_ANCHORS[kind].copy()


def _set_option(sec: Section, key: str, value: str) -> None:
    """Set a parsed section's option, keeping the key's line (errors still point at the file)."""
    sec.options[key] = value
    sec.key_lines.setdefault(key, sec.line)


def _cfg_file_model_cfg(path: str, anchors, input_size: Sequence[int] | None) -> DarknetCfg:
    """A cfg file parsed, with ``anchors`` in every ``[yolo]`` section and ``[net]`` sized to ``input_size``."""
    cfg = _detector_cfg(path)
    if anchors is not None:
        a = np.asarray(anchors, np.float32).reshape(-1, 2)
        for sec in cfg.yolo_sections:
            need = len(_head_anchors(sec))
            if len(a) != need:
                raise sec.error(f"this head's anchors list {need} anchors; {len(a)} were given", "anchors")
            _set_option(sec, "anchors", ", ".join(f"{w:g},{h:g}" for w, h in a))
    if input_size is not None:
        _set_option(cfg.net, "height", str(int(input_size[0])))
        _set_option(cfg.net, "width", str(int(input_size[1])))
    return cfg


def model_cfg(kind: str, num_classes: int, anchors: np.ndarray | None = None,
              input_size: Sequence[int] = (416, 416)) -> DarknetCfg:
    """The parsed cfg a model of ``kind`` is built from.

    Args:
        kind: a key of :data:`MODEL_CFG_GENERATORS` (cfg generated for ``num_classes``, ``anchors`` and the
            larger side of ``input_size``), or a path to a Darknet cfg with ``[yolo]`` sections (read as it
            is; ``anchors`` replace every ``[yolo]`` section's, ``[net]`` width and height become
            ``input_size``; the heads are rebuilt for ``num_classes`` when building).
        num_classes: classes the heads predict.
        anchors: (N, 2) anchor sizes in pixels; None for the kind's or the cfg's own.
        input_size: (height, width) of the network input in pixels.

    Raises:
        ValueError: an unknown kind, or anchors the architecture cannot split over its heads.
        DarknetError: the cfg file cannot be read or parsed, has no ``[yolo]`` section, or its heads
            list another anchor count than ``anchors`` (``path:line``).
    """
    if is_cfg_path(kind):
        return _cfg_file_model_cfg(kind, anchors, input_size)
    text = model_cfg_text(kind, num_classes, anchors, max(int(v) for v in input_size))
    return parse_cfg_text(text, f"<{kind}>")


def model_name(kind: str) -> str:
    """The Keras name of a model of ``kind``: ``tiny`` -> ``yolov3-tiny``, a cfg path -> its file stem."""
    if is_cfg_path(kind):
        return os.path.splitext(os.path.basename(kind))[0] or "darknet"
    return {"tiny": "yolov3-tiny"}.get(kind, kind)


def create_model(
    kind: str,
    num_classes: int,
    anchors: np.ndarray | None = None,
    input_shape: Sequence[int | None] = (None, None, 3),
    size: int | Sequence[int] = 416,
):
    """Build a fresh (randomly initialised) detector.

    Args:
        kind: one of :data:`MODEL_KINDS` (or another key of :data:`MODEL_CFG_GENERATORS`), or a path to a
            Darknet ``.cfg`` with ``[yolo]`` sections (any cfg the converter reads; heads rebuilt for
            ``num_classes``).
        num_classes: classes the heads predict.
        anchors: (N, 2) anchor (width, height) in network-input pixels; None for the kind's COCO anchors
            (a cfg's own anchors).
        input_shape: (H, W, C) of the input; H and W may be None so one model serves any multiple of 32.
        size: the network size in pixels recorded in the heads' metadata (the default detection size):
            N, or (height, width).

    Returns:
        A Keras functional model (input float32 RGB 0..1, NHWC; outputs the raw heads), named after the
        kind (``tiny`` -> ``yolov3-tiny``, a cfg path -> the file's stem).

    Raises:
        ValueError: an unknown ``kind``, or an anchor count the architecture cannot split over its heads.
        DarknetError: a cfg path that cannot be read, parsed or built (one line, ``path:line``).
    """
    hw = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    cfg = model_cfg(kind, num_classes, anchors, hw)
    return build_model_from_cfg(cfg, num_classes=num_classes, input_shape=input_shape, name=model_name(kind))


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
