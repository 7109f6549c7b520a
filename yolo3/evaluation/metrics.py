"""Detection metrics: Pascal VOC average precision (own implementation) and COCO metrics (pycocotools).

Inputs are plain numpy: ground truth as :class:`~yolo3.datasets.annotations.AnnotatedImage` (boxes (N, 5)
x1, y1, x2, y2, class_id in original-image pixels) and detections as any objects with ``boxes``
(N, 4) xyxy pixels, ``scores`` (N,) and ``class_ids`` (N,) -- :class:`yolo3.core.detections.Detections`
or :class:`ImageDetections` -- one per ground-truth image, in the same order. Nothing here needs
Keras, so training code can call :func:`evaluate_voc` / :func:`mean_average_precision` on its own
predictions for validation mAP.

VOC AP follows the Pascal VOC devkit: detections of a class sorted by score over all images; each
is matched to the ground-truth box of its class with the highest IoU in its image; a match above
``iou_threshold`` is a true positive if that box was not matched before, else a false positive
(duplicate); a match to a *difficult* box counts as neither. AP is the area under the precision
envelope (all-point interpolation, VOC2010+), or the 11-point average with ``use_07_metric``
(VOC2007). IoU uses continuous coordinates (area = (x2 - x1) * (y2 - y1), no "+1" pixel), as COCO.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..core.boxes import box_iou_xyxy
from ..datasets.annotations import AnnotatedImage
from ..errors import Yolo3Error

__all__ = ["EvaluationError", "DetectionsLike", "ImageDetections", "VOCResult", "COCOResult", "COCO_STAT_NAMES",
           "average_precision", "evaluate_voc", "mean_average_precision", "evaluate_coco"]


#: names of pycocotools' 12 summary numbers, in ``COCOeval.stats`` order
COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


class EvaluationError(Yolo3Error):
    """Unusable evaluation input (mismatched lengths, class ids out of range, a bad detections JSON)."""


class DetectionsLike(Protocol):
    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray


@dataclass
class ImageDetections:
    """Detections of one image: ``boxes`` float32 (N, 4) x1, y1, x2, y2 pixels, ``scores`` (N,), ``class_ids`` (N,)."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    def __len__(self) -> int:
        return int(len(self.scores))


def average_precision(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool = False) -> float:
    """AP from cumulative recall/precision (in score order).

    All-point: area under the precision envelope (precision made non-increasing from the right).

    Args:
        recall: (N,) cumulative recall (0..1) after each detection, in descending score order.
        precision: (N,) cumulative precision (0..1), aligned with ``recall``.
        use_07_metric: VOC2007 11-point AP instead: mean over recall thresholds 0, 0.1, ..., 1 of the best
            precision at recall >= t.

    Returns:
        The AP, 0..1.
    """
    recall = np.asarray(recall, np.float64)
    precision = np.asarray(precision, np.float64)
    if use_07_metric:
        ap = 0.0
        for t in np.arange(11) / 10.0:
            p = precision[recall >= t]
            ap += (p.max() if p.size else 0.0) / 11.0
        return float(ap)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


@dataclass
class VOCResult:
    """Pascal VOC evaluation.

    ``per_class_ap`` (C,): AP per class, nan for classes without (non-difficult) ground truth;
    ``mean_ap``: mean over classes with ground truth (nan if none has any).
    ``precision`` / ``recall`` / ``scores``: per class, arrays over that class's detections in
    descending score order (cumulative precision and recall after each detection).
    ``num_ground_truth`` (non-difficult boxes), ``num_detections``, ``num_true_positives`` per class.
    """

    mean_ap: float
    per_class_ap: np.ndarray
    precision: list[np.ndarray]
    recall: list[np.ndarray]
    scores: list[np.ndarray]
    num_ground_truth: np.ndarray
    num_detections: np.ndarray
    num_true_positives: np.ndarray
    iou_threshold: float = 0.5
    use_07_metric: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.per_class_ap)

    @property
    def metric_name(self) -> str:
        return f"VOC{'2007 11-point' if self.use_07_metric else ' all-point'} mAP@{self.iou_threshold:g}"


def _as_detections(det: Any, i: int, num_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        boxes = np.asarray(det.boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(det.scores, np.float64).reshape(-1)
        cls = np.asarray(det.class_ids).reshape(-1)
    except AttributeError:
        raise EvaluationError(f"detections[{i}] lacks boxes/scores/class_ids") from None
    if not (len(boxes) == len(scores) == len(cls)):
        raise EvaluationError(f"detections[{i}]: {len(boxes)} boxes, {len(scores)} scores, {len(cls)} class ids")
    bad = (cls < 0) | (cls >= num_classes) | (cls != np.round(cls)) if len(cls) else np.zeros(0, bool)
    if bad.any():
        raise EvaluationError(f"detections[{i}]: class id {cls[bad][0]} is not in 0..{num_classes - 1}")
    return boxes, scores, cls.astype(np.int64)


def _check_ground_truth(gt: AnnotatedImage, i: int, num_classes: int) -> np.ndarray:
    boxes = np.asarray(gt.boxes, np.float64).reshape(-1, 5)
    if len(boxes) and (boxes[:, 4].min() < 0 or boxes[:, 4].max() >= num_classes):
        where = f"{gt.path} (line {gt.lineno})" if gt.lineno else f"ground_truth[{i}]"
        raise EvaluationError(f"{where}: class id out of range 0..{num_classes - 1}")
    return boxes


def _difficult_flags(difficult: Sequence[np.ndarray] | None, i: int, n: int) -> np.ndarray:
    if difficult is None:
        return np.zeros(n, bool)
    flags = np.asarray(difficult[i], bool).reshape(-1)
    if len(flags) != n:
        raise EvaluationError(f"difficult[{i}] has {len(flags)} flags for {n} ground-truth boxes")
    return flags


def _match_image(gboxes: np.ndarray, gcls: np.ndarray, gdiff: np.ndarray, dboxes: np.ndarray, dscores: np.ndarray,
                 dcls: np.ndarray, iou_threshold: float) -> np.ndarray:
    """One image's detections matched to its ground truth, best score first within a class: 1 true
    positive, 0 false positive (no match, or a box matched before), -1 ignored (matches a difficult box)."""
    tp = np.zeros(len(dscores), np.int8)
    # Only classes with ground truth in this image need matching; other detections are false positives.
    for c in np.unique(gcls):
        idx = np.nonzero(dcls == c)[0]
        if not len(idx):
            continue
        idx = idx[np.argsort(-dscores[idx], kind="mergesort")]
        gmask = gcls == c
        ious = box_iou_xyxy(dboxes[idx], gboxes[gmask, :4])
        diff_c = gdiff[gmask]
        taken = np.zeros(int(gmask.sum()), bool)
        best = np.argmax(ious, axis=1)
        best_iou = ious[np.arange(len(idx)), best]
        for k in np.nonzero(best_iou > iou_threshold)[0]:
            j = best[k]
            if diff_c[j]:
                tp[idx[k]] = -1
            elif not taken[j]:
                tp[idx[k]] = 1
                taken[j] = True
    return tp


def evaluate_voc(
    ground_truth: Sequence[AnnotatedImage],
    detections: Sequence[DetectionsLike],
    num_classes: int,
    iou_threshold: float = 0.5,
    use_07_metric: bool = False,
    difficult: Sequence[np.ndarray] | None = None,
) -> VOCResult:
    """Pascal VOC AP per class and mAP (see module docstring for the matching rules).

    Args:
        ground_truth: the annotated images (boxes x1, y1, x2, y2, class_id in image pixels).
        detections: ``detections[i]`` belongs to ``ground_truth[i]`` (boxes xyxy pixels, scores, class ids).
        num_classes: the number of classes.
        iou_threshold: IoU above which a detection matches a ground-truth box.
        use_07_metric: VOC2007 11-point AP instead of all-point interpolation.
        difficult: ``difficult[i]`` (optional) flags the ground-truth boxes of image i that neither count
            as misses nor make detections false positives.
    """
    if len(ground_truth) != len(detections):
        raise EvaluationError(f"{len(detections)} detection entries for {len(ground_truth)} ground-truth images")
    if difficult is not None and len(difficult) != len(ground_truth):
        raise EvaluationError(f"{len(difficult)} difficult-flag entries for {len(ground_truth)} images")
    if num_classes < 1:
        raise EvaluationError(f"num_classes must be >= 1, got {num_classes}")
    npos = np.zeros(num_classes, np.int64)
    all_scores: list[np.ndarray] = []
    all_cls: list[np.ndarray] = []
    all_tp: list[np.ndarray] = []
    for i, (gt, det) in enumerate(zip(ground_truth, detections)):
        gboxes = _check_ground_truth(gt, i, num_classes)
        gcls = gboxes[:, 4].astype(np.int64)
        gdiff = _difficult_flags(difficult, i, len(gboxes))
        npos += np.bincount(gcls[~gdiff], minlength=num_classes)
        dboxes, dscores, dcls = _as_detections(det, i, num_classes)
        tp = _match_image(gboxes, gcls, gdiff, dboxes, dscores, dcls, iou_threshold)
        keep = tp >= 0
        all_scores.append(dscores[keep])
        all_cls.append(dcls[keep])
        all_tp.append(tp[keep])

    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    classes = np.concatenate(all_cls) if all_cls else np.zeros(0, np.int64)
    tps = np.concatenate(all_tp).astype(np.float64) if all_tp else np.zeros(0)
    # By class, then score (best first); lexsort is stable, so ties keep image order as the devkit does.
    order = np.lexsort((-scores, classes))
    scores, classes, tps = scores[order], classes[order], tps[order]
    bounds = np.searchsorted(classes, np.arange(num_classes + 1))
    ap = np.full(num_classes, np.nan)
    precisions, recalls, score_lists = [], [], []
    ndet = np.zeros(num_classes, np.int64)
    ntp = np.zeros(num_classes, np.int64)
    for c in range(num_classes):
        s, t = scores[bounds[c]:bounds[c + 1]], tps[bounds[c]:bounds[c + 1]]
        tp_cum = np.cumsum(t)
        fp_cum = np.cumsum(1.0 - t)
        rec = tp_cum / npos[c] if npos[c] else np.zeros_like(tp_cum)
        prec = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
        precisions.append(prec)
        recalls.append(rec)
        score_lists.append(s)
        ndet[c] = len(s)
        ntp[c] = int(t.sum())
        if npos[c]:
            ap[c] = average_precision(rec, prec, use_07_metric)
    mean_ap = float(np.nanmean(ap)) if np.any(npos > 0) else float("nan")
    return VOCResult(mean_ap, ap, precisions, recalls, score_lists, npos, ndet, ntp, float(iou_threshold),
                     bool(use_07_metric))


def mean_average_precision(ground_truth: Sequence[AnnotatedImage], detections: Sequence[DetectionsLike],
                           num_classes: int, iou_threshold: float = 0.5) -> float:
    """VOC all-point mAP@``iou_threshold`` as one float (for validation during training).

    Args:
        ground_truth: the annotated images (boxes x1, y1, x2, y2, class_id in image pixels).
        detections: ``detections[i]`` belongs to ``ground_truth[i]`` (boxes xyxy pixels, scores, class ids).
        num_classes: the number of classes.
        iou_threshold: IoU above which a detection matches a ground-truth box.

    Returns:
        :attr:`VOCResult.mean_ap` of :func:`evaluate_voc` (nan when no class has ground truth).

    Raises:
        EvaluationError: as :func:`evaluate_voc`.
    """
    return evaluate_voc(ground_truth, detections, num_classes, iou_threshold).mean_ap


@dataclass
class COCOResult:
    """COCO metrics computed by pycocotools.

    ``stats``: the 12 summary numbers by name (:data:`COCO_STAT_NAMES`; nan where pycocotools reports
    -1, i.e. no ground truth in that area range). ``per_class_ap`` / ``per_class_ap50`` (C,):
    AP@[.5:.95] and AP@.5 per class (nan without ground truth). ``summary``: pycocotools' printout.
    """

    stats: dict[str, float]
    per_class_ap: np.ndarray
    per_class_ap50: np.ndarray
    summary: str


def evaluate_coco(
    ground_truth: Sequence[AnnotatedImage],
    detections: Sequence[DetectionsLike],
    num_classes: int,
    image_sizes: Sequence[tuple[int, int]] | None = None,
    difficult: Sequence[np.ndarray] | None = None,
) -> COCOResult:
    """COCO bbox metrics (AP, AP50, AP75, small/medium/large, AR1/10/100) by pycocotools' COCOeval.

    Builds COCO ground-truth and result objects in memory: image ids 1..N in order, category id
    = class id + 1, ground-truth area = box area (no segmentations here). ``image_sizes``: (width,
    height) per image, written into the COCO image records (COCOeval does not use them for boxes;
    0 where unknown). ``difficult`` boxes become ``iscrowd`` (COCO's only "ignore" mechanism).

    Args:
        ground_truth: the annotated images (boxes x1, y1, x2, y2, class_id in image pixels).
        detections: ``detections[i]`` belongs to ``ground_truth[i]`` (boxes xyxy pixels, scores, class ids).
        num_classes: the number of classes.
        image_sizes: optional (width, height) in pixels per image (None entries for unknown ones).
        difficult: ``difficult[i]`` (optional) flags the ground-truth boxes of image i to treat as ``iscrowd``.

    Returns:
        A :class:`COCOResult`.

    Raises:
        EvaluationError: ``detections`` or ``image_sizes`` do not have one entry per image, or a class id,
            box or difficult-flag list is invalid.
    """

    if len(ground_truth) != len(detections):
        raise EvaluationError(f"{len(detections)} detection entries for {len(ground_truth)} ground-truth images")
    if image_sizes is not None and len(image_sizes) != len(ground_truth):
        raise EvaluationError(f"{len(image_sizes)} image sizes for {len(ground_truth)} images")
    images, gt_anns, dt_anns = [], [], []
    for i, (gt, det) in enumerate(zip(ground_truth, detections)):
        w, h = image_sizes[i] if image_sizes is not None and image_sizes[i] is not None else (0, 0)
        images.append({"id": i + 1, "width": int(w), "height": int(h), "file_name": str(getattr(gt, "path", i))})
        gboxes = _check_ground_truth(gt, i, num_classes)
        gdiff = _difficult_flags(difficult, i, len(gboxes))
        for (x1, y1, x2, y2, c), d in zip(gboxes, gdiff):
            gt_anns.append({"id": len(gt_anns) + 1, "image_id": i + 1, "category_id": int(c) + 1,
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                            "iscrowd": int(d)})
        dboxes, dscores, dcls = _as_detections(det, i, num_classes)
        for (x1, y1, x2, y2), s, c in zip(dboxes, dscores, dcls):
            dt_anns.append({"id": len(dt_anns) + 1, "image_id": i + 1, "category_id": int(c) + 1,
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                            "score": float(s), "iscrowd": 0})
    categories = [{"id": c + 1, "name": str(c)} for c in range(num_classes)]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        coco_gt = COCO()
        coco_gt.dataset = {"images": images, "annotations": gt_anns, "categories": categories}
        coco_gt.createIndex()
        coco_dt = COCO()
        coco_dt.dataset = {"images": images, "annotations": dt_anns, "categories": categories}
        coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.imgIds = [im["id"] for im in images]
        ev.params.catIds = [c["id"] for c in categories]
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ev.summarize()
    stats = {name: (float(v) if v > -1 else float("nan")) for name, v in zip(COCO_STAT_NAMES, ev.stats)}
    prec = ev.eval["precision"]  # (T iou thresholds, R recall points, K classes, A areas, M max dets)
    per_ap = np.full(num_classes, np.nan)
    per_ap50 = np.full(num_classes, np.nan)
    for k in range(num_classes):
        p = prec[:, :, k, 0, -1]
        if np.any(p > -1):
            per_ap[k] = float(np.mean(p[p > -1]))
            p50 = prec[0, :, k, 0, -1]
            per_ap50[k] = float(np.mean(p50[p50 > -1]))
    return COCOResult(stats, per_ap, per_ap50, buf.getvalue())
