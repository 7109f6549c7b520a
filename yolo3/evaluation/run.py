"""The evaluation run: ground truth of an annotated set, detections (from a detector or a detections
JSON), VOC AP per class and COCO metrics, in one :class:`EvaluationResult` (what ``eval.py`` prints and
writes; :mod:`yolo3.evaluation.reports` writes the files)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from tqdm import tqdm

from ..datasets.annotations import AnnotatedImage, AnnotationError, read_annotations, read_class_names
from ..datasets.imageio import ImageReadError, read_image_rgb
from .detections_io import clip_detections, load_detections_json
from .metrics import (
    COCO_STAT_NAMES,
    COCOResult,
    DetectionsLike,
    EvaluationError,
    VOCResult,
    evaluate_coco,
    evaluate_voc,
)
from .reports import per_class_rows

__all__ = ["EvaluationResult", "read_class_list", "load_ground_truth", "check_images_exist", "check_class_ids",
           "detect_annotated_images", "evaluate_detections", "evaluate_model", "evaluate_detections_file"]


@dataclass
class EvaluationResult:
    """VOC and COCO metrics of one evaluation, with what was evaluated.

    ``rows``: one dict per class (:func:`yolo3.evaluation.reports.per_class_rows`); ``detections``:
    one per ground-truth image (xyxy pixels, clipped unless asked not to); ``coco`` is None when skipped;
    ``notes``: warnings about the inputs, one line each (images without detections entry ...).
    """

    voc: VOCResult
    coco: COCOResult | None
    rows: list[dict]
    ground_truth: list[AnnotatedImage]
    detections: list[DetectionsLike]
    class_names: list[str]
    source: str
    annotation: str
    notes: list[str] = field(default_factory=list)

    @property
    def interpolation(self) -> str:
        return "VOC2007 11-point" if self.voc.use_07_metric else "all-point"

    @property
    def classes_with_ground_truth(self) -> int:
        return int((self.voc.num_ground_truth > 0).sum())

    @property
    def headline(self) -> str:
        """``VOC mAP: <value>  (...)``: the number first, so that scripts grepping for it find it."""
        return (f"VOC mAP: {self.voc.mean_ap:.4f}  ({self.interpolation} interpolation, match IoU "
                f"{self.voc.iou_threshold:g}; mean over {self.classes_with_ground_truth} of "
                f"{len(self.class_names)} classes with ground truth)")

    @property
    def coco_line(self) -> str:
        if self.coco is None:
            return "COCO metrics skipped (--no-coco)"
        return "COCO (pycocotools): " + "  ".join(f"{k} {self.coco.stats[k]:.4f}" for k in COCO_STAT_NAMES)

    def metrics(self) -> dict[str, Any]:
        """The metrics as a JSON-ready dict: top-level ``mAP``, ``voc``, ``coco``, ``per_class``."""
        return {
            "mAP": self.voc.mean_ap,
            "voc": {"interpolation": self.interpolation, "match_iou": self.voc.iou_threshold,
                    "mAP": self.voc.mean_ap, "classes_with_ground_truth": self.classes_with_ground_truth},
            "coco": self.coco.stats if self.coco is not None else None,
            "source": self.source, "annotation": os.path.abspath(self.annotation),
            "images": len(self.ground_truth), "per_class": self.rows,
        }


def read_class_list(path: str) -> list[str]:
    """Class names of a file, one a line; :class:`EvaluationError` (one line) when missing or empty.

    Args:
        path: the class names file.
    """
    try:
        return read_class_names(path)
    except (FileNotFoundError, ValueError, UnicodeDecodeError) as e:
        raise EvaluationError(str(e)) from None


def load_ground_truth(annotation: str, num_classes: int | None = None, root: str | None = None
                      ) -> list[AnnotatedImage]:
    """The annotated images of an evaluation set.

    Args:
        annotation: annotation file, ``path x1,y1,x2,y2,class ...`` per line.
        num_classes: class ids must be below this (None: not checked).
        root: folder relative image paths are resolved against (default: the annotation file's folder).

    Raises:
        AnnotationError: a malformed line (file and line named).
        EvaluationError: the file cannot be read or lists no images.
    """
    try:
        ground_truth = read_annotations(annotation, num_classes=num_classes, root=root)
    except (FileNotFoundError, UnicodeDecodeError) as e:
        raise EvaluationError(f"cannot read {annotation}: {e}") from None
    if not ground_truth:
        raise EvaluationError(f"no annotated images in {annotation}")
    return ground_truth


def check_images_exist(ground_truth: Sequence[AnnotatedImage], names: Callable[[list[str]], str]) -> None:
    """:class:`EvaluationError` naming the annotated images that are no files (``names`` shortens the list).

    Args:
        ground_truth: the annotated images.
        names: turns the list of missing paths into the text shown (e.g. the first five).
    """
    missing = [g.path for g in ground_truth if not os.path.isfile(g.path)]
    if missing:
        raise EvaluationError(f"{len(missing)} annotated image(s) not found: {names(missing)}")


def check_class_ids(source: str, ground_truth: Sequence[AnnotatedImage], num_classes: int) -> None:
    """:class:`AnnotationError` (file and line) for the first box whose class id is ``>= num_classes``.

    Args:
        source: the annotation file's name, for the message.
        ground_truth: the annotated images.
        num_classes: the number of classes.
    """
    for ann in ground_truth:
        bad = ann.boxes[:, 4] >= num_classes
        if bad.any():
            k = int(bad.argmax())
            raise AnnotationError(source, ann.lineno, f"box {k + 1} has class id {int(ann.boxes[k, 4])} out of "
                                                      f"range (0..{num_classes - 1})")


def detect_annotated_images(
    detector: Any,
    paths: Sequence[str],
    batch_size: int = 8,
    progress: bool = True,
    read_image: Callable[[str], np.ndarray] | None = None,
) -> tuple[list[DetectionsLike], list[tuple[int, int]]]:
    """Run ``detector.detect`` over images in batches (tqdm bar); returns detections and (width, height) sizes.

    Args:
        detector: anything with ``detect(list of uint8 RGB images) -> list of detections``.
        paths: the image files.
        batch_size: images a ``detect`` call.
        progress: show a progress bar (only on a terminal).
        read_image: reads a file as uint8 RGB (default :func:`yolo3.datasets.imageio.read_image_rgb`); its
            errors propagate.
    """
    read_image = read_image or read_image_rgb
    bar = None
    if progress:
        bar = tqdm(total=len(paths), desc="detecting", unit="img", disable=None)  # no bar when not a terminal
    dets: list[DetectionsLike] = []
    sizes: list[tuple[int, int]] = []
    try:
        for start in range(0, len(paths), batch_size):
            images = [read_image(p) for p in paths[start:start + batch_size]]
            sizes.extend((im.shape[1], im.shape[0]) for im in images)
            dets.extend(detector.detect(images))
            if bar is not None:
                bar.update(len(images))
    finally:
        if bar is not None:
            bar.close()
    return dets, sizes


def evaluate_detections(ground_truth: list[AnnotatedImage], detections: Sequence[DetectionsLike],
                        sizes: Sequence[tuple[int, int] | None], class_names: Sequence[str], *, source: str,
                        annotation: str, match_iou: float = 0.5, voc07: bool = False, coco: bool = True,
                        clip: bool = True, notes: Sequence[str] = ()) -> EvaluationResult:
    """VOC AP per class (and COCO metrics) of detections, one per ground-truth image.

    Args:
        ground_truth: the annotated images.
        detections: one per image, boxes xyxy in image pixels.
        sizes: each image's (width, height) in pixels, None where unknown.
        class_names: the class names (their count is the number of classes).
        source: what made the detections, for the report.
        annotation: the annotation file's name, for the report.
        match_iou: IoU a detection needs with a ground-truth box to count for VOC AP.
        voc07: VOC2007 11-point AP instead of all-point interpolation.
        coco: also compute the COCO metrics (pycocotools).
        clip: clip boxes to their image before matching.
        notes: warnings about the inputs, kept in the result.
    """
    if clip:
        detections = clip_detections(detections, sizes)
    num_classes = len(class_names)
    voc = evaluate_voc(ground_truth, detections, num_classes, iou_threshold=match_iou, use_07_metric=voc07)
    coco_result = None
    if coco:
        coco_result = evaluate_coco(ground_truth, detections, num_classes,
                                    image_sizes=[s if s is not None else (0, 0) for s in sizes])
    return EvaluationResult(voc, coco_result, per_class_rows(voc, class_names, coco_result), list(ground_truth),
                            list(detections), list(class_names), source, annotation, list(notes))


def evaluate_model(detector: Any, ground_truth: list[AnnotatedImage], annotation: str, *, model_name: str,
                   batch_size: int = 8, progress: bool = True, **options) -> EvaluationResult:
    """Run ``detector`` over every annotated image and evaluate its detections.

    Args:
        detector: a :class:`yolo3.inference.detector.Detector` (``class_names``, thresholds, ``input_size``).
        ground_truth: the annotated images (:func:`load_ground_truth`).
        annotation: the annotation file's name; its class ids are checked against the detector's classes.
        model_name: the model file's name, for the report.
        batch_size: images a network call.
        progress: show a progress bar.
        options: ``match_iou``, ``voc07``, ``coco``, ``clip`` of :func:`evaluate_detections`.
    """
    class_names = list(detector.class_names)
    try:
        check_class_ids(annotation, ground_truth, len(class_names))
    except AnnotationError as e:
        raise EvaluationError(f"{e} (the model has {len(class_names)} classes)") from None
    try:
        detections, sizes = detect_annotated_images(detector, [g.path for g in ground_truth],
                                                    batch_size=batch_size, progress=progress)
    except ImageReadError as e:
        raise EvaluationError(f"cannot read image {e}") from None
    height, width = detector.input_size
    source = (f"model {model_name} (score > {detector.score_threshold:g}, NMS IoU {detector.iou_threshold:g}, "
              f"size {width}x{height})")
    return evaluate_detections(ground_truth, detections, sizes, class_names, source=source, annotation=annotation,
                               **options)


def evaluate_detections_file(path: str, ground_truth: list[AnnotatedImage], annotation: str,
                             class_names: Sequence[str], *, names: Callable[[list[str]], str] = ", ".join,
                             **options) -> EvaluationResult:
    """Evaluate a ``yolo_video.py --json`` detections file against the annotated images.

    Args:
        path: the detections JSON.
        ground_truth: the annotated images (:func:`load_ground_truth`).
        annotation: the annotation file's name, for messages and the report.
        class_names: the class names the detections were made with.
        names: turns a list of paths into the text shown in notes (e.g. the first five).
        options: ``match_iou``, ``voc07``, ``coco``, ``clip`` of :func:`evaluate_detections`.

    Raises:
        EvaluationError: a missing or malformed file, or no entry naming an annotated image.
    """
    try:
        loaded = load_detections_json(path, ground_truth, len(class_names), class_names)
    except FileNotFoundError as e:
        raise EvaluationError(str(e)) from None
    if len(loaded.images_without_entry) == len(ground_truth):
        first = f" (first entry: {loaded.unmatched_entries[0]})" if loaded.unmatched_entries else ""
        raise EvaluationError(f"no entry of {path} names an image of {annotation}{first}; "
                              f"first annotated image: {ground_truth[0].path}")
    notes = []
    if loaded.images_without_entry:
        notes.append(f"WARNING: {len(loaded.images_without_entry)} annotated image(s) have no entry in "
                     f"{path} and count as detecting nothing: {names(loaded.images_without_entry)}")
    if loaded.unmatched_entries:
        notes.append(f"WARNING: ignored {len(loaded.unmatched_entries)} entr(y/ies) of {path} naming no "
                     f"annotated image: {names(loaded.unmatched_entries)}")
    if loaded.matched_by_name:
        notes.append(f"note: {loaded.matched_by_name} entr(y/ies) matched by file name only (their folders differ)")
    return evaluate_detections(ground_truth, loaded.detections, loaded.image_sizes, class_names,
                               source=f"detections {path}", annotation=annotation, notes=notes, **options)
