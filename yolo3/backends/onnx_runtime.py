"""Running the ONNX network of a YOLO model in ONNX Runtime."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..core.heads import head_specs_from_json
from ..errors import Yolo3Error
from .onnx_export import HEADS_METADATA_KEY, _import, export_onnx

__all__ = ["OnnxNetwork", "OnnxModelError"]


class OnnxModelError(Yolo3Error):
    """An ONNX file ONNX Runtime cannot load, or one without yolo3's head metadata; one line."""


class OnnxNetwork:
    """A YOLO network in ONNX Runtime: ``net(images) -> list of raw head outputs`` (numpy).

    Args:
        source: a Keras YOLO model (exported on the spot, which takes seconds), a path to a ``.onnx``
            file written by :func:`export_onnx`, or serialized ONNX bytes.
        input_size: (height, width) to fix the input to when exporting a Keras model.
        threads: ONNX Runtime's intra-op threads (default: its own choice, the physical cores).
    """

    def __init__(self, source, input_size: Sequence[int] | None = None, threads: int | None = None):
        ort = _import("onnxruntime", "the onnxruntime backend")
        name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "the ONNX model"
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                data = f.read()
        elif isinstance(source, (bytes, bytearray)):
            data = bytes(source)
        else:  # a Keras model
            data = export_onnx(source, input_size=input_size).SerializeToString()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own exception types, e.g. InvalidProtobuf
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise OnnxModelError(f"ONNX Runtime cannot load {name} ({first})") from None
        self.input_name = self.session.get_inputs()[0].name
        meta = self.session.get_modelmeta().custom_metadata_map
        if HEADS_METADATA_KEY not in meta:
            raise OnnxModelError(f"{name} has no yolo3 head metadata (anchors, classes); export it with "
                                 "export.py --format onnx or python -m yolo3.cli.onnx")
        try:
            self.head_specs = head_specs_from_json(meta[HEADS_METADATA_KEY])
        except (ValueError, KeyError, TypeError) as exc:
            raise OnnxModelError(f"{name} has damaged yolo3 head metadata ({exc})") from None
        self.input_shape = self.session.get_inputs()[0].shape  # e.g. ['N', 416, 416, 3]

    def __call__(self, images: np.ndarray) -> list[np.ndarray]:
        """``images``: float32 (N, H, W, 3) RGB 0..1 -> raw head outputs (N, h, w, A*(5+C))."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(images, np.float32)})
