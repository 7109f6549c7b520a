"""Decoding and per-class NMS in NumPy and OpenCV, after the ONNX backends' networks (onnxruntime, openvino).

The NumPy twin of :class:`yolo3.ops.postprocess.Postprocessor`, configured by it, with its steps and
arithmetic:

- only the candidates are decoded: the anchors whose objectness is ``> score_threshold`` (Darknet's score
  ``objectness * class_prob`` cannot pass otherwise), a few dozen of YOLOv3-416's 10,647 a picture;
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
the runtime's threads) and reading its outputs back 0.13 ms more; this takes 0.14 ms in all when warm,
0.3 right after the network (yolov3-tiny bf16 in OpenVINO, batch 1). NumPy and OpenCV, and TensorFlow
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


def boxes_to_image_np(boxes_cxcywh: np.ndarray, sizes: np.ndarray, net_size: Sequence[int]) -> np.ndarray:
    """NumPy twin of :func:`yolo3.ops.letterbox.boxes_to_image` for (K, 4) boxes, each with its own image size.

    Args:
        boxes_cxcywh: float (K, 4) centre x, centre y, width, height as fractions (0..1) of the network input.
        sizes: int (K, 2) the (height, width) in pixels of each box's original image.
        net_size: (net_h, net_w), the network input size in pixels.

    Returns:
        float32 (K, 4) x1, y1, x2, y2 in original-image pixels, not clipped.
    """
    net_h, net_w = np.float32(net_size[0]), np.float32(net_size[1])
    sizes = np.asarray(sizes, np.int32).reshape(-1, 2)
    new_h, new_w = letterbox_size_np(sizes[:, 0], sizes[:, 1], int(net_size[0]), int(net_size[1]))
    img_h, img_w = sizes[:, 0].astype(np.float32), sizes[:, 1].astype(np.float32)
    new_h, new_w = new_h.astype(np.float32), new_w.astype(np.float32)
    two = np.float32(2.0)
    cx, cy, w, h = np.asarray(boxes_cxcywh, np.float32).T
    cx = (cx - (net_w - new_w) / two / net_w) / (new_w / net_w) * img_w
    cy = (cy - (net_h - new_h) / two / net_h) / (new_h / net_h) * img_h
    w = w * (net_w / new_w) * img_w
    h = h * (net_h / new_h) * img_h
    return np.stack([cx - w / two, cy - h / two, cx + w / two, cy + h / two], axis=-1).astype(np.float32)


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
        self._tables: dict[tuple, list] = {}  # head grids -> each head's cell and anchor of every box

    def _head_tables(self, grids: tuple) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per head: (N, 2) cell x, y and (N, 2) anchor w, h of its N = h*w*A boxes, (2,) grid w, h."""
        found = self._tables.get(grids)
        if found is None:
            found = []
            for spec, (gh, gw) in zip(self.head_specs, grids):
                a = spec.num_anchors
                col, row = np.meshgrid(np.arange(gw, dtype=np.float32), np.arange(gh, dtype=np.float32))
                cells = np.repeat(np.stack([col, row], -1).reshape(-1, 2), a, axis=0)
                anchors = np.tile(np.asarray(spec.anchors, np.float32).reshape(a, 2), (gh * gw, 1))
                found.append((cells, anchors, np.array([gw, gh], np.float32)))
            self._tables[grids] = found
        return found

    def candidates(self, raw: Sequence[np.ndarray]):
        """The M anchors whose objectness is ``> score_threshold`` (no class of another can pass):
        picture index (M,), box float32 (M, 4) centre x, centre y, width, height as fractions of the
        network input, Darknet scores float32 (M, C) zeroed unless ``> score_threshold``; in head,
        picture, row, column, anchor order."""
        grids = tuple((int(r.shape[1]), int(r.shape[2])) for r in raw)
        net_wh = np.array([self.input_size[1], self.input_size[0]], np.float32)
        threshold = np.float32(self.score_threshold)
        parts = []
        for spec, (cells, anchors, grid_wh), head in zip(self.head_specs, self._head_tables(grids), raw):
            rows = np.asarray(head, np.float32).reshape(len(head), -1, 5 + spec.num_classes)  # (B, N, 5+C)
            objectness = _sigmoid(rows[:, :, 4])
            image, index = np.nonzero(objectness > threshold)
            cand = rows[image, index]
            xy = _sigmoid(cand[:, 0:2])
            if spec.scale_x_y != 1.0:
                xy = xy * np.float32(spec.scale_x_y) - np.float32(0.5 * (spec.scale_x_y - 1.0))
            xy = (cells[index] + xy) / grid_wh
            with np.errstate(over="ignore"):  # a wild t > 88 gives an infinite box, as in TF and Darknet
                wh = np.exp(cand[:, 2:4]) * anchors[index] / net_wh  # exp(t) * anchor / net, Darknet's order
            prob = objectness[image, index][:, None] * _sigmoid(cand[:, 5:])
            parts.append((image, np.concatenate([xy, wh], axis=1), np.where(prob > threshold, prob, np.float32(0))))
        return tuple(np.concatenate(items) for items in zip(*parts))

    def __call__(self, raw: Sequence[np.ndarray], sizes: np.ndarray):
        batch, k = len(sizes), self.max_detections
        out_boxes = np.zeros((batch, k, 4), np.float32)
        out_scores = np.zeros((batch, k), np.float32)
        out_classes = np.zeros((batch, k), np.int32)
        image, boxes, prob = self.candidates(raw)
        corners = boxes_to_image_np(boxes, np.asarray(sizes)[image], self.input_size)
        cand, cls = np.nonzero(prob)
        if len(cand) > ONE_CALL_MAX_PAIRS:
            return self._tensorflow_nms(image, corners, prob, batch)
        scores = prob[cand, cls]
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
