"""``export.py`` / ``yolo3-export`` / ``python -m yolo3.cli.export``: export a converted or trained model
for deployment (:mod:`yolo3.export`; see docs/export.md)."""
from __future__ import annotations

import argparse
import os
import sys

from ..core.heads import get_head_specs
from ..datasets.annotations import read_anchors, read_class_names
from ..export.api import DEFAULT_MODEL, check_export_target, default_output, export_model
from ..export.common import FORMATS, QUANTIZATIONS, ExportError
from ..modeling.saving import load_model
from ..resources import resolve_data_path
from .common import (
    check_output_dir,
    check_output_file,
    check_threshold,
    default_model_path,
    fraction,
    number_type,
    parse_size,
    positive_int,
    prog_name,
    run_tool,
)

SCRIPT, MODULE = "export.py", "yolo3.cli.export"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of the export tool.

    Args:
        prog: program name shown in usage and messages (default: as the tool was started).
    """
    ap = argparse.ArgumentParser(
        prog=prog or prog_name(SCRIPT, MODULE),
        description="Export a converted or trained YOLO model for deployment: a SavedModel with "
                    "letterbox, decoding and NMS inside (uint8 images or JPEG/PNG bytes in, boxes in "
                    "image pixels out), a TFLite file (float32/float16/int8; use "
                    "yolo3.backends.tflite.TFLiteDetector), ONNX (the network, for ONNX Runtime) or OpenVINO "
                    "IR (the network as .xml + .bin, fp32 or int8, for --backend openvino).")
    ap.add_argument("--model", default=DEFAULT_MODEL,
                    help=f"Keras model (.keras/.h5) or convert.py -w weights file (default {DEFAULT_MODEL})")
    ap.add_argument("--anchors", "--anchors_path", dest="anchors", default=None, type=resolve_data_path,
                    help="anchors file for a keras-yolo3 .h5 model (which holds none; default keras-yolo3's)")
    ap.add_argument("--classes", "--classes_path", dest="classes", default=None, type=resolve_data_path,
                    help="class names of a keras-yolo3 .h5 model, to check its class count")
    ap.add_argument("--format", default="saved_model", metavar="FORMAT",
                    help=f"one of {', '.join(FORMATS)} (default saved_model)")
    ap.add_argument("--output", default=None,
                    help="output folder (saved_model) or file; default next to the model "
                         "(e.g. model_data/yolov3-tiny_saved_model, yolov3-tiny_int8.tflite)")
    ap.add_argument("--size", type=positive_int, default=None,
                    help="network input size (multiple of 32); default the model's")
    ap.add_argument("--score", type=number_type(float, 0, 1, high_open=True), default=0.25,
                    help="score threshold baked into the SavedModel (default 0.25)")
    ap.add_argument("--iou", type=fraction, default=0.45, help="NMS IoU threshold (SavedModel; default 0.45)")
    ap.add_argument("--max-detections", type=positive_int, default=100,
                    help="detections per image (SavedModel; default 100)")
    ap.add_argument("--quantize", default="float32", metavar="TYPE",
                    help=f"TFLite: one of {', '.join(QUANTIZATIONS)} (default float32)")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8"),
                    help="OpenVINO: fp32 or int8 (NNCF on --calibration); bf16 is chosen when the IR runs "
                         "(yolo_video.py --backend openvino --precision bf16)")
    ap.add_argument("--calibration", default=None, metavar="ANNOTATION_FILE",
                    help="int8 (TFLite, OpenVINO): annotation file whose images calibrate the quantization "
                         "(OpenVINO: or a folder of pictures)")
    ap.add_argument("--calibration-count", type=positive_int, default=100, metavar="N",
                    help="int8: number of calibration images (default 100)")
    ap.add_argument("--onnx-method", choices=("auto", "native", "tf2onnx"), default="auto",
                    help="ONNX: write the graph from the Keras layers (native), convert with tf2onnx "
                         "(needs ~60x the weights' size in memory), or native with tf2onnx for unknown "
                         "layers (auto, default)")
    ap.add_argument("--no-xla", dest="xla", action="store_false",
                    help="SavedModel: no XLA-compiled parts (for TF builds without XLA; slower)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return ap


def _check(args: argparse.Namespace) -> tuple[int, int] | None:
    """Every check possible before loading the model; returns the fixed input (height, width) or None."""
    if args.format not in FORMATS:
        raise ExportError(f"unknown format {args.format!r}; choose one of {', '.join(FORMATS)}")
    if os.path.isdir(args.model):
        raise ExportError(f"--model {args.model} is a folder, not a model file")
    if not os.path.isfile(args.model):
        raise ExportError(f"model file not found: {args.model}")
    size = None if args.size is None else parse_size(str(args.size), "--size")
    check_threshold(args.score, "--score", high_inclusive=False)
    check_threshold(args.iou, "--iou")
    if args.max_detections < 1:
        raise ExportError(f"--max-detections must be at least 1, got {args.max_detections}")
    check_export_target(args.format, args.output, args.quantize, args.calibration, args.calibration_count,
                        args.onnx_method, args.precision)
    if args.format == "saved_model":
        check_output_dir(args.output, "--output")
        _refuse_model_inside(args)
    else:
        check_output_file(args.output, "--output", [args.model, args.calibration], create_folder=True)
    return size


def _refuse_model_inside(args: argparse.Namespace) -> None:
    """A SavedModel folder replaces what is there: never the model itself or the folder holding it."""
    model_dir = os.path.dirname(os.path.abspath(args.model))
    out = os.path.abspath(args.output)
    if model_dir == out or model_dir.startswith(out + os.sep):
        raise ExportError(f"--output {args.output} holds the model {args.model}; a SavedModel folder replaces "
                          "everything in it, choose another folder")


def _load(path: str, anchors_path: str | None = None, classes_path: str | None = None):
    try:
        anchors = None if anchors_path is None else read_anchors(anchors_path)
        classes = None if classes_path is None else len(read_class_names(classes_path))
        model = load_model(path, anchors=anchors, num_classes=classes)
    except Exception as exc:  # any failure to read the file is the user's file's problem
        raise ExportError(f"cannot load model {path}: {exc}".splitlines()[0]) from None
    try:
        get_head_specs(model)
    except ValueError as exc:
        raise ExportError(f"{path}: {exc}") from None
    return model


def _run(args: argparse.Namespace) -> int:
    if args.model == DEFAULT_MODEL:
        args.model = default_model_path(DEFAULT_MODEL)
    if args.output is None:
        args.output = default_output(args.model, args.format,
                                     args.precision if args.format == "openvino" else args.quantize)
    size = _check(args)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        model = _load(args.model, args.anchors, args.classes)
        export_model(model, args.format, args.output, size=size, score=args.score, iou=args.iou,
                     max_detections=args.max_detections, quantize=args.quantize,
                     calibration=args.calibration, calibration_count=args.calibration_count,
                     xla=args.xla, progress=not args.quiet, onnx_method=args.onnx_method,
                     precision=args.precision)
    except OSError as exc:
        raise ExportError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    if not args.quiet:
        print(f"wrote {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the export tool; 0 on success, 2 with ``prog: error: message`` on a user error.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).
    """
    return run_tool(argv, prog_name(SCRIPT, MODULE), build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
