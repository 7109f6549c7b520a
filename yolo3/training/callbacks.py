"""Training callbacks: resumable checkpoints, PreciseBN and the fixed-column epoch CSV."""
from __future__ import annotations

import json
import math
import os
from typing import Callable

import keras
import numpy as np

__all__ = ["EMASwap", "ResumableCheckpoint", "PreciseBatchNorm", "recalibrate_batchnorm", "read_resume_state"]


class ResumableCheckpoint(keras.callbacks.Callback):
    """After every epoch: ``<dir>/last.weights.h5`` (model weights and optimizer state) and
    ``<dir>/last.json`` (stage, completed epochs, best value); when ``monitor`` improves also
    ``best.weights.h5``/``best.json``. Files are replaced atomically.

    Args:
        directory: the checkpoint folder (created if missing).
        stage: the training stage number written to the JSON (1 frozen, 2 unfrozen).
        monitor: the ``logs`` key whose decrease counts as an improvement (lower is better).
        best: the best value so far (from a resumed run's ``last.json``); ``inf`` for a new run.
        extra: further JSON-serialisable entries written into every JSON (the config record).
    """

    def __init__(self, directory: str, stage: int, monitor: str = "val_loss", best: float = math.inf,
                 extra: dict | None = None):
        super().__init__()
        self.directory = directory
        self.stage = stage
        self.monitor = monitor
        self.best = best
        self.extra = dict(extra or {})
        os.makedirs(directory, exist_ok=True)

    def _write(self, name: str, epoch: int, logs: dict) -> None:
        weights = os.path.join(self.directory, f"{name}.weights.h5")
        tmp = os.path.join(self.directory, f".tmp-{name}.weights.h5")
        self.model.save_weights(tmp)
        os.replace(tmp, weights)
        state = {"stage": self.stage, "epoch": epoch + 1, "best": self.best,
                 "logs": {k: float(v) for k, v in logs.items() if np.ndim(v) == 0}, **self.extra}
        with open(os.path.join(self.directory, f".tmp-{name}.json"), "w", encoding="utf-8") as f:
            json.dump(state, f, indent=1)
        os.replace(os.path.join(self.directory, f".tmp-{name}.json"), os.path.join(self.directory, f"{name}.json"))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is not None and np.isfinite(value) and value < self.best:
            self.best = float(value)
            self._write("best", epoch, logs)
        self._write("last", epoch, logs)


class EMASwap(keras.callbacks.SwapEMAWeights):
    """Keras' :class:`keras.callbacks.SwapEMAWeights` with ``swap_on_epoch=True`` (validation,
    the callbacks after it at the end of an epoch, checkpoints and the final model see the EMA
    weights), made resumable and safe to stop early.

    A checkpoint written at the end of an epoch holds the EMA weights in the model and the raw
    weights in the optimizer's average slots; ``ema_in_model=True`` (a run resumed from such a
    checkpoint) swaps them back before the next epoch trains. When a later callback stops training
    (EarlyStopping, TerminateOnNaN), :meth:`stop_guard` (placed last) makes the EMA the final weights.

    Args:
        ema_in_model: the model holds the EMA weights now (just loaded from a checkpoint).
    """

    def __init__(self, ema_in_model: bool = False):
        super().__init__(swap_on_epoch=True)
        self._ema_weights_in_model = bool(ema_in_model)

    def stop_guard(self) -> keras.callbacks.Callback:
        """A callback to put after every other: on an early stop, copy the EMA weights (in the
        model) into the average slots so that ``fit``'s final ``finalize_variable_values`` keeps them."""
        swap = self

        class _StopGuard(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if self.model.stop_training and swap._ema_weights_in_model:
                    swap._finalize_ema_values()

        return _StopGuard()


def recalibrate_batchnorm(model: keras.Model, batches, max_batches: int = 10) -> int:
    """Set the moving mean/variance of the trainable BatchNormalization layers of ``model`` to the
    average batch statistics over ``max_batches`` batches of images (PreciseBN).

    From-scratch or unfrozen training changes the weights faster than momentum-0.99 moving
    averages follow, so inference-mode outputs (validation loss, mAP, the saved model) lag far
    behind; recomputing the statistics with the current weights fixes that. Frozen BN layers
    (inference mode) are left alone. Runs eagerly.

    Args:
        model: the model whose trainable BN layers are updated in place (its momentum restored after).
        batches: an iterable of input batches (B, H, W, 3) float32 RGB 0..1, run with ``training=True``.
        max_batches: the most batches used.

    Returns:
        The number of batches used (0 when the model has no trainable BN layer).
    """
    bns = [layer for layer in model._flatten_layers(include_self=False)
           if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
    if not bns:
        return 0
    saved = [layer.momentum for layer in bns]
    used = 0
    try:
        for images in batches:
            if used >= max_batches:
                break
            for layer in bns:  # cumulative average: batch k gets weight 1/(k+1)
                layer.momentum = used / (used + 1.0)
            model(images, training=True)
            used += 1
    finally:
        for layer, m in zip(bns, saved):
            layer.momentum = m
    return used


class PreciseBatchNorm(keras.callbacks.Callback):
    """Recalibrate BatchNormalization statistics (:func:`recalibrate_batchnorm`) before each
    validation, so that validation, checkpoints, mAP and the final model see statistics that match
    the current weights.

    Args:
        inference_model: the model whose BN statistics are recalibrated (shares layers with the trained one).
        make_batches: called with no argument, returns an iterable of image batches (B, H, W, 3) float32
            0..1; called again when exhausted.
        max_batches: batches per recalibration.
    """

    def __init__(self, inference_model: keras.Model, make_batches: Callable, max_batches: int = 10):
        super().__init__()
        self.inference_model = inference_model
        self.make_batches = make_batches
        self.max_batches = max_batches
        self._iter = None

    def _batches(self):
        while True:
            if self._iter is None:
                self._iter = iter(self.make_batches())
            try:
                yield next(self._iter)
            except StopIteration:
                self._iter = None

    def recalibrate(self) -> None:
        recalibrate_batchnorm(self.inference_model, self._batches(), self.max_batches)

    def on_test_begin(self, logs=None):
        self.recalibrate()


class EpochCSVLogger(keras.callbacks.Callback):
    """One CSV row an epoch with fixed columns (:data:`CSV_COLUMNS`), appended across stages and
    resumed runs (Keras' CSVLogger takes its columns from the first epoch of each ``fit`` and
    misaligns appended rows when a stage adds ``learning_rate``). Missing values are blank.

    Args:
        path: the CSV file, appended to (header written when it is new or empty).
        stage: the training stage number written in the ``stage`` column.
    """

    def __init__(self, path: str, stage: int):
        super().__init__()
        self.path = path
        self.stage = stage

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if "learning_rate" not in logs and getattr(self.model, "optimizer", None) is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row = {"epoch": epoch, "stage": self.stage}
        for key in CSV_COLUMNS[2:]:
            value = logs.get(key)
            row[key] = "" if value is None else f"{float(value):.6g}"
        new = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        with open(self.path, "a", encoding="utf-8") as f:
            if new:
                f.write(",".join(CSV_COLUMNS) + "\n")
            f.write(",".join(str(row[k]) for k in CSV_COLUMNS) + "\n")


CSV_COLUMNS = ("epoch", "stage", "loss", "xy_loss", "wh_loss", "box_loss", "obj_loss", "cls_loss", "val_loss",
               "val_xy_loss", "val_wh_loss", "val_box_loss", "val_obj_loss", "val_cls_loss", "val_map",
               "learning_rate")


def read_resume_state(directory: str) -> dict | None:
    """The state of ``<directory>/last.json`` (stage, epoch, best, logs, config record), or None when
    it or ``last.weights.h5`` is missing.

    Args:
        directory: the run's checkpoint folder.
    """
    path = os.path.join(directory, "last.json")
    if not os.path.isfile(path) or not os.path.isfile(os.path.join(directory, "last.weights.h5")):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)
