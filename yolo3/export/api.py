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

``python export.py --help`` is the command line (:func:`main`).
"""
from __future__ import annotations

import argparse
import os
import sys

from .common import FORMATS, QUANTIZATIONS, ExportError, _check_output
from .onnx import export_onnx_file
from .saved_model import export_saved_model
from .tflite import _check_calibration, export_tflite

__all__ = ["export_model", "default_output", "main"]


DEFAULT_MODEL = os.path.join("model_data", "yolov3-tiny.keras")


def default_output(model_path: str, fmt: str, quantize: str = "float32") -> str:
    """``model_data/yolov3-tiny.keras`` -> ``model_data/yolov3-tiny_saved_model``,
    ``..._float16.tflite``, ``....onnx``."""
    stem = os.path.splitext(model_path)[0]
    if fmt == "saved_model":
        return stem + "_saved_model"
    if fmt == "tflite":
        return stem + ("" if quantize == "float32" else f"_{quantize}") + ".tflite"
    return stem + ".onnx"


def export_model(model, fmt: str, output: str, size=None, score: float = 0.25, iou: float = 0.45,
                 max_detections: int = 100, quantize: str = "float32", calibration: str | None = None,
                 calibration_count: int = 100, xla: bool = True, progress: bool = True,
                 onnx_method: str = "auto") -> str:
    """Export the Keras YOLO ``model`` in format ``fmt`` (one of :data:`FORMATS`) to ``output``."""
    if fmt == "saved_model":
        return export_saved_model(model, output, size, score, iou, max_detections, xla)
    if fmt == "tflite":
        return export_tflite(model, output, size, quantize, calibration, calibration_count, progress)
    if fmt == "onnx":
        return export_onnx_file(model, output, size, method=onnx_method)
    raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="export.py",
        description="Export a converted or trained YOLO model for deployment: a SavedModel with "
                    "letterbox, decoding and NMS inside (uint8 images or JPEG/PNG bytes in, boxes in "
                    "image pixels out), a TFLite file (float32/float16/int8; use "
                    "yolo3.backends.tflite.TFLiteDetector), or ONNX (the network, for ONNX Runtime).")
    ap.add_argument("--model", default=DEFAULT_MODEL,
                    help=f"Keras model (.keras/.h5) or convert.py -w weights file (default {DEFAULT_MODEL})")
    ap.add_argument("--format", default="saved_model", metavar="FORMAT",
                    help=f"one of {', '.join(FORMATS)} (default saved_model)")
    ap.add_argument("--output", default=None,
                    help="output folder (saved_model) or file; default next to the model "
                         "(e.g. model_data/yolov3-tiny_saved_model, yolov3-tiny_int8.tflite)")
    ap.add_argument("--size", type=int, default=None,
                    help="network input size (multiple of 32); default the model's")
    ap.add_argument("--score", type=float, default=0.25,
                    help="score threshold baked into the SavedModel (default 0.25)")
    ap.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (SavedModel; default 0.45)")
    ap.add_argument("--max-detections", type=int, default=100,
                    help="detections per image (SavedModel; default 100)")
    ap.add_argument("--quantize", default="float32", metavar="TYPE",
                    help=f"TFLite: one of {', '.join(QUANTIZATIONS)} (default float32)")
    ap.add_argument("--calibration", default=None, metavar="ANNOTATION_FILE",
                    help="TFLite int8: annotation file whose images calibrate the quantization")
    ap.add_argument("--calibration-count", type=int, default=100, metavar="N",
                    help="TFLite int8: number of calibration images (default 100)")
    ap.add_argument("--onnx-method", choices=("auto", "native", "tf2onnx"), default="auto",
                    help="ONNX: write the graph from the Keras layers (native), convert with tf2onnx "
                         "(needs ~60x the weights' size in memory), or native with tf2onnx for unknown "
                         "layers (auto, default)")
    ap.add_argument("--no-xla", dest="xla", action="store_false",
                    help="SavedModel: no XLA-compiled parts (for TF builds without XLA; slower)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return ap


def _validate(args) -> None:
    if args.format not in FORMATS:
        raise ExportError(f"unknown format {args.format!r}; choose one of {', '.join(FORMATS)}")
    if args.quantize not in QUANTIZATIONS:
        raise ExportError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, got {args.quantize!r}")
    if args.quantize != "float32" and args.format != "tflite":
        raise ExportError(f"--quantize {args.quantize} applies to --format tflite only")
    if not os.path.isfile(args.model):
        raise ExportError(f"model file not found: {args.model}")
    if args.size is not None and (args.size <= 0 or args.size % 32):
        raise ExportError(f"--size must be a positive multiple of 32, got {args.size}")
    if not 0.0 <= args.score < 1.0:
        raise ExportError(f"--score must be in [0, 1), got {args.score}")
    if not 0.0 <= args.iou <= 1.0:
        raise ExportError(f"--iou must be in [0, 1], got {args.iou}")
    if args.max_detections < 1:
        raise ExportError(f"--max-detections must be at least 1, got {args.max_detections}")
    if args.format == "tflite" and args.quantize == "int8":
        if args.calibration_count < 1:
            raise ExportError(f"--calibration-count must be at least 1, got {args.calibration_count}")
        _check_calibration(args.calibration)
    if args.onnx_method != "auto" and args.format != "onnx":
        raise ExportError(f"--onnx-method {args.onnx_method} applies to --format onnx only")
    if args.format == "onnx":
        for name in ("onnx", "tf2onnx") if args.onnx_method == "tf2onnx" else ("onnx",):
            try:
                __import__(name)
            except ImportError:
                raise ExportError(f"ONNX export needs the optional package '{name}': "
                                  f"pip install {name} onnxruntime (onnxruntime to run the file)") from None
    _check_output(args.output, args.format)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.model == DEFAULT_MODEL and not os.path.exists(args.model):
        beside_scripts = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                      DEFAULT_MODEL)
        if os.path.exists(beside_scripts):
            args.model = beside_scripts
    if args.output is None:
        args.output = default_output(args.model, args.format, args.quantize)
    try:
        _validate(args)
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        from ..modeling.saving import load_model

        try:
            model = load_model(args.model)
        except Exception as exc:  # any failure to read the file is the user's file's problem
            raise ExportError(f"cannot load model {args.model}: {exc}".splitlines()[0]) from None
        from ..core.heads import get_head_specs

        try:
            get_head_specs(model)
        except ValueError as exc:
            raise ExportError(f"{args.model}: {exc}") from None
        size = None if args.size is None else (args.size, args.size)
        export_model(model, args.format, args.output, size=size, score=args.score, iou=args.iou,
                     max_detections=args.max_detections, quantize=args.quantize,
                     calibration=args.calibration, calibration_count=args.calibration_count,
                     xla=args.xla, progress=not args.quiet, onnx_method=args.onnx_method)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"wrote {args.output}")
    return 0
