"""``yolo_video.py`` / ``yolo3-detect`` / ``python -m yolo3.cli.detect``: detect objects on pictures,
folders, videos, streams and webcams (keras-yolo3's yolo_video.py; :mod:`yolo3.inference.pictures`,
:mod:`yolo3.inference.video`).

Exit codes: 0 done, 1 some pictures could not be read (each named; the rest were processed),
2 a user error (missing or mismatched model/anchors/classes file, unopenable video, bad option).
"""
from __future__ import annotations

import argparse
import os
import sys

from ..datasets.imageio import list_images
from ..inference.detector import Detector
from ..inference.pictures import (
    PictureOptions,
    check_picture_outputs,
    detect_pictures,
    prompt_pictures,
    write_detections_json,
)
from ..inference.video import can_display, fourcc_for, process_video
from ..resources import resolve_data_path
from .backend_options import add_backend_arguments, announce_backend, backend_options, precision_warnings_as_lines
from .common import (
    UsageError,
    check_files,
    check_output_file,
    check_threshold,
    default_model_path,
    parse_size,
    positive_int,
    prog_name,
    run_tool,
)
from .track import add_video_tracking_arguments, check_video_tracking, detector_score, track_video_from_args

SCRIPT, MODULE = "yolo_video.py", "yolo3.cli.detect"
DEFAULT_MODEL = "model_data/yolov3-tiny.keras"
KERAS_YOLO3_MODEL = "model_data/yolo.h5"  # keras-yolo3's default, used where ours is absent
DEFAULT_CLASSES = "model_data/coco_classes.txt"
CONVERT_HINT = ("convert the Darknet weights first: python convert.py yolo3/resources/yolov3-tiny.cfg "
                "\"$(python -m yolo3.cli.weights yolov3-tiny -q)\" model_data/yolov3-tiny.keras")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of the detection tool (keras-yolo3's yolo_video.py flags included).

    Args:
        prog: program name shown in usage and messages (default: as the tool was started).
    """
    ap = argparse.ArgumentParser(
        prog=prog or prog_name(SCRIPT, MODULE),
        description="Detect objects with a converted YOLO model on pictures, folders, globs, video files, "
                    "stream URLs or webcams.",
        epilog="Exit codes: 0 done; 1 some pictures could not be read (named on stderr); 2 user error.")
    ap.add_argument("-m", "--model", "--model_path", dest="model", default=None,
                    help=f"converted model: .keras/.h5, a convert.py -w weights file, a keras-yolo3 .h5, an "
                         f".onnx file (--backend onnxruntime or openvino) or an OpenVINO IR .xml (export.py "
                         f"--format openvino); default {DEFAULT_MODEL} (in the working "
                         f"directory, else beside the scripts), else keras-yolo3's {KERAS_YOLO3_MODEL}")
    ap.add_argument("-a", "--anchors", "--anchors_path", dest="anchors", default=None, type=resolve_data_path,
                    help="anchors file: for a keras-yolo3 .h5 model (which holds none; default keras-yolo3's "
                         "model_data/yolo_anchors.txt); other models carry theirs and this must agree")
    ap.add_argument("-c", "--classes", "--classes_path", dest="classes", default=None, type=resolve_data_path,
                    help=f"class names, one a line; default {DEFAULT_CLASSES} if it exists, else the bundled "
                         f"COCO class list")
    ap.add_argument("--gpu_num", "--gpu-num", dest="gpu_num", type=positive_int, default=1,
                    help="accepted for compatibility; detection runs on one device (a GPU if TensorFlow sees one)")
    ap.add_argument("--image", nargs="*", default=None, metavar="PATH",
                    help="picture mode: files, folders or globs; with no PATH, asks for file names in a loop")
    ap.add_argument("--input", default=None, metavar="SOURCE",
                    help="video mode: a video file, a stream URL or a webcam index (0 = first camera)")
    ap.add_argument("--output", default=None,
                    help="with --image: folder for the drawn pictures (created if needed); "
                         "with --input: video file to write (.mp4 -> mp4v, .avi -> MJPG)")
    ap.add_argument("--score", type=float, default=0.25,
                    help="keep detections with objectness x class probability above this (default 0.25)")
    ap.add_argument("--iou", type=float, default=0.45, help="per-class NMS IoU threshold (default 0.45)")
    ap.add_argument("--size", default=None, metavar="N|HxW",
                    help="network input size, multiples of 32 (default: the model's, e.g. 416)")
    ap.add_argument("--batch-size", "--batch_size", dest="batch_size", type=positive_int, default=1,
                    help="pictures or frames per network call (default 1)")
    ap.add_argument("--max-boxes", "--max_boxes", dest="max_boxes", type=positive_int, default=100,
                    help="at most this many detections per picture (default 100)")
    ap.add_argument("--json", default=None, metavar="FILE", help="write all detections to this JSON file")
    ap.add_argument("--json-format", "--json_format", dest="json_format", choices=("native", "coco"),
                    default="native",
                    help="native: [{image, width, height, detections: [{class_id, class, score, box}]}]; "
                         "coco: COCO results [{image_id, category_id, bbox: [x, y, w, h], score}]")
    ap.add_argument("--show", action="store_true",
                    help="display the results in a window (if OpenCV can; pictures wait for a key)")
    add_backend_arguments(ap)
    ap.add_argument("--max-frames", "--max_frames", dest="max_frames", type=positive_int, default=None,
                    help="video mode: stop after this many frames")
    add_video_tracking_arguments(ap)
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bar or per-picture lines")
    return ap


def _check_mode(args: argparse.Namespace) -> None:
    if args.image is None and args.input is None:
        raise UsageError("nothing to do: give --image [PATH ...] or --input VIDEO (see --help)")
    if args.image is not None and args.input is not None:
        raise UsageError("give either --image or --input, not both")
    args.size = None if args.size is None else parse_size(args.size, "--size")
    check_threshold(args.score, "--score", high_inclusive=False)
    check_threshold(args.iou, "--iou")
    if args.batch_size < 1 or args.max_boxes < 1:
        raise UsageError("--batch-size and --max-boxes must be at least 1")


def check_options(args: argparse.Namespace) -> None:
    """Every check possible before loading TensorFlow's model; fills in the default model and classes.

    Args:
        args: the parsed command line (``model``, ``classes`` and ``size`` are resolved in place).

    Raises:
        UsageError: a bad option or a missing file.
    """
    _check_mode(args)
    given_model, args.model = args.model, args.model or default_model_path(DEFAULT_MODEL)
    if not given_model and not os.path.isfile(args.model) and os.path.isfile(KERAS_YOLO3_MODEL):
        args.model = KERAS_YOLO3_MODEL
    if os.path.isdir(args.model):
        raise UsageError(f"--model {args.model} is a folder, not a model file")
    if not os.path.isfile(args.model):
        raise UsageError(f"model file not found: {args.model}" + ("" if given_model else f" ({CONVERT_HINT})"))
    args.classes = args.classes or resolve_data_path(DEFAULT_CLASSES)
    check_files([(args.classes, "classes"), (args.anchors, "anchors")])
    _check_outputs(args)
    check_video_tracking(args, [args.model, args.classes, args.anchors, args.input, args.json, args.output])


def _check_outputs(args: argparse.Namespace) -> None:
    """--json and --output: writable, and none of them an input of the run (nothing is touched yet)."""
    pictures = list_images(args.image) if args.image else []
    inputs = [args.model, args.classes, args.anchors, args.input, *pictures]
    if args.json is not None:
        check_output_file(args.json, "--json", inputs)
    if args.input is not None and args.output:
        try:
            fourcc_for(args.output)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        check_output_file(args.output, "--output", inputs + [args.json])
    if args.image is not None and args.output:
        if os.path.isfile(args.output):
            raise UsageError(f"--output must be a folder in picture mode, but {args.output} is a file")
        check_picture_outputs(pictures, args.output)


def _detect(args: argparse.Namespace, detector: Detector, records: list) -> int:
    """Run the mode the options ask for; returns the number of pictures that could not be read."""
    if args.input is None:
        options = PictureOptions(args.output, args.show, args.batch_size, args.quiet)
        if args.image:
            return detect_pictures(detector, args.image, records, options)
        return prompt_pictures(detector, records, options)
    if args.track:
        stats = track_video_from_args(args, detector, records if args.json else None)
    else:
        stats = process_video(detector, args.input, output=args.output or None, batch_size=args.batch_size,
                              records=records if args.json else None, show=args.show,
                              progress=not args.quiet, max_frames=args.max_frames)
    print(f"{stats.frames} frame(s) of {stats.size[0]}x{stats.size[1]} in {stats.seconds:.1f} s: "
          f"{stats.fps:.1f} frames/s" + (f"; wrote {stats.written} at {stats.source_fps:g} fps" if stats.written
                                         else "; no frame, nothing written" if args.output else ""),
          file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    check_options(args)
    if args.show and args.input is None and not can_display():
        print("warning: --show ignored: this OpenCV build has no display support "
              "(opencv-python-headless) or no display is available", file=sys.stderr)
        args.show = False
    with precision_warnings_as_lines():
        detector = Detector.from_file(args.model, args.classes, args.anchors, score_threshold=detector_score(args),
                                      iou_threshold=args.iou, input_size=args.size, max_detections=args.max_boxes,
                                      **backend_options(args))
    records: list = []
    try:
        failures = _detect(args, detector, records)
    except KeyboardInterrupt:  # keep what was detected so far
        print("interrupted", file=sys.stderr)
        failures = 1
    announce_backend(args)  # after the run: a user error stays the one line printed
    if args.json and (records or not failures):  # a run that read nothing keeps the earlier JSON
        write_detections_json(args.json, records, args.json_format, detector.class_names)
    elif args.json:
        print(f"{args.json} not written: no picture could be read", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    """Run the detection tool: 0 done, 1 some pictures unreadable, 2 with ``prog: error: message`` on a
    user error.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).
    """
    return run_tool(argv, prog_name(SCRIPT, MODULE), build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
