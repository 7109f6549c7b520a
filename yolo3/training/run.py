"""Training YOLOv3 with Keras 3: the two-stage schedule of keras-yolo3's train.py (body frozen,
then everything unfrozen) as a sequence of named steps.

:func:`run_training` validates the configuration, picks the distribution strategy, reads the
resume state, prepares the data, builds the model and its :class:`yolo3.training.trainer.YoloTrainer`,
sets up the logs and runs the stages; each step is a method of :class:`_TrainingRun`, which holds
what the steps share. What is saved at the end is the inference model itself, which loads with
``safe_mode=True`` after ``import yolo3``.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from ..modeling.saving import save_model
from .callbacks import EMASwap, EpochCSVLogger, PreciseBatchNorm, ResumableCheckpoint, read_resume_state
from .config import PRECISIONS, TrainConfig, TrainError, check_resume_state, resume_record
from .distribute import make_strategy, worker_info
from .freezing import freeze_body
from .map_callback import MeanAPCallback
from .pipeline import dataset_fn_for_strategy, make_dataset, make_eval_dataset
from .precision import float32_copy, make_optimizer, precision_policy
from .preparation import PreparedData, create_training_model, prepare_training_data
from .schedule import TrainingPlan, plan_training
from .targets import target_spec_from_model
from .trainer import YoloTrainer

__all__ = ["run_training", "validate_config"]

_NO_WEIGHTS = "no --weights: training from scratch (expect a much longer training than from Darknet weights)"


def _have_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def _log(msg: str) -> None:
    print(msg, flush=True)


def validate_config(config: TrainConfig) -> None:
    """Raise :class:`TrainError` for an input size, freezing mode, batch size or epoch count that
    cannot work (the checks that need no strategy).

    Args:
        config: the run's configuration.
    """
    in_h, in_w = config.model.input_size
    if in_h % 32 or in_w % 32 or in_h <= 0 or in_w <= 0:
        raise TrainError(f"--input-size must be a positive multiple of 32, got {in_h}x{in_w}")
    for stage in config.stages:
        if stage.freeze_body not in (0, 1, 2):
            raise TrainError(f"--freeze-body must be 0, 1 or 2, got {stage.freeze_body}")
    if any(s.batch_size is not None and s.batch_size < 1 for s in config.stages) or \
            min(s.epochs for s in config.stages) < 0:
        raise TrainError("batch sizes must be >= 1 and epochs >= 0")
    if any(s.learning_rate is not None and not s.learning_rate > 0 for s in config.stages):
        raise TrainError("learning rates must be > 0")
    optim = config.optim
    if optim.schedule not in ("cosine", "constant"):
        raise TrainError(f"--lr-schedule must be cosine or constant, got {optim.schedule!r}")
    if optim.precision not in PRECISIONS:
        raise TrainError(f"--precision must be one of {', '.join(PRECISIONS)}, got {optim.precision!r}")
    if optim.warmup_epochs < 0 or not 0 < optim.final_fraction <= 1:
        raise TrainError("--warmup-epochs must be >= 0 and --final-lr-fraction in (0, 1]")


def run_training(config: TrainConfig) -> dict:
    """Train as keras-yolo3's train.py did, with the fixes described in docs/training.md.

    Writes under ``config.runtime.log_dir``: ``data/`` (validated annotation files),
    ``checkpoints/`` (last/best weights with optimizer state, for ``resume``), ``train.csv``,
    ``train_config.json``, TensorBoard logs, ``trained_stage_1.keras`` and the final inference model
    (``config.runtime.final_name``). Raises :class:`TrainError` (or another
    :class:`yolo3.errors.Yolo3Error`) for a user error.

    Args:
        config: the grouped configuration (:class:`yolo3.training.config.TrainConfig`).

    Returns a summary dict: ``final_model`` (path; None on a non-chief worker), ``log_dir``,
    ``history`` (Keras logs of both stages), ``map_history``, ``seconds``, ``n_train``, ``n_val``,
    ``replicas``.
    """
    validate_config(config)
    run = _TrainingRun(config)
    run.start_strategy()
    run.read_resume_state()
    run.log_environment()
    run.prepare_data()
    run.plan_optimisation()
    run.build_model()
    run.start_logs()
    run.restore_finished_checkpoint()
    run.train_stage_1()
    run.train_stage_2()
    return run.save_final_model()


class _TrainingRun:
    """What the steps of :func:`run_training` share: the strategy, the folders, the resume state,
    the data, the model and its trainer, the logs and the history."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self.start_time = time.time()
        self.input_size = tuple(int(v) for v in config.model.input_size)
        self.history: dict[str, list] = {}
        self.state: dict | None = None
        self.best = math.inf

    # -- set-up -------------------------------------------------------------------------------
    def start_strategy(self) -> None:
        """The distribution strategy, this worker's log folder and the global-batch check."""
        runtime = self.config.runtime
        self.num_workers, worker_index, self.is_chief = worker_info()
        self.strategy = make_strategy(runtime.strategy, runtime.gpu_num)
        self.replicas = self.strategy.num_replicas_in_sync
        batches = [s.batch_size for s in self.config.stages if s.batch_size is not None]
        if any(b % self.replicas for b in batches):
            raise TrainError(f"--batch-size {' '.join(map(str, batches))} must be a multiple of the "
                             f"{self.replicas} replicas (the batch size is global)")
        self.log_dir = runtime.log_dir if self.is_chief else os.path.join(runtime.log_dir, f".worker_{worker_index}")
        os.makedirs(self.log_dir, exist_ok=True)
        self.ckpt_dir = os.path.join(self.log_dir, "checkpoints")

    def read_resume_state(self) -> None:
        """With ``resume``: the checkpoint's state (stage, epoch, best value), checked against the config."""
        if not self.config.runtime.resume:
            return
        self.state = read_resume_state(self.ckpt_dir)
        if self.state is None:
            raise TrainError(f"--resume: no checkpoint in {self.ckpt_dir}")
        check_resume_state(self.config, self.state)
        self.best = float(self.state.get("best", math.inf))

    def log_environment(self) -> None:
        if not _have_tensorboard():
            _log("TensorBoard logging off: the tensorboard package is not installed (pip install tensorboard)")
        if self.replicas > 1:
            kind = ("MultiWorkerMirroredStrategy"
                    if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
                    else type(self.strategy).__name__)
            _log(f"distribution: {kind}, {self.replicas} replicas, {self.num_workers} worker(s)")

    def prepare_data(self) -> None:
        self.data: PreparedData = prepare_training_data(self.config.data, os.path.join(self.log_dir, "data"),
                                                        seed=self.config.runtime.seed, log=_log)
        if self.data.n_val == 0:
            raise TrainError("no validation images: use --val-split > 0 or --val-annotation")

    def plan_optimisation(self) -> None:
        """Batch sizes, learning rates, warm-ups and EMA from the data set size; printed and written
        to ``schedule.json``."""
        config = self.config
        optim, stages = config.optim, config.stages
        self.plan: TrainingPlan = plan_training(
            self.data.n_train, [s.epochs for s in stages], [s.batch_size for s in stages],
            [s.learning_rate for s in stages], schedule=optim.schedule, warmup_epochs=optim.warmup_epochs,
            final_fraction=optim.final_fraction, ema=optim.ema, replicas=self.replicas,
            steps_per_epoch=config.runtime.steps_per_epoch)
        for line in self.plan.summary_lines():
            _log(line)
        if optim.precision != "float32":
            _log(f"precision: {optim.precision} (variables, heads and loss in float32; the saved model is float32)")
        if self.is_chief:
            with open(os.path.join(self.log_dir, "schedule.json"), "w", encoding="utf-8") as f:
                json.dump(self.plan.describe() | {"precision": optim.precision}, f, indent=1)

    def build_model(self) -> None:
        """The inference model (starting weights unless resuming) and its trainer, in the strategy's scope."""
        config = self.config
        with self.strategy.scope(), precision_policy(config.optim.precision):
            self.model = create_training_model(config.model, len(config.data.classes),
                                               load_weights=self.state is None, no_weights_message=_NO_WEIGHTS,
                                               log=_log)
            self.trainer = YoloTrainer(self.model, **config.loss.trainer_kwargs())
        self.spec = target_spec_from_model(self.model)

    def start_logs(self) -> None:
        """The mAP callback, a fresh ``train.csv`` (a resumed run appends) and ``train_config.json``."""
        config = self.config
        evaluation = config.evaluation
        eval_ds = make_eval_dataset(self.data.val_path, self.input_size, batch_size=8,
                                    max_boxes=config.data.max_boxes)
        self.map_callback = MeanAPCallback(self.model, eval_ds, len(config.data.classes),
                                           every=evaluation.map_every or 1,
                                           enabled=evaluation.map_every > 0 and self.is_chief)
        self.csv_path = os.path.join(self.log_dir, "train.csv")
        if self.state is None and os.path.exists(self.csv_path):
            os.unlink(self.csv_path)
        with open(os.path.join(self.log_dir, "train_config.json"), "w", encoding="utf-8") as f:
            json.dump(config.describe(), f, indent=1, default=str)

    # -- the schedule ---------------------------------------------------------------------------
    @property
    def start_epoch(self) -> int:
        return int(self.state["epoch"]) if self.state else 0

    @property
    def resumed_stage(self) -> int | None:
        return int(self.state["stage"]) if self.state else None

    @property
    def total_epochs(self) -> int:
        return sum(s.epochs for s in self.config.stages)

    def restore_finished_checkpoint(self) -> None:
        """Load a checkpoint whose stage had finished (stage 2 then starts with a fresh optimizer),
        or one with nothing left to train (the final model is then written from it)."""
        stage1_epochs, total = self.config.stages[0].epochs, self.total_epochs
        if self.state is None or not (self.start_epoch >= total
                                      or (self.resumed_stage == 1 and self.start_epoch >= stage1_epochs)):
            return
        index = 0 if self.resumed_stage == 1 else 1
        freeze_body(self.model, self._freeze_mode(index))
        self._compile(index)
        self.trainer.load_weights(os.path.join(self.ckpt_dir, "last.weights.h5"))
        if self.start_epoch >= total:
            _log(f"{self.ckpt_dir}/last.weights.h5 has finished epoch {self.start_epoch} of {total}: "
                 "nothing left to train")

    def train_stage_1(self) -> None:
        stage1_epochs = self.config.stages[0].epochs
        if self.start_epoch >= stage1_epochs:
            return
        self._run_stage(1, self.start_epoch, stage1_epochs, [])
        if self.is_chief:
            save_model(float32_copy(self.model), os.path.join(self.log_dir, "trained_stage_1.keras"))

    def train_stage_2(self) -> None:
        first = max(self.start_epoch, self.config.stages[0].epochs)
        if self.total_epochs <= first:
            return
        evaluation, constant = self.config.evaluation, self.plan.schedule == "constant"
        schedule = []
        if constant:  # a LearningRateSchedule owns the rate: ReduceLROnPlateau only with constant rates
            schedule.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.1,
                                                              patience=evaluation.reduce_lr_patience, verbose=1))
        patience = evaluation.early_stopping_patience
        patience = (10 if constant else 0) if patience is None else patience
        if patience > 0:
            schedule.append(keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=0, patience=patience,
                                                          verbose=1))
        self._run_stage(2, first, self.total_epochs, schedule)

    def save_final_model(self) -> dict:
        final_path = os.path.join(self.log_dir, self.config.runtime.final_name)
        save_model(float32_copy(self.model), final_path)
        if not self.is_chief:
            shutil.rmtree(self.log_dir, ignore_errors=True)
            final_path = None
        elapsed = time.time() - self.start_time
        if self.is_chief:
            _log(f"saved the inference model to {final_path} ({elapsed:.0f} s)")
        return {"final_model": final_path, "log_dir": self.log_dir, "history": self.history,
                "map_history": self.map_callback.history, "seconds": elapsed, "n_train": self.data.n_train,
                "n_val": self.data.n_val, "replicas": self.replicas}

    # -- one stage ----------------------------------------------------------------------------
    def _freeze_mode(self, stage_index: int) -> int:
        """The stage's ``freeze_body``, but 0 without starting weights: a frozen random body would
        give the heads random features to learn from (keras-yolo3 did that silently)."""
        mode = self.config.stages[stage_index].freeze_body
        if mode and not self.config.model.weights:
            if stage_index == 0 and self.start_epoch == 0:
                _log(f"no --weights: stage 1 trains everything instead of --freeze-body {mode} "
                     "(freezing a randomly initialised body would train the heads on random features)")
            return 0
        return mode

    def _compile(self, stage_index: int) -> None:
        """A fresh optimizer for stage ``stage_index`` (0 or 1): the plan's rate or schedule, EMA, loss scaling."""
        with self.strategy.scope():
            self.trainer.compile(optimizer=make_optimizer(self.plan.learning_rate(stage_index),
                                                          self.config.optim.precision, self.plan.ema))
            self.trainer.optimizer.build(self.trainer.trainable_variables)

    def _run_stage(self, index: int, first: int, last: int, schedule: list) -> None:
        """Fit epochs ``first``..``last`` - 1 of stage ``index``: freeze, recompile, maybe resume, fit."""
        plan, mode = self.plan.stages[index - 1], self._freeze_mode(index - 1)
        frozen = freeze_body(self.model, mode)
        self._compile(index - 1)
        trainable = sum(int(np.prod(v.shape)) for v in self.trainer.trainable_variables)
        _log(f"stage {index}: epochs {first + 1}-{last}, {frozen} layers with weights frozen "
             f"(--freeze-body {mode}), {trainable:,} trainable parameters, "
             f"peak lr {plan.peak_lr:.3g}, batch {plan.batch_size}")
        resumed = self.state is not None and self.resumed_stage == index and first == self.start_epoch
        if resumed:
            self.trainer.load_weights(os.path.join(self.ckpt_dir, "last.weights.h5"))
            _log(f"resumed from {self.ckpt_dir}/last.weights.h5 at epoch {first} "
                 f"(optimizer step {int(self.trainer.optimizer.iterations.numpy())})")
        checkpoint = ResumableCheckpoint(self.ckpt_dir, index, best=self.best,
                                         extra={"config": resume_record(self.config)})
        callbacks = self._callbacks(index, plan.batch_size, checkpoint, schedule, ema_in_model=resumed)
        n_val = self.data.n_val
        val_batch = max(self.replicas, min(plan.batch_size, n_val) // self.replicas * self.replicas)
        steps = plan.steps_per_epoch
        hist = self.trainer.fit(self._train_dataset(plan.batch_size, first), steps_per_epoch=steps,
                                validation_data=self._val_dataset(val_batch),
                                validation_steps=max(1, math.ceil(n_val / val_batch)), initial_epoch=first,
                                epochs=last, callbacks=callbacks, verbose=self.config.runtime.verbose,
                                shuffle=False)
        self.best = checkpoint.best
        for key, values in hist.history.items():
            self.history.setdefault(key, []).extend(float(v) for v in values)
        loss = self.history.get("loss")
        if self.trainer.stop_training and loss and not np.isfinite(loss[-1]):
            raise TrainError("training stopped: the loss became NaN/inf (try a lower learning rate)")

    def _callbacks(self, index: int, batch: int, checkpoint: ResumableCheckpoint, schedule: list,
                   ema_in_model: bool = False) -> list:
        """EMA swap, PreciseBN (one replica), mAP, checkpoint, the stage's schedule, NaN stop, CSV,
        TensorBoard, extras. The EMA swap comes first, so that everything after it validates,
        recalibrates, measures and saves the averaged weights."""
        callbacks = [self.map_callback, checkpoint, *schedule, keras.callbacks.TerminateOnNaN(),
                     EpochCSVLogger(self.csv_path, index)]
        if _have_tensorboard():
            callbacks.append(keras.callbacks.TensorBoard(log_dir=os.path.join(self.log_dir, "tensorboard"),
                                                         write_graph=False))
        if self.config.evaluation.precise_bn > 0 and self.replicas == 1:
            callbacks.insert(0, PreciseBatchNorm(self.model, lambda: self._bn_batches(batch),
                                                 self.config.evaluation.precise_bn))
        if self.plan.ema is not None:
            swap = EMASwap(ema_in_model=ema_in_model)
            callbacks = [swap, *callbacks, swap.stop_guard()]
        return callbacks + list(self.config.runtime.extra_callbacks)

    # -- datasets ---------------------------------------------------------------------------
    def _distributed(self, make, batch: int):
        if self.replicas > 1:
            return self.strategy.distribute_datasets_from_function(dataset_fn_for_strategy(make, batch))
        return make(batch, None)

    def _train_dataset(self, batch: int, epoch_offset: int):
        data, seed = self.config.data, self.config.runtime.seed

        def make(local_batch, shard):
            return make_dataset(self.data.train_path, self.spec, self.input_size, local_batch, augment=data.augment,
                                mosaic=data.mosaic, seed=seed + 1000003 * epoch_offset,
                                shuffle_buffer=data.shuffle_buffer, max_boxes=data.max_boxes, shard=shard)

        return self._distributed(make, batch)

    def _val_dataset(self, batch: int):
        def make(local_batch, shard):
            return make_dataset(self.data.val_path, self.spec, self.input_size, local_batch, augment=False,
                                seed=self.config.runtime.seed, max_boxes=self.config.data.max_boxes, shard=shard)

        return self._distributed(make, batch)

    def _bn_batches(self, batch: int):
        """Letterboxed training images for PreciseBN (no augmentation, shuffled)."""
        ds = make_dataset(self.data.train_path, self.spec, self.input_size, batch, augment=False, shuffle=True,
                          seed=self.config.runtime.seed, shuffle_buffer=self.config.data.shuffle_buffer)
        return (images for images, _ in ds)
