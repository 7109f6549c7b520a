"""Darknet's letterbox with OpenCV's ``cv2.remap``: the reduced-precision fast path.

:func:`yolo3.ops.letterbox.letterbox` is exact (Darknet's float arithmetic) but, called from NumPy, costs
a TF call: 1.3-2 ms a picture on a 2-core CPU, which is a third of yolov3-tiny's whole bfloat16 network
in OpenVINO. :class:`RemapLetterbox` samples the same source points (Darknet's corner-to-corner
mapping, its last column and last row) with ``cv2.remap``, and scales by 1/255 into the float32
network input: 0.2-0.3 ms in all. What it gives up:

- OpenCV's bilinear weights are fixed point: source coordinates are rounded to 1/32 pixel;
- the resized picture is rounded to uint8 before the scaling (0.5/255 at most).

On the sample pictures the largest difference from the exact letterbox is 0.011 (2.8 levels of 255)
and the mean 0.0013: below what bfloat16 itself does to the network's input (8 significant bits), so
the openvino backend uses it at bf16 and int8, never at fp32 (tests/test_letterbox_remap.py).

NumPy and OpenCV only, no TensorFlow.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import cv2
import numpy as np

from ..core.detections import check_images

__all__ = ["letterbox_size_np", "darknet_sampling", "RemapPlan", "remap_plan", "RemapLetterbox", "GREY"]

GREY = 0.5  # the border, as Darknet's
_REMAP_LIMIT = 32767  # cv2.remap's largest source or output side (SHRT_MAX)


def letterbox_size_np(image_h: np.ndarray, image_w: np.ndarray, net_h: int, net_w: int):
    """NumPy twin of :func:`yolo3.ops.letterbox.letterbox_size`: int32 (new_h, new_w) per image.

    Args:
        image_h: image height(s) in pixels (int array-like).
        image_w: image width(s) in pixels, same shape as ``image_h``.
        net_h: network input height in pixels.
        net_w: network input width in pixels.

    Returns:
        ``(new_h, new_w)``: int32 arrays shaped like ``image_h``, the resized image's size in pixels.
    """
    image_h = np.asarray(image_h, np.int32)
    image_w = np.asarray(image_w, np.int32)
    width_limited = (np.float32(net_w) / image_w.astype(np.float32)
                     < np.float32(net_h) / image_h.astype(np.float32))
    new_w = np.where(width_limited, net_w, image_w * net_h // image_h).astype(np.int32)
    new_h = np.where(width_limited, image_h * net_w // image_w, net_h).astype(np.int32)
    return new_h, new_w


def _darknet_source(out_len: int, in_len: int) -> np.ndarray:
    """float32 (out_len,) source coordinate of each output pixel, Darknet's ``c * (in-1)/(out-1)`` in
    float32 (0 for a 1-pixel output), the same arithmetic as the exact letterbox."""
    if out_len < 2:
        return np.zeros(out_len, np.float32)
    scale = np.float32(in_len - 1) / np.float32(out_len - 1)
    return np.arange(out_len, dtype=np.float32) * scale


def darknet_sampling(out_len: int, in_len: int, last_copies: bool):
    """Darknet's bilinear sampling of ``in_len`` source pixels at ``out_len`` output pixels, as
    :func:`yolo3.ops.letterbox._source_coords` computes it in float32 (the exact letterbox's tables, for
    :mod:`yolo3.backends.openvino_letterbox`, and the source points of :func:`remap_plan`): int32
    (out_len,) first and second source index, float32 (out_len,) weights of the first and of the second.

    Args:
        out_len: output pixels (> 0).
        in_len: source pixels (> 0).
        last_copies: the horizontal pass: the last output pixel (or every one of a 1-pixel source)
            copies source pixel ``in_len - 1`` (weights 1 and 0). Otherwise the vertical pass: there
            the last row keeps its first weight ``1 - frac`` and drops the second row (weight 0).
    """
    src = _darknet_source(out_len, in_len)
    first = src.astype(np.int32)  # truncation; src >= 0
    frac = (src - first.astype(np.float32)).astype(np.float32)
    first = np.clip(first, 0, in_len - 1)
    second = np.minimum(first + 1, in_len - 1).astype(np.int32)
    last = (np.arange(out_len) == out_len - 1) | (in_len == 1)
    if last_copies:
        first = np.where(last, in_len - 1, first).astype(np.int32)
        frac = np.where(last, np.float32(0), frac).astype(np.float32)
    weight0 = (np.float32(1) - frac).astype(np.float32)
    weight1 = frac if last_copies else np.where(last, np.float32(0), frac).astype(np.float32)
    return first, second, weight0, weight1


class RemapPlan(NamedTuple):
    """How one picture size is letterboxed: OpenCV's fixed-point maps (``cv2.convertMaps``, CV_16SC2 +
    CV_16UC1) of the resized picture's (new_h, new_w) pixels, where it goes on the canvas, and what the
    last row is multiplied by (Darknet's last row takes ``(1-dy) * row[iy]`` only)."""

    maps: tuple[np.ndarray, np.ndarray] | None  # None: nothing to paste (new_h or new_w is 0)
    top: int
    left: int
    new_h: int
    new_w: int
    last_row_factor: float
    rows: np.ndarray | None  # source rows to gather first (pictures too large for cv2.remap), else None
    cols: np.ndarray | None


def remap_plan(image_hw: Sequence[int], net_size: Sequence[int]) -> RemapPlan:
    """The :class:`RemapPlan` of a (height, width) picture letterboxed into (net_h, net_w) pixels."""
    h, w = int(image_hw[0]), int(image_hw[1])
    net_h, net_w = int(net_size[0]), int(net_size[1])
    new_h, new_w = (int(v) for v in letterbox_size_np(h, w, net_h, net_w))
    top, left = (net_h - new_h) // 2, (net_w - new_w) // 2
    if new_h == 0 or new_w == 0:  # a picture so long that it letterboxes to nothing: all grey
        return RemapPlan(None, top, left, new_h, new_w, 1.0, None, None)
    # each output pixel's source coordinate, first index + second weight: Darknet's last column copies the
    # last source pixel; its last row is (1-dy) * row[iy], no second row (remapped at iy, then scaled)
    ix, _, _, wx = darknet_sampling(new_w, w, last_copies=True)
    iy, _, wy0, wy = darknet_sampling(new_h, h, last_copies=False)
    sx, sy = ix.astype(np.float32) + wx, iy.astype(np.float32) + wy
    last_row_factor = float(wy0[-1])  # the last row's first weight, 1 - dy
    rows = cols = None
    if max(h, w) >= _REMAP_LIMIT:  # gather each output pixel's two source rows/columns, side by side
        rows, sy = _pairs(sy, h)
        cols, sx = _pairs(sx, w)
    mx = np.broadcast_to(sx[None, :], (new_h, new_w))
    my = np.broadcast_to(sy[:, None], (new_h, new_w))
    maps = cv2.convertMaps(np.ascontiguousarray(mx), np.ascontiguousarray(my), cv2.CV_16SC2)
    return RemapPlan(maps, top, left, new_h, new_w, last_row_factor, rows, cols)


def _pairs(src: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices (2n,) i0, i1 of each coordinate side by side, and the coordinates within them."""
    i0 = np.minimum(np.floor(src).astype(np.int64), length - 1)
    index = np.stack([i0, np.minimum(i0 + 1, length - 1)], axis=1).reshape(-1)
    return index, (2 * np.arange(len(src)) + (src - i0)).astype(np.float32)


class RemapLetterbox:
    """Letterbox uint8 (H, W, 3) RGB pictures into one float32 (B, net_h, net_w, 3) canvas (0..1, grey
    0.5 outside the picture) with ``cv2.remap`` (see the module docstring for what this gives up
    against the exact letterbox).

    The canvas is reused: what a call returns is overwritten by the next call. Plans are kept for the
    last ``max_plans`` picture sizes (~0.8 MB each at 416).

    Args:
        net_size: (net_h, net_w), the network input size in pixels.
        max_plans: picture sizes whose maps are kept.
    """

    def __init__(self, net_size: Sequence[int], max_plans: int = 16):
        self.net_size = (int(net_size[0]), int(net_size[1]))
        if max(self.net_size) >= _REMAP_LIMIT // 2:
            raise ValueError(f"input size {self.net_size} is too large for cv2.remap")
        self.max_plans = int(max_plans)
        self._plans: dict[tuple[int, int], RemapPlan] = {}
        self._canvas = np.empty((0, *self.net_size, 3), np.float32)
        self._layout: list[tuple[int, int, int, int] | None] = []  # each slot's pasted box, None: all grey
        self._resized = np.empty(self.net_size[0] * self.net_size[1] * 3, np.uint8)  # remap's uint8 output

    def plan(self, image_hw: Sequence[int]) -> RemapPlan:
        """The cached :class:`RemapPlan` of a (height, width) picture."""
        key = (int(image_hw[0]), int(image_hw[1]))
        found = self._plans.pop(key, None)  # popped and put back: the dict's order is the recency
        if found is None:
            found = remap_plan(key, self.net_size)
            if len(self._plans) >= self.max_plans:
                del self._plans[next(iter(self._plans))]
        self._plans[key] = found
        return found

    def __call__(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """uint8 (H_i, W_i, 3) RGB pictures -> the float32 (B, net_h, net_w, 3) canvas (reused).

        Raises:
            ValueError: no pictures, or one that is not uint8 (H, W, 3).
        """
        check_images(images)
        if len(self._canvas) != len(images):
            self._canvas = np.full((len(images), *self.net_size, 3), GREY, np.float32)
            self._layout = [None] * len(images)
        for b, image in enumerate(images):
            p = self.plan(image.shape[:2])
            box = (p.top, p.left, p.new_h, p.new_w)
            if self._layout[b] != box:  # a different paste: grey the whole slot again
                self._canvas[b].fill(GREY)
                self._layout[b] = box
            if p.maps is None:
                continue
            if p.rows is not None:
                image = image[p.rows][:, p.cols]
            resized = self._resized[:p.new_h * p.new_w * 3].reshape(p.new_h, p.new_w, 3)
            cv2.remap(image, p.maps[0], p.maps[1], cv2.INTER_LINEAR, dst=resized, borderMode=cv2.BORDER_REPLICATE)
            view = self._canvas[b, p.top:p.top + p.new_h, p.left:p.left + p.new_w]
            np.multiply(resized, np.float32(1 / 255), out=view)
            if p.last_row_factor != 1.0:
                view[-1] *= np.float32(p.last_row_factor)
        return self._canvas
