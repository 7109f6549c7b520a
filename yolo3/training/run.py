"""Training YOLOv3 with Keras 3: the training model, freezing, callbacks, strategies and the
two-stage schedule of keras-yolo3's train.py (body frozen, then everything unfrozen).

:class:`YoloTrainer` wraps an inference model (the raw-head model with its YoloHead layers, as
:func:`yolo3.modeling.factory.create_model` builds) and overrides ``compute_loss`` with
:func:`yolo3.training.loss.yolo_loss`; the loss parts (xy, wh, obj, cls) are Keras metrics, so they show in
the progress bar, the CSV log and TensorBoard. No Lambda layer, no dummy targets: what is saved at
the end is the inference model itself, which loads with ``safe_mode=True`` after ``import yolo3``.
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

from .callbacks import (
    EpochCSVLogger,
    PreciseBatchNorm,
    ResumableCheckpoint,
    read_resume_state,
)
from .config import TrainConfig, TrainError
from .distribute import make_strategy, worker_info
from .freezing import freeze_body
from .map_callback import MeanAPCallback
from .trainer import YoloTrainer

__all__ = ["run_training"]


def _have_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def _log(msg: str) -> None:
    print(msg, flush=True)


def _prepare_data(cfg: TrainConfig, data_dir: str) -> tuple[str, int, str, int]:
    from ..datasets.cleaning import count_lines, prepare_annotations, split_annotations

    os.makedirs(data_dir, exist_ok=True)
    num_classes = len(cfg.classes)
    all_clean = os.path.join(data_dir, "annotations.clean.txt")
    report = prepare_annotations(cfg.annotation, all_clean, num_classes, skip_missing=cfg.skip_missing)
    _log(report.summary(cfg.annotation))
    if cfg.val_annotation:
        train_clean = all_clean
        val_clean = os.path.join(data_dir, "val.clean.txt")
        vreport = prepare_annotations(cfg.val_annotation, val_clean, num_classes, skip_missing=cfg.skip_missing)
        _log(vreport.summary(cfg.val_annotation))
        return train_clean, count_lines(train_clean), val_clean, count_lines(val_clean)
    train_clean = os.path.join(data_dir, "train.clean.txt")
    val_clean = os.path.join(data_dir, "val.clean.txt")
    n_train, n_val = split_annotations(all_clean, cfg.val_split, cfg.seed, train_clean, val_clean)
    _log(f"split: {n_train} training and {n_val} validation images (--val-split {cfg.val_split:g}, seed {cfg.seed})")
    return train_clean, n_train, val_clean, n_val


def _compile(trainer: YoloTrainer, lr: float, strategy) -> None:
    with strategy.scope():
        trainer.compile(optimizer=keras.optimizers.Adam(learning_rate=lr))
        trainer.optimizer.build(trainer.trainable_variables)


def run_training(cfg: TrainConfig) -> dict:
    """Train as keras-yolo3's train.py did, with the fixes described in docs/training.md.

    Writes under ``cfg.log_dir``: ``data/`` (validated annotation files), ``checkpoints/``
    (last/best weights with optimizer state, for ``resume``), ``train.csv``, TensorBoard logs,
    ``trained_stage_1.keras`` and the final inference model ``trained_final.keras``.
    Returns a summary dict (paths, epochs run, final losses, mAP history).
    """
    from ..modeling.factory import create_model
    from ..modeling.saving import load_weights_into, save_model
    from .pipeline import dataset_fn_for_strategy, make_dataset, make_eval_dataset
    from .targets import target_spec_from_model

    start_time = time.time()
    in_h, in_w = cfg.input_size
    if in_h % 32 or in_w % 32 or in_h <= 0 or in_w <= 0:
        raise TrainError(f"--input-size must be a positive multiple of 32, got {in_h}x{in_w}")
    if cfg.freeze_body not in (0, 1, 2):
        raise TrainError(f"--freeze-body must be 0, 1 or 2, got {cfg.freeze_body}")
    if min(cfg.batch_size) < 1 or min(cfg.epochs) < 0:
        raise TrainError("batch sizes must be >= 1 and epochs >= 0")
    num_workers, worker_index, is_chief = worker_info()
    strategy = make_strategy(cfg.strategy, cfg.gpu_num)
    replicas = strategy.num_replicas_in_sync
    if any(b % replicas for b in cfg.batch_size):
        raise TrainError(f"--batch-size {' '.join(map(str, cfg.batch_size))} must be a multiple of the "
                         f"{replicas} replicas (the batch size is global)")
    log_dir = cfg.log_dir if is_chief else os.path.join(cfg.log_dir, f".worker_{worker_index}")
    os.makedirs(log_dir, exist_ok=True)
    ckpt_dir = os.path.join(log_dir, "checkpoints")
    state = read_resume_state(ckpt_dir) if cfg.resume else None
    if cfg.resume and state is None:
        raise TrainError(f"--resume: no checkpoint in {ckpt_dir}")
    if state is not None:
        saved = state.get("config", {})
        for key in ("model", "classes", "input_size"):
            if key in saved and json.loads(json.dumps(getattr(cfg, key))) != saved[key]:
                raise TrainError(f"--resume: --{key.replace('_', '-')} differs from the checkpoint's "
                                 f"({saved[key]}); pass the same settings")
    if not _have_tensorboard():
        _log("TensorBoard logging off: the tensorboard package is not installed (pip install tensorboard)")
    if replicas > 1:
        kind = ("MultiWorkerMirroredStrategy" if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
                else type(strategy).__name__)
        _log(f"distribution: {kind}, {replicas} replicas, {num_workers} worker(s)")

    train_clean, n_train, val_clean, n_val = _prepare_data(cfg, os.path.join(log_dir, "data"))
    if n_val == 0:
        raise TrainError("no validation images: use --val-split > 0 or --val-annotation")

    num_classes = len(cfg.classes)
    with strategy.scope():
        model = create_model(cfg.model, num_classes, cfg.anchors, size=in_h if in_h == in_w else max(in_h, in_w))
        if cfg.weights and state is None:
            loaded, skipped = load_weights_into(model, cfg.weights)
            _log(f"loaded weights of {len(loaded)} layers from {cfg.weights}")
            if skipped:
                _log(f"skipped {len(skipped)} layers (shape differs or absent): {', '.join(skipped)}")
        elif state is None:
            _log("no --weights: training from scratch (expect a much longer training than from Darknet weights)")
        trainer = YoloTrainer(model, box_loss=cfg.box_loss, label_smoothing=cfg.label_smoothing,
                              ignore_thresh=cfg.ignore_thresh)
    spec = target_spec_from_model(model)

    def train_ds(batch: int, epoch_offset: int):
        def make(local_batch, shard):
            return make_dataset(train_clean, spec, (in_h, in_w), local_batch, augment=cfg.augment,
                                mosaic=cfg.mosaic, seed=cfg.seed + 1000003 * epoch_offset,
                                shuffle_buffer=cfg.shuffle_buffer, max_boxes=cfg.max_boxes, shard=shard)
        if replicas > 1:
            return strategy.distribute_datasets_from_function(dataset_fn_for_strategy(make, batch))
        return make(batch, None)

    def val_ds(batch: int):
        def make(local_batch, shard):
            return make_dataset(val_clean, spec, (in_h, in_w), local_batch, augment=False, seed=cfg.seed,
                                max_boxes=cfg.max_boxes, shard=shard)
        if replicas > 1:
            return strategy.distribute_datasets_from_function(dataset_fn_for_strategy(make, batch))
        return make(batch, None)

    eval_ds = make_eval_dataset(val_clean, (in_h, in_w), batch_size=8, max_boxes=cfg.max_boxes)
    map_cb = MeanAPCallback(model, eval_ds, num_classes, every=cfg.map_every or 1,
                            enabled=cfg.map_every > 0 and is_chief)
    csv_path = os.path.join(log_dir, "train.csv")
    if state is None and os.path.exists(csv_path):
        os.unlink(csv_path)  # a fresh run; --resume appends
    e1, e2 = cfg.epochs
    total = e1 + e2
    start_epoch = int(state["epoch"]) if state else 0
    best = float(state.get("best", math.inf)) if state else math.inf
    history: dict[str, list] = {}
    resumed_stage = int(state["stage"]) if state else None
    cfg_record = {"config": {"model": cfg.model, "classes": cfg.classes, "input_size": list(cfg.input_size)}}
    with open(os.path.join(log_dir, "train_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg.describe(), f, indent=1, default=str)

    def steps(batch: int, n: int) -> int:
        return cfg.steps_per_epoch or max(1, n // batch)

    def run_stage(stage: int, first: int, last: int, lr: float, batch: int, freeze: int, callbacks_extra):
        nonlocal best
        frozen = freeze_body(model, freeze)
        _compile(trainer, lr, strategy)
        trainable = sum(int(np.prod(v.shape)) for v in trainer.trainable_variables)
        _log(f"stage {stage}: epochs {first + 1}-{last}, {frozen} layers with weights frozen "
             f"(--freeze-body {freeze}), {trainable:,} trainable parameters, lr {lr:g}, batch {batch}")
        if state is not None and resumed_stage == stage and first == start_epoch:
            trainer.load_weights(os.path.join(ckpt_dir, "last.weights.h5"))
            _log(f"resumed from {ckpt_dir}/last.weights.h5 at epoch {first} "
                 f"(optimizer step {int(trainer.optimizer.iterations.numpy())})")
        ckpt = ResumableCheckpoint(ckpt_dir, stage, best=best, extra=cfg_record)
        callbacks = [map_cb, ckpt, keras.callbacks.TerminateOnNaN(),
                     EpochCSVLogger(csv_path, stage)]
        if _have_tensorboard():
            callbacks.append(keras.callbacks.TensorBoard(log_dir=os.path.join(log_dir, "tensorboard"),
                                                         write_graph=False))
        callbacks[2:2] = callbacks_extra
        if cfg.precise_bn > 0 and replicas == 1:
            def bn_batches(batch=batch):
                ds = make_dataset(train_clean, spec, (in_h, in_w), batch, augment=False, shuffle=True,
                                  seed=cfg.seed, shuffle_buffer=cfg.shuffle_buffer)
                return (images for images, _ in ds)

            callbacks.insert(0, PreciseBatchNorm(model, bn_batches, cfg.precise_bn))
        callbacks += list(cfg.extra_callbacks)
        val_batch = max(replicas, min(batch, n_val) // replicas * replicas)
        hist = trainer.fit(train_ds(batch, first), steps_per_epoch=steps(batch, n_train),
                           validation_data=val_ds(val_batch), validation_steps=max(1, math.ceil(n_val / val_batch)),
                           initial_epoch=first, epochs=last, callbacks=callbacks, verbose=cfg.verbose,
                           shuffle=False)
        best = ckpt.best
        for k, v in hist.history.items():
            history.setdefault(k, []).extend(float(x) for x in v)
        if trainer.stop_training and any(isinstance(c, keras.callbacks.TerminateOnNaN) for c in callbacks) \
                and history.get("loss") and not np.isfinite(history["loss"][-1]):
            raise TrainError("training stopped: the loss became NaN/inf (try a lower learning rate)")

    if state is not None and (start_epoch >= total or (resumed_stage == 1 and start_epoch >= e1)):
        # The checkpoint's stage had finished (stage 2 then starts with a fresh optimizer), or
        # nothing is left to train (the final model is written from the checkpoint).
        freeze_body(model, cfg.freeze_body if resumed_stage == 1 else 0)
        _compile(trainer, cfg.lr[0 if resumed_stage == 1 else 1], strategy)
        trainer.load_weights(os.path.join(ckpt_dir, "last.weights.h5"))
        if start_epoch >= total:
            _log(f"{ckpt_dir}/last.weights.h5 has finished epoch {start_epoch} of {total}: nothing left to train")
    if start_epoch < e1:
        run_stage(1, start_epoch, e1, cfg.lr[0], cfg.batch_size[0], cfg.freeze_body, [])
        if is_chief:
            save_model(model, os.path.join(log_dir, "trained_stage_1.keras"))
    if total > max(start_epoch, e1):
        stage2_cbs = [
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=cfg.reduce_lr_patience,
                                              verbose=1),
            keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=0, patience=cfg.early_stopping_patience,
                                          verbose=1),
        ]
        run_stage(2, max(start_epoch, e1), total, cfg.lr[1], cfg.batch_size[1], 0, stage2_cbs)
    final_path = os.path.join(log_dir, cfg.final_name)
    save_model(model, final_path)
    if not is_chief:
        shutil.rmtree(log_dir, ignore_errors=True)
        final_path = None
    elapsed = time.time() - start_time
    if is_chief:
        _log(f"saved the inference model to {final_path} ({elapsed:.0f} s)")
    return {"final_model": final_path, "log_dir": log_dir, "history": history, "map_history": map_cb.history,
            "seconds": elapsed, "n_train": n_train, "n_val": n_val, "replicas": replicas}
