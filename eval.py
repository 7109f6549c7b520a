"""Measure a detector: Pascal VOC mAP per class and COCO metrics (pycocotools) on an annotated set.

    python eval.py --model model_data/yolo.keras --annotation val.txt --classes model_data/coco_classes.txt \
        --out eval_out
    python eval.py --detections dets.json --annotation val.txt --classes model_data/voc_classes.txt

The first runs the model over every annotated image (batched, low score threshold so the whole
precision-recall curve is measured); the second evaluates the JSON that `yolo_video.py --json`
wrote. --out DIR writes per_class.csv, per_class.md, pr_curves.png, detections_coco.json and
metrics.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # importing yolo3 imports Keras; keep stderr clean


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the uninformative None / True / False of optional values and switches."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


class UserError(Exception):
    """Unusable input: printed as one line, exit code 2."""


def parse_size(text: str) -> int | tuple[int, int]:
    """'416' -> 416; '608x416' (width x height) -> (416, 608) as (height, width) for the Detector."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or WxH, got {text!r}") from None
    if len(values) == 1:
        return values[0]
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected N or WxH, got {text!r}")
    return values[1], values[0]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Evaluate detections on an annotated image set: VOC mAP per class and COCO metrics.",
        formatter_class=_HelpFormatter)
    src = p.add_argument_group("what to evaluate (one of)")
    src.add_argument("--model", "--model_path", dest="model", default=None,
                     help="model file (.keras / .h5 / convert.py -w weights) to run over the images")
    src.add_argument("--detections", default=None, metavar="FILE",
                     help="detections JSON written by yolo_video.py --json (no model is run)")
    p.add_argument("--annotation", "--annotation_path", dest="annotation", required=True,
                   help="annotation file of the evaluation set ('path x1,y1,x2,y2,class ...' per line)")
    p.add_argument("--classes", "--classes_path", dest="classes", default=None,
                   help="class names file (required with --detections; default with --model: the model's)")
    p.add_argument("--root", default=None,
                   help="folder relative image paths are resolved against (default: the annotation file's folder)")
    p.add_argument("--score", type=float, default=0.001,
                   help="score threshold; keep it low, mAP integrates over all thresholds")
    p.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold")
    p.add_argument("--size", type=parse_size, default=None, metavar="N|WxH",
                   help="network input size, a multiple of 32 (default: the model's own, e.g. 416)")
    p.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int, default=8, help="images a batch")
    p.add_argument("--max-boxes", "--max_boxes", dest="max_boxes", type=int, default=100,
                   help="detections kept per image (COCO counts at most 100)")
    p.add_argument("--backend", choices=("tf", "onnxruntime"), default="tf",
                   help="run the network in TensorFlow or ONNX Runtime (see yolo_video.py --backend)")
    p.add_argument("--match-iou", dest="match_iou", type=float, default=0.5,
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
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return p


def _names_list(paths: list[str], n: int = 5) -> str:
    more = f" and {len(paths) - n} more" if len(paths) > n else ""
    return ", ".join(paths[:n]) + more


def _check_class_ids(source: str, ground_truth, num_classes: int) -> None:
    from yolo3.datasets.annotations import AnnotationError

    for ann in ground_truth:
        bad = ann.boxes[:, 4] >= num_classes
        if bad.any():
            k = int(bad.argmax())
            raise AnnotationError(source, ann.lineno, f"box {k + 1} has class id {int(ann.boxes[k, 4])} out of "
                                                      f"range (0..{num_classes - 1})")


def _json_safe(v):
    """NaN -> None (JSON has no NaN), numpy scalars -> Python."""
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    if isinstance(v, float):
        return None if v != v else v
    return v


def _image_ids_and_categories(annotation: str, ground_truth, class_names) -> tuple[list[int], list[int], str]:
    """COCO image/category ids for the results JSON, the same ids `python -m yolo3.datasets.coco from-annotation`
    gives the ground truth: from the sidecar written by `to-annotation`, else the default rules."""
    from yolo3.datasets.coco import default_category_ids, image_ids_for, read_sidecar, sidecar_path

    side = sidecar_path(annotation)
    if os.path.isfile(side):
        data = read_sidecar(side)
        if len(data["categories"]) == len(class_names):
            return (image_ids_for(ground_truth, data), [c["id"] for c in data["categories"]],
                    f"COCO ids from {side}")
    return (image_ids_for(ground_truth, None), default_category_ids(class_names),
            "default COCO ids, as `python -m yolo3.datasets.coco from-annotation` numbers them")


def run(args: argparse.Namespace) -> int:
    from yolo3.datasets.annotations import AnnotationError, read_annotations, read_class_names
    from yolo3.datasets.coco import CocoFormatError
    from yolo3.evaluation.metrics import COCO_STAT_NAMES, EvaluationError, evaluate_coco, evaluate_voc
    from yolo3.evaluation.detections_io import clip_detections, coco_results_json, load_detections_json
    from yolo3.evaluation.run import detect_annotated_images
    from yolo3.evaluation.reports import per_class_rows, plot_pr_curves, write_per_class_csv, write_per_class_markdown

    if bool(args.model) == bool(args.detections):
        raise UserError("give exactly one of --model (run a model) or --detections FILE (evaluate a JSON)")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not 0 < args.match_iou < 1:
        raise UserError(f"--match-iou must be in (0, 1), got {args.match_iou}")
    if args.detections and not args.classes:
        raise UserError("--detections needs --classes (the class names the detections were made with)")

    class_names = None
    if args.classes:
        try:
            class_names = read_class_names(args.classes)
        except (FileNotFoundError, ValueError, UnicodeDecodeError) as e:
            raise UserError(str(e)) from None
    try:
        ground_truth = read_annotations(args.annotation, num_classes=len(class_names) if class_names else None,
                                        root=args.root)
    except AnnotationError as e:
        raise UserError(str(e)) from None
    except (FileNotFoundError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {args.annotation}: {e}") from None
    if not ground_truth:
        raise UserError(f"no annotated images in {args.annotation}")

    if args.model:
        missing = [g.path for g in ground_truth if not os.path.isfile(g.path)]
        if missing:
            raise UserError(f"{len(missing)} annotated image(s) not found: {_names_list(missing)}")
        from yolo3.inference.detector import Detector, DetectorError
        from yolo3.datasets.imageio import ImageReadError

        try:
            detector = Detector(args.model, classes_path=args.classes, score=args.score, iou=args.iou,
                                size=args.size, max_boxes=args.max_boxes, backend=args.backend)
        except DetectorError as e:
            raise UserError(str(e)) from None
        except Exception as e:  # keras' load errors come in many types; one line for the user
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"cannot load model {args.model}: {first}") from None
        if class_names is None:
            class_names = list(detector.class_names)
            try:
                _check_class_ids(args.annotation, ground_truth, len(class_names))
            except AnnotationError as e:
                raise UserError(f"{e} (the model has {len(class_names)} classes)") from None
        try:
            detections, sizes = detect_annotated_images(detector, [g.path for g in ground_truth],
                                                        batch_size=args.batch_size, progress=args.progress)
        except ImageReadError as e:
            raise UserError(f"cannot read image {e}") from None
        source = f"model {args.model} (score > {args.score:g}, NMS IoU {args.iou:g}, size {detector.net_size[1]}x{detector.net_size[0]})"
    else:
        try:
            loaded = load_detections_json(args.detections, ground_truth, len(class_names), class_names)
        except (EvaluationError, FileNotFoundError) as e:
            raise UserError(str(e)) from None
        if len(loaded.images_without_entry) == len(ground_truth):
            first = f" (first entry: {loaded.unmatched_entries[0]})" if loaded.unmatched_entries else ""
            raise UserError(f"no entry of {args.detections} names an image of {args.annotation}{first}; "
                            f"first annotated image: {ground_truth[0].path}")
        if loaded.images_without_entry:
            print(f"WARNING: {len(loaded.images_without_entry)} annotated image(s) have no entry in "
                  f"{args.detections} and count as detecting nothing: {_names_list(loaded.images_without_entry)}")
        if loaded.unmatched_entries:
            print(f"WARNING: ignored {len(loaded.unmatched_entries)} entr(y/ies) of {args.detections} naming no "
                  f"annotated image: {_names_list(loaded.unmatched_entries)}")
        if loaded.matched_by_name:
            print(f"note: {loaded.matched_by_name} entr(y/ies) matched by file name only (their folders differ)")
        detections, sizes = loaded.detections, loaded.image_sizes
        source = f"detections {args.detections}"

    if args.clip:
        detections = clip_detections(detections, sizes)
    num_classes = len(class_names)
    voc = evaluate_voc(ground_truth, detections, num_classes, iou_threshold=args.match_iou,
                       use_07_metric=args.voc07)
    coco = None
    if args.coco:
        coco = evaluate_coco(ground_truth, detections, num_classes,
                             image_sizes=[s if s is not None else (0, 0) for s in sizes])
    rows = per_class_rows(voc, class_names, coco)

    nan = float("nan")
    width = max(5, *(len(r["class"]) for r in rows))
    ap_col = f"AP@{args.match_iou:g}"
    print(f"\nevaluated {source}\non {len(ground_truth)} images of {args.annotation}\n")
    print(f"{'id':>3} {'class':<{width}} {'GT':>6} {'dets':>7} {'TP':>6} {ap_col:>7} {'COCO AP':>7} {'AP50':>7}")
    for r in rows:
        def f(v: float) -> str:
            return "      -" if v != v else f"{v:7.4f}"
        print(f"{r['class_id']:>3} {r['class']:<{width}} {r['ground_truth']:>6} {r['detections']:>7} "
              f"{r['true_positives']:>6} {f(r['voc_ap'])} {f(r.get('coco_ap', nan))} {f(r.get('coco_ap50', nan))}")
    n_with_gt = int((voc.num_ground_truth > 0).sum())
    # "mAP: <value>" first, the details after: scripts grepping for the number find it.
    interp = "VOC2007 11-point" if voc.use_07_metric else "all-point"
    headline = (f"VOC mAP: {voc.mean_ap:.4f}  ({interp} interpolation, match IoU {voc.iou_threshold:g}; mean over "
                f"{n_with_gt} of {num_classes} classes with ground truth)")
    print("\n" + headline)
    coco_line = ("COCO (pycocotools): " + "  ".join(f"{k} {coco.stats[k]:.4f}" for k in COCO_STAT_NAMES)
                 if coco is not None else "COCO metrics skipped (--no-coco)")
    print(coco_line)
    if coco is not None:
        print(coco.summary.rstrip())

    metrics = {
        "mAP": voc.mean_ap,
        "voc": {"interpolation": interp, "match_iou": voc.iou_threshold, "mAP": voc.mean_ap,
                "classes_with_ground_truth": n_with_gt},
        "coco": coco.stats if coco is not None else None,
        "source": source, "annotation": os.path.abspath(args.annotation), "images": len(ground_truth),
        "per_class": rows,
    }
    if args.json:
        try:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(_json_safe(metrics), fh, indent=1)
        except OSError as e:
            raise UserError(f"cannot write {args.json}: {e.strerror or e}") from None
    if args.out:
        try:
            os.makedirs(args.out, exist_ok=True)
            summary = [headline, coco_line,
                       f"evaluated {source} on {len(ground_truth)} images of {args.annotation}"]
            write_per_class_csv(os.path.join(args.out, "per_class.csv"), rows)
            write_per_class_markdown(os.path.join(args.out, "per_class.md"), rows, summary)
            plot_pr_curves(os.path.join(args.out, "pr_curves.png"), voc, class_names)
            image_ids, category_ids, ids_note = _image_ids_and_categories(args.annotation, ground_truth, class_names)
            with open(os.path.join(args.out, "detections_coco.json"), "w", encoding="utf-8") as fh:
                json.dump(coco_results_json(detections, image_ids, category_ids), fh)
            metrics["detections_coco_ids"] = ids_note
            with open(os.path.join(args.out, "metrics.json"), "w", encoding="utf-8") as fh:
                json.dump(_json_safe(metrics), fh, indent=1)
        except (OSError, CocoFormatError) as e:
            raise UserError(f"cannot write results to {args.out}: {e}") from None
        print(f"\nwrote per_class.csv, per_class.md, pr_curves.png, detections_coco.json ({ids_note}), "
              f"metrics.json to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except UserError as e:
        print(f"eval.py: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
