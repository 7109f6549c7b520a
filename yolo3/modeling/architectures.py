"""Darknet cfg text for the architectures the project builds itself (YOLOv3, YOLOv3-SPP, tiny).

Generated here rather than copied, and checked layer by layer against Darknet's own cfgs in the
tests, so that a model built with :func:`yolo3.modeling.factory.yolo_body` has exactly the layers (and layer
names) of a model converted from Darknet's ``yolov3.cfg``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["YOLOV3_ANCHORS", "TINY_ANCHORS", "DARKNET53_SECTIONS", "yolov3_cfg", "tiny_yolov3_cfg",
           "darknet53_body_cfg"]


#: Darknet's COCO anchors (width, height in network pixels at 416/608).
YOLOV3_ANCHORS = np.array(
    [[10, 13], [16, 30], [33, 23], [30, 61], [62, 45], [59, 119], [116, 90], [156, 198], [373, 326]], np.float32)


TINY_ANCHORS = np.array([[10, 14], [23, 27], [37, 58], [81, 82], [135, 169], [344, 319]], np.float32)


#: Darknet-53 is the first 75 sections of yolov3.cfg (52 convolutions + 23 shortcuts).
DARKNET53_SECTIONS = 75


def _net(size: int, channels: int = 3) -> list[str]:
    return [
        "[net]", "batch=64", "subdivisions=16", f"width={size}", f"height={size}", f"channels={channels}",
        "momentum=0.9", "decay=0.0005", "angle=0", "saturation=1.5", "exposure=1.5", "hue=.1",
        "learning_rate=0.001", "burn_in=1000", "max_batches=500200", "policy=steps", "steps=400000,450000",
        "scales=.1,.1", "",
    ]


def _conv(filters: int, size: int, stride: int = 1, bn: bool = True, activation: str = "leaky") -> list[str]:
    lines = ["[convolutional]"]
    if bn:
        lines.append("batch_normalize=1")
    lines += [f"filters={filters}", f"size={size}", f"stride={stride}", "pad=1", f"activation={activation}", ""]
    return lines


def _yolo(mask: Sequence[int], anchors: np.ndarray, classes: int, ignore_thresh: float) -> list[str]:
    flat = ",  ".join(f"{_num(w)},{_num(h)}" for w, h in anchors)
    return [
        "[yolo]", f"mask = {','.join(str(m) for m in mask)}", f"anchors = {flat}", f"classes={classes}",
        f"num={len(anchors)}", "jitter=.3", f"ignore_thresh = {ignore_thresh:g}", "truth_thresh = 1", "random=1", "",
    ]


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{float(v):g}"


def _darknet53() -> list[str]:
    lines = _conv(32, 3)
    for filters, blocks in ((64, 1), (128, 2), (256, 8), (512, 8), (1024, 4)):
        lines += ["# Downsample", ""] + _conv(filters, 3, 2)
        for _ in range(blocks):
            lines += _conv(filters // 2, 1) + _conv(filters, 3) + ["[shortcut]", "from=-3", "activation=linear", ""]
    return lines


def _anchors(anchors, default: np.ndarray, heads: int) -> np.ndarray:
    a = default if anchors is None else np.asarray(anchors, np.float32).reshape(-1, 2)
    if len(a) == 0 or len(a) % heads:
        raise ValueError(f"this architecture has {heads} heads: the anchor count must be a positive multiple "
                         f"of it, got {len(a)}")
    return a


def _masks(count: int, heads: int) -> list[list[int]]:
    """Masks in cfg order: the largest anchors go to the coarsest (first) head."""
    n = count // heads
    return [list(range(n * (heads - 1 - h), n * (heads - h))) for h in range(heads)]


def yolov3_cfg(
    num_classes: int = 80,
    anchors: np.ndarray | None = None,
    size: int = 416,
    spp: bool = False,
    ignore_thresh: float = 0.5,
) -> str:
    """Cfg text of YOLOv3 (Darknet-53 + 3-scale FPN head), or YOLOv3-SPP with ``spp=True``.

    Heads in cfg order: stride 32 (anchors 6,7,8), 16 (3,4,5), 8 (0,1,2).

    Args:
        num_classes: classes of the ``[yolo]`` layers (``classes=``); each head outputs
            anchors_per_head * (5 + num_classes) channels.
        anchors: (N, 2) anchor (width, height) in network-input pixels, N a positive multiple of 3
            (anything that reshapes to that); default :data:`YOLOV3_ANCHORS` (Darknet's COCO anchors).
        size: network input width and height in pixels (``[net]`` ``width=``/``height=``), a multiple of 32.
        spp: add the SPP block (max-pools 5, 9, 13) of YOLOv3-SPP before the first head.
        ignore_thresh: the ``[yolo]`` ``ignore_thresh``; defaults to keras-yolo3's 0.5 (Darknet's own
            cfg says 0.7).

    Returns:
        The cfg text, one section per block, parseable by :func:`yolo3.modeling.cfg.parse_cfg_text`.

    Raises:
        ValueError: the anchor count is zero or not a multiple of the 3 heads.
    """
    a = _anchors(anchors, YOLOV3_ANCHORS, 3)
    masks = _masks(len(a), 3)
    out = len(masks[0]) * (5 + num_classes)
    lines = _net(size) + _darknet53()
    lines += _conv(512, 1) + _conv(1024, 3) + _conv(512, 1)
    if spp:
        lines += ["### SPP ###", "[maxpool]", "stride=1", "size=5", "", "[route]", "layers=-2", "",
                  "[maxpool]", "stride=1", "size=9", "", "[route]", "layers=-4", "",
                  "[maxpool]", "stride=1", "size=13", "", "[route]", "layers=-1,-3,-5,-6", "", "### End SPP ###", ""]
        lines += _conv(512, 1) + _conv(1024, 3) + _conv(512, 1) + _conv(1024, 3)
    else:
        lines += _conv(1024, 3) + _conv(512, 1) + _conv(1024, 3)
    lines += _conv(out, 1, bn=False, activation="linear") + _yolo(masks[0], a, num_classes, ignore_thresh)
    for filters, skip, mask in ((256, 61, masks[1]), (128, 36, masks[2])):
        lines += ["[route]", "layers = -4", ""] + _conv(filters, 1) + ["[upsample]", "stride=2", ""]
        lines += ["[route]", f"layers = -1, {skip}", ""]
        for _ in range(3):
            lines += _conv(filters, 1) + _conv(filters * 2, 3)
        lines += _conv(out, 1, bn=False, activation="linear") + _yolo(mask, a, num_classes, ignore_thresh)
    return "\n".join(lines)


def tiny_yolov3_cfg(
    num_classes: int = 80, anchors: np.ndarray | None = None, size: int = 416, ignore_thresh: float = 0.5
) -> str:
    """Cfg text of YOLOv3-tiny. Heads: stride 32 (anchors 3,4,5), stride 16 (0,1,2).

    Args:
        num_classes: classes of the ``[yolo]`` layers (``classes=``).
        anchors: (N, 2) anchor (width, height) in network-input pixels, N a positive multiple of 2;
            default :data:`TINY_ANCHORS`.
        size: network input width and height in pixels, a multiple of 32.
        ignore_thresh: the ``[yolo]`` ``ignore_thresh`` (keras-yolo3's 0.5 by default).

    Returns:
        The cfg text.

    Raises:
        ValueError: the anchor count is zero or not a multiple of the 2 heads.
    """
    a = _anchors(anchors, TINY_ANCHORS, 2)
    masks = _masks(len(a), 2)
    out = len(masks[0]) * (5 + num_classes)
    lines = _net(size)
    for i, filters in enumerate((16, 32, 64, 128, 256, 512)):
        lines += _conv(filters, 3) + ["[maxpool]", "size=2", f"stride={1 if i == 5 else 2}", ""]
    lines += _conv(1024, 3) + ["###########", ""] + _conv(256, 1) + _conv(512, 3)
    lines += _conv(out, 1, bn=False, activation="linear") + _yolo(masks[0], a, num_classes, ignore_thresh)
    lines += ["[route]", "layers = -4", ""] + _conv(128, 1) + ["[upsample]", "stride=2", ""]
    lines += ["[route]", "layers = -1, 8", ""] + _conv(256, 3)
    lines += _conv(out, 1, bn=False, activation="linear") + _yolo(masks[1], a, num_classes, ignore_thresh)
    return "\n".join(lines)


def darknet53_body_cfg(size: int = 416) -> str:
    """Cfg text of the Darknet-53 feature extractor alone (no classifier, no heads).

    Args:
        size: network input width and height in pixels (``[net]`` ``width=``/``height=``).

    Returns:
        The cfg text: ``[net]`` then the :data:`DARKNET53_SECTIONS` sections of Darknet-53.
    """
    return "\n".join(_net(size) + _darknet53())
