"""What matching tracks to detections needs: box IoU (NumPy; ``yolo3.core.boxes`` imports TensorFlow,
which this package must not) and Hungarian assignment under a cost threshold."""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["iou_xyxy", "assign", "valid_boxes"]


def iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU (N, M) of (N, 4) and (M, 4) xyxy boxes (pixels); 0 where the union is empty."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def assign(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one matching of rows to columns keeping only pairs with cost <= ``max_cost``.

    Args:
        cost: (N, M) costs; ``inf`` forbids a pair.
        max_cost: the largest cost a kept pair may have.

    Returns:
        (rows, cols): the matched row and column indices, each (K,) int64.
    """
    if not cost.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    bounded = np.where(np.isfinite(cost) & (cost <= max_cost), cost, max_cost + 1.0)
    rows, cols = linear_sum_assignment(bounded)
    ok = bounded[rows, cols] <= max_cost
    return rows[ok].astype(np.int64), cols[ok].astype(np.int64)


def valid_boxes(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(N,) bool: finite boxes and scores with positive width and height."""
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
    with np.errstate(invalid="ignore"):
        return finite & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
