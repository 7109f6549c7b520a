"""What every export format shares: the user error, sizes, atomic writes, output checks."""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from ..core.files import atomic_open
from ..core.heads import model_net_size
from ..errors import Yolo3Error

__all__ = ["FORMATS", "QUANTIZATIONS", "ExportError"]


FORMATS = ("saved_model", "tflite", "onnx", "openvino")


QUANTIZATIONS = ("float32", "float16", "int8")


class ExportError(Yolo3Error):
    """A user error (bad option, missing file, unwritable output, no calibration data); ``str()``
    is one line meant for the user."""


def _raw_outputs(model, net_input) -> list:
    """The model's raw head outputs on ``net_input`` as a list (one tensor for a one-head model)."""
    raw = model(net_input, training=False)
    return list(raw) if isinstance(raw, (list, tuple)) else [raw]


def _variable_holder(model):
    """A ``tf.Module`` tracking the model's backend ``tf.Variable`` objects (not Keras's wrappers)."""
    module = tf.Module()
    module.network_variables = [v.value for v in model.variables]
    return module


def _net_size(model, size) -> tuple[int, int]:
    """The network (height, width) to export at: ``size`` (an int or (h, w), multiples of 32) or the model's."""
    if size is None:
        return tuple(int(v) for v in model_net_size(model))
    hw = (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(v) for v in size)
    if len(hw) != 2 or min(hw) <= 0 or hw[0] % 32 or hw[1] % 32:
        raise ExportError(f"network size must be a positive multiple of 32, got {size}")
    return hw


def _write_atomic(path: str, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def _check_output(path: str, fmt: str) -> None:
    """Fail before the slow conversion when ``path`` cannot be written."""
    target = os.path.abspath(path)
    if fmt == "saved_model":
        if os.path.isfile(target):
            raise ExportError(f"output {path} is a file; a SavedModel is a folder")
        if os.path.isdir(target) and os.listdir(target) and not os.path.isfile(
                os.path.join(target, "saved_model.pb")):
            raise ExportError(f"output folder {path} is not empty and holds no SavedModel; "
                              "choose another --output")
    elif os.path.isdir(target):
        raise ExportError(f"output {path} is a folder; give a file name")
    parent = os.path.dirname(target)
    existing = parent
    while existing and not os.path.isdir(existing):
        if os.path.exists(existing):
            raise ExportError(f"cannot write {path}: {existing} is not a folder")
        existing = os.path.dirname(existing)
    if os.path.exists(target) and not os.path.isdir(target) and not os.access(target, os.W_OK):
        raise ExportError(f"cannot write {path}: permission denied")
    # os.access says yes to root everywhere; only creating a file tells (read-only mounts, /proc)
    probe = os.path.join(existing or ".", f".export-probe-{os.getpid()}")
    try:
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {existing} is not writable "
                          f"({exc.strerror or exc})") from None
