"""The training configuration, grouped by concern, and its user error.

:class:`TrainConfig` holds six groups: :class:`DataConfig` (annotation files and the input
pipeline), :class:`ModelConfig` (architecture, anchors, starting weights, input size), two
:class:`StageConfig` (keras-yolo3's frozen then unfrozen stage), :class:`LossConfig`,
:class:`EvalConfig` (validation extras and stage-2 schedule callbacks) and :class:`RuntimeConfig`
(where and how the run executes). ``train.py`` fills it from its flags.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..errors import Yolo3Error

__all__ = ["TrainConfig", "TrainError", "DataConfig", "ModelConfig", "StageConfig", "LossConfig", "EvalConfig",
           "RuntimeConfig", "OptimConfig", "default_stages", "keras_yolo3_stages", "keras_yolo3_recipe",
           "resume_record", "check_resume_state", "PRECISIONS"]

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


class TrainError(Yolo3Error):
    """A user error in the training set-up (one-line message)."""


@dataclass
class DataConfig:
    """The annotation files and the input pipeline.

    Args:
        annotation: training annotation file (one image a line: ``path x1,y1,x2,y2,class ...``).
        classes: class names; class ids index this list.
        val_annotation: validation annotation file; None holds out ``val_split`` of ``annotation``.
        val_split: fraction of ``annotation`` held out for validation, in [0, 1).
        skip_missing: leave out missing or unreadable images (listed) instead of stopping.
        augment: random augmentation of training images (else letterbox only).
        mosaic: probability of a 4-image mosaic per training sample, in [0, 1].
        max_boxes: ground-truth boxes an image kept for the ignore mask (padding length).
        shuffle_buffer: lines in the training shuffle buffer.
    """

    annotation: str
    classes: list[str]
    val_annotation: str | None = None
    val_split: float = 0.1
    skip_missing: bool = False
    augment: bool = True
    mosaic: float = 0.0
    max_boxes: int = 100
    shuffle_buffer: int = 2048


@dataclass
class ModelConfig:
    """The network to train.

    Args:
        anchors: (N, 2) anchor sizes in pixels of the network input (6 for ``tiny`` and ``yolov4-tiny``,
            9 for the other kinds, a cfg's own count); None: the kind's (a cfg's) own.
        kind: architecture, a key of :data:`yolo3.modeling.factory.MODEL_CFG_GENERATORS`, or a path to a
            Darknet ``.cfg`` with ``[yolo]`` sections (recorded as given for ``resume``).
        weights: starting weights: a ``convert.py -w`` weights file, a full model, or a Darknet
            ``.weights`` file (whole, or a partial backbone such as ``yolov4.conv.137``); None trains
            from scratch.
        input_size: network input (height, width) in pixels, multiples of 32.
    """

    anchors: np.ndarray | None
    kind: str = "yolov3"
    weights: str | None = None
    input_size: tuple[int, int] = (416, 416)


@dataclass
class StageConfig:
    """One training stage.

    Args:
        epochs: epochs of the stage (0 skips it).
        batch_size: global batch size (split over the replicas); None: chosen from the data set
            size (:func:`yolo3.training.schedule.auto_batch_size`).
        learning_rate: Adam's peak learning rate (a fresh optimizer each stage); None: chosen
            (:func:`yolo3.training.schedule.plan_training`).
        freeze_body: what the stage freezes: 0 nothing, 1 the Darknet body, 2 all but the output
            convolutions.
    """

    epochs: int
    batch_size: int | None = None
    learning_rate: float | None = None
    freeze_body: int = 0


def default_stages() -> tuple[StageConfig, StageConfig]:
    """The default schedule: 50 epochs with the Darknet body frozen, then 50 epochs of everything,
    batch sizes and learning rates chosen from the data (see docs/training.md)."""
    return (StageConfig(50, freeze_body=1), StageConfig(50, freeze_body=0))


def keras_yolo3_stages() -> tuple[StageConfig, StageConfig]:
    """keras-yolo3's schedule: 50 epochs with all but the output convolutions frozen at Adam 1e-3,
    then 50 epochs of everything at 1e-4, batch 32 in both."""
    return (StageConfig(50, 32, 1e-3, freeze_body=2), StageConfig(50, 32, 1e-4, freeze_body=0))


@dataclass
class OptimConfig:
    """How the optimizer runs (see :mod:`yolo3.training.schedule` for the reasoning).

    Args:
        schedule: "cosine" (warm-up then one cosine decay over both stages) or "constant"
            (keras-yolo3: each stage's rate, ReduceLROnPlateau and EarlyStopping in stage 2).
        warmup_epochs: linear warm-up at the start of each stage, in epochs (cosine only; 0: none).
        final_fraction: the cosine's last learning rate as a fraction of the peak.
        ema: validate, checkpoint and save an exponential moving average of the weights.
        precision: "float32", "mixed_bfloat16" or "mixed_float16" (loss and heads in float32, loss
            scaling for float16; the saved model is float32).
    """

    schedule: str = "cosine"
    warmup_epochs: float = 2.0
    final_fraction: float = 0.01
    ema: bool = True
    precision: str = "float32"


@dataclass
class LossConfig:
    """Options of :func:`yolo3.training.loss.yolo_loss`.

    Args:
        box_loss: "mse" (keras-yolo3) or "ciou", for heads with keras-yolo3's loss (YOLOv3 cfgs).
        label_smoothing: eps of class label smoothing, for heads with keras-yolo3's loss.
        ignore_thresh: overrides the heads' ignore threshold when given.
        box_grad: box gradient of heads with Darknet's loss (YOLOv4 cfgs, whose ``[yolo]`` sections set
            ``iou_loss``, ``iou_normalizer``...): "darknet" (Darknet's own delta, passed through a
            stop-gradient straight-through term) or "autodiff" (of ``iou_normalizer * (1 - IoU-kind)``).
    """

    box_loss: str = "mse"
    label_smoothing: float = 0.0
    ignore_thresh: float | None = None
    box_grad: str = "darknet"

    def trainer_kwargs(self) -> dict:
        """These options as keyword arguments of :class:`yolo3.training.trainer.YoloTrainer`."""
        return {"box_loss": self.box_loss, "label_smoothing": self.label_smoothing,
                "ignore_thresh": self.ignore_thresh, "box_grad": self.box_grad}


@dataclass
class EvalConfig:
    """Validation extras and the stage-2 callbacks that watch ``val_loss``.

    Args:
        map_every: validation mAP@0.5 every N epochs (0: never).
        precise_bn: training batches over which BatchNorm statistics are recomputed before each
            validation (0: off; single-replica runs only).
        reduce_lr_patience: stage-2 ReduceLROnPlateau patience (epochs; constant schedule only).
        early_stopping_patience: stage-2 EarlyStopping patience (epochs; 0: off); None: 10 with
            the constant schedule, off with the cosine one (whose best epochs are its last).
    """

    map_every: int = 5
    precise_bn: int = 10
    reduce_lr_patience: int = 3
    early_stopping_patience: int | None = None


@dataclass
class RuntimeConfig:
    """Where and how the run executes.

    Args:
        log_dir: folder of the data copies, checkpoints, logs and saved models.
        seed: seed of the split, the shuffling and the augmentation.
        resume: continue from ``<log_dir>/checkpoints/last.*``.
        strategy: "auto", "default", "mirrored" or "multiworker" (see
            :func:`yolo3.training.distribute.make_strategy`).
        gpu_num: GPUs for MirroredStrategy.
        steps_per_epoch: steps an epoch; None: training images // batch size.
        verbose: Keras ``fit`` verbosity.
        final_name: file name of the final inference model under ``log_dir``.
        extra_callbacks: Keras callbacks appended to each stage's list (not recorded).
    """

    log_dir: str = "logs/000"
    seed: int = 10101
    resume: bool = False
    strategy: str = "auto"
    gpu_num: int = 1
    steps_per_epoch: int | None = None
    verbose: int | str = "auto"
    final_name: str = "trained_final.keras"
    extra_callbacks: list = field(default_factory=list)


@dataclass
class TrainConfig:
    """Everything :func:`yolo3.training.run.run_training` needs.

    Args:
        data: annotation files and input pipeline.
        model: architecture, anchors, starting weights and input size.
        stages: stage 1 (usually with a frozen body) and stage 2 (usually unfrozen).
        loss: loss options.
        evaluation: validation extras and stage-2 callbacks.
        runtime: log folder, seed, resume, distribution, verbosity.
        optim: learning-rate schedule, weight EMA and precision.
    """

    data: DataConfig
    model: ModelConfig
    stages: tuple[StageConfig, StageConfig] = field(default_factory=default_stages)
    loss: LossConfig = field(default_factory=LossConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def describe(self) -> dict:
        """The configuration as JSON-ready nested dicts (written to ``train_config.json``); the
        extra callbacks are left out."""
        runtime = {k: v for k, v in asdict(self.runtime).items() if k != "extra_callbacks"}
        model = asdict(self.model)
        model["anchors"] = np.asarray(self.model.anchors).tolist()
        return {"data": asdict(self.data), "model": model, "stages": [asdict(s) for s in self.stages],
                "loss": asdict(self.loss), "evaluation": asdict(self.evaluation), "runtime": runtime,
                "optim": asdict(self.optim)}


def keras_yolo3_recipe(config: TrainConfig, epochs: tuple[int, int] = (50, 50)) -> TrainConfig:
    """``config`` with keras-yolo3's optimisation: batch 32, Adam 1e-3 then 1e-4 at constant rates,
    ``freeze_body=2``, ReduceLROnPlateau(3) and EarlyStopping(10) in stage 2, no warm-up, no EMA.

    Args:
        config: the configuration whose data, model, loss and runtime are kept.
        epochs: epochs of the two stages.
    """
    stages = keras_yolo3_stages()
    stages = (replace(stages[0], epochs=epochs[0]), replace(stages[1], epochs=epochs[1]))
    return replace(config, stages=stages, optim=replace(config.optim, schedule="constant", warmup_epochs=0.0,
                                                         ema=False),
                   evaluation=replace(config.evaluation, reduce_lr_patience=3, early_stopping_patience=10))


# The settings a checkpoint must share with the run that resumes it: record key -> flag. The record
# in last.json is flat ({"model": kind, "classes": [...], "input_size": [h, w]}), as it always was.
_RESUME_FLAGS = {"model": "--model", "classes": "--classes", "input_size": "--input-size"}


def resume_record(config: TrainConfig) -> dict:
    """The ``config`` entry a checkpoint records: ``{"model": kind, "classes": names, "input_size": [h, w]}``.

    Args:
        config: the run's configuration.
    """
    return {"model": config.model.kind, "classes": list(config.data.classes),
            "input_size": [int(v) for v in config.model.input_size]}


def check_resume_state(config: TrainConfig, state: dict) -> None:
    """Raise :class:`TrainError` when a checkpoint's recorded settings differ from ``config``.

    Args:
        config: the configuration of the resuming run.
        state: the checkpoint's ``last.json``; its ``config`` entry (see :func:`resume_record`) may
            lack keys (then they are not checked).
    """
    saved = state.get("config", {})
    current = json.loads(json.dumps(resume_record(config)))
    for key, flag in _RESUME_FLAGS.items():
        if key in saved and current[key] != saved[key]:
            raise TrainError(f"--resume: {flag} differs from the checkpoint's ({saved[key]}); pass the same settings")
