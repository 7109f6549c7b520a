"""Darknet cfg text for the architectures the project builds itself (YOLOv3, YOLOv3-SPP, YOLOv3-tiny,
YOLOv4, YOLOv4-tiny).

Generated here rather than copied, and checked section by section against Darknet's own cfgs in the
tests, so that a model built with :func:`yolo3.modeling.factory.create_model` has exactly the layers (and
layer names) of a model converted from Darknet's cfg. The YOLOv4 cfgs keep the ``[yolo]`` training keys
of Darknet's (``scale_x_y``, ``iou_thresh``, ``iou_loss=ciou``, ``iou_normalizer`` ...), which the loss
reads from each head.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["YOLOV3_ANCHORS", "TINY_ANCHORS", "YOLOV4_ANCHORS", "DARKNET53_SECTIONS", "CSPDARKNET53_SECTIONS",
           "yolov3_cfg", "tiny_yolov3_cfg", "yolov4_cfg", "tiny_yolov4_cfg", "darknet53_body_cfg"]


#: Darknet's COCO anchors (width, height in network pixels at 416/608).
YOLOV3_ANCHORS = np.array(
    [[10, 13], [16, 30], [33, 23], [30, 61], [62, 45], [59, 119], [116, 90], [156, 198], [373, 326]], np.float32)


TINY_ANCHORS = np.array([[10, 14], [23, 27], [37, 58], [81, 82], [135, 169], [344, 319]], np.float32)

#: YOLOv4's COCO anchors (yolov4.cfg; YOLOv4-tiny uses :data:`TINY_ANCHORS`, as yolov4-tiny.cfg does).
YOLOV4_ANCHORS = np.array(
    [[12, 16], [19, 36], [40, 28], [36, 75], [76, 55], [72, 146], [142, 110], [192, 243], [459, 401]], np.float32)


#: Darknet-53 is the first 75 sections of yolov3.cfg (52 convolutions + 23 shortcuts).
DARKNET53_SECTIONS = 75

#: CSPDarknet53 is the first 105 sections of yolov4.cfg (0..104, through the last stage's 1x1 transition).
CSPDARKNET53_SECTIONS = 105


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


# --- YOLOv4 -------------------------------------------------------------------------------------

#: [net] training options of Darknet's yolov4.cfg / yolov4-tiny.cfg (width/height come from ``size``).
_YOLOV4_NET = ("batch=64", "subdivisions=8", "momentum=0.949", "decay=0.0005", "angle=0", "saturation = 1.5",
               "exposure = 1.5", "hue=.1", "learning_rate=0.0013", "burn_in=1000", "max_batches = 500500",
               "policy=steps", "steps=400000,450000", "scales=.1,.1", "mosaic=1")
_TINY_V4_NET = ("batch=64", "subdivisions=1", "momentum=0.9", "decay=0.0005", "angle=0", "saturation = 1.5",
                "exposure = 1.5", "hue=.1", "learning_rate=0.00261", "burn_in=1000", "max_batches = 2000200",
                "policy=steps", "steps=1600000,1800000", "scales=.1,.1")


def _net_v4(size: int, options: Sequence[str]) -> list[str]:
    head, tail = options[:2], options[2:]
    return ["[net]", *head, f"width={size}", f"height={size}", "channels=3", *tail, ""]


def _yolo_v4(mask: Sequence[int], anchors: np.ndarray, classes: int, before: Sequence[str],
             after: Sequence[str]) -> list[str]:
    """A ``[yolo]`` section: mask, anchors, classes and num, then Darknet's training keys as its cfg
    lists them (``before`` the generated keys' siblings, ``after`` them)."""
    flat = ", ".join(f"{_num(w)}, {_num(h)}" for w, h in anchors)
    return ["[yolo]", f"mask = {','.join(str(m) for m in mask)}", f"anchors = {flat}", f"classes={classes}",
            f"num={len(anchors)}", *before, *after, ""]


def _csp_stage(filters: int, blocks: int, first: bool) -> list[str]:
    """One CSPDarknet53 stage: a stride-2 convolution, a 1x1 split into two parts, ``blocks`` residual
    blocks on one part, a 1x1 on it, the two parts joined by a route and a 1x1 transition.
    The first stage keeps ``filters`` channels in each part (later ones halve them)."""
    part = filters if first else filters // 2
    hidden = filters // 2
    lines = ["# Downsample", ""] + _conv(filters, 3, 2, activation="mish")
    lines += _conv(part, 1, activation="mish") + ["[route]", "layers = -2", ""] + _conv(part, 1, activation="mish")
    for _ in range(blocks):
        lines += _conv(hidden, 1, activation="mish") + _conv(part, 3, activation="mish")
        lines += ["[shortcut]", "from=-3", "activation=linear", ""]
    lines += _conv(part, 1, activation="mish") + ["[route]", f"layers = -1,-{3 * blocks + 4}", ""]
    return lines + _conv(filters, 1, activation="mish")


def _cspdarknet53() -> list[str]:
    """CSPDarknet53: :data:`CSPDARKNET53_SECTIONS` sections; sections 54 and 85 end the stride-8 and
    stride-16 stages (the PANet neck routes to them), 104 the stride-32 one."""
    lines = _conv(32, 3, activation="mish")
    for i, (filters, blocks) in enumerate(((64, 1), (128, 2), (256, 8), (512, 8), (1024, 4))):
        lines += _csp_stage(filters, blocks, first=i == 0)
    return lines


#: training keys of each yolov4.cfg head (strides 8, 16, 32): (keys before ``random``, keys after)
_YOLOV4_HEAD_KEYS = ("jitter=.3", "ignore_thresh = .7", "truth_thresh = 1")
_YOLOV4_LOSS_KEYS = ("iou_thresh=0.213", "cls_normalizer=1.0", "iou_normalizer=0.07", "iou_loss=ciou",
                     "nms_kind=greedynms", "beta_nms=0.6", "max_delta=5")
_YOLOV4_SCALE_X_Y = (1.2, 1.1, 1.05)


def yolov4_cfg(num_classes: int = 80, anchors: np.ndarray | None = None, size: int = 416) -> str:
    """Cfg text of YOLOv4 (CSPDarknet53 + SPP + PANet, Mish in the body, leaky in the neck), as
    Darknet's ``yolov4.cfg``.

    Heads in cfg order: stride 8 (anchors 0,1,2), 16 (3,4,5), 32 (6,7,8), each with Darknet's training
    keys: ``scale_x_y`` 1.2 / 1.1 / 1.05, ``iou_thresh=0.213``, ``iou_loss=ciou``, ``iou_normalizer=0.07``,
    ``cls_normalizer=1.0``, ``ignore_thresh=.7``, ``max_delta=5``. For 80 classes: 64,429,405 parameters.

    Args:
        num_classes: classes of the ``[yolo]`` layers; each head outputs anchors_per_head * (5 + num_classes)
            channels.
        anchors: (N, 2) anchor (width, height) in network-input pixels, N a positive multiple of 3 (the
            smallest third to the stride-8 head); default :data:`YOLOV4_ANCHORS`.
        size: network input width and height in pixels (``[net]``), a multiple of 32 (Darknet's cfg: 608).

    Returns:
        The cfg text, parseable by :func:`yolo3.modeling.cfg.parse_cfg_text`.

    Raises:
        ValueError: the anchor count is zero or not a multiple of the 3 heads.
    """
    a = _anchors(anchors, YOLOV4_ANCHORS, 3)
    masks = _masks(len(a), 3)[::-1]  # smallest anchors first: the stride-8 head comes first
    out = len(masks[0]) * (5 + num_classes)
    lines = _net_v4(size, _YOLOV4_NET) + _cspdarknet53() + ["##########################", ""]
    lines += _conv(512, 1) + _conv(1024, 3) + _conv(512, 1)
    lines += ["### SPP ###", "[maxpool]", "stride=1", "size=5", "", "[route]", "layers=-2", "",
              "[maxpool]", "stride=1", "size=9", "", "[route]", "layers=-4", "",
              "[maxpool]", "stride=1", "size=13", "", "[route]", "layers=-1,-3,-5,-6", "", "### End SPP ###", ""]
    lines += _conv(512, 1) + _conv(1024, 3) + _conv(512, 1)
    for filters, lateral in ((256, 85), (128, 54)):  # top-down: upsample, join the body's stage output
        lines += _conv(filters, 1) + ["[upsample]", "stride=2", "", "[route]", f"layers = {lateral}", ""]
        lines += _conv(filters, 1) + ["[route]", "layers = -1, -3", ""]
        lines += _conv(filters, 1) + _conv(filters * 2, 3) + _conv(filters, 1) + _conv(filters * 2, 3)
        lines += _conv(filters, 1)
    lines += ["##########################", ""]
    for h, (filters, join) in enumerate(((128, None), (256, 16), (512, 37))):  # bottom-up
        if join is not None:
            lines += ["[route]", "layers = -4", ""] + _conv(filters, 3, 2)
            lines += ["[route]", f"layers = -1, -{join}", ""]
            lines += _conv(filters, 1) + _conv(filters * 2, 3) + _conv(filters, 1) + _conv(filters * 2, 3)
            lines += _conv(filters, 1)
        lines += _conv(filters * 2, 3) + _conv(out, 1, bn=False, activation="linear")
        before = _YOLOV4_HEAD_KEYS + (("random=1",) if h == 2 else ())
        lines += _yolo_v4(masks[h], a, num_classes, before,
                          (f"scale_x_y = {_YOLOV4_SCALE_X_Y[h]:g}",) + _YOLOV4_LOSS_KEYS)
    return "\n".join(lines)


#: training keys of each yolov4-tiny.cfg head, in its order
_TINY_V4_HEAD_KEYS = ("jitter=.3", "scale_x_y = 1.05", "cls_normalizer=1.0", "iou_normalizer=0.07",
                      "iou_loss=ciou", "ignore_thresh = .7", "truth_thresh = 1", "random=0", "resize=1.5",
                      "nms_kind=greedynms", "beta_nms=0.6")


def _tiny_v4_masks(count: int) -> list[list[int]]:
    """Darknet's yolov4-tiny masks for 6 anchors (3,4,5 then 1,2,3: anchor 0 unused, as its cfg and
    pretrained weights have it); an even split, largest anchors first, for other counts."""
    return [[3, 4, 5], [1, 2, 3]] if count == 6 else _masks(count, 2)


def _csp_tiny_block(filters: int) -> list[str]:
    """A CSPDarknet53-tiny block: 3x3 convolution, route to its second channel half, two 3x3 convolutions
    joined, 1x1, joined with the first convolution, stride-2 max-pool (10 sections)."""
    half = filters // 2
    lines = _conv(filters, 3) + ["[route]", "layers=-1", "groups=2", "group_id=1", ""]
    lines += _conv(half, 3) + _conv(half, 3) + ["[route]", "layers = -1,-2", ""] + _conv(filters, 1)
    return lines + ["[route]", "layers = -6,-1", "", "[maxpool]", "size=2", "stride=2", ""]


def tiny_yolov4_cfg(num_classes: int = 80, anchors: np.ndarray | None = None, size: int = 416) -> str:
    """Cfg text of YOLOv4-tiny (CSPDarknet53-tiny + a 2-scale FPN), as Darknet's ``yolov4-tiny.cfg``.

    Heads in cfg order: stride 32 (anchors 3,4,5), stride 16 (1,2,3) for 6 anchors (Darknet's masks);
    ``scale_x_y=1.05``, ``iou_loss=ciou``, ``iou_normalizer=0.07``, ``ignore_thresh=.7``. For 80
    classes: 6,062,814 parameters.

    Args:
        num_classes: classes of the ``[yolo]`` layers.
        anchors: (N, 2) anchor (width, height) in network-input pixels, N a positive multiple of 2;
            default :data:`TINY_ANCHORS`. Other counts than 6 are split evenly, largest to stride 32.
        size: network input width and height in pixels, a multiple of 32.

    Returns:
        The cfg text.

    Raises:
        ValueError: the anchor count is zero or not a multiple of the 2 heads.
    """
    a = _anchors(anchors, TINY_ANCHORS, 2)
    masks = _tiny_v4_masks(len(a))
    lines = _net_v4(size, _TINY_V4_NET) + _conv(32, 3, 2) + _conv(64, 3, 2)
    for filters in (64, 128, 256):
        lines += _csp_tiny_block(filters)
    lines += _conv(512, 3) + ["##################################", ""] + _conv(256, 1) + _conv(512, 3)
    lines += _conv(len(masks[0]) * (5 + num_classes), 1, bn=False, activation="linear")
    lines += _yolo_v4(masks[0], a, num_classes, _TINY_V4_HEAD_KEYS, ())
    lines += ["[route]", "layers = -4", ""] + _conv(128, 1) + ["[upsample]", "stride=2", ""]
    lines += ["[route]", "layers = -1, 23", ""] + _conv(256, 3)
    lines += _conv(len(masks[1]) * (5 + num_classes), 1, bn=False, activation="linear")
    lines += _yolo_v4(masks[1], a, num_classes, _TINY_V4_HEAD_KEYS, ())
    return "\n".join(lines)
