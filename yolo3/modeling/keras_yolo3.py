"""keras-yolo3's model files (Keras 2 ``.h5``), loaded as yolo3 models.

keras-yolo3 wrote two kinds of ``.h5``: full models (its ``convert.py``, ``model.save``) and weights
only (``convert.py -w`` -> ``model_data/yolo_weights.h5``, ``train.py`` -> ``trained_weights_final.h5``,
``model.save_weights``). Both hold Keras 2's layout: attribute ``layer_names`` (on the root, or on the
``model_weights`` group of a full model) and, per layer, a group whose ``weight_names`` attribute lists
its datasets (``conv2d_5/kernel:0``; ``batch_normalization_3/gamma:0``, ``beta:0``, ``moving_mean:0``,
``moving_variance:0``). Layers are named by Keras 2's per-class counters (``conv2d_1``... or ``conv2d``,
``conv2d_1``... with tf.keras), i.e. in creation order, which for keras-yolo3's ``yolo_body`` and
``tiny_yolo_body`` is the Darknet cfg order: the n-th convolution here is the n-th ``[convolutional]``
of yolov3.cfg (75) or yolov3-tiny.cfg (13), and batch normalisations follow the convolutions that have one.

The files hold no anchors: they come from ``--anchors`` (default: keras-yolo3's
``model_data/yolo_anchors.txt`` / ``tiny_yolo_anchors.txt``, the user's where they exist, else the
bundled copies). The class count is read
from the last convolution (3 anchors x (5 + classes) filters). Tiny models keep keras-yolo3's anchor
masks (3,4,5 and 1,2,3; Darknet's cfg has 0,1,2 for the second head) so they detect as they did.
"""
from __future__ import annotations

import os
import re

import h5py
import keras
import numpy as np

from ..resources import resolve_data_path
from .builder import build_model_from_cfg
from .cfg import ModelFileError, parse_cfg_text
from .factory import model_cfg_text

__all__ = ["KERAS_YOLO3_KINDS", "keras2_layers", "is_keras_yolo3_file", "load_keras_yolo3"]

#: convolution count -> (model kind, default anchors file of keras-yolo3)
KERAS_YOLO3_KINDS = {75: ("yolov3", "yolo_anchors.txt"), 13: ("tiny", "tiny_yolo_anchors.txt")}

_CONV = re.compile(r"^conv2d(?:_(\d+))?$")
_BN = re.compile(r"^batch_normalization(?:_(\d+))?$")
#: yolo3's own layer names (``conv_12``, ``yolo_0``): such a file is not keras-yolo3's (whose training
#: model has a Lambda layer called ``yolo_loss``)
_YOLO3_NAME = re.compile(r"^(?:conv|bn|yolo)_\d+$")


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def keras2_layers(path: str) -> list[tuple[str, list[np.ndarray]]] | None:
    """``(layer name, weights)`` of every layer of a Keras 2 ``.h5`` file, in the file's order; None when
    the file does not have that layout (a Keras 3 ``.weights.h5``, a yolo3 weights file, no HDF5).

    Args:
        path: the ``.h5`` file (full model or ``save_weights``).
    """
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in group.attrs:
                return None
            layers = []
            for name in (_text(n) for n in group.attrs["layer_names"]):
                g = group[name]
                names = [_text(n) for n in np.atleast_1d(g.attrs.get("weight_names", []))]
                layers.append((name, [np.asarray(g[w]) for w in names]))
            return layers
    except (OSError, KeyError, ValueError):
        return None


def is_keras_yolo3_file(path: str) -> bool:
    """Whether ``path`` is a Keras 2 ``.h5`` with keras-yolo3's layer names (``conv2d_N`` convolutions,
    no yolo3 head layers).

    Args:
        path: any file.
    """
    layers = keras2_layers(path)
    if not layers or any(_YOLO3_NAME.match(name) for name, _ in layers):
        return False
    try:
        with h5py.File(path, "r") as f:
            if "YoloHead" in _text(f.attrs.get("model_config", "")):
                return False
    except OSError:
        return False
    return any(_CONV.match(name) and weights for name, weights in layers)


def _ordered(layers, pattern: re.Pattern) -> list[tuple[str, list[np.ndarray]]]:
    found = [(int(m.group(1) or 0), name, w) for name, w in layers if (m := pattern.match(name)) and w]
    return [(name, w) for _, name, w in sorted(found, key=lambda t: t[0])]


def _kind_and_classes(path: str, convs) -> tuple[str, str, int]:
    if len(convs) not in KERAS_YOLO3_KINDS:
        raise ModelFileError(f"{path}: {len(convs)} convolutions; keras-yolo3's YOLOv3 has 75 and its tiny "
                             "model 13, so this is neither")
    kind, anchors_file = KERAS_YOLO3_KINDS[len(convs)]
    filters = convs[-1][1][0].shape[-1]
    if filters % 3 or filters // 3 <= 5:
        raise ModelFileError(f"{path}: the last convolution has {filters} filters, not 3 x (5 + classes)")
    return kind, anchors_file, filters // 3 - 5


def _cfg_text(kind: str, num_classes: int, anchors: np.ndarray, size: int) -> str:
    text = model_cfg_text(kind, num_classes, anchors, size)
    if kind == "tiny":  # keras-yolo3's tiny masks: [[3, 4, 5], [1, 2, 3]]
        head = text.rindex("mask = 0,1,2")
        text = text[:head] + "mask = 1,2,3" + text[head + len("mask = 0,1,2"):]
    return text


def _copy_weights(path: str, model, convs, bns) -> None:
    """The n-th Keras 2 convolution (and batch normalisation) into the n-th of ``model``, in cfg order."""
    ours = sorted((layer for layer in model.layers if layer.name.startswith("conv_")),
                  key=lambda layer: int(layer.name.split("_")[1]))
    bn_iter = iter(bns)
    names = {layer.name for layer in model.layers}
    for layer, (name, weights) in zip(ours, convs):
        pairs = [(layer, name, weights)]
        bn_name = layer.name.replace("conv_", "bn_")
        if bn_name in names:
            source = next(bn_iter, None)
            if source is None:
                raise ModelFileError(f"{path}: fewer batch normalisations than keras-yolo3's model has")
            pairs.append((model.get_layer(bn_name), *source))
        for target, src_name, src in pairs:
            expected = [tuple(w.shape) for w in target.get_weights()]
            if [tuple(w.shape) for w in src] != expected:
                raise ModelFileError(f"{path}: layer {src_name} holds shapes {[tuple(w.shape) for w in src]}, "
                                     f"keras-yolo3's model has {expected} there")
            target.set_weights(src)


def load_keras_yolo3(path: str, anchors: np.ndarray | None = None, num_classes: int | None = None,
                     size: int = 416) -> keras.Model:
    """A yolo3 model (YoloHead outputs, anchors inside) with the weights of a keras-yolo3 ``.h5`` file.

    Args:
        path: keras-yolo3's full model or weights file (see :func:`is_keras_yolo3_file`).
        anchors: (N, 2) anchors in network pixels, 3 a head (9 or 6); None: keras-yolo3's default file.
        num_classes: the class count the caller expects (from ``--classes``); checked against the file.
        size: the network size recorded in the heads (the default detection size), pixels.

    Raises:
        ModelFileError: not keras-yolo3's layout, a class count or anchor count that does not fit.
    """
    layers = keras2_layers(path)
    if not layers:
        raise ModelFileError(f"{path} is not a Keras 2 .h5 file of keras-yolo3")
    convs, bns = _ordered(layers, _CONV), _ordered(layers, _BN)
    kind, anchors_file, classes = _kind_and_classes(path, convs)
    if num_classes is not None and num_classes != classes:
        raise ModelFileError(f"{path} predicts {classes} classes but the class list has {num_classes}")
    if anchors is None:  # keras-yolo3's default file: the user's model_data/ copy where it exists
        with open(resolve_data_path(os.path.join("model_data", anchors_file)), encoding="utf-8") as f:
            anchors = np.asarray([float(v) for v in f.read().replace("\n", ",").split(",") if v.strip()])
    anchors = np.asarray(anchors, np.float32).reshape(-1, 2)
    heads = 3 if kind == "yolov3" else 2
    if len(anchors) != 3 * heads:
        raise ModelFileError(f"{path} is keras-yolo3's {kind} model with {heads} heads of 3 anchors: "
                             f"give {3 * heads} anchors, not {len(anchors)}")
    model = build_model_from_cfg(parse_cfg_text(_cfg_text(kind, classes, anchors, size), f"<keras-yolo3 {kind}>"),
                                 name="yolov3-tiny" if kind == "tiny" else "yolov3")
    _copy_weights(path, model, convs, bns)
    return model

