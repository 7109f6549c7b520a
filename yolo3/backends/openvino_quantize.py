"""int8 for the openvino backend: NNCF post-training quantization calibrated on the user's pictures,
cached as an OpenVINO IR keyed by the calibration set's hash.

The calibration set is an annotation file (its pictures; the boxes are not used) or a folder of
pictures. Its key hashes every picture's bytes (sorted by path), the network's own bytes, the input
size and the NNCF version, so a changed, added or removed picture, another model or another size
quantizes again, and the same set reuses ``<stem>.int8-<key>.xml`` (+ ``.bin``) in the cache folder.
The convolutions that produce the heads stay in fp32 (NNCF's ignored scope): their outputs are the
box offsets and logits themselves, where int8's rounding moves scores most.
"""
from __future__ import annotations

import hashlib
import logging
import os
from typing import Callable, Sequence

import numpy as np

from ..core.files import file_digest
from ..datasets.annotations import read_annotations
from ..datasets.imageio import list_images, read_image_rgb
from ..errors import Yolo3Error
from .openvino_runtime import OpenVinoNetwork, import_optional, save_ir

__all__ = ["CalibrationError", "calibration_pictures", "calibration_key", "int8_cache_path", "quantize_model",
           "quantize_network"]


class CalibrationError(Yolo3Error):
    """No calibration pictures, or a calibration source that is not an annotation file or a folder."""


def calibration_pictures(source: str | os.PathLike) -> list[str]:
    """The pictures of an annotation file (one ``path boxes...`` a line) or of a folder (recursive), sorted.

    Args:
        source: the annotation file or folder.

    Raises:
        CalibrationError: missing source, or no pictures in it.
    """
    source = os.fspath(source)
    if os.path.isdir(source):
        pictures = list_images([source], recursive=True)
    elif os.path.isfile(source):
        pictures = [item.path for item in read_annotations(source)]
    else:
        raise CalibrationError(f"--calibration {source} not found (give an annotation file or a folder of pictures)")
    missing = [p for p in pictures if not os.path.isfile(p)]
    if missing:
        raise CalibrationError(f"--calibration {source}: picture not found: {missing[0]}"
                               + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if not pictures:
        raise CalibrationError(f"--calibration {source} holds no pictures")
    return sorted(set(pictures))


def calibration_key(pictures: Sequence[str], network_fingerprint: str, input_size: Sequence[int]) -> str:
    """16 hex digits naming one quantization: the pictures' bytes, the network, the input size, NNCF's version."""
    nncf = import_optional("nncf", "--precision int8")
    digest = hashlib.sha256(f"{network_fingerprint} {input_size[0]}x{input_size[1]} nncf {nncf.__version__}".encode())
    for path in sorted(pictures):
        digest.update(file_digest(path).encode())
    return digest.hexdigest()[:16]


def int8_cache_path(cache_dir: str, stem: str, key: str) -> str:
    """``<cache_dir>/<stem>.int8-<key>.xml``."""
    return os.path.join(cache_dir, f"{stem}.int8-{key}.xml")


def _head_convolutions(model) -> list[str]:
    """Names of the convolutions that feed the model's outputs (walking back through bias adds,
    transposes and identities)."""
    names = []
    for result in model.get_results():
        node = result.input_value(0).get_node()
        while node.get_type_name() != "Convolution" and node.get_input_size() > 0:
            node = node.input_value(0).get_node()
        if node.get_type_name() == "Convolution":
            names.append(node.get_friendly_name())
    return names


def quantize_model(net: OpenVinoNetwork, pictures: Sequence[str], letterbox: Callable[[np.ndarray], np.ndarray]):
    """``net``'s model quantized to int8 by NNCF on ``pictures`` (heads kept in fp32); an ``ov.Model``.

    Args:
        net: the fp32 network (not changed).
        pictures: the calibration pictures (:func:`calibration_pictures`).
        letterbox: uint8 (H, W, 3) RGB picture -> float32 (1, net_h, net_w, 3) network input.
    """
    nncf = import_optional("nncf", "--precision int8")
    dataset = nncf.Dataset(list(pictures), lambda p: letterbox(read_image_rgb(p)))
    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.WARNING)  # its INFO lines (ignored nodes, skipped quantizers) on stdout: only the bar
    try:
        return nncf.quantize(net.model, dataset, subset_size=len(pictures),
                             ignored_scope=nncf.IgnoredScope(names=_head_convolutions(net.model)))
    finally:
        logger.setLevel(level)


def quantize_network(net: OpenVinoNetwork, pictures: Sequence[str], letterbox: Callable[[np.ndarray], np.ndarray],
                     cache_dir: str, stem: str) -> tuple[str, bool]:
    """Make ``net`` hold its int8 model: read from the cache when this calibration set was seen,
    else quantized with NNCF (:func:`quantize_model`) and cached. Returns (the cached ``.xml``,
    whether it was reused).

    Args:
        net: the fp32 network; its ``model`` is replaced.
        pictures: the calibration pictures (:func:`calibration_pictures`).
        letterbox: uint8 (H, W, 3) RGB picture -> float32 (1, net_h, net_w, 3) network input.
        cache_dir: the cache folder (created if missing).
        stem: the model's name in the cache file.
    """
    shape = net.model.inputs[0].get_partial_shape()
    size = (shape[1].get_length(), shape[2].get_length()) if shape[1].is_static else (0, 0)
    path = int8_cache_path(cache_dir, stem, calibration_key(pictures, net.fingerprint, size))
    if os.path.isfile(path) and os.path.isfile(os.path.splitext(path)[0] + ".bin"):
        net.model, net.precision = net.core.read_model(path), "int8"
        return path, True
    quantized = quantize_model(net, pictures, letterbox)
    os.makedirs(cache_dir, exist_ok=True)
    save_ir(quantized, path, net.head_specs)
    net.model, net.precision = quantized, "int8"
    return path, False
