"""Training data: validated annotation files and a streaming ``tf.data`` input pipeline.

1. :func:`prepare_annotations` streams an annotation txt once (file:line errors from
   :mod:`yolo3.datasets.annotations`, class ids checked), reads each image's header, clips boxes to the
   image, drops zero-area boxes and counts them, reports missing or unreadable images by name,
   and writes a *clean* file (``path<TAB>exif_orientation<TAB>x1,y1,x2,y2,c ...``, absolute
   paths) that the pipeline reads. :func:`split_annotations` makes a seeded train/val split.
2. :func:`make_dataset` reads the clean file line by line (``TextLineDataset``), decodes each image
   lazily by path in parallel ``map`` calls, augments it (keras-yolo3's random scale 0.25-2,
   aspect jitter 0.3, random placement, horizontal flip, HSV jitter; optionally mosaic) or only
   letterboxes it (validation), assigns targets and batches. Memory does not grow with the data
   set: only a shuffle buffer of text lines and a few batches in flight are held. Randomness uses
   stateless ops seeded by ``(seed, sample counter)``, so a seed gives the same batches every run.

Batches are ``(images, targets)``: images float32 (B, H, W, 3) RGB in 0..1; targets a dict
``{"head_0": (B, H0, W0, A, 5+C), ..., "boxes": (B, max_boxes, 4)}`` (see :mod:`yolo3.training.targets`).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from .augment import (
    _filter_boxes,
    _uniform,
    letterbox_with_boxes,
    mosaic4,
    random_augment,
)
from .targets import TargetSpec, assign_targets, pad_boxes

__all__ = ["read_clean_annotations", "load_image", "make_dataset", "make_eval_dataset", "dataset_fn_for_strategy"]


def read_clean_annotations(clean_path: str):
    """Yield ``(path, boxes (N, 5) float32 image pixels)`` from a clean file (for evaluation).

    Args:
        clean_path: a clean annotation file from :func:`prepare_annotations`
            (``path<TAB>exif_orientation<TAB>x1,y1,x2,y2,c ...``); blank lines are skipped.

    Yields:
        ``(image path, boxes (N, 5) float32 x1, y1, x2, y2, class in image pixels)``.
    """
    with open(clean_path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            path, _, rest = line.rstrip("\n").split("\t")
            boxes = np.array([[float(v) for v in tok.split(",")] for tok in rest.split()], np.float32).reshape(-1, 5)
            yield path, boxes


def _parse_clean_line(line: tf.Tensor):
    parts = tf.strings.split(line, "\t")
    path = parts[0]
    orientation = tf.strings.to_number(parts[1], tf.int32)
    tokens = tf.strings.split(parts[2])
    fields = tf.strings.split(tokens, ",").to_tensor(default_value="0", shape=[None, 5])
    boxes = tf.reshape(tf.strings.to_number(fields, tf.float32), [-1, 5])
    return path, orientation, boxes


def load_image(path: tf.Tensor, orientation: tf.Tensor | int = 1) -> tf.Tensor:
    """Decode the image file at ``path`` to float32 (H, W, 3) RGB 0..1, EXIF ``orientation`` applied
    (grey and RGBA become RGB; 16-bit images are scaled).

    Args:
        path: string tensor (or str) of the image file path.
        orientation: the EXIF orientation 1..8 (1 = as stored; others clipped into that range).
    """
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, dtype=tf.float32, expand_animations=False)
    orientation = tf.convert_to_tensor(orientation, tf.int32)
    branches = [
        lambda: image,  # 1
        lambda: tf.reverse(image, [1]),  # 2 mirror
        lambda: tf.reverse(image, [0, 1]),  # 3 rotate 180
        lambda: tf.reverse(image, [0]),  # 4 flip vertical
        lambda: tf.transpose(image, [1, 0, 2]),  # 5 transpose
        lambda: tf.image.rot90(image, 3),  # 6 rotate 90 clockwise
        lambda: tf.reverse(tf.transpose(image, [1, 0, 2]), [0, 1]),  # 7 transverse
        lambda: tf.image.rot90(image, 1),  # 8 rotate 90 counter-clockwise
    ]
    index = tf.clip_by_value(orientation - 1, 0, 7)
    image = tf.switch_case(index, branches)
    image.set_shape([None, None, 3])
    return image


def _clean_lines(clean_path: str, shard: tuple[int, int] | None, shuffle_buffer: int, seed: int,
                 repeat: bool) -> tf.data.Dataset:
    """The non-empty lines of a clean file: this pipeline's shard, shuffled when ``shuffle_buffer``, repeated."""
    lines = tf.data.TextLineDataset(clean_path).filter(lambda s: tf.strings.length(tf.strings.strip(s)) > 0)
    if shard is not None and shard[0] > 1:
        lines = lines.shard(shard[0], shard[1])
    if shuffle_buffer:
        lines = lines.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return lines.repeat() if repeat else lines


def _with_mosaic(ds: tf.data.Dataset, mosaic: float, size: tuple[int, int], calls) -> tf.data.Dataset:
    """Groups of 4 augmented samples ``(image, boxes, seed)``; each group becomes one mosaic with
    probability ``mosaic``, else its first sample alone. Yields ``(image, boxes)``."""
    in_h, in_w = size
    ds = ds.padded_batch(4, padded_shapes=([in_h, in_w, 3], [None, 5], [2]), drop_remainder=True)

    def combine(images, boxes, seeds):
        mseed = seeds[0] + tf.constant([0, 7919], tf.int64)
        use = _uniform(mseed, 0.0, 1.0) < mosaic
        return tf.cond(use,
                       lambda: mosaic4(images, boxes, (in_h, in_w), mseed + 1),
                       lambda: (images[0], _filter_boxes(boxes[0], in_h, in_w, 0.0)))

    return ds.map(combine, num_parallel_calls=calls, deterministic=True)


def _targets_fn(spec: TargetSpec, size: tuple[int, int], max_boxes: int):
    """``(image, boxes) -> (image (H, W, 3), {"head_i": targets, "boxes": padded boxes})`` for ``map``."""
    names = [f"head_{i}" for i in range(spec.num_heads)]

    def to_targets(image, boxes):
        y = dict(zip(names, assign_targets(boxes, size, spec)))
        y["boxes"] = pad_boxes(boxes, size, max_boxes)
        return tf.reshape(image, [size[0], size[1], 3]), y

    return to_targets


def make_dataset(
    clean_path: str,
    spec: TargetSpec,
    input_size: Sequence[int],
    batch_size: int,
    *,
    augment: bool = True,
    mosaic: float = 0.0,
    seed: int = 0,
    repeat: bool = True,
    shuffle: bool | None = None,
    shuffle_buffer: int = 2048,
    max_boxes: int = 100,
    drop_remainder: bool = True,
    shard: tuple[int, int] | None = None,
    num_parallel_calls: int | None = None,
    prefetch: int | None = None,
) -> tf.data.Dataset:
    """Batches of ``(images (B, H, W, 3) float32 0..1, targets dict)`` from a clean file.

    Args:
        clean_path: a clean annotation file from :func:`prepare_annotations`.
        spec: the model's anchors, masks, strides and class count for target assignment.
        input_size: (height, width) of the network input in pixels, multiples of the largest stride.
        batch_size: images per batch (per input pipeline).
        augment: keras-yolo3's random augmentation (training) or letterbox only (validation).
        mosaic: probability (0..1) of replacing a sample by a 4-image mosaic (augmentation only).
        seed: base of the stateless per-sample seeds and of the shuffle.
        repeat: loop forever (use ``steps_per_epoch``).
        shuffle: defaults to ``augment``; the shuffle buffer holds text lines only.
        shuffle_buffer: lines in the shuffle buffer.
        max_boxes: rows of ``targets["boxes"]`` (boxes beyond it are left out of the ignore mask only).
        drop_remainder: drop a last, smaller batch.
        shard: (num_shards, index) to read every num_shards-th line (one input pipeline of a
            multi-worker run); None or 1 shard reads all.
        num_parallel_calls: parallelism of the ``map`` calls; default ``tf.data.AUTOTUNE``.
        prefetch: batches prefetched; default ``tf.data.AUTOTUNE``.

    Returns:
        A dataset of ``(images, {"head_0": (B, H0, W0, A, 5+C), ..., "boxes": (B, max_boxes, 4)})``
        (targets from :func:`assign_targets`, relative cxcywh boxes from :func:`pad_boxes`).

    Raises:
        ValueError: ``input_size`` is not a multiple of the model's largest stride.
    """
    in_h, in_w = int(input_size[0]), int(input_size[1])
    stride = spec.max_stride()
    if in_h % stride or in_w % stride:
        raise ValueError(f"input size {in_h}x{in_w} is not a multiple of {stride}")
    autotune = tf.data.AUTOTUNE
    calls = num_parallel_calls or autotune
    shuffle = augment if shuffle is None else shuffle
    lines = _clean_lines(clean_path, shard, shuffle_buffer if shuffle else 0, seed, repeat)
    # A running sample number gives each sample (and each epoch's visit of it) its own seed.
    ds = tf.data.Dataset.zip((lines, tf.data.Dataset.counter()))
    seed_t = tf.constant(int(seed), tf.int64)

    def load(line, index):
        path, orientation, boxes = _parse_clean_line(line)
        image = load_image(path, orientation)
        sample_seed = tf.stack([seed_t, index])
        if augment:
            image, boxes = random_augment(image, boxes, (in_h, in_w), sample_seed)
        else:
            image, boxes = letterbox_with_boxes(image, boxes, (in_h, in_w))
        return image, boxes, sample_seed

    ds = ds.map(load, num_parallel_calls=calls, deterministic=True)
    if augment and mosaic > 0:
        ds = _with_mosaic(ds, mosaic, (in_h, in_w), calls)
    else:
        ds = ds.map(lambda image, boxes, _seed: (image, boxes))

    ds = ds.map(_targets_fn(spec, (in_h, in_w), max_boxes), num_parallel_calls=calls, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(prefetch or autotune)


def dataset_fn_for_strategy(make: Callable[..., tf.data.Dataset], global_batch: int):
    """A ``dataset_fn(input_context)`` for ``strategy.distribute_datasets_from_function``: each
    input pipeline reads its own shard of the lines with the per-replica batch size.

    Args:
        make: called as ``make(per_replica_batch, (num_input_pipelines, input_pipeline_id))``, returns
            that pipeline's dataset (e.g. :func:`make_dataset` with ``batch_size`` and ``shard`` bound).
        global_batch: the batch size over all replicas.
    """

    def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        per_replica = ctx.get_per_replica_batch_size(global_batch)
        return make(per_replica, (ctx.num_input_pipelines, ctx.input_pipeline_id))

    return dataset_fn


def make_eval_dataset(clean_path: str, input_size: Sequence[int], batch_size: int = 8,
                      max_boxes: int = 100) -> tf.data.Dataset:
    """Letterboxed validation images with their boxes, one pass, in file order: batches of
    ``(images (B, H, W, 3) float32 0..1, boxes (B, M, 5) network pixels x1, y1, x2, y2, class)``
    (zero rows are padding). Boxes are not filtered by size, so none is lost.

    Args:
        clean_path: a clean annotation file from :func:`prepare_annotations`.
        input_size: (height, width) of the network input in pixels.
        batch_size: images per batch (the last batch may be smaller).
        max_boxes: not used: M is the largest box count of each batch.
    """
    in_h, in_w = int(input_size[0]), int(input_size[1])
    lines = tf.data.TextLineDataset(clean_path).filter(lambda s: tf.strings.length(tf.strings.strip(s)) > 0)

    def load(line):
        path, orientation, boxes = _parse_clean_line(line)
        image, boxes = letterbox_with_boxes(load_image(path, orientation), boxes, (in_h, in_w))
        return tf.reshape(image, [in_h, in_w, 3]), boxes

    ds = lines.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.padded_batch(batch_size, padded_shapes=([in_h, in_w, 3], [None, 5])).prefetch(tf.data.AUTOTUNE)
