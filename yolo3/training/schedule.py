"""The optimisation plan of a run: batch size and learning rate from the data set size, one
warm-up + cosine learning-rate schedule over both stages, and the weight-EMA momentum.

Why these defaults (measured in docs/training.md):

- **Batch size from the data set size.** What a run needs is optimizer *steps*: 400 images at
  keras-yolo3's batch 32 give 12 steps an epoch, 360 in 30 epochs, too few to converge. The batch
  is the largest of 32, 16, 8 that still gives at least :data:`MIN_STEPS_PER_EPOCH` steps an
  epoch (8 below that: BatchNorm statistics of smaller batches get noisy), so large data sets keep
  keras-yolo3's 32.
- **The learning rate does not follow the batch.** Adam normalises each weight's step by its
  gradient's scale, so its step size is about the learning rate at any batch size; the two
  measured good points agree (keras-yolo3's 1e-3 at batch 32 for stage 1, 1e-3 at batch 8 in the
  convergence benchmark). With a smaller batch the same rate gives more steps an epoch, which is
  what small data sets need. Stage 2, which trains the pretrained body too, peaks at
  :data:`STAGE2_LR_FACTOR` of stage 1's rate: 1.0, the same 1e-3. The cosine already lowers the
  rate over stage 2, so a separate lower peak only shortens the useful high-rate phase: with a 3e-4
  peak the validation mAP of the convergence benchmark stalled at 0.86 from epoch 20 on, with
  1e-3 it read 0.78 at epoch 10 against 0.57 (docs/benchmarks.md). keras-yolo3 used a constant
  1e-4 at batch 32, which never decays.
- **One schedule over both stages.** A linear warm-up at the start of each stage (a fresh Adam
  has no moment estimates yet: its first steps move every weight by about the learning rate),
  then a cosine decay over the total step count of both stages down to ``final_fraction`` of the
  peak. The low-rate phase that keras-yolo3 left to ReduceLROnPlateau (and people did by hand with
  a second run) is part of every run, at the same point of the schedule whatever the data set size.
- **Weight EMA** (Keras ``use_ema``): validation, checkpoints and the saved model use an
  exponential moving average of the weights whose time constant is a fixed fraction of the run
  (:data:`EMA_RUN_FRACTION`, between 10 and 2000 steps).

The schedule is a function of the global step (steps of earlier stages + the optimizer's step),
so a resumed run, which restores the optimizer's step count, continues it where it stopped.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import keras
import numpy as np

__all__ = ["WarmupCosine", "StagePlan", "TrainingPlan", "auto_batch_size", "auto_learning_rate", "ema_momentum",
           "plan_training", "STAGE1_LR", "MIN_STEPS_PER_EPOCH", "STAGE2_LR_FACTOR", "EMA_RUN_FRACTION"]

MIN_STEPS_PER_EPOCH = 50
STAGE2_LR_FACTOR = 1.0
EMA_RUN_FRACTION = 1 / 15
_BATCH_CHOICES = (32, 16, 8)
STAGE1_LR = 1e-3


@keras.saving.register_keras_serializable(package="yolo3")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """``peak * ramp(step) * cosine(offset + step)``: one stage's view of a run-wide schedule.

    ``cosine(t) = final + (1 - final) * (1 + cos(pi * min(t, total) / total)) / 2`` falls from 1 to
    ``final_fraction`` over ``total_steps`` global steps; ``ramp(step) = min(1, (step + 1) / warmup_steps)``
    is the stage's own linear warm-up (1 when ``warmup_steps`` is 0).

    Args:
        peak_lr: the stage's peak learning rate.
        total_steps: optimizer steps of the whole run (both stages).
        offset: global steps taken before this stage (the steps of stage 1 for stage 2).
        warmup_steps: steps of the linear warm-up at the start of the stage.
        final_fraction: the schedule's last value as a fraction of ``peak_lr``.
    """

    def __init__(self, peak_lr: float, total_steps: int, offset: int = 0, warmup_steps: int = 0,
                 final_fraction: float = 0.01):
        self.peak_lr = float(peak_lr)
        self.total_steps = int(total_steps)
        self.offset = int(offset)
        self.warmup_steps = int(warmup_steps)
        self.final_fraction = float(final_fraction)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        total = float(max(self.total_steps, 1))
        t = keras.ops.minimum(step + float(self.offset), total)
        cosine = self.final_fraction + (1.0 - self.final_fraction) * 0.5 * (1.0 + keras.ops.cos(math.pi * t / total))
        ramp = keras.ops.minimum(1.0, (step + 1.0) / float(self.warmup_steps)) if self.warmup_steps > 0 else 1.0
        return self.peak_lr * ramp * cosine

    def value(self, step):
        """The learning rate at the stage's optimizer step(s) ``step``: a float for an int, a numpy
        array for an array of steps."""
        out = keras.ops.convert_to_numpy(self(step))
        return float(out) if out.ndim == 0 else out

    def get_config(self):
        return {"peak_lr": self.peak_lr, "total_steps": self.total_steps, "offset": self.offset,
                "warmup_steps": self.warmup_steps, "final_fraction": self.final_fraction}


def auto_batch_size(n_train: int, replicas: int = 1) -> int:
    """The largest of 32, 16, 8 giving at least :data:`MIN_STEPS_PER_EPOCH` steps an epoch over
    ``n_train`` images (8 when none does), rounded up to a multiple of ``replicas``.

    Args:
        n_train: training images.
        replicas: devices the global batch is split over.
    """
    batch = next((b for b in _BATCH_CHOICES if n_train // b >= MIN_STEPS_PER_EPOCH), _BATCH_CHOICES[-1])
    return -(-batch // replicas) * replicas


def auto_learning_rate(batch_size: int) -> float:
    """Adam's stage-1 peak rate: :data:`STAGE1_LR` (1e-3) at every batch size (see the module docstring).

    Args:
        batch_size: the global batch (recorded for the plan; the rate does not depend on it).
    """
    del batch_size
    return STAGE1_LR


def ema_momentum(total_steps: int) -> float:
    """EMA momentum whose time constant 1 / (1 - m) is :data:`EMA_RUN_FRACTION` of the run, clipped
    to 10..2000 steps."""
    tau = min(2000.0, max(10.0, total_steps * EMA_RUN_FRACTION))
    return 1.0 - 1.0 / tau


@dataclass(frozen=True)
class StagePlan:
    """One stage's resolved numbers.

    Args:
        epochs: epochs of the stage.
        batch_size: global batch size.
        peak_lr: the stage's peak learning rate (the constant rate with the constant schedule).
        steps_per_epoch: optimizer steps an epoch.
        warmup_steps: steps of the stage's linear warm-up.
        offset: global steps before the stage.
    """

    epochs: int
    batch_size: int
    peak_lr: float
    steps_per_epoch: int
    warmup_steps: int
    offset: int

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch


@dataclass(frozen=True)
class TrainingPlan:
    """The resolved optimisation of a run: both stages, the schedule kind and the EMA.

    Args:
        stages: stage 1 and stage 2.
        schedule: "cosine" (warm-up + cosine over both stages) or "constant" (keras-yolo3: each
            stage's rate, ReduceLROnPlateau in stage 2).
        final_fraction: the cosine's last value as a fraction of the peak.
        ema: EMA momentum, or None when EMA is off.
        n_train: training images the plan was made for.
        auto: which numbers were chosen automatically ("batch_size", "learning_rate").
    """

    stages: tuple[StagePlan, StagePlan]
    schedule: str
    final_fraction: float
    ema: float | None
    n_train: int
    auto: tuple[str, ...] = ()

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    def learning_rate(self, index: int):
        """Stage ``index``'s (0 or 1) learning rate for its optimizer: a :class:`WarmupCosine` or a float."""
        stage = self.stages[index]
        if self.schedule == "constant":
            return stage.peak_lr
        return WarmupCosine(stage.peak_lr, self.total_steps, stage.offset, stage.warmup_steps, self.final_fraction)

    def curve(self) -> list[tuple[int, float]]:
        """(global step, learning rate) at every stage's steps, for plots and tests."""
        points = []
        for index, stage in enumerate(self.stages):
            lr, steps = self.learning_rate(index), np.arange(stage.steps)
            values = lr.value(steps) if isinstance(lr, WarmupCosine) else np.full(stage.steps, lr)
            points += [(stage.offset + int(i), float(v)) for i, v in zip(steps, values)]
        return points

    def describe(self) -> dict:
        """JSON-ready: the stages, the schedule, the EMA and what was chosen automatically."""
        return {"schedule": self.schedule, "final_fraction": self.final_fraction, "ema_momentum": self.ema,
                "n_train": self.n_train, "total_steps": self.total_steps, "auto": list(self.auto),
                "stages": [asdict(s) | {"steps": s.steps} for s in self.stages]}

    def summary_lines(self) -> list[str]:
        """What is printed at the start of a run."""
        lines = []
        for index, s in enumerate(self.stages, 1):
            if not s.epochs:
                continue
            warm = f", {s.warmup_steps}-step warm-up" if s.warmup_steps else ""
            lines.append(f"stage {index}: {s.epochs} epochs x {s.steps_per_epoch} steps, batch {s.batch_size}, "
                         f"peak lr {s.peak_lr:.3g}{warm}")
        if self.schedule == "cosine":
            lines.append(f"schedule: cosine over {self.total_steps} steps to {self.final_fraction:g} x peak")
        else:
            lines.append("schedule: constant per stage (ReduceLROnPlateau in stage 2)")
        lines.append("weight EMA: " + (f"momentum {self.ema:.5f}" if self.ema else "off"))
        if self.auto:
            lines.append(f"chosen from {self.n_train} training images: {', '.join(self.auto)} "
                         "(set --batch-size/--lr to override)")
        return lines


def plan_training(n_train: int, epochs: Sequence[int], batch_sizes: Sequence[int | None],
                  learning_rates: Sequence[float | None], *, schedule: str = "cosine", warmup_epochs: float = 2.0,
                  final_fraction: float = 0.01, ema: bool = True, replicas: int = 1,
                  steps_per_epoch: int | None = None) -> TrainingPlan:
    """Resolve the two stages' batch sizes, learning rates, steps and warm-ups.

    Args:
        n_train: training images.
        epochs: epochs of stage 1 and stage 2.
        batch_sizes: global batch of each stage; None: :func:`auto_batch_size`.
        learning_rates: peak rate of each stage; None: :func:`auto_learning_rate` for stage 1 and
            :data:`STAGE2_LR_FACTOR` of it for stage 2.
        schedule: "cosine" or "constant".
        warmup_epochs: each stage's warm-up in epochs (at least 20 steps, at most a third of the
            stage); 0: none. Ignored with the constant schedule.
        final_fraction: the cosine's last value as a fraction of the peak.
        ema: keep an EMA of the weights (momentum from :func:`ema_momentum`).
        replicas: devices the global batch is split over.
        steps_per_epoch: fixed steps an epoch; None: images // batch (at least 1).
    """
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    auto = []
    batches = [b if b is not None else auto_batch_size(n_train, replicas) for b in batch_sizes]
    if None in batch_sizes:
        auto.append(f"batch {'/'.join(map(str, batches))}")
    first_lr = learning_rates[0] if learning_rates[0] is not None else auto_learning_rate(batches[0])
    lrs = [first_lr, learning_rates[1] if learning_rates[1] is not None else first_lr * STAGE2_LR_FACTOR]
    if None in learning_rates:
        auto.append(f"lr {lrs[0]:.3g}/{lrs[1]:.3g}")
    stages, offset = [], 0
    for n_epochs, batch, lr in zip(epochs, batches, lrs):
        steps = steps_per_epoch or max(1, n_train // batch)
        warm = 0
        if schedule == "cosine" and warmup_epochs > 0 and n_epochs > 0:
            warm = min(max(20, round(warmup_epochs * steps)), max(1, n_epochs * steps // 3))
        stages.append(StagePlan(int(n_epochs), int(batch), float(lr), int(steps), int(warm), offset))
        offset += n_epochs * steps
    total = sum(s.steps for s in stages)
    return TrainingPlan(tuple(stages), schedule, float(final_fraction), ema_momentum(total) if ema else None,
                        int(n_train), tuple(auto))
