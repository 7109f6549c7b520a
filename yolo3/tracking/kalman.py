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
#: process noise std = height x _Q_SCALE + _Q_FLOOR (the aspect ratio's noise does not scale)
_Q_SCALE = np.array([_STD_POSITION] * 2 + [0.0, _STD_POSITION] + [_STD_VELOCITY] * 2 + [0.0, _STD_VELOCITY])
_Q_FLOOR = np.array([0.0, 0.0, 1e-2, 0.0, 0.0, 0.0, 1e-5, 0.0])
_DIAG8, _DIAG4 = np.arange(8), np.arange(4)


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy pixels -> (N, 4) centre x, centre y, aspect w / h, height."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = np.empty_like(boxes)
    out[:, 3] = boxes[:, 3] - boxes[:, 1]
    out[:, 2] = (boxes[:, 2] - boxes[:, 0]) / out[:, 3]
    out[:, :2] = (boxes[:, :2] + boxes[:, 2:]) / 2
    return out


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """(N, >=4) centre x, centre y, aspect, height (a state's first four) -> (N, 4) xyxy pixels."""
    xyah = np.asarray(xyah, dtype=np.float64)
    half = np.empty((len(xyah), 2))
    half[:, 1] = xyah[:, 3] / 2
    half[:, 0] = xyah[:, 2] * half[:, 1]
    return np.concatenate([xyah[:, :2] - half, xyah[:, :2] + half], axis=1)


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
        scale = np.array([2, 2, 1, 2, 10, 10, 1, 10]) * _Q_SCALE  # ByteTrack's initial uncertainty
        std = z[:, 3:4] * scale + _Q_FLOOR
        cov = np.zeros((len(z), 8, 8))
        cov[:, _DIAG8, _DIAG8] = std ** 2
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
        std = self.mean[:, 3:4] * _Q_SCALE + _Q_FLOOR
        self.mean[:, :4] += self.mean[:, 4:]
        self.covariance = _F @ self.covariance @ _F.T
        self.covariance[:, _DIAG8, _DIAG8] += std ** 2

    def update(self, rows: np.ndarray, boxes_xyxy: np.ndarray) -> None:
        """Correct the states ``rows`` (K,) with the measured (K, 4) xyxy boxes."""
        if not len(rows):
            return
        z = xyxy_to_xyah(boxes_xyxy)
        mean, cov = self.mean[rows], self.covariance[rows]
        std = mean[:, 3:4] * np.array([_STD_POSITION, _STD_POSITION, 0.0, _STD_POSITION]) + [0, 0, 1e-1, 0]
        innovation_cov = cov[:, :4, :4].copy()
        innovation_cov[:, _DIAG4, _DIAG4] += std ** 2
        gain_t = np.linalg.solve(innovation_cov, cov[:, :4, :])  # (K, 4, 8) = S^-1 H P = K^T
        residual = z - mean[:, :4]
        self.mean[rows] = mean + np.einsum("kij,ki->kj", gain_t, residual)
        self.covariance[rows] = cov - np.einsum("kji,kjl,klm->kim", gain_t, innovation_cov, gain_t)

    def boxes(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(K, 4) xyxy pixels of the states ``rows`` (default all)."""
        mean = self.mean if rows is None else self.mean[rows]
        return xyah_to_xyxy(mean[:, :4])
