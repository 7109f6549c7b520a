"""Training-time image geometry and augmentation in TF: letterbox with boxes, keras-yolo3's jitter, mosaic."""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf

__all__ = ["letterbox_with_boxes", "random_augment", "mosaic4", "GRAY"]


GRAY = 128.0 / 255.0  # canvas colour of letterbox/augmentation borders (keras-yolo3's (128,128,128))


def _resize(image: tf.Tensor, nh: tf.Tensor, nw: tf.Tensor) -> tf.Tensor:
    out = tf.image.resize(image, tf.stack([nh, nw]), method="bicubic", antialias=True)
    return tf.clip_by_value(out, 0.0, 1.0)


def _place(image: tf.Tensor, dx: tf.Tensor, dy: tf.Tensor, out_h: int, out_w: int, fill: float = GRAY) -> tf.Tensor:
    """Put ``image`` with its top-left corner at (dx, dy) (may be negative) on an ``out_h`` x
    ``out_w`` canvas of colour ``fill``, cutting off what falls outside."""
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    x0 = tf.maximum(0, -dx)
    y0 = tf.maximum(0, -dy)
    x1 = tf.minimum(w, out_w - dx)
    y1 = tf.minimum(h, out_h - dy)
    x1 = tf.maximum(x1, x0)
    y1 = tf.maximum(y1, y0)
    crop = image[y0:y1, x0:x1] - fill
    px, py = tf.maximum(dx, 0), tf.maximum(dy, 0)
    ch, cw = y1 - y0, x1 - x0
    pads = [[py, out_h - py - ch], [px, out_w - px - cw], [0, 0]]
    out = tf.pad(crop, tf.maximum(pads, 0)) + fill
    return tf.reshape(out, [out_h, out_w, 3])


def _filter_boxes(boxes: tf.Tensor, out_h: int, out_w: int, min_size: float = 1.0) -> tf.Tensor:
    x = tf.clip_by_value(boxes[:, 0:4:2], 0.0, float(out_w))
    y = tf.clip_by_value(boxes[:, 1:4:2], 0.0, float(out_h))
    boxes = tf.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1], boxes[:, 4]], axis=1)
    keep = tf.logical_and(boxes[:, 2] - boxes[:, 0] > min_size, boxes[:, 3] - boxes[:, 1] > min_size)
    return tf.boolean_mask(boxes, keep)


def letterbox_with_boxes(image: tf.Tensor, boxes: tf.Tensor, size: Sequence[int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Resize keeping the aspect ratio and centre on a grey ``size`` (h, w) canvas, as keras-yolo3's
    ``letterbox_image``; boxes follow.

    Args:
        image: float32 (H, W, 3) RGB in 0..1.
        boxes: (N, 5) ``x1, y1, x2, y2, class`` in picture pixels (anything reshapeable to it).
        size: (h, w) of the output canvas in pixels.

    Returns:
        (image (h, w, 3) float32 0..1, boxes (N', 5) x1, y1, x2, y2, class in network pixels), boxes clipped
        to the canvas and those with no width or height dropped.
    """
    out_h, out_w = int(size[0]), int(size[1])
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    ih, iw = shape[0], shape[1]
    scale = tf.minimum(out_w / iw, out_h / ih)
    nw = tf.maximum(tf.cast(iw * scale, tf.int32), 1)
    nh = tf.maximum(tf.cast(ih * scale, tf.int32), 1)
    dx = (out_w - nw) // 2
    dy = (out_h - nh) // 2
    image = _place(_resize(image, nh, nw), dx, dy, out_h, out_w)
    sx = tf.cast(nw, tf.float32) / iw
    sy = tf.cast(nh, tf.float32) / ih
    boxes = tf.reshape(boxes, [-1, 5])
    boxes = tf.stack([boxes[:, 0] * sx + tf.cast(dx, tf.float32), boxes[:, 1] * sy + tf.cast(dy, tf.float32),
                      boxes[:, 2] * sx + tf.cast(dx, tf.float32), boxes[:, 3] * sy + tf.cast(dy, tf.float32),
                      boxes[:, 4]], axis=1)
    return image, _filter_boxes(boxes, out_h, out_w, min_size=0.0)


def _uniform(seed: tf.Tensor, low, high) -> tf.Tensor:
    return tf.random.stateless_uniform([], seed, minval=0.0, maxval=1.0) * (high - low) + low


def _hsv_jitter(image: tf.Tensor, seeds: tf.Tensor, hue: float, sat: float, val: float) -> tf.Tensor:
    h = _uniform(seeds[0], -hue, hue)
    s = _uniform(seeds[1], 1.0, sat)
    s = tf.where(_uniform(seeds[2], 0.0, 1.0) < 0.5, s, 1.0 / s)
    v = _uniform(seeds[3], 1.0, val)
    v = tf.where(_uniform(seeds[4], 0.0, 1.0) < 0.5, v, 1.0 / v)
    hsv = tf.image.rgb_to_hsv(image)
    hch = hsv[..., 0] + h
    hch = hch - tf.floor(hch)  # wrap into [0, 1)
    sch = tf.clip_by_value(hsv[..., 1] * s, 0.0, 1.0)
    vch = tf.clip_by_value(hsv[..., 2] * v, 0.0, 1.0)
    return tf.image.hsv_to_rgb(tf.stack([hch, sch, vch], axis=-1))


def random_augment(
    image: tf.Tensor,
    boxes: tf.Tensor,
    size: Sequence[int],
    seed: tf.Tensor,
    jitter: float = 0.3,
    scale_range: tuple[float, float] = (0.25, 2.0),
    hue: float = 0.1,
    sat: float = 1.5,
    val: float = 1.5,
    flip: bool = True,
) -> tuple[tf.Tensor, tf.Tensor]:
    """keras-yolo3's ``get_random_data(random=True)`` in TensorFlow, with a stateless ``seed`` (2,).

    The image is resized to a random aspect ratio (``w/h * U(1-j,1+j)/U(1-j,1+j)``) and a random
    size (``U(0.25, 2)`` times the network size), placed at a random offset on a grey canvas of
    ``size`` (h, w), flipped horizontally with probability 0.5 and jittered in HSV. Boxes follow,
    are clipped to the canvas and those 1 pixel or less wide or high are dropped.

    Args:
        image: float32 (H, W, 3) RGB in 0..1.
        boxes: (N, 5) ``x1, y1, x2, y2, class`` in picture pixels (anything reshapeable to it).
        size: (h, w) of the output canvas in pixels.
        seed: int (2,) stateless random seed; the same seed gives the same augmentation.
        jitter: aspect-ratio jitter ``j`` (Darknet's ``jitter``).
        scale_range: (low, high) of the uniform scale factor relative to the network size.
        hue: hue shift drawn from ``U(-hue, hue)`` (fraction of the hue circle).
        sat: saturation factor drawn from ``U(1, sat)``, inverted with probability 0.5.
        val: value (brightness) factor drawn from ``U(1, val)``, inverted with probability 0.5.
        flip: allow the random horizontal flip.

    Returns:
        (image (h, w, 3) float32 0..1, boxes (N', 5) x1, y1, x2, y2, class in network pixels).
    """
    out_h, out_w = int(size[0]), int(size[1])
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=12)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    ih, iw = shape[0], shape[1]
    new_ar = iw / ih * _uniform(seeds[0], 1 - jitter, 1 + jitter) / _uniform(seeds[1], 1 - jitter, 1 + jitter)
    scale = _uniform(seeds[2], scale_range[0], scale_range[1])
    nh_a = scale * out_h
    nw_b = scale * out_w
    nh = tf.where(new_ar < 1, nh_a, nw_b / new_ar)
    nw = tf.where(new_ar < 1, nh_a * new_ar, nw_b)
    nh = tf.maximum(tf.cast(nh, tf.int32), 1)
    nw = tf.maximum(tf.cast(nw, tf.int32), 1)
    dx = tf.cast(_uniform(seeds[3], 0.0, tf.cast(out_w - nw, tf.float32)), tf.int32)
    dy = tf.cast(_uniform(seeds[4], 0.0, tf.cast(out_h - nh, tf.float32)), tf.int32)
    image = _place(_resize(image, nh, nw), dx, dy, out_h, out_w)
    sx = tf.cast(nw, tf.float32) / iw
    sy = tf.cast(nh, tf.float32) / ih
    fdx, fdy = tf.cast(dx, tf.float32), tf.cast(dy, tf.float32)
    boxes = tf.reshape(boxes, [-1, 5])
    x1, y1 = boxes[:, 0] * sx + fdx, boxes[:, 1] * sy + fdy
    x2, y2 = boxes[:, 2] * sx + fdx, boxes[:, 3] * sy + fdy
    if flip:
        do_flip = _uniform(seeds[5], 0.0, 1.0) < 0.5
        image = tf.cond(do_flip, lambda: tf.reverse(image, [1]), lambda: image)
        x1, x2 = tf.where(do_flip, out_w - x2, x1), tf.where(do_flip, out_w - x1, x2)
    image = _hsv_jitter(image, seeds[6:11], hue, sat, val)
    boxes = tf.stack([x1, y1, x2, y2, boxes[:, 4]], axis=1)
    return image, _filter_boxes(boxes, out_h, out_w)


def mosaic4(
    images: tf.Tensor, boxes: tf.Tensor, size: Sequence[int], seed: tf.Tensor, min_visible: float = 0.2
) -> tuple[tf.Tensor, tf.Tensor]:
    """Combine 4 augmented images (4, h, w, 3) with boxes (4, N, 5) (zero-size rows = padding)
    into one: a random centre splits the canvas into quadrants, each filled with a crop of one
    image at its own scale. Boxes are shifted, clipped to their quadrant, and dropped when less
    than ``min_visible`` of their area remains or when 1 pixel or less wide or high.

    Args:
        images: float32 (4, h, w, 3) RGB 0..1, each already at the canvas size (e.g. from
            :func:`random_augment`).
        boxes: (4, N, 5) ``x1, y1, x2, y2, class`` in network pixels per image; zero-size rows are padding.
        size: (h, w) of the output canvas in pixels.
        seed: int (2,) stateless random seed (centre and crop offsets).
        min_visible: the fraction (0..1) of a box's area that must stay inside its quadrant.

    Returns:
        (image (h, w, 3) float32 0..1, boxes (M, 5) x1, y1, x2, y2, class in network pixels).
    """
    out_h, out_w = int(size[0]), int(size[1])
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=10)
    cx = tf.cast(_uniform(seeds[0], 0.25 * out_w, 0.75 * out_w), tf.int32)
    cy = tf.cast(_uniform(seeds[1], 0.25 * out_h, 0.75 * out_h), tf.int32)
    # quadrant k: (x, y) of its top-left corner and its size
    qx = tf.stack([0, cx, 0, cx])
    qy = tf.stack([0, 0, cy, cy])
    qw = tf.stack([cx, out_w - cx, cx, out_w - cx])
    qh = tf.stack([cy, cy, out_h - cy, out_h - cy])
    canvas = tf.zeros([out_h, out_w, 3], tf.float32)
    out_boxes = []
    for k in range(4):
        ox = tf.cast(_uniform(seeds[2 + 2 * k], 0.0, tf.cast(out_w - qw[k], tf.float32)), tf.int32)
        oy = tf.cast(_uniform(seeds[3 + 2 * k], 0.0, tf.cast(out_h - qh[k], tf.float32)), tf.int32)
        crop = images[k, oy:oy + qh[k], ox:ox + qw[k]]
        canvas += tf.pad(crop, [[qy[k], out_h - qy[k] - qh[k]], [qx[k], out_w - qx[k] - qw[k]], [0, 0]])
        b = boxes[k]
        shift_x = tf.cast(qx[k] - ox, tf.float32)
        shift_y = tf.cast(qy[k] - oy, tf.float32)
        x1, y1 = b[:, 0] + shift_x, b[:, 1] + shift_y
        x2, y2 = b[:, 2] + shift_x, b[:, 3] + shift_y
        area = (x2 - x1) * (y2 - y1)
        lo_x, hi_x = tf.cast(qx[k], tf.float32), tf.cast(qx[k] + qw[k], tf.float32)
        lo_y, hi_y = tf.cast(qy[k], tf.float32), tf.cast(qy[k] + qh[k], tf.float32)
        x1, x2 = tf.clip_by_value(x1, lo_x, hi_x), tf.clip_by_value(x2, lo_x, hi_x)
        y1, y2 = tf.clip_by_value(y1, lo_y, hi_y), tf.clip_by_value(y2, lo_y, hi_y)
        kept = (x2 - x1) * (y2 - y1)
        keep = (x2 - x1 > 1) & (y2 - y1 > 1) & (kept >= min_visible * tf.maximum(area, 1e-6))
        out_boxes.append(tf.boolean_mask(tf.stack([x1, y1, x2, y2, b[:, 4]], axis=1), keep))
    canvas = tf.reshape(canvas, [out_h, out_w, 3])
    return canvas, tf.concat(out_boxes, axis=0)
