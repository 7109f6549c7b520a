"""Decoding and per-class NMS in NumPy and OpenCV, after the ONNX backends' networks (onnxruntime, openvino).

The NumPy twin of :class:`yolo3.ops.postprocess.Postprocessor`, configured by it, with its steps and
arithmetic:

- only the candidates are decoded: the anchors whose objectness is ``> score_threshold`` (Darknet's score
  ``objectness * class_prob`` cannot pass otherwise), a few dozen of YOLOv3-416's 10,647 a picture, found
  by comparing the objectness logits with the threshold's logit (less a margin), the exact sigmoid test
  then taken on those only;
- their boxes as :mod:`yolo3.ops.decode` computes them (``(cell + sigmoid(t)*s - (s-1)/2) / grid``,
  ``exp(t) * anchor / net``), their Darknet scores ``objectness * sigmoid(class logit)`` kept when
  ``> score_threshold``, then mapped to picture pixels like :func:`yolo3.ops.letterbox.boxes_to_image`;
- per picture and class, greedy NMS (suppress on IoU ``> iou_threshold``, keep scores
  ``> score_threshold``, at most ``max_detections`` kept: the rules of
  ``tf.image.combined_non_max_suppression``), by one ``cv2.dnn.NMSBoxes`` call (:func:`per_class_nms`)
  for the usual few pairs, by that TF function on the candidates for many;
- the ``max_detections`` best pairs of each picture, best first.

It replaced an ONNX graph run by the backend's own runtime after the network: that graph's own work
took 17 us on yolov3-tiny, but a run cost 0.2-0.25 ms (shape inference of its dynamic shapes, waking
the runtime's threads) and reading its outputs back 0.13 ms more. This takes 0.16 ms warm, 0.23 right
after the network (yolov3-tiny bf16 in OpenVINO, batch 1): few NumPy calls matter more than little
work, since each costs microseconds with the caches the network left. NumPy and OpenCV, and TensorFlow
only for the NMS of more than :data:`ONE_CALL_MAX_PAIRS` pairs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

from .decode import batched_nms
from .letterbox_remap import letterbox_size_np

if TYPE_CHECKING:
    from ..core.heads import HeadSpec
    from .postprocess import Postprocessor

__all__ = ["boxes_to_image_np", "per_class_nms", "NumpyPostprocess"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-x) = inf for x < -88: the sigmoid is 0, as in TF
        return np.float32(1) / (np.float32(1) + np.exp(-x))


def _picture_constants(sizes: np.ndarray, net_size: Sequence[int]) -> np.ndarray:
    """float32 (B, 4, 2) per picture, each row (x, y): the letterbox's offset ``(net - new) / 2 / net`` and
    fraction ``new / net`` of the network input, ``net / new``, and the picture's size, computed in
    float32 in :func:`yolo3.ops.letterbox.boxes_to_image`'s order."""
    net_h, net_w = int(net_size[0]), int(net_size[1])
    sizes = np.asarray(sizes, np.int32).reshape(-1, 2)
    new_h, new_w = letterbox_size_np(sizes[:, 0], sizes[:, 1], net_h, net_w)
    net = np.array([net_w, net_h], np.float32)
    new = np.stack([new_w, new_h], axis=-1).astype(np.float32)
    return np.stack([(net - new) / np.float32(2.0) / net, new / net, net / new,
                     sizes[:, ::-1].astype(np.float32)], axis=1)


def _to_image(boxes_cxcywh: np.ndarray, constants: np.ndarray) -> np.ndarray:
    """(K, 4) cxcywh fractions of the network input -> (K, 4) xyxy picture pixels, given each box's
    (K, 4, 2) or one (4, 2) :func:`_picture_constants`."""
    offset, fraction, ratio, size = (constants[..., i, :] for i in range(4))
    centre = (boxes_cxcywh[:, :2] - offset) / fraction * size
    half = boxes_cxcywh[:, 2:] * ratio * size / np.float32(2.0)
    return np.concatenate([centre - half, centre + half], axis=1)


def boxes_to_image_np(boxes_cxcywh: np.ndarray, sizes: np.ndarray, net_size: Sequence[int]) -> np.ndarray:
    """NumPy twin of :func:`yolo3.ops.letterbox.boxes_to_image` for (K, 4) boxes, each with its own image size.

    Args:
        boxes_cxcywh: float (K, 4) centre x, centre y, width, height as fractions (0..1) of the network input.
        sizes: int (K, 2) the (height, width) in pixels of each box's original image.
        net_size: (net_h, net_w), the network input size in pixels.

    Returns:
        float32 (K, 4) x1, y1, x2, y2 in original-image pixels, not clipped.
    """
    return _to_image(np.asarray(boxes_cxcywh, np.float32), _picture_constants(sizes, net_size))


#: above this many (picture, box, class) pairs the NMS is TensorFlow's (see NumpyPostprocess)
ONE_CALL_MAX_PAIRS = 2048


def per_class_nms(boxes: np.ndarray, scores: np.ndarray, groups: np.ndarray, score_threshold: float,
                  iou_threshold: float, max_per_group: int) -> np.ndarray:
    """Greedy NMS within each group (picture x class), at most ``max_per_group`` kept a group, by one
    ``cv2.dnn.NMSBoxes`` call: each group moved to its own stretch of the plane, then cut to its cap
    (greedy NMS decides in score order, ties by pair order, so its first kept pairs do not depend on
    where it stops). Returns the indices of the kept pairs, best score first. OpenCV compares each
    pair with every pair kept so far: meant for the few pairs of a trained model (see
    :data:`ONE_CALL_MAX_PAIRS`).

    Args:
        boxes: float (P, 4) x1, y1, x2, y2 (any units).
        scores: float32 (P,) the pairs' scores; only those ``> score_threshold`` are kept.
        groups: int (P,) the group of each pair: pairs of two groups never suppress each other.
        score_threshold: keep scores above it.
        iou_threshold: suppress a pair whose IoU with a kept pair of its group is above it.
        max_per_group: pairs kept per group at most.
    """
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    # infinite boxes (a wild exp) as boxes a million pixels wide: the groups' spacing stays finite
    corners = np.clip(np.nan_to_num(np.asarray(boxes, np.float64)), -1e6, 1e6)
    wh = np.maximum(corners[:, 2:] - corners[:, :2], 1e-7)  # OpenCV takes two empty boxes as identical
    low = corners.min()
    # each group on its own stretch of the plane, one box span apart: no IoU between two groups
    shift = groups.astype(np.float64) * (corners.max() - low + 1.0) - low
    rects = np.concatenate([corners[:, :2] + shift[:, None], wh], axis=1)
    keep = cv2.dnn.NMSBoxes(rects, np.asarray(scores, np.float32), float(score_threshold), float(iou_threshold))
    keep = np.asarray(keep, np.int64).reshape(-1)
    if len(keep) <= max_per_group:  # no group can be over its cap
        return keep
    by_group = keep[np.argsort(groups[keep], kind="stable")]
    rank = np.arange(len(by_group)) - np.searchsorted(groups[by_group], groups[by_group])
    return keep[~np.isin(keep, by_group[rank >= max_per_group])]


class NumpyPostprocess:
    """``post(raw_heads, sizes)``: the network's raw heads, float32 (B, h_i, w_i, A*(5+C)) in head order,
    and the pictures' int (B, 2) (height, width) -> padded boxes (B, K, 4) x1, y1, x2, y2 in picture
    pixels, scores (B, K), class_ids int32 (B, K), count int32 (B,), best first, K = ``max_detections``:
    the output of :meth:`yolo3.inference.detector.Detector.run_batch`.

    Args:
        settings: the :class:`yolo3.ops.postprocess.Postprocessor` whose steps this runs (its
            ``head_specs``, ``input_size``, ``score_threshold``, ``iou_threshold`` and ``max_detections``
            are read once).
    """

    def __init__(self, settings: Postprocessor):
        self.head_specs: list[HeadSpec] = list(settings.head_specs)
        self.input_size = (int(settings.input_size[0]), int(settings.input_size[1]))
        self.score_threshold = float(settings.score_threshold)
        self.iou_threshold = float(settings.iou_threshold)
        self.max_detections = int(settings.max_detections)
        self._tables: dict[tuple, tuple[np.ndarray, list[int]]] = {}  # head grids -> anchor table, head starts
        self._pictures: dict[bytes, np.ndarray] = {}  # picture sizes -> _picture_constants (a few kept)
        # no objectness logit below this can give a sigmoid > score_threshold (a margin for float32
        # rounding; the exact test follows on the few that pass)
        with np.errstate(divide="ignore"):
            logit = np.log(self.score_threshold) - np.log1p(-self.score_threshold)
        self._logit_floor = np.float32(logit - 1e-3 * max(1.0, abs(logit)))
        self._net_wh = np.array([self.input_size[1], self.input_size[0]], np.float32)

    def _anchor_table(self, grids: tuple) -> tuple[np.ndarray, list[int]]:
        """float32 (N, 8) for the N = sum of h*w*A anchors of all heads, in head, row, column, anchor
        order: cell x, y; grid w, h; anchor w, h in pixels; Darknet's xy scale and its offset
        ``(scale - 1) / 2``; and the first row of each head."""
        found = self._tables.get(grids)
        if found is None:
            rows, starts = [], []
            for spec, (gh, gw) in zip(self.head_specs, grids):
                a = spec.num_anchors
                col, row = np.meshgrid(np.arange(gw, dtype=np.float32), np.arange(gh, dtype=np.float32))
                table = np.empty((gh * gw * a, 8), np.float32)
                table[:, 0:2] = np.repeat(np.stack([col, row], -1).reshape(-1, 2), a, axis=0)
                table[:, 2:4] = (gw, gh)
                table[:, 4:6] = np.tile(np.asarray(spec.anchors, np.float32).reshape(a, 2), (gh * gw, 1))
                table[:, 6:8] = (np.float32(spec.scale_x_y), np.float32(0.5 * (spec.scale_x_y - 1.0)))
                starts.append(sum(len(r) for r in rows))
                rows.append(table)
            found = self._tables[grids] = (np.concatenate(rows), starts)
        return found

    def _picture_constants(self, sizes: np.ndarray) -> np.ndarray:
        """:func:`_picture_constants` of the batch's (B, 2) sizes, kept for the last few batches."""
        key = sizes.tobytes()
        found = self._pictures.get(key)
        if found is None:
            if len(self._pictures) >= 16:
                self._pictures.clear()
            found = self._pictures[key] = _picture_constants(sizes, self.input_size)
        return found

    def candidates(self, raw: Sequence[np.ndarray]):
        """The M anchors whose objectness is ``> score_threshold`` (no class of another can pass):
        picture index (M,), box float32 (M, 4) centre x, centre y, width, height as fractions of the
        network input, Darknet scores float32 (M, C) zeroed unless ``> score_threshold``; in head,
        picture, row, column, anchor order."""
        table, starts = self._anchor_table(tuple((int(r.shape[1]), int(r.shape[2])) for r in raw))
        threshold = np.float32(self.score_threshold)
        parts = []
        for spec, start, head in zip(self.head_specs, starts, raw):
            rows = np.asarray(head, np.float32).reshape(len(head), -1, 5 + spec.num_classes)  # (B, N, 5+C)
            image, index = np.nonzero(rows[:, :, 4] > self._logit_floor)
            parts.append((image, index + start, rows[image, index]))
        image, index, cand = parts[0] if len(parts) == 1 else (np.concatenate(p) for p in zip(*parts))
        objectness = _sigmoid(cand[:, 4])
        passed = objectness > threshold
        if not passed.all():
            image, index, cand, objectness = image[passed], index[passed], cand[passed], objectness[passed]
        anchor = table[index]
        xy = _sigmoid(cand[:, 0:2]) * anchor[:, 6:7] - anchor[:, 7:8]  # Darknet's scale_x_y (1: unchanged)
        xy = (anchor[:, 0:2] + xy) / anchor[:, 2:4]
        with np.errstate(over="ignore"):  # a wild t > 88 gives an infinite box, as in TF and Darknet
            wh = np.exp(cand[:, 2:4]) * anchor[:, 4:6] / self._net_wh  # exp(t) * anchor / net, Darknet's order
        prob = objectness[:, None] * _sigmoid(cand[:, 5:])
        return image, np.concatenate([xy, wh], axis=1), np.where(prob > threshold, prob, np.float32(0))

    def __call__(self, raw: Sequence[np.ndarray], sizes: np.ndarray):
        batch, k = len(sizes), self.max_detections
        out_boxes = np.zeros((batch, k, 4), np.float32)
        out_scores = np.zeros((batch, k), np.float32)
        out_classes = np.zeros((batch, k), np.int32)
        image, boxes, prob = self.candidates(raw)
        cand, cls = np.nonzero(prob)
        if len(cand) == 0:
            return out_boxes, out_scores, out_classes, np.zeros(batch, np.int32)
        constants = self._picture_constants(np.ascontiguousarray(sizes, np.int32))
        corners = _to_image(boxes, constants[0] if batch == 1 else constants[image])
        if len(cand) > ONE_CALL_MAX_PAIRS:
            return self._tensorflow_nms(image, corners, prob, batch)
        scores = prob[cand, cls]
        if batch == 1:  # one picture: the groups are the classes, the kept pairs its ranks
            keep = per_class_nms(corners[cand], scores, cls, self.score_threshold, self.iou_threshold, k)[:k]
            owner, rank = np.zeros(len(keep), np.int64), np.arange(len(keep))
        else:
            pair_image = image[cand]
            keep = per_class_nms(corners[cand], scores, pair_image * prob.shape[1] + cls, self.score_threshold,
                                 self.iou_threshold, k)
            keep = keep[np.argsort(pair_image[keep], kind="stable")]  # by picture, best score first within each
            owner = pair_image[keep]
            rank = np.arange(len(keep)) - np.searchsorted(owner, owner)
            first = rank < k
            keep, owner, rank = keep[first], owner[first], rank[first]
        out_boxes[owner, rank] = corners[cand[keep]]
        out_scores[owner, rank] = scores[keep]
        out_classes[owner, rank] = cls[keep]
        return out_boxes, out_scores, out_classes, np.bincount(owner, minlength=batch).astype(np.int32)

    def _tensorflow_nms(self, image: np.ndarray, corners: np.ndarray, prob: np.ndarray, batch: int):
        """Many pairs (an untrained model, a threshold near 0): TF's per-class NMS on the candidates,
        each picture's in one zero-padded row, as :class:`yolo3.ops.postprocess.Postprocessor` runs
        it on every anchor. OpenCV's NMS compares each pair with every pair kept so far, with no cap:
        hours for the 12.6 million pairs of a random-weight YOLOv3-608 batch of 8 at 0.25."""
        order = np.argsort(image, kind="stable")  # by picture, in candidate order
        slot = np.arange(len(order)) - np.searchsorted(image[order], image[order])
        width = int(slot.max()) + 1
        boxes = np.zeros((batch, width, 4), np.float32)
        scores = np.zeros((batch, width, prob.shape[1]), np.float32)
        boxes[image[order], slot] = corners[order]
        scores[image[order], slot] = prob[order]
        result = batched_nms(boxes, scores, self.iou_threshold, self.score_threshold, self.max_detections)
        return tuple(np.asarray(t) for t in result)
