"""A bank of constant-velocity Kalman filters over boxes, all predicted and updated as arrays.

State per box (8): centre x, centre y, aspect ratio a = w / h, height h (pixels) and their
velocities (pixels or ratio per frame). Measurements are (cx, cy, a, h). The noise model is
ByteTrack's (``kalman_filter.py`` of DeepSORT/ByteTrack): position noise 1/20 and velocity noise
1/160 of the box height, so a big box may move more pixels a frame than a small one. Both SORT and
ByteTrack here use it; one step of the bank costs a few NumPy calls whatever the number of boxes.
"""
from __future__ import annotations

import numpy as np

__all__ = ["KalmanBoxBank", "xyxy_to_xyah", "xyah_to_xyxy"]

_STD_POSITION = 1.0 / 20
_STD_VELOCITY = 1.0 / 160
#: transition: position += velocity (one frame)
_F = np.eye(8) + np.eye(8, k=4)


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy pixels -> (N, 4) centre x, centre y, aspect w / h, height."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return np.stack([boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w / h, h], axis=1)


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """(N, >=4) centre x, centre y, aspect, height (a state's first four) -> (N, 4) xyxy pixels."""
    xyah = np.asarray(xyah, dtype=np.float64)
    h = xyah[:, 3]
    w = xyah[:, 2] * h
    return np.stack([xyah[:, 0] - w / 2, xyah[:, 1] - h / 2, xyah[:, 0] + w / 2, xyah[:, 1] + h / 2], axis=1)


class KalmanBoxBank:
    """The Kalman states of N boxes: ``mean`` (N, 8) and ``covariance`` (N, 8, 8), rows in track order."""

    def __init__(self) -> None:
        self.mean = np.zeros((0, 8))
        self.covariance = np.zeros((0, 8, 8))

    def __len__(self) -> int:
        return len(self.mean)

    def add(self, boxes_xyxy: np.ndarray) -> None:
        """Append one state per (M, 4) xyxy box: zero velocity, ByteTrack's initial uncertainty."""
        z = xyxy_to_xyah(boxes_xyxy)
        h = z[:, 3:4]
        std = np.concatenate([2 * _STD_POSITION * h, 2 * _STD_POSITION * h, np.full_like(h, 1e-2),
                              2 * _STD_POSITION * h, 10 * _STD_VELOCITY * h, 10 * _STD_VELOCITY * h,
                              np.full_like(h, 1e-5), 10 * _STD_VELOCITY * h], axis=1)
        cov = np.zeros((len(z), 8, 8))
        cov[:, np.arange(8), np.arange(8)] = std ** 2
        self.mean = np.concatenate([self.mean, np.concatenate([z, np.zeros_like(z)], axis=1)])
        self.covariance = np.concatenate([self.covariance, cov])

    def keep(self, mask: np.ndarray) -> None:
        """Keep the rows where the (N,) boolean ``mask`` is true."""
        self.mean = self.mean[mask]
        self.covariance = self.covariance[mask]

    def predict(self, freeze_height_velocity: np.ndarray | None = None) -> None:
        """One frame ahead for every box; rows flagged in ``freeze_height_velocity`` (N,) bool first get a
        zero height velocity (ByteTrack does so for tracks that are not being updated)."""
        if not len(self.mean):
            return
        if freeze_height_velocity is not None:
            self.mean[freeze_height_velocity, 7] = 0.0
        h = self.mean[:, 3:4]
        pos, vel = _STD_POSITION * h, _STD_VELOCITY * h
        std = np.concatenate([pos, pos, np.full_like(h, 1e-2), pos, vel, vel, np.full_like(h, 1e-5), vel], axis=1)
        self.mean = self.mean @ _F.T
        self.covariance = _F @ self.covariance @ _F.T
        self.covariance[:, np.arange(8), np.arange(8)] += std ** 2

    def update(self, rows: np.ndarray, boxes_xyxy: np.ndarray) -> None:
        """Correct the states ``rows`` (K,) with the measured (K, 4) xyxy boxes."""
        if not len(rows):
            return
        z = xyxy_to_xyah(boxes_xyxy)
        mean, cov = self.mean[rows], self.covariance[rows]
        h = mean[:, 3]
        std = np.stack([_STD_POSITION * h, _STD_POSITION * h, np.full_like(h, 1e-1), _STD_POSITION * h], axis=1)
        innovation_cov = cov[:, :4, :4].copy()
        innovation_cov[:, np.arange(4), np.arange(4)] += std ** 2
        gain_t = np.linalg.solve(innovation_cov, cov[:, :4, :])  # (K, 4, 8) = S^-1 H P = K^T
        residual = z - mean[:, :4]
        self.mean[rows] = mean + np.einsum("kij,ki->kj", gain_t, residual)
        self.covariance[rows] = cov - np.einsum("kji,kjl,klm->kim", gain_t, innovation_cov, gain_t)

    def boxes(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(K, 4) xyxy pixels of the states ``rows`` (default all)."""
        mean = self.mean if rows is None else self.mean[rows]
        return xyah_to_xyxy(mean[:, :4])
