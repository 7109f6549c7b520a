"""Building the Keras functional model a parsed Darknet cfg describes.

The built model computes what Darknet computes: NHWC float32 RGB input in 0..1, and, for a
detector, one raw output (B, H, W, A*(5+C)) per ``[yolo]`` section in cfg order, each wrapped by a
:class:`yolo3.core.layers.YoloHead` carrying the anchors, mask, classes and ``scale_x_y``. Layers are
named after their Darknet section index (``conv_12``, ``bn_12``, ``act_12``, ``yolo_0`` ...), so
weights move between models of the same architecture by name. One small function per section type
(:data:`_SECTION_BUILDERS`).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Sequence

import keras
import numpy as np
from tqdm import tqdm

from ..core.layers import ChannelGroup, DarknetMaxPool, YoloHead
from .cfg import DarknetCfg, Section

__all__ = ["build_model_from_cfg", "BN_EPSILON"]


#: Darknet normalises with ``(x - mean) / (sqrt(var) + 1e-6)``; Keras' ``sqrt(var + eps)`` with
#: eps = 1e-6 matches it to float precision for any variance the real weights hold (Keras'
#: default 1e-3 moves raw outputs of the real yolov3-tiny weights by up to 0.6).
BN_EPSILON = 1e-6


def _conv_geometry(sec: Section) -> tuple[int, int, int, int, int]:
    """(filters, size, stride, pad, groups) with Darknet's padding rule."""
    filters = sec.get_int("filters", 1)
    size = sec.get_int("size", 1)
    stride = sec.get_int("stride", 1)
    pad = size // 2 if sec.get_int("pad", 0) else sec.get_int("padding", 0)
    groups = sec.get_int("groups", 1)
    return filters, size, stride, pad, groups


def _resolve_index(sec: Section, index: int, ref: int, key: str) -> int:
    target = index + ref if ref < 0 else ref
    if not 0 <= target < index:
        raise sec.error(f"'{key}' refers to layer {ref}, which resolves to {target}, outside 0..{index - 1}", key)
    return target


def backbone_end_of(cfg: DarknetCfg) -> int:
    """Number of leading sections that form the feature extractor (for ``freeze_body=1``).

    The body ends after the last residual ``[shortcut]`` that follows the last down-sampling
    layer (Darknet-53: 75 sections of yolov3.cfg), or right after the last down-sampling layer where
    there are no residual blocks (tiny models). A CSP stage's closing convolution, route (joining a
    layer of the same stage) and 1x1 transition belong to it (CSPDarknet53: 105 sections of yolov4.cfg).
    """
    last_down = -1
    for i, sec in enumerate(cfg.layers):
        if sec.type in ("convolutional", "maxpool") and sec.get_int("stride", 1) > 1:
            last_down = i
        if sec.type == "yolo":
            break
    end = last_down + 1
    for i in range(last_down + 1, len(cfg.layers)):
        sec = cfg.layers[i]
        if sec.type == "yolo":
            break
        if sec.type == "shortcut":
            end = i + 1
    if end > last_down + 1 and _closes_csp_stage(cfg, end, last_down):
        end += 3
    return end


def _closes_csp_stage(cfg: DarknetCfg, i: int, last_down: int) -> bool:
    """Sections i..i+2 are convolution, route [-1, a layer after ``last_down``], convolution."""
    secs = cfg.layers[i:i + 3]
    if [s.type for s in secs] != ["convolutional", "route", "convolutional"]:
        return False
    refs = [r + i + 1 if r < 0 else r for r in secs[1].get_ints("layers")]
    return len(refs) == 2 and refs[0] == i and last_down < refs[1] < i


@dataclass
class _BuildState:
    """What building one cfg accumulates: each section's output tensor (Darknet index = list index)
    and the YoloHead outputs in cfg order."""

    cfg: DarknetCfg
    num_classes: int | None
    inputs: object
    outputs: list = field(default_factory=list)
    heads: list = field(default_factory=list)

    def previous(self, i: int):
        return self.outputs[i - 1] if i > 0 else self.inputs


def _conv_section(state: _BuildState, i: int, sec: Section, prev):
    filters, size, stride, pad, groups = _conv_geometry(sec)
    layers = state.cfg.layers
    nxt = layers[i + 1] if i + 1 < len(layers) else None
    if nxt is not None and nxt.type == "yolo" and state.num_classes is not None:
        filters = _yolo_num_anchors(nxt) * (5 + state.num_classes)
    bn = bool(sec.get_int("batch_normalize", 0))
    x = prev
    if stride == 1 and 2 * pad == size - 1:
        padding = "same"
    else:
        padding = "valid"
        if pad:
            x = keras.layers.ZeroPadding2D(pad, name=f"pad_{i}")(x)
    x = keras.layers.Conv2D(
        filters, size, strides=stride, padding=padding, groups=groups, use_bias=not bn, name=f"conv_{i}")(x)
    if bn:
        x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=f"bn_{i}")(x)
    return _activation(sec.options.get("activation", "logistic"), f"act_{i}")(x)


def _maxpool_section(state: _BuildState, i: int, sec: Section, prev):
    size = sec.get_int("size", 1)
    stride = sec.get_int("stride", 1)
    padding = sec.get_int("padding", size - 1)
    return _maxpool(prev, size, stride, padding, f"pool_{i}")


def _avgpool_section(state: _BuildState, i: int, sec: Section, prev):
    return keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"pool_{i}")(prev)


def _upsample_section(state: _BuildState, i: int, sec: Section, prev):
    x = keras.layers.UpSampling2D(sec.get_int("stride", 2), interpolation="nearest", name=f"upsample_{i}")(prev)
    scale = sec.get_float("scale", 1.0)
    if scale != 1.0:
        x = keras.layers.Rescaling(scale, name=f"upsample_scale_{i}")(x)
    return x


def _route_section(state: _BuildState, i: int, sec: Section, prev):
    refs = [_resolve_index(sec, i, r, "layers") for r in sec.get_ints("layers")]
    groups = sec.get_int("groups", 1)
    group_id = sec.get_int("group_id", 0)
    parts = []
    for k, r in enumerate(refs):
        t = state.outputs[r]
        if groups > 1:
            if t.shape[-1] % groups:
                raise sec.error(f"layer {r} has {t.shape[-1]} channels, not divisible by groups={groups}")
            t = _channel_group(t, groups, group_id, f"route_{i}_group{k}" if len(refs) > 1 else f"route_{i}")
        parts.append(t)
    if len(parts) == 1:
        return parts[0]
    _check_spatial(sec, parts, refs)
    return keras.layers.Concatenate(axis=-1, name=f"route_{i}")(parts)


def _shortcut_section(state: _BuildState, i: int, sec: Section, prev):
    ref = _resolve_index(sec, i, sec.get_int("from"), "from")
    other = state.outputs[ref]
    if other.shape[-1] != prev.shape[-1]:
        raise sec.error(f"shortcut from layer {ref} has {other.shape[-1]} channels, layer {i - 1} has {prev.shape[-1]}")
    x = keras.layers.Add(name=f"shortcut_{i}")([prev, other])
    act = sec.options.get("activation", "linear")
    return _activation(act, f"act_{i}")(x) if act != "linear" else x


def _softmax_section(state: _BuildState, i: int, sec: Section, prev):
    return keras.layers.Softmax(axis=-1, name=f"softmax_{i}")(prev)


def _dropout_section(state: _BuildState, i: int, sec: Section, prev):
    return keras.layers.Dropout(sec.get_float("probability", 0.5), name=f"dropout_{i}")(prev)


def _yolo_section(state: _BuildState, i: int, sec: Section, prev):
    cfg = state.cfg
    spec = yolo_head_config(sec, state.num_classes, (cfg.height, cfg.width), backbone_end_of(cfg))
    expected = len(spec["mask"]) * (5 + spec["num_classes"])
    if prev.shape[-1] != expected:
        raise sec.error(
            f"the layer before it has {prev.shape[-1]} filters but {len(spec['mask'])} anchors x "
            f"(5 + {spec['num_classes']} classes) = {expected} are needed")
    x = YoloHead(name=f"yolo_{len(state.heads)}", dtype="float32", **spec)(prev)  # float32 under mixed precision
    state.heads.append(x)
    return x


#: section type -> function(state, index, section, previous output) -> this section's output
_SECTION_BUILDERS = {
    "convolutional": _conv_section, "maxpool": _maxpool_section, "avgpool": _avgpool_section,
    "upsample": _upsample_section, "route": _route_section, "shortcut": _shortcut_section,
    "softmax": _softmax_section, "dropout": _dropout_section, "yolo": _yolo_section,
}


def build_model_from_cfg(
    cfg: DarknetCfg,
    num_classes: int | None = None,
    input_shape: Sequence[int | None] = (None, None, None),
    name: str | None = None,
    progress: bool = False,
    inputs=None,
) -> keras.Model:
    """Build the Keras functional model a cfg describes (weights freshly initialised).

    Args:
        cfg: the parsed cfg (:func:`yolo3.modeling.cfg.parse_cfg`).
        num_classes: overrides every ``[yolo]`` section's ``classes`` (and the filters of the
            convolution feeding it); None keeps the cfg's.
        input_shape: (H, W, C); None keeps the spatial size free and the channel count from ``[net]``.
        name: the model's name (default: the cfg file's stem).
        progress: show a tqdm bar over the sections.
        inputs: a Keras input tensor that replaces ``input_shape``.

    Returns:
        A functional model whose outputs are the YoloHead outputs in cfg order (the last
        section's output for a cfg without ``[yolo]``).
    """
    if inputs is None:
        h, w, c = (list(input_shape) + [None, None, None])[:3]
        inputs = keras.Input(shape=(h, w, c or cfg.channels), name="input")
    state = _BuildState(cfg, num_classes, inputs)
    sections = list(enumerate(cfg.layers))
    if progress:
        sections = tqdm(sections, desc="building", unit="layer", leave=False)
    for i, sec in sections:
        builder = _SECTION_BUILDERS.get(sec.type)
        if builder is None:  # pragma: no cover - parse_cfg_text rejects unknown sections
            raise sec.error("unsupported section")
        state.outputs.append(builder(state, i, sec, state.previous(i)))
    outputs = state.heads if state.heads else [state.outputs[-1]]
    model_name = name or os.path.splitext(os.path.basename(cfg.path))[0] or "darknet"
    model_name = re.sub(r"[^A-Za-z0-9_.-]", "_", model_name)
    return keras.Model(inputs, outputs if len(outputs) > 1 else outputs[0], name=model_name)


def _yolo_num_anchors(sec: Section) -> int:
    if "mask" in sec.options:
        return len(sec.get_ints("mask"))
    return sec.get_int("num", 1)


#: ``[yolo]`` keys that switch a head to Darknet's (YOLOv4) loss semantics; YOLOv3 cfgs set none of them.
DARKNET_LOSS_KEYS = ("iou_thresh", "iou_loss", "iou_normalizer", "obj_normalizer", "cls_normalizer", "max_delta",
                     "label_smooth_eps")


def yolo_head_config(sec: Section, num_classes: int | None, net_size: tuple[int, int], backbone_end: int) -> dict:
    """The :class:`YoloHead` keyword arguments a ``[yolo]`` section describes.

    A section that sets any of :data:`DARKNET_LOSS_KEYS` trains with Darknet's loss (``darknet_loss``), the
    keys it leaves out taking Darknet's own defaults (AlexeyAB darknet ``src/parser.c`` ``parse_yolo``:
    ``iou_normalizer`` 0.75, ``iou_loss`` mse, ``max_delta`` off, the rest 1 or 0). Other sections keep
    keras-yolo3's loss (the loss keys then hold neutral values that nothing reads). Any ``iou_loss`` is
    carried (detection does not read it); the loss implements mse, giou, diou and ciou.

    Raises:
        CfgError: a malformed ``anchors``/``num``/``mask`` or a non-numeric value.
    """
    anchors_flat = sec.get_floats("anchors") if "anchors" in sec.options else []
    if len(anchors_flat) % 2 or not anchors_flat:
        raise sec.error("'anchors' must hold a non-empty, even count of numbers", "anchors")
    all_anchors = np.asarray(anchors_flat, np.float32).reshape(-1, 2)
    num = sec.get_int("num", len(all_anchors))
    if num != len(all_anchors):
        raise sec.error(f"num={num} but {len(all_anchors)} anchors are listed", "num")
    mask = sec.get_ints("mask") if "mask" in sec.options else list(range(num))
    for m in mask:
        if not 0 <= m < len(all_anchors):
            raise sec.error(f"mask index {m} outside 0..{len(all_anchors) - 1}", "mask")
    classes = num_classes if num_classes is not None else sec.get_int("classes", 20)
    darknet = any(k in sec.options for k in DARKNET_LOSS_KEYS)
    max_delta = sec.get_float("max_delta", math.inf)
    loss_keys = dict(
        darknet_loss=darknet,
        iou_thresh=sec.get_float("iou_thresh", 1.0),
        iou_loss=sec.options.get("iou_loss", "mse").strip().lower(),
        iou_normalizer=sec.get_float("iou_normalizer", 0.75 if darknet else 1.0),
        obj_normalizer=sec.get_float("obj_normalizer", 1.0),
        cls_normalizer=sec.get_float("cls_normalizer", 1.0),
        max_delta=None if math.isinf(max_delta) else max_delta,
        label_smooth_eps=sec.get_float("label_smooth_eps", 0.0),
    )
    return dict(
        anchors=all_anchors[mask].tolist(),
        num_classes=int(classes),
        mask=mask,
        all_anchors=all_anchors.tolist(),
        scale_x_y=sec.get_float("scale_x_y", 1.0),
        net_size=list(net_size),
        ignore_thresh=sec.get_float("ignore_thresh", 0.5),
        backbone_end=backbone_end,
        **loss_keys,
    )


def _activation(act: str, name: str):
    if act == "leaky":
        return keras.layers.LeakyReLU(negative_slope=0.1, name=name)
    if act == "relu":
        return keras.layers.ReLU(name=name)
    if act == "logistic":
        return keras.layers.Activation("sigmoid", name=name)
    if act == "mish":
        return keras.layers.Activation("mish", name=name)
    if act == "swish":
        return keras.layers.Activation("silu", name=name)
    return keras.layers.Identity(name=name)


def _maxpool(x, size: int, stride: int, padding: int, name: str):
    """Darknet max-pooling: out = (w + padding - size) // stride + 1, ``padding // 2`` before."""
    before = padding // 2
    # TF 'same' pads max(0, (ceil(n/s)-1)*s + size - n), half (rounded down) before: equal to
    # Darknet's rule whenever padding == size - 1 and the size fits the stride (all Darknet cfgs).
    same_ok = padding == size - 1 and (stride == 1 or size <= stride)
    if same_ok:
        return keras.layers.MaxPooling2D(size, strides=stride, padding="same", name=name)(x)
    return DarknetMaxPool(size, stride, before, padding - before, name=name)(x)


def _channel_group(t, groups: int, group_id: int, name: str):
    return ChannelGroup(groups, group_id, name=name)(t)


def _check_spatial(sec: Section, parts, refs) -> None:
    shapes = {(p.shape[1], p.shape[2]) for p in parts}
    known = {s for s in shapes if None not in s}
    if len(known) > 1:
        raise sec.error(f"route joins layers {refs} of different sizes {sorted(known)}")
