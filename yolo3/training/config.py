"""The training configuration and its user error."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import Yolo3Error

__all__ = ["TrainConfig", "TrainError"]


class TrainError(Yolo3Error):
    """A user error in the training set-up (one-line message)."""


@dataclass
class TrainConfig:
    """Everything :func:`run_training` needs; train.py fills it from its flags."""

    annotation: str
    classes: list[str]
    anchors: np.ndarray
    model: str = "yolov3"
    val_annotation: str | None = None
    val_split: float = 0.1
    weights: str | None = None
    input_size: tuple[int, int] = (416, 416)
    batch_size: tuple[int, int] = (32, 32)
    epochs: tuple[int, int] = (50, 50)
    lr: tuple[float, float] = (1e-3, 1e-4)
    freeze_body: int = 2
    log_dir: str = "logs/000"
    seed: int = 10101
    resume: bool = False
    mosaic: float = 0.0
    augment: bool = True
    box_loss: str = "mse"
    label_smoothing: float = 0.0
    ignore_thresh: float | None = None
    map_every: int = 5
    precise_bn: int = 10
    reduce_lr_patience: int = 3
    early_stopping_patience: int = 10
    max_boxes: int = 100
    steps_per_epoch: int | None = None
    strategy: str = "auto"
    gpu_num: int = 1
    skip_missing: bool = False
    shuffle_buffer: int = 2048
    verbose: int | str = "auto"
    final_name: str = "trained_final.keras"
    extra_callbacks: list = field(default_factory=list)

    def describe(self) -> dict:
        d = asdict(self)
        d.pop("extra_callbacks")
        d["anchors"] = np.asarray(self.anchors).tolist()
        return d
