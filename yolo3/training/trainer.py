"""The Keras training model: the inference model plus the YOLO loss in ``compute_loss``."""
from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from ..core.heads import HeadSpec, get_head_specs
from .loss import loss_part_names, yolo_loss

__all__ = ["YoloTrainer"]


@keras.saving.register_keras_serializable(package="yolo3")
class YoloTrainer(keras.Model):
    """Training wrapper of a YOLO inference model.

    ``model(x)`` must return the raw heads (B, H, W, A*(5+C)) in the order of
    ``yolo3.core.heads.get_head_specs(model)``. Targets ``y`` are the dict made by
    :func:`yolo3.training.pipeline.make_dataset`: ``head_<i>`` (B, H, W, A, 5+C) and ``boxes`` (B, M, 4).

    Args:
        model: the inference model (images in, raw heads out), or any model whose outputs are the raw
            heads of YoloHead layers (the bottleneck head model takes cached features).
        box_loss: "mse" (keras-yolo3) or "ciou", for heads with keras-yolo3's loss.
        label_smoothing: eps for class targets, for heads with keras-yolo3's loss.
        ignore_thresh: overrides the heads' value when given.
        box_grad: box gradient of heads with Darknet's loss (YOLOv4 cfgs): "darknet" (Darknet's own,
            straight-through) or "autodiff" (of the IoU loss); see :func:`yolo3.training.loss.yolo_loss`.
        input_size: the network input (height, width) in pixels the anchors refer to; None takes it
            from the images ``x`` (B, H, W, 3). Give it when ``x`` is not the images (bottleneck).
    """

    def __init__(self, model: keras.Model, box_loss: str = "mse", label_smoothing: float = 0.0,
                 ignore_thresh: float | None = None, input_size: Sequence[int] | None = None,
                 box_grad: str = "darknet", **kwargs):
        super().__init__(**kwargs)
        self.yolo = model
        self.heads: list[HeadSpec] = get_head_specs(model)
        self.box_loss = box_loss
        self.label_smoothing = float(label_smoothing)
        self.ignore_thresh = ignore_thresh
        self.box_grad = str(box_grad)
        self.input_size = None if input_size is None else (int(input_size[0]), int(input_size[1]))
        parts = loss_part_names(self.heads, box_loss)
        self.part_names = parts
        self.part_trackers = [keras.metrics.Mean(name=f"{p}_loss") for p in parts]
        self.built = True

    def call(self, inputs, training=None):
        out = self.yolo(inputs, training=training)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The YOLO loss of a batch (see :func:`yolo3.training.loss.yolo_loss`); updates the loss-part metrics.

        Args:
            x: the model inputs: images (B, H, W, 3), or cached features when ``input_size`` was given.
            y: targets dict ``head_<i>`` (B, H, W, A, 5+C) and ``boxes`` (B, M, 4 relative cxcywh).
            y_pred: the raw heads, one (B, H, W, A*(5+C)) a head.
            sample_weight: ignored.
            training: ignored.
        """
        del sample_weight, training
        y_true = [y[f"head_{i}"] for i in range(len(self.heads))]
        input_size = tf.shape(x)[1:3] if self.input_size is None else self.input_size
        parts = yolo_loss(y_true, y_pred, self.heads, input_size, true_boxes=y.get("boxes"),
                          ignore_thresh=self.ignore_thresh, box_loss=self.box_loss,
                          label_smoothing=self.label_smoothing, box_grad=self.box_grad)
        batch = tf.shape(y_true[0])[0]
        for name, tracker in zip(self.part_names, self.part_trackers):
            tracker.update_state(parts[name], sample_weight=batch)
        loss = parts["loss"]
        # The loss is a per-replica sum over the local batch divided by it; Keras sums the
        # replicas' gradients, so scale like keras.losses do to get the global-batch mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            loss = loss / float(replicas)
        return loss

    def _multi_worker(self) -> bool:
        strategy = self._distribute_strategy
        return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
                and strategy.extended._in_multi_worker_mode())

    # Keras 3.15 reduces the step's logs across workers with ``strategy.reduce("MEAN", v, axis=0)``,
    # which fails on scalars; give it shape-(1,) values (the result is the same scalar mean).
    def train_step(self, data):
        logs = super().train_step(data)
        return {k: tf.reshape(v, [1]) for k, v in logs.items()} if self._multi_worker() else logs

    def test_step(self, data):
        logs = super().test_step(data)
        return {k: tf.reshape(v, [1]) for k, v in logs.items()} if self._multi_worker() else logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3.15 builds a distributed model by MEAN-reducing one input batch across replicas,
        # which fails under MultiWorkerMirroredStrategy (PerReplica -> Tensor). Nothing needs it
        # here: the inner model is built, the optimizer is built by run_training and the metrics
        # create their variables when constructed.
        if isinstance(self._distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def get_config(self):
        config = {"model": keras.saving.serialize_keras_object(self.yolo), "box_loss": self.box_loss,
                  "label_smoothing": self.label_smoothing, "ignore_thresh": self.ignore_thresh,
                  "box_grad": self.box_grad, "name": self.name}
        if self.input_size is not None:
            config["input_size"] = list(self.input_size)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        model = keras.saving.deserialize_keras_object(config.pop("model"))
        return cls(model, **config)
