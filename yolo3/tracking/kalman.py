"""A bank of constant-velocity Kalman filters over boxes, all predicted and updated as arrays.

State per box (8): the corners x1, y1, x2, y2 (pixels) and their velocities (pixels a frame), as in
Roboflow's ``trackers`` (their ``XYXYStateEstimator``); the measurement is the detected box itself.
Each corner moving on its own follows boxes whose size changes, above all boxes clipped at the frame's
edge while an object enters or leaves, which a centre/aspect/height state (SORT's, ByteTrack's) lags
behind. The noise is ByteTrack's, per axis: position 1/20 and velocity 1/160 of the box's width (x) or
height (y), so a big box may move more pixels a frame than a small one (``noise="scaled"``, the default).
``noise="constant"`` is the filter of ``trackers``' SORT (2.6.1, ``SORTTracklet._configure_noise`` with its
default ``XYXYStateEstimator``): process noise 0.01 I, measurement noise 0.1 I, initial covariance I, in
pixels squared whatever the box size; it exists to compare the two SORTs like for like. One step of the
bank costs a few NumPy calls whatever the number of boxes.
"""
from __future__ import annotations

import numpy as np

__all__ = ["KalmanBoxBank", "NOISE_MODELS"]

#: ``scaled``: ByteTrack's noise, proportional to the box size; ``constant``: ``trackers``' SORT's
NOISE_MODELS = ("scaled", "constant")
_CONSTANT_PROCESS, _CONSTANT_MEASUREMENT = 0.01, 0.1

_STD_POSITION = 1.0 / 20
_STD_VELOCITY = 1.0 / 160
#: transition: position += velocity (one frame)
_F = np.eye(8) + np.eye(8, k=4)
_DIAG8, _DIAG4 = np.arange(8), np.arange(4)


def _sizes(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) width, height, width, height of (N, >=4) xyxy boxes (at least 1 pixel)."""
    wh = np.maximum(boxes[:, 2:4] - boxes[:, 0:2], 1.0)
    return np.concatenate([wh, wh], axis=1)


class KalmanBoxBank:
    """The Kalman states of N boxes: ``mean`` (N, 8) and ``covariance`` (N, 8, 8), rows in track order."""

    def __init__(self, noise: str = "scaled") -> None:
        if noise not in NOISE_MODELS:
            raise ValueError(f"noise must be one of {', '.join(NOISE_MODELS)}, got {noise!r}")
        self.noise = noise
        self.mean = np.zeros((0, 8))
        self.covariance = np.zeros((0, 8, 8))

    def __len__(self) -> int:
        return len(self.mean)

    def add(self, boxes_xyxy: np.ndarray) -> None:
        """Append one state per (M, 4) xyxy box: zero velocity, ByteTrack's initial uncertainty."""
        z = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        cov = np.zeros((len(z), 8, 8))
        if self.noise == "constant":
            cov[:, _DIAG8, _DIAG8] = 1.0
        else:
            size = _sizes(z)
            cov[:, _DIAG8, _DIAG8] = np.concatenate([2 * _STD_POSITION * size, 10 * _STD_VELOCITY * size], axis=1) ** 2
        self.mean = np.concatenate([self.mean, np.concatenate([z, np.zeros_like(z)], axis=1)])
        self.covariance = np.concatenate([self.covariance, cov])

    def keep(self, mask: np.ndarray) -> None:
        """Keep the rows where the (N,) boolean ``mask`` is true."""
        self.mean = self.mean[mask]
        self.covariance = self.covariance[mask]

    def predict(self) -> None:
        """One frame ahead for every box."""
        if not len(self.mean):
            return
        if self.noise == "constant":
            variance = np.full((len(self.mean), 8), _CONSTANT_PROCESS)
        else:
            size = _sizes(self.mean)
            variance = np.concatenate([_STD_POSITION * size, _STD_VELOCITY * size], axis=1) ** 2
        self.mean[:, :4] += self.mean[:, 4:]
        self.covariance = _F @ self.covariance @ _F.T
        self.covariance[:, _DIAG8, _DIAG8] += variance

    def update(self, rows: np.ndarray, boxes_xyxy: np.ndarray) -> None:
        """Correct the states ``rows`` (K,) with the measured (K, 4) xyxy boxes."""
        if not len(rows):
            return
        z = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        mean, cov = self.mean[rows], self.covariance[rows]
        innovation_cov = cov[:, :4, :4].copy()
        innovation_cov[:, _DIAG4, _DIAG4] += (_CONSTANT_MEASUREMENT if self.noise == "constant"
                                              else (_STD_POSITION * _sizes(mean)) ** 2)
        gain_t = np.linalg.solve(innovation_cov, cov[:, :4, :])  # (K, 4, 8) = S^-1 H P = K^T
        self.mean[rows] = mean + ((z - mean[:, :4])[:, None, :] @ gain_t)[:, 0]
        self.covariance[rows] = cov - gain_t.transpose(0, 2, 1) @ innovation_cov @ gain_t

    def boxes(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(K, 4) xyxy pixels of the states ``rows`` (default all)."""
        mean = self.mean if rows is None else self.mean[rows]
        return mean[:, :4].copy()
