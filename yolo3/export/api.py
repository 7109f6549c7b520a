"""Export a YOLO model for deployment: SavedModel (whole pipeline), TFLite, ONNX.

- **SavedModel** (:func:`export_saved_model`): a self-contained serving graph with Darknet's
  letterbox, the network, decoding (score = objectness x class probability) and per-class NMS.
  Signatures (loadable with plain ``tf.saved_model.load``, no ``yolo3`` needed):

  ``serving_default(images)``: uint8 (B, H, W, 3) RGB, one size within a batch;
  ``serve_bytes(image_bytes)``: string (B,) encoded JPEG/PNG/BMP/GIF files (any sizes), decoded in
  the graph (JPEG with the accurate integer DCT, which matches PIL/libjpeg pixel for pixel).
  Both return ``boxes`` float32 (B, K, 4) x1, y1, x2, y2 in input-image pixels (not clipped),
  ``scores`` float32 (B, K), ``classes`` int32 (B, K), ``num_detections`` int32 (B,); rows past
  ``num_detections`` are zero padding, K = ``max_detections``. Thresholds are fixed at export.

- **TFLite** (:func:`export_tflite`): the network plus Darknet decoding, batch 1, input
  ``images`` float32 (1, net_h, net_w, 3) letterboxed RGB 0..1; outputs ``boxes`` (1, N, 4)
  centre x, centre y, width, height as fractions of the network input and ``scores`` (1, N, C)
  objectness x class probability. The letterbox and the per-class NMS are done by
  :class:`yolo3.backends.tflite.TFLiteDetector`: ``tf.image.combined_non_max_suppression`` is no
  TFLite builtin (it would need the Flex delegate, SELECT_TF_OPS, which the standalone
  LiteRT/TFLite runtimes on phones do not ship), and the letterbox of images of any size needs
  dynamic shapes. ``float16`` stores the weights as float16; ``int8`` quantizes weights and
  activations with a representative data set read from an annotation file.

- **ONNX** (:func:`export_onnx_file`): the bare network with the head metadata, through
  :mod:`yolo3.backends.onnx_export` (written from the Keras layers; tf2onnx only as a fallback for layers
  it does not know); run it with ``Detector(path, backend="onnxruntime")``.

- **OpenVINO IR** (:func:`export_openvino_ir`): the same network as ``.xml`` + ``.bin``, fp32 or
  int8 (NNCF, calibrated on ``calibration``), head metadata inside; run it with
  ``Detector(path, backend="openvino")``, which compiles the decoding + NMS onto it.

``python export.py --help`` is the command line (:mod:`yolo3.cli.export`, also ``yolo3-export``).
"""
from __future__ import annotations

import os

from .common import FORMATS, QUANTIZATIONS, ExportError, _check_output
from .onnx import export_onnx_file
from .openvino import check_openvino_target, export_openvino_ir
from .saved_model import export_saved_model
from .tflite import _check_calibration, export_tflite

__all__ = ["export_model", "default_output", "check_export_target", "DEFAULT_MODEL"]


DEFAULT_MODEL = os.path.join("model_data", "yolov3-tiny.keras")


def default_output(model_path: str, fmt: str, quantize: str = "float32") -> str:
    """``model_data/yolov3-tiny.keras`` -> ``model_data/yolov3-tiny_saved_model``,
    ``..._float16.tflite``, ``....onnx``.

    Args:
        model_path: the model file exported.
        fmt: one of :data:`FORMATS`.
        quantize: TFLite: one of :data:`QUANTIZATIONS` (named in the file unless float32).
    """
    stem = os.path.splitext(model_path)[0]
    if fmt == "saved_model":
        return stem + "_saved_model"
    if fmt == "tflite":
        return stem + ("" if quantize == "float32" else f"_{quantize}") + ".tflite"
    if fmt == "openvino":
        return stem + ("" if quantize in ("float32", "fp32") else f"_{quantize}") + ".xml"
    return stem + ".onnx"


def export_model(model, fmt: str, output: str, size=None, score: float = 0.25, iou: float = 0.45,
                 max_detections: int = 100, quantize: str = "float32", calibration: str | None = None,
                 calibration_count: int = 100, xla: bool = True, progress: bool = True,
                 onnx_method: str = "auto", precision: str = "fp32") -> str:
    """Export the Keras YOLO ``model`` in format ``fmt`` to ``output``; returns the path written.

    Args:
        model: a Keras YOLO model (raw head outputs, head metadata inside).
        fmt: one of :data:`FORMATS`.
        output: the SavedModel folder or the file to write.
        size: fixed network input (height, width) in pixels, multiples of 32; None: the model's.
        score: SavedModel: score threshold (objectness x class probability) baked in.
        iou: SavedModel: per-class NMS IoU threshold.
        max_detections: SavedModel: detections kept per image.
        quantize: TFLite: one of :data:`QUANTIZATIONS`.
        calibration: TFLite int8: annotation file whose images calibrate the quantization.
        calibration_count: TFLite int8: how many calibration images.
        xla: SavedModel: XLA-compile the network parts.
        progress: show progress output.
        onnx_method: ONNX: ``"auto"``, ``"native"`` or ``"tf2onnx"``.
        precision: OpenVINO: ``"fp32"`` or ``"int8"`` (``calibration``: an annotation file or a folder).
    """
    if fmt == "openvino":
        return export_openvino_ir(model, output, size, precision, calibration, calibration_count)
    if fmt == "saved_model":
        return export_saved_model(model, output, size, score, iou, max_detections, xla)
    if fmt == "tflite":
        return export_tflite(model, output, size, quantize, calibration, calibration_count, progress)
    if fmt == "onnx":
        return export_onnx_file(model, output, size, method=onnx_method)
    raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def check_export_target(fmt: str, output: str, quantize: str = "float32", calibration: str | None = None,
                        calibration_count: int = 100, onnx_method: str = "auto", precision: str = "fp32") -> None:
    """Check, before any model is loaded, that an export can be written; raise :class:`ExportError` if not.

    Args:
        fmt: one of :data:`FORMATS`.
        output: the SavedModel folder or the file to write.
        quantize: TFLite weight/activation type, one of :data:`QUANTIZATIONS`.
        calibration: TFLite int8: the annotation file whose images calibrate the quantization.
        calibration_count: TFLite int8: how many calibration images.
        onnx_method: ONNX: ``"auto"``, ``"native"`` or ``"tf2onnx"``.
        precision: OpenVINO: ``"fp32"`` or ``"int8"``.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    if quantize != "float32" and fmt != "tflite":
        raise ExportError(f"--quantize {quantize} applies to --format tflite only")
    if precision != "fp32" and fmt != "openvino":
        raise ExportError(f"--precision {precision} applies to --format openvino only (TFLite: --quantize)")
    if fmt == "openvino":
        check_openvino_target(precision, calibration)
    if fmt == "tflite" and quantize == "int8":
        if calibration_count < 1:
            raise ExportError(f"--calibration-count must be at least 1, got {calibration_count}")
        _check_calibration(calibration)
    if onnx_method != "auto" and fmt != "onnx":
        raise ExportError(f"--onnx-method {onnx_method} applies to --format onnx only")
    if fmt == "onnx":
        for name in ("onnx", "tf2onnx") if onnx_method == "tf2onnx" else ("onnx",):
            try:
                __import__(name)
            except ImportError:
                raise ExportError(f"ONNX export needs the optional package '{name}': "
                                  f"pip install {name} onnxruntime (onnxruntime to run the file)") from None
    _check_output(output, fmt)
