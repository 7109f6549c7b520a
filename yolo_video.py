#!/usr/bin/env python3
"""Detect objects on pictures, folders, videos, streams and webcams (keras-yolo3's yolo_video.py).

    python yolo_video.py --image dog.jpg photos/ "shots/*.png" --output out/ --json out/detections.json
    python yolo_video.py --image                      # asks for file names in a loop
    python yolo_video.py --input video.mp4 --output out.mp4
    python yolo_video.py --input 0                     # webcam 0 (add --show for a window)

Boxes are Darknet's: same letterbox, decoding, thresholds and per-class NMS (see docs/detection.md).
Exit codes: 0 done, 1 some pictures could not be read (each named; the rest were processed),
2 a user error (missing or mismatched model/anchors/classes file, unopenable video, bad option).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = "model_data/yolov3-tiny.keras"
DEFAULT_CLASSES = "model_data/coco_classes.txt"
PICTURE_FORMATS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


class UserError(Exception):
    """Reported as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description="Detect objects with a converted YOLO model on pictures, folders, globs, video files, "
                    "stream URLs or webcams.",
        epilog="Exit codes: 0 done; 1 some pictures could not be read (named on stderr); 2 user error.")
    ap.add_argument("-m", "--model", "--model_path", dest="model", default=None,
                    help=f"converted model: .keras/.h5, a convert.py -w weights file, or an .onnx file "
                         f"(with --backend onnxruntime); default {DEFAULT_MODEL} beside this script")
    ap.add_argument("-a", "--anchors", "--anchors_path", dest="anchors", default=None,
                    help="anchors file; optional, the anchors travel inside the model and this must agree")
    ap.add_argument("-c", "--classes", "--classes_path", dest="classes", default=None,
                    help=f"class names, one a line; default {DEFAULT_CLASSES} beside this script")
    ap.add_argument("--gpu_num", "--gpu-num", dest="gpu_num", type=int, default=1,
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
    ap.add_argument("--size", type=int, default=None,
                    help="network input size, a multiple of 32 (default: the model's, e.g. 416)")
    ap.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=1,
                    help="pictures or frames per network call (default 1)")
    ap.add_argument("--max-boxes", "--max_boxes", dest="max_boxes", type=int, default=100,
                    help="at most this many detections per picture (default 100)")
    ap.add_argument("--json", default=None, metavar="FILE", help="write all detections to this JSON file")
    ap.add_argument("--json-format", "--json_format", dest="json_format", choices=("native", "coco"),
                    default="native",
                    help="native: [{image, width, height, detections: [{class_id, class, score, box}]}]; "
                         "coco: COCO results [{image_id, category_id, bbox: [x, y, w, h], score}]")
    ap.add_argument("--show", action="store_true",
                    help="display the results in a window (if OpenCV can; pictures wait for a key)")
    ap.add_argument("--backend", choices=("tf", "onnxruntime"), default="tf",
                    help="run the network in TensorFlow (default) or ONNX Runtime (needs onnxruntime + "
                         "onnx; a Keras model is exported at start-up, an .onnx file is used as is)")
    ap.add_argument("--max-frames", "--max_frames", dest="max_frames", type=int, default=None,
                    help="video mode: stop after this many frames")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bar or per-picture lines")
    return ap


def _resolve_default(given: str | None, default: str) -> str:
    from yolo3.resources import resolve_data_path

    return given if given is not None else resolve_data_path(str(SCRIPT_DIR / default))


def check_options(args) -> None:
    """Everything that can be checked before loading TensorFlow; raises UserError."""
    if args.image is None and args.input is None:
        raise UserError("nothing to do: give --image [PATH ...] or --input VIDEO (see --help)")
    if args.image is not None and args.input is not None:
        raise UserError("give either --image or --input, not both")
    if args.size is not None and (args.size <= 0 or args.size % 32):
        raise UserError(f"--size must be a positive multiple of 32, got {args.size}")
    if not 0 <= args.score < 1:
        raise UserError(f"--score must be in [0, 1), got {args.score}")
    if not 0 <= args.iou <= 1:
        raise UserError(f"--iou must be in [0, 1], got {args.iou}")
    if args.batch_size < 1 or args.max_boxes < 1:
        raise UserError("--batch-size and --max-boxes must be at least 1")
    model = _resolve_default(args.model, DEFAULT_MODEL)
    if not os.path.isfile(model):
        hint = ""
        if args.model is None:
            hint = (" (convert the Darknet weights first: python convert.py model_data/yolov3-tiny.cfg "
                    "\"$(python -m yolo3.modeling.pretrained yolov3-tiny -q)\" model_data/yolov3-tiny.keras)")
        raise UserError(f"model file not found: {model}{hint}")
    classes = _resolve_default(args.classes, DEFAULT_CLASSES)
    if not os.path.isfile(classes):
        raise UserError(f"classes file not found: {classes}")
    if args.anchors is not None and not os.path.isfile(args.anchors):
        raise UserError(f"anchors file not found: {args.anchors}")
    if args.json is not None:
        folder = os.path.dirname(os.path.abspath(args.json))
        if not os.path.isdir(folder):
            raise UserError(f"folder for --json does not exist: {folder}")
    if args.input is not None and args.output:
        from yolo3.inference.video import fourcc_for

        try:
            fourcc_for(args.output)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if args.image is not None and args.output and os.path.isfile(args.output):
        raise UserError(f"--output must be a folder in picture mode, but {args.output} is a file")


def make_detector(args):
    from yolo3.inference.detector import Detector, DetectorError

    try:
        return Detector(_resolve_default(args.model, DEFAULT_MODEL),
                        classes_path=_resolve_default(args.classes, DEFAULT_CLASSES),
                        anchors_path=args.anchors, score=args.score, iou=args.iou, size=args.size,
                        max_boxes=args.max_boxes, backend=args.backend)
    except DetectorError as exc:
        raise UserError(str(exc)) from None


def output_name(path: str, used: set[str]) -> str:
    """A file name in the output folder for picture ``path``: its own name, made unique."""
    stem, ext = os.path.splitext(os.path.basename(path))
    if ext.lower() not in PICTURE_FORMATS:
        ext = ".png"
    name, n = stem + ext, 1
    while name in used:
        name, n = f"{stem}_{n}{ext}", n + 1
    used.add(name)
    return name


def save_picture(rgb, path: str) -> None:
    from PIL import Image

    image = Image.fromarray(rgb)
    if path.lower().endswith((".jpg", ".jpeg")):
        image.save(path, quality=95)
    else:
        image.save(path)


def describe(path, det, class_names) -> str:
    items = ", ".join(f"{class_names[int(c)]} {float(s):.2f}" for s, c in zip(det.scores, det.class_ids))
    return f"{path}: {len(det)} object(s){': ' + items if items else ''}"


def detect_pictures(detector, args, records: list) -> int:
    """--image with paths: all pictures, batched and overlapped; returns the count that failed."""
    from tqdm import tqdm

    from yolo3.datasets.imageio import ImageReadError, list_images, read_image_rgb
    from yolo3.inference.video import pipelined_detect

    paths = list_images(args.image)
    if not paths:
        raise UserError("no pictures given (empty folder?)")
    if args.output:
        os.makedirs(args.output, exist_ok=True)
    failed: list[str] = []
    used: set[str] = set()
    bar = tqdm(total=len(paths), unit="img", desc="pictures", disable=args.quiet or len(paths) < 2,
               dynamic_ncols=True)

    def read_all():
        for path in paths:
            try:
                yield path, read_image_rgb(path)
            except ImageReadError as exc:
                failed.append(path)
                tqdm.write(f"error: cannot read {exc}", file=sys.stderr)
                bar.update(1)

    def handle(path, image, det):
        records.append(det.record(path, image.shape, detector.class_names))
        if not args.quiet:
            tqdm.write(describe(path, det, detector.class_names))
        if args.output or args.show:
            drawn = detector.draw(image, det)
            if args.output:
                save_picture(drawn, os.path.join(args.output, output_name(path, used)))
            if args.show:
                show_picture(drawn)

    try:
        pipelined_detect(detector, read_all(), handle, batch_size=args.batch_size, on_batch=bar.update)
    finally:
        bar.close()
    done = len(paths) - len(failed)
    print(f"{done} picture(s) processed" + (f", {len(failed)} could not be read" if failed else "")
          + (f"; drawn pictures in {args.output}" if args.output else ""), file=sys.stderr)
    return len(failed)


def prompt_pictures(detector, args, records: list) -> int:
    """--image with no path: keras-yolo3's loop asking for file names (empty line or EOF ends it)."""
    from yolo3.datasets.imageio import ImageReadError, read_image_rgb

    used: set[str] = set()
    while True:
        try:
            path = input("Input image filename:").strip().strip("'\"")
        except EOFError:
            print()
            break
        if path in ("", "q", "quit", "exit"):
            break
        try:
            image = read_image_rgb(path)
        except ImageReadError as exc:
            print(f"Open Error! Try again! ({exc})")
            continue
        det = detector.detect_one(image)
        records.append(det.record(path, image.shape, detector.class_names))
        print(describe(path, det, detector.class_names))
        drawn = detector.draw(image, det) if (args.output or args.show) else None
        if args.output:
            os.makedirs(args.output, exist_ok=True)
            out = os.path.join(args.output, output_name(path, used))
            save_picture(drawn, out)
            print(f"saved {out}")
        if args.show:
            show_picture(drawn)
    return 0


def show_picture(rgb) -> None:
    """Show a drawn picture until a key is pressed."""
    import cv2

    cv2.imshow("yolo3", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.waitKey(0)


def detect_video(detector, args, records: list) -> int:
    from yolo3.inference.video import VideoOpenError, process_video

    try:
        stats = process_video(detector, args.input, output=args.output or None, batch_size=args.batch_size,
                              records=records if args.json else None, show=args.show,
                              progress=not args.quiet, max_frames=args.max_frames)
    except VideoOpenError as exc:
        raise UserError(str(exc)) from None
    print(f"{stats.frames} frame(s) of {stats.size[0]}x{stats.size[1]} in {stats.seconds:.1f} s: "
          f"{stats.fps:.1f} frames/s" + (f"; wrote {args.output} at {stats.source_fps:g} fps" if args.output else ""),
          file=sys.stderr)
    return 0


def write_json(path: str, records: list, fmt: str, class_names) -> None:
    """Write native records (or, with ``fmt == "coco"``, COCO results) to ``path`` atomically."""
    from yolo3.datasets.coco import coco_results

    data = coco_results(records, class_names) if fmt == "coco" else records
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    records: list = []
    detector = None
    failures = 0
    try:
        check_options(args)
        if args.show and args.input is None:
            from yolo3.inference.video import can_display

            if not can_display():
                print("warning: --show ignored: this OpenCV build has no display support "
                      "(opencv-python-headless) or no display is available", file=sys.stderr)
                args.show = False
        detector = make_detector(args)
        if args.input is not None:
            failures = detect_video(detector, args, records)
        elif args.image:
            failures = detect_pictures(detector, args, records)
        else:
            failures = prompt_pictures(detector, args, records)
    except UserError as exc:
        print(f"yolo_video.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # keep what was detected so far
        print("interrupted", file=sys.stderr)
        failures = 1
    if args.json:
        write_json(args.json, records, args.json_format, detector.class_names)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
