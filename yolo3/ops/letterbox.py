"""Darknet's letterbox (image -> network input) and its inverse (network boxes -> image pixels), in TF.

Transcribed from Darknet's ``image.c`` (``letterbox_image``, ``resize_image``) and
``yolo_layer.c`` (``correct_yolo_boxes``) so boxes match Darknet's to a fraction of a pixel:

- the new size uses integer arithmetic: if ``net_w/w < net_h/h`` (float32) then
  ``new_w = net_w, new_h = h*net_w//w`` else ``new_h = net_h, new_w = w*net_h//h``;
- the resize is separable bilinear mapping corners to corners (source = dst*(in-1)/(out-1), float32),
  horizontal pass first; Darknet's last output row takes ``(1-dy)*row[iy]`` only, which this copies;
- the result is pasted on a 0.5 grey canvas at ``((net_w-new_w)//2, (net_h-new_h)//2)`` (integer division);
- boxes go back with the FLOAT offset ``(net_w-new_w)/2``: for odd padding they sit half a network
  pixel away from the paste, exactly as Darknet's do.

Everything is vectorised over a batch of images of different sizes held in one zero-padded uint8
tensor plus their sizes, so it runs inside one ``tf.function`` without retracing.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from ..core.detections import stack_images

__all__ = ["letterbox_size", "letterbox", "letterbox_image", "stack_images", "boxes_to_image"]


def letterbox_size(image_h, image_w, net_h, net_w):
    """Darknet's (new_h, new_w) of an image (h, w) letterboxed into (net_h, net_w); int32 tensors.

    Works element-wise on tensors of image sizes.

    Args:
        image_h: image height(s) in pixels, an int scalar or tensor.
        image_w: image width(s) in pixels, same shape as ``image_h``.
        net_h: network input height in pixels.
        net_w: network input width in pixels.

    Returns:
        ``(new_h, new_w)``: int32 tensors shaped like ``image_h``, the resized image's size in pixels
        (one of them equals the network's, the other is at most the network's).
    """
    image_h = tf.cast(image_h, tf.int32)
    image_w = tf.cast(image_w, tf.int32)
    net_h = tf.cast(net_h, tf.int32)
    net_w = tf.cast(net_w, tf.int32)
    width_limited = (tf.cast(net_w, tf.float32) / tf.cast(image_w, tf.float32)
                     < tf.cast(net_h, tf.float32) / tf.cast(image_h, tf.float32))
    new_w = tf.where(width_limited, net_w, image_w * net_h // image_h)
    new_h = tf.where(width_limited, image_h * net_w // image_w, net_h)
    return new_h, new_w


def _source_coords(out_len, in_len, count, offset):
    """Per image (B,) and output position (count,): Darknet's source index, its neighbour and weight.

    ``out_len``/``in_len``: (B,) int32 resized and original lengths; ``offset``: (B,) paste offset.
    Returns i0, i1 (B, count) int32, frac (B, count) float32, is_last (B, count) bool (the
    position maps to Darknet's last output pixel), valid (B, count) bool (inside the pasted image).
    """
    pos = tf.range(count, dtype=tf.int32)[None, :] - offset[:, None]
    valid = (pos >= 0) & (pos < out_len[:, None])
    pos = tf.clip_by_value(pos, 0, tf.maximum(out_len[:, None] - 1, 0))
    # scale = (float)(in-1)/(out-1) in float32; 0 for a 1-pixel output (Darknet divides by zero there)
    denom = tf.cast(tf.maximum(out_len - 1, 1), tf.float32)
    scale = tf.where(out_len > 1, tf.cast(in_len - 1, tf.float32) / denom, 0.0)
    src = tf.cast(pos, tf.float32) * scale[:, None]
    i0 = tf.cast(src, tf.int32)  # (int) truncation; src >= 0
    frac = src - tf.cast(i0, tf.float32)
    i0 = tf.clip_by_value(i0, 0, in_len[:, None] - 1)
    i1 = tf.minimum(i0 + 1, in_len[:, None] - 1)
    is_last = (pos == out_len[:, None] - 1) | (in_len[:, None] == 1)
    return i0, i1, frac, is_last, valid


def letterbox(images: tf.Tensor, sizes: tf.Tensor, net_size: Sequence[int]) -> tf.Tensor:
    """Letterbox a batch exactly like Darknet.

    Args:
        images: uint8 (B, H_max, W_max, 3) RGB, each image in the top-left corner, zero padded
            (see :func:`stack_images`).
        sizes: int (B, 2) each image's (height, width) in pixels.
        net_size: (net_h, net_w) Python ints, the network input size in pixels.

    Returns:
        float32 (B, net_h, net_w, 3), RGB in 0..1, grey 0.5 outside the image.
    """
    net_h, net_w = int(net_size[0]), int(net_size[1])
    images = tf.convert_to_tensor(images)
    sizes = tf.cast(sizes, tf.int32)
    img_h, img_w = sizes[:, 0], sizes[:, 1]
    new_h, new_w = letterbox_size(img_h, img_w, net_h, net_w)
    top = (net_h - new_h) // 2
    left = (net_w - new_w) // 2

    # Vertical source rows: gathering the two rows first and then running Darknet's horizontal
    # pass on them does the same float operations per pixel as its horizontal-then-vertical order.
    iy0, iy1, dy, last_row, valid_y = _source_coords(new_h, img_h, net_h, top)
    ix0, ix1, dx, last_col, valid_x = _source_coords(new_w, img_w, net_w, left)
    # Darknet's last column copies the last input pixel: source w-1, weight 0.
    ix0 = tf.where(last_col, img_w[:, None] - 1, ix0)
    dx = tf.where(last_col, 0.0, dx)
    # Darknet's last row (or a 1-row input) adds no second row; its (1-dy) factor stays.
    wy1 = tf.where(last_row, 0.0, dy)

    def horizontal(rows):  # rows: uint8 (B, net_h, W_max, 3) -> float32 (B, net_h, net_w, 3)
        left_px = tf.cast(tf.gather(rows, ix0, axis=2, batch_dims=1), tf.float32) / 255.0
        right_px = tf.cast(tf.gather(rows, ix1, axis=2, batch_dims=1), tf.float32) / 255.0
        wx = dx[:, None, :, None]
        return (1.0 - wx) * left_px + wx * right_px

    part0 = horizontal(tf.gather(images, iy0, axis=1, batch_dims=1))
    part1 = horizontal(tf.gather(images, iy1, axis=1, batch_dims=1))
    resized = (1.0 - dy)[:, :, None, None] * part0 + wy1[:, :, None, None] * part1
    inside = valid_y[:, :, None, None] & valid_x[:, None, :, None]
    out = tf.where(inside, resized, tf.constant(0.5, tf.float32))
    return tf.ensure_shape(out, [None, net_h, net_w, 3])


def letterbox_image(image: np.ndarray, net_size: Sequence[int]) -> np.ndarray:
    """One uint8 (H, W, 3) RGB image -> float32 (net_h, net_w, 3) Darknet letterbox (eager).

    Args:
        image: uint8 (H, W, 3) RGB picture.
        net_size: (net_h, net_w), the network input size in pixels.

    Returns:
        float32 (net_h, net_w, 3) NumPy array, RGB in 0..1, grey 0.5 outside the image.
    """
    batch, sizes = stack_images([image])
    return letterbox(batch, sizes, net_size)[0].numpy()


def boxes_to_image(boxes_cxcywh: tf.Tensor, sizes: tf.Tensor, net_size: Sequence[int]) -> tf.Tensor:
    """Map boxes from the letterboxed network input back to each original image, like Darknet.

    Uses Darknet's float-division offset ``(net - new)/2`` (see the module docstring).

    Args:
        boxes_cxcywh: float32 (B, N, 4) centre x, centre y, width, height as fractions (0..1) of the
            network input.
        sizes: int (B, 2) each original image's (height, width) in pixels.
        net_size: (net_h, net_w), the network input size in pixels.

    Returns:
        float32 (B, N, 4) x1, y1, x2, y2 in original-image pixels, not clipped.
    """
    net_h, net_w = float(net_size[0]), float(net_size[1])
    sizes = tf.cast(sizes, tf.int32)
    new_h, new_w = letterbox_size(sizes[:, 0], sizes[:, 1], int(net_size[0]), int(net_size[1]))
    img_h = tf.cast(sizes[:, 0], tf.float32)[:, None]
    img_w = tf.cast(sizes[:, 1], tf.float32)[:, None]
    new_h = tf.cast(new_h, tf.float32)[:, None]
    new_w = tf.cast(new_w, tf.float32)[:, None]
    cx, cy, w, h = tf.unstack(tf.cast(boxes_cxcywh, tf.float32), axis=-1)
    cx = (cx - (net_w - new_w) / 2.0 / net_w) / (new_w / net_w) * img_w
    cy = (cy - (net_h - new_h) / 2.0 / net_h) / (new_h / net_h) * img_h
    w = w * (net_w / new_w) * img_w
    h = h * (net_h / new_h) * img_h
    return tf.stack([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0], axis=-1)
