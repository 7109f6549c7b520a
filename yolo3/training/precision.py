"""Mixed-precision training: building under a Keras dtype policy without leaving it set, the
optimizer that goes with it, and the float32 copy that is saved.

``mixed_bfloat16`` and ``mixed_float16`` keep the variables in float32 and compute in the lower
precision; the ``YoloHead`` layers are float32 (the builder gives them ``dtype="float32"``), so the
raw heads, the loss and detection run in float32. ``mixed_float16`` also needs loss scaling
(:class:`keras.optimizers.LossScaleOptimizer`); bfloat16 has float32's exponent range and does not.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import keras

from .config import PRECISIONS, TrainError

__all__ = ["precision_policy", "make_optimizer", "float32_copy"]


@contextlib.contextmanager
def precision_policy(precision: str) -> Iterator[None]:
    """Build layers under Keras' global dtype policy ``precision``, restoring the previous policy after.

    Args:
        precision: one of :data:`yolo3.training.config.PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise TrainError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def make_optimizer(learning_rate, precision: str = "float32", ema_momentum: float | None = None):
    """Adam with ``learning_rate`` (a float or a schedule), weight EMA when ``ema_momentum`` is given,
    wrapped in a :class:`keras.optimizers.LossScaleOptimizer` for ``mixed_float16``.

    Args:
        learning_rate: a float or a :class:`keras.optimizers.schedules.LearningRateSchedule`.
        precision: the run's precision.
        ema_momentum: EMA momentum (Keras ``use_ema``), or None for no EMA.
    """
    if ema_momentum is None:
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    else:
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate, use_ema=True, ema_momentum=ema_momentum)
    if precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _float32_policies(node):
    """``node`` (a layer config tree) with every mixed dtype policy replaced by float32."""
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy" and isinstance(node.get("config"), dict):
            return {**node, "config": {**node["config"], "name": "float32"}}
        return {k: _float32_policies(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_float32_policies(v) for v in node]
    if isinstance(node, str) and node.startswith("mixed_"):
        return "float32"
    return node


def float32_copy(model: keras.Model) -> keras.Model:
    """A float32 model with ``model``'s architecture and weights (``model`` itself when it is
    float32 already): what a mixed-precision run saves, so that it loads and detects in float32.

    Args:
        model: a functional model built under any dtype policy (its variables are float32).
    """
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    config = _float32_policies(model.get_config())
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy
