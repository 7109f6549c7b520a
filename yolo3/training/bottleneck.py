"""Bottleneck training (keras-yolo3's train_bottleneck.py): run the frozen body once, cache its
outputs on disk, and train only the output convolutions on the cache.

With ``freeze_body=2`` every layer but the head output convolutions is frozen, so each training
step recomputes the same body features. Here they are computed once for letterboxed images (no
augmentation, as in keras-yolo3) and written to sharded TFRecord files -- one example an image:
the float16 inputs of each output convolution and the image's boxes in network pixels -- while
streaming, so memory does not depend on the data set size. Training then reads the shards with
``tf.data`` and runs only the 1x1 output convolutions, which makes an epoch many times cheaper
(``benchmarks/bench_training_throughput.py`` measures it). The output convolutions are the very
layer objects of the full model, so after training the full model is saved as it is.
"""
from __future__ import annotations

import glob
import json
import os
import time
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from ..datasets.cleaning import count_lines
from ..modeling.saving import save_model
from .config import LossConfig, TrainConfig
from .freezing import head_output_layers
from .pipeline import make_eval_dataset
from .precision import float32_copy, make_optimizer, precision_policy
from .preparation import create_training_model, prepare_training_data
from .schedule import STAGE1_LR, auto_batch_size
from .targets import TargetSpec, assign_targets, pad_boxes, target_spec_from_model
from .trainer import YoloTrainer

__all__ = ["split_at_head_convs", "write_feature_cache", "cache_dataset", "BottleneckTrainer", "train_bottleneck",
           "run_bottleneck_training"]


def _head_chain(out) -> list:
    """Layers from the output convolution to the YoloHead of one model output, in call order."""
    chain = []
    op = out._keras_history.operation
    chain.append(op)
    while not op.weights:
        inputs = op._inbound_nodes[0].input_tensors
        op = inputs[0]._keras_history.operation
        chain.append(op)
    return chain[::-1]


def split_at_head_convs(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """(feature_model, head_model): ``feature_model(images)`` returns the inputs of the output
    convolutions (one a head, in output order); ``head_model(features)`` applies the output
    convolutions and YoloHead layers -- the same layer objects as ``model``'s, so training the head
    model trains the full model.

    Args:
        model: an inference model (images in, raw heads out, each head after one output convolution).
    """
    convs = head_output_layers(model)
    features = [conv.input for conv in convs]
    feature_model = keras.Model(model.inputs[0], features, name="bottleneck_features")
    inputs = [keras.Input(shape=tuple(f.shape[1:]), name=f"features_{i}") for i, f in enumerate(features)]
    outputs = []
    for inp, out in zip(inputs, model.outputs):
        x = inp
        for layer in _head_chain(out):
            x = layer(x)
        outputs.append(x)
    head_model = keras.Model(inputs, outputs, name="bottleneck_heads")
    return feature_model, head_model


def write_feature_cache(
    feature_model: keras.Model,
    clean_path: str,
    input_size: Sequence[int],
    cache_dir: str,
    batch_size: int = 8,
    shard_size: int = 256,
    progress: bool = True,
) -> dict:
    """Run ``feature_model`` over the letterboxed images of a clean annotation file and write
    ``cache_dir/features-XXXXX.tfrecord`` shards plus ``meta.json``. Returns the meta dict
    (``images``, ``shapes``, ``input_size``, ``dtype``, ``shards``).

    Args:
        feature_model: the feature model of :func:`split_at_head_convs`.
        clean_path: a clean annotation file (:func:`yolo3.datasets.cleaning.prepare_annotations`).
        input_size: the network input (height, width) in pixels the images are letterboxed to.
        cache_dir: folder of the shards; old shards in it are removed.
        batch_size: images a forward pass.
        shard_size: images a shard file.
        progress: show a progress bar.
    """
    os.makedirs(cache_dir, exist_ok=True)
    for old in glob.glob(os.path.join(cache_dir, "features-*.tfrecord")):
        os.unlink(old)
    n = count_lines(clean_path)
    ds = make_eval_dataset(clean_path, input_size, batch_size=batch_size)
    run = tf.function(lambda x: feature_model(x, training=False), reduce_retracing=True)
    shapes = None
    written, shard, writer = 0, 0, None
    with tqdm(total=n, desc="caching body outputs", unit="img", disable=not progress) as bar:
        for images, boxes in ds:
            feats = run(images)
            feats = [feats] if not isinstance(feats, (list, tuple)) else list(feats)
            feats = [f.numpy().astype(np.float16) for f in feats]
            shapes = [list(f.shape[1:]) for f in feats]
            boxes = boxes.numpy()
            for i in range(images.shape[0]):
                if writer is None or written % shard_size == 0 and written:
                    if writer is not None:
                        writer.close()
                    writer = tf.io.TFRecordWriter(os.path.join(cache_dir, f"features-{shard:05d}.tfrecord"))
                    shard += 1
                b = boxes[i]
                b = b[(b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])].astype(np.float32)
                feature = {f"f{k}": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f[i].tobytes()]))
                           for k, f in enumerate(feats)}
                feature["boxes"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b.tobytes()]))
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
                written += 1
                bar.update(1)
    if writer is not None:
        writer.close()
    meta = {"images": written, "shapes": shapes, "input_size": [int(v) for v in input_size], "dtype": "float16",
            "shards": shard}
    with open(os.path.join(cache_dir, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f)
    return meta


def cache_dataset(cache_dir: str, spec: TargetSpec, batch_size: int, *, shuffle: bool = True, repeat: bool = True,
                  seed: int = 0, max_boxes: int = 100, shuffle_buffer: int = 256) -> tf.data.Dataset:
    """Batches ``(features tuple, targets dict)`` read from a feature cache (streamed).

    Args:
        cache_dir: a folder written by :func:`write_feature_cache`.
        spec: the target assignment of the model's heads.
        batch_size: images a batch.
        shuffle: shuffle the records (interleaved reads); else file order.
        repeat: repeat forever and drop the last partial batch.
        seed: shuffle seed.
        max_boxes: ground-truth boxes an image kept for the ignore mask.
        shuffle_buffer: at most this many records in the shuffle buffer.
    """
    with open(os.path.join(cache_dir, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    shapes = meta["shapes"]
    in_h, in_w = meta["input_size"]
    files = sorted(glob.glob(os.path.join(cache_dir, "features-*.tfrecord")))
    if not files:
        raise FileNotFoundError(f"no feature shards in {cache_dir}")
    # Interleaved reads when shuffling; in file order otherwise (validation, tests).
    ds = tf.data.TFRecordDataset(files, num_parallel_reads=min(4, len(files)) if shuffle else None)
    if shuffle:
        # records are large (float16 features: ~150 KB for tiny at 224, ~2.4 MB for yolov3 at 416),
        # so the buffer holds at most one pass over the cache and at most shuffle_buffer records
        buffer = max(1, min(int(shuffle_buffer), int(meta.get("images", shuffle_buffer))))
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    description = {f"f{k}": tf.io.FixedLenFeature([], tf.string) for k in range(len(shapes))}
    description["boxes"] = tf.io.FixedLenFeature([], tf.string)
    names = [f"head_{i}" for i in range(spec.num_heads)]

    def parse(record):
        ex = tf.io.parse_single_example(record, description)
        feats = tuple(tf.cast(tf.reshape(tf.io.decode_raw(ex[f"f{k}"], tf.float16), s), tf.float32)
                      for k, s in enumerate(shapes))
        boxes = tf.reshape(tf.io.decode_raw(ex["boxes"], tf.float32), [-1, 5])
        y = dict(zip(names, assign_targets(boxes, (in_h, in_w), spec)))
        y["boxes"] = pad_boxes(boxes, (in_h, in_w), max_boxes)
        return feats, y

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size, drop_remainder=repeat).prefetch(tf.data.AUTOTUNE)


class BottleneckTrainer(YoloTrainer):
    """:class:`YoloTrainer` for the head model: inputs are cached features, so the network input
    size (for the anchors) is given explicitly; the loss is YoloTrainer's ``compute_loss``.

    Args:
        head_model: the head model of :func:`split_at_head_convs` (features in, raw heads out).
        input_size: the network input (height, width) in pixels the features were computed at.
        **kwargs: as :class:`YoloTrainer` (``box_loss``, ``label_smoothing``, ``ignore_thresh``).
    """

    def __init__(self, head_model: keras.Model, input_size: Sequence[int], **kwargs):
        super().__init__(head_model, input_size=input_size, **kwargs)


def train_bottleneck(
    model: keras.Model,
    train_clean: str,
    val_clean: str | None,
    input_size: Sequence[int],
    cache_dir: str,
    epochs: int = 30,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose="auto",
    reuse_cache: bool = False,
    progress: bool = True,
    precision: str = "float32",
    loss: LossConfig | None = None,
) -> dict:
    """Cache the body outputs of ``model`` for the images of ``train_clean`` (and ``val_clean``)
    under ``cache_dir`` and train the output convolutions on them for ``epochs`` epochs.
    ``model`` is trained in place; returns ``{"history": ..., "train_meta": ..., "val_meta": ...,
    "steps_per_epoch": ..., "loss": the trainer's loss options}``.

    Args:
        model: the inference model; its output convolutions are trained.
        train_clean: clean training annotation file.
        val_clean: clean validation annotation file, or None.
        input_size: the network input (height, width) in pixels.
        cache_dir: folder of the ``train``/``val`` feature caches.
        epochs: epochs on the cached features.
        batch_size: images a batch.
        lr: Adam learning rate.
        seed: shuffle seed.
        callbacks: Keras callbacks for ``fit``.
        verbose: Keras ``fit`` verbosity.
        reuse_cache: keep an existing cache made at the same input size.
        progress: show progress bars while caching.
        precision: the run's precision (:data:`yolo3.training.config.PRECISIONS`); build ``model``
            under it (:func:`yolo3.training.precision.precision_policy`) for the 16-bit ones.
        loss: the loss options (box loss, label smoothing, ignore threshold, box gradient); default
            :class:`yolo3.training.config.LossConfig`'s.
    """
    spec = target_spec_from_model(model)
    feature_model, head_model = split_at_head_convs(model)
    train_dir, val_dir = os.path.join(cache_dir, "train"), os.path.join(cache_dir, "val")

    def cached(clean, d):
        meta_path = os.path.join(d, "meta.json")
        if reuse_cache and os.path.isfile(meta_path):
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
            if meta.get("input_size") == [int(v) for v in input_size]:
                return meta
        return write_feature_cache(feature_model, clean, input_size, d, progress=progress)

    train_meta = cached(train_clean, train_dir)
    val_meta = cached(val_clean, val_dir) if val_clean else None
    trainer = BottleneckTrainer(head_model, input_size, **(loss or LossConfig()).trainer_kwargs())
    trainer.compile(optimizer=make_optimizer(lr, precision))
    steps = max(1, train_meta["images"] // batch_size)
    fit_kwargs = {}
    if val_meta:
        vb = max(1, min(batch_size, val_meta["images"]))
        fit_kwargs = {"validation_data": cache_dataset(val_dir, spec, vb, shuffle=False, repeat=True),
                      "validation_steps": max(1, -(-val_meta["images"] // vb))}
    hist = trainer.fit(cache_dataset(train_dir, spec, batch_size, seed=seed), steps_per_epoch=steps, epochs=epochs,
                       callbacks=list(callbacks), verbose=verbose, shuffle=False, **fit_kwargs)
    loss_used = {k: v for k, v in trainer.get_config().items() if k in LossConfig().trainer_kwargs()}
    return {"history": {k: [float(v) for v in vs] for k, vs in hist.history.items()},
            "train_meta": train_meta, "val_meta": val_meta, "steps_per_epoch": steps, "loss": loss_used}


_NO_WEIGHTS = "no --weights: the cached body is untrained (bottleneck training is meant for pretrained bodies)"


def run_bottleneck_training(config: TrainConfig, cache_dir: str | None = None, reuse_cache: bool = False) -> dict:
    """keras-yolo3's train_bottleneck.py: validate the data, build the model with its starting
    weights, cache the body outputs, train the output convolutions on them, save the full model.

    Writes under ``config.runtime.log_dir``: ``data/`` (clean annotation files), the feature cache
    (default ``bottleneck_cache/``), ``bottleneck.csv`` and the model ``config.runtime.final_name``.
    Returns :func:`train_bottleneck`'s dict plus ``final_model`` (its path) and ``seconds``
    (training time after the model was built).

    Args:
        config: data, model and runtime groups as for :func:`yolo3.training.run.run_training`;
            ``stages[0]`` gives epochs, batch size and learning rate (None: chosen as by train.py;
            the body is frozen by construction; ``stages[1]`` is not used); ``optim.precision`` the precision.
        cache_dir: folder of the feature cache; default ``<log_dir>/bottleneck_cache``.
        reuse_cache: use an existing cache made at the same input size instead of recomputing it.
    """
    runtime, stage, precision = config.runtime, config.stages[0], config.optim.precision
    os.makedirs(runtime.log_dir, exist_ok=True)
    data = prepare_training_data(config.data, os.path.join(runtime.log_dir, "data"), seed=runtime.seed)
    with precision_policy(precision):
        model = create_training_model(config.model, len(config.data.classes), no_weights_message=_NO_WEIGHTS)
    batch = stage.batch_size or auto_batch_size(data.n_train)
    start = time.time()
    callbacks = [keras.callbacks.CSVLogger(os.path.join(runtime.log_dir, "bottleneck.csv")),
                 keras.callbacks.TerminateOnNaN(), *runtime.extra_callbacks]
    result = train_bottleneck(
        model, data.train_path, data.val_path if data.n_val else None, config.model.input_size,
        cache_dir or os.path.join(runtime.log_dir, "bottleneck_cache"), epochs=stage.epochs,
        batch_size=batch, lr=stage.learning_rate or STAGE1_LR, seed=runtime.seed, reuse_cache=reuse_cache,
        verbose=runtime.verbose, callbacks=callbacks, precision=precision, loss=config.loss)
    final_path = os.path.join(runtime.log_dir, runtime.final_name)
    save_model(float32_copy(model), final_path)
    result.update(final_model=final_path, seconds=time.time() - start)
    return result
