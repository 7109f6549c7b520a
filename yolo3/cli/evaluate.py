"""``eval.py`` / ``yolo3-eval`` / ``python -m yolo3.cli.evaluate``: measure a detector on an annotated set,
Pascal VOC mAP per class and COCO metrics (pycocotools) (:mod:`yolo3.evaluation`).

--model runs the model over every annotated image (batched, low score threshold so the whole
precision-recall curve is measured); --detections evaluates the JSON that ``yolo_video.py --json``
wrote. --out DIR writes per_class.csv, per_class.md, pr_curves.png, detections_coco.json and metrics.json.
"""
from __future__ import annotations

import argparse
import os
import sys

from ..datasets.coco import CocoFormatError
from ..datasets.decode_check import check_decodable
from ..datasets.imageio import read_image_rgb
from ..evaluation.reports import REPORT_FILES, format_table, write_metrics_json, write_reports
from ..evaluation.run import (
    EvaluationResult,
    check_images_exist,
    evaluate_detections_file,
    evaluate_model,
    load_ground_truth,
    read_class_list,
)
from ..inference.detector import Detector, DetectorError
from ..resources import resolve_data_path
from .backend_options import add_backend_arguments, announce_backend, backend_options, precision_warnings_as_lines
from .common import (
    HelpFormatter,
    UsageError,
    check_output_dir,
    check_output_file,
    first_names,
    fraction,
    number_type,
    positive_int,
    prog_name,
    run_tool,
    size_type,
)

SCRIPT, MODULE = "eval.py", "yolo3.cli.evaluate"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of the evaluation tool.

    Args:
        prog: program name shown in usage and messages (default: as the tool was started).
    """
    p = argparse.ArgumentParser(
        prog=prog or prog_name(SCRIPT, MODULE),
        description="Evaluate detections on an annotated image set: VOC mAP per class and COCO metrics.",
        formatter_class=HelpFormatter)
    src = p.add_argument_group("what to evaluate (one of)")
    src.add_argument("--model", "--model_path", dest="model", default=None,
                     help="model file (.keras / .h5 / convert.py -w weights) to run over the images")
    src.add_argument("--detections", default=None, metavar="FILE",
                     help="detections JSON written by yolo_video.py --json (no model is run)")
    p.add_argument("--annotation", "--annotation_path", dest="annotation", required=True,
                   help="annotation file of the evaluation set ('path x1,y1,x2,y2,class ...' per line)")
    p.add_argument("--classes", "--classes_path", dest="classes", default=None, type=resolve_data_path,
                   help="class names file (required with --detections; default with --model: the model's)")
    p.add_argument("--anchors", "--anchors_path", dest="anchors", default=None, type=resolve_data_path,
                   help="anchors file for a keras-yolo3 .h5 model (which holds none; default keras-yolo3's); "
                        "other models carry their anchors and this must agree")
    p.add_argument("--root", default=None,
                   help="folder relative image paths are resolved against (default: the annotation file's folder)")
    p.add_argument("--score", type=number_type(float, 0, 1, high_open=True), default=0.001,
                   help="score threshold; keep it low, mAP integrates over all thresholds")
    p.add_argument("--iou", type=fraction, default=0.45, help="NMS IoU threshold")
    p.add_argument("--size", type=size_type("--size"), default=None, metavar="N|HxW",
                   help="network input size, height x width, multiples of 32 (default: the model's own, e.g. 416)")
    p.add_argument("--batch-size", "--batch_size", dest="batch_size", type=positive_int, default=8,
                   help="images a batch")
    p.add_argument("--max-boxes", "--max_boxes", dest="max_boxes", type=positive_int, default=100,
                   help="detections kept per image (COCO counts at most 100)")
    add_backend_arguments(p)
    p.add_argument("--match-iou", dest="match_iou", default=0.5,
                   type=number_type(float, 0, 1, low_open=True, high_open=True),
                   help="IoU a detection needs with a ground-truth box to count for VOC AP")
    p.add_argument("--voc07", action="store_true", help="VOC2007 11-point AP instead of all-point interpolation")
    p.add_argument("--no-coco", dest="coco", action="store_false",
                   help="skip the COCO metrics (pycocotools is slow: minutes for thousands of images with 100 "
                        "boxes each)")
    p.add_argument("--no-clip", dest="clip", action="store_false",
                   help="do not clip detected boxes to the image before matching")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write per_class.csv/.md, pr_curves.png, detections_coco.json, metrics.json here")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="write the metrics (top-level 'mAP', 'coco', 'per_class') as JSON to FILE")
    p.add_argument("--skip-missing", "--skip_missing", dest="skip_missing", action="store_true",
                   help="with --model: leave out annotated images that are missing or cannot be decoded (every "
                        "image is decoded once up front, results cached) instead of stopping")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return p


def _check(args: argparse.Namespace) -> None:
    if bool(args.model) == bool(args.detections):
        raise UsageError("give exactly one of --model (run a model) or --detections FILE (evaluate a JSON)")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not 0 < args.match_iou < 1:
        raise UsageError(f"--match-iou must be in (0, 1), got {args.match_iou}")
    if args.detections and not args.classes:
        raise UsageError("--detections needs --classes (the class names the detections were made with)")
    inputs = [args.model, args.detections, args.annotation, args.classes]
    if args.json:
        check_output_file(args.json, "--json", inputs, create_folder=False)
    if args.out:
        check_output_dir(args.out, "--out")
        for name in REPORT_FILES:
            check_output_file(os.path.join(args.out, name), "--out", inputs, create_folder=True)


def _make_detector(args: argparse.Namespace) -> Detector:
    options = backend_options(args)
    try:
        with precision_warnings_as_lines():
            detector = Detector.from_file(args.model, args.classes, args.anchors, score_threshold=args.score,
                                          iou_threshold=args.iou, input_size=args.size,
                                          max_detections=args.max_boxes, **options)
        announce_backend(args)
        return detector
    except DetectorError:
        raise
    except Exception as e:  # keras' load errors come in many types; one line for the user
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"cannot load model {args.model}: {first}") from None


def _readable(args: argparse.Namespace, ground_truth: list) -> list:
    """The annotated images that exist and decode, all decoded once before the model loads (cached by
    path, size and mtime); :class:`UsageError`-like errors naming the others unless --skip-missing."""
    if not args.skip_missing:
        check_images_exist(ground_truth, first_names)
    present = [g for g in ground_truth if os.path.isfile(g.path)]
    kept = set(check_decodable([g.path for g in present], read_image_rgb, "pil", skip_bad=args.skip_missing,
                               progress=args.progress))
    readable = [g for g in present if g.path in kept]
    if len(readable) < len(ground_truth):
        print(f"left out {len(ground_truth) - len(readable)} missing or undecodable image(s) (--skip-missing)")
    if not readable:
        raise UsageError(f"no annotated image of {args.annotation} can be read")
    return readable


def _evaluate(args: argparse.Namespace) -> EvaluationResult:
    class_names = read_class_list(args.classes) if args.classes else None
    ground_truth = load_ground_truth(args.annotation, len(class_names) if class_names else None, args.root)
    options = dict(match_iou=args.match_iou, voc07=args.voc07, coco=args.coco, clip=args.clip)
    if args.model:
        ground_truth = _readable(args, ground_truth)
        return evaluate_model(_make_detector(args), ground_truth, args.annotation, model_name=args.model,
                              batch_size=args.batch_size, progress=args.progress, **options)
    return evaluate_detections_file(args.detections, ground_truth, args.annotation, class_names, names=first_names,
                                    **options)


def _print(result: EvaluationResult) -> None:
    for note in result.notes:
        print(note)
    print(f"\nevaluated {result.source}\non {len(result.ground_truth)} images of {result.annotation}\n")
    print("\n".join(format_table(result)))
    print("\n" + result.headline)
    print(result.coco_line)
    if result.coco is not None:
        print(result.coco.summary.rstrip())


def _run(args: argparse.Namespace) -> int:
    _check(args)
    result = _evaluate(args)
    _print(result)
    if args.json:
        try:
            write_metrics_json(args.json, result.metrics())
        except OSError as e:
            raise UsageError(f"cannot write {args.json}: {e.strerror or e}") from None
    if args.out:
        try:
            ids_note = write_reports(args.out, result)
        except (OSError, CocoFormatError) as e:
            raise UsageError(f"cannot write results to {args.out}: {e}") from None
        files = ", ".join(f"{f} ({ids_note})" if f == "detections_coco.json" else f for f in REPORT_FILES)
        print(f"\nwrote {files} to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation tool; 0 on success, 2 with ``prog: error: message`` on a user error.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).
    """
    return run_tool(argv, prog_name(SCRIPT, MODULE), build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
