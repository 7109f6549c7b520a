"""yolo3.ops.letterbox_remap (the openvino backend's letterbox at bf16 and int8) against the NumPy
transcription of Darknet's C code in test_letterbox.

The promise (the module's docstring): Darknet's sampling points, with OpenCV's fixed-point bilinear
weights (source coordinates rounded to 1/32 pixel) and the resized picture rounded to uint8. On a
picture whose neighbouring pixels differ by at most ``g`` levels, each axis's rounding moves a value
by at most ``g / 64`` levels, and the uint8 rounding by 0.5: that is the bound checked, per pixel.
"""
from __future__ import annotations

import numpy as np
import pytest
from test_letterbox import SIZES, darknet_letterbox_image

from yolo3.ops.letterbox_remap import RemapLetterbox, letterbox_size_np


def waves(height: int, width: int, amplitude: float = 60.0, period: float = 20.0) -> tuple[np.ndarray, float]:
    """A uint8 picture of crossed sine waves (different phase per channel) and the largest difference
    between neighbouring pixels it can have, in levels (the wave's steepest slope)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = [127.5 + amplitude * (np.sin(2 * np.pi * x / period + k) + np.sin(2 * np.pi * y / period + 2 * k))
                for k in range(3)]
    picture = np.clip(np.rint(np.stack(channels, axis=-1)), 0, 255).astype(np.uint8)
    return picture, amplitude * 2 * np.pi / period + 1  # +1: the picture's own uint8 rounding


def bound(slope: float) -> float:
    """Largest difference from Darknet's letterbox promised for neighbour differences up to ``slope``."""
    return (2 * slope / 64 + 0.5) / 255 + 1e-6


@pytest.mark.parametrize("hw", SIZES + [(97, 105)])
def test_remap_letterbox_is_darknets_within_the_fixed_point_bound(hw):
    """Every size test_letterbox checks the exact letterbox on (1-pixel-high and 1-pixel-wide results
    among them), and 97x105, whose last row Darknet leaves black."""
    picture, slope = waves(*hw)
    ours = RemapLetterbox((416, 416))([picture])
    ref = darknet_letterbox_image(picture, 416, 416)
    assert ours.shape == (1, 416, 416, 3) and ours.dtype == np.float32
    assert np.abs(ours[0] - ref).max() <= bound(slope)


def test_the_last_row_quirk_and_the_grey_border_are_darknets():
    picture = np.full((97, 105, 3), 200, np.uint8)  # Darknet's last row is black for this size
    ours = RemapLetterbox((416, 416))([picture])[0]
    new_h, new_w = (int(v) for v in letterbox_size_np(97, 105, 416, 416))
    top = (416 - new_h) // 2
    assert ours[top + new_h - 2].min() == pytest.approx(200 / 255, abs=1e-6)
    assert ours[top + new_h - 1].max() < 1e-3
    assert (ours[:top] == 0.5).all() and (ours[top + new_h:] == 0.5).all()


def test_a_non_square_network_and_pictures_wider_than_cv2_remap_takes():
    """cv2.remap refuses sides of 32767 pixels or more: such a picture is cut down to the source
    rows and columns the letterbox reads, side by side, with the same result."""
    picture, slope = waves(40, 33000, amplitude=30.0, period=40000 / 3)
    ours = RemapLetterbox((320, 608))([picture])[0]
    assert np.abs(ours - darknet_letterbox_image(picture, 608, 320)).max() <= bound(slope)
    tall, slope = waves(33000, 300, amplitude=30.0, period=40000 / 3)
    ours = RemapLetterbox((320, 608))([tall])[0]
    assert np.abs(ours - darknet_letterbox_image(tall, 608, 320)).max() <= bound(slope)
    assert (RemapLetterbox((320, 608))([tall[:, :7]]) == 0.5).all()  # 0 pixels wide once letterboxed: grey


def test_the_reused_canvas_holds_each_batch_alone():
    """The canvas is reused between calls: a slot that held a larger picture is grey again around a
    smaller one, whatever came before."""
    big, _ = waves(400, 300)
    small, _ = waves(50, 400)
    letterbox = RemapLetterbox((128, 160))
    alone = [RemapLetterbox((128, 160))([p])[0].copy() for p in (big, small)]
    letterbox([big, small])
    swapped = letterbox([small, big])
    np.testing.assert_array_equal(swapped[0], alone[1])
    np.testing.assert_array_equal(swapped[1], alone[0])
    np.testing.assert_array_equal(letterbox([small])[0], alone[1])


def test_plans_are_kept_for_the_last_sizes_only():
    letterbox = RemapLetterbox((64, 64), max_plans=3)
    for width in range(10, 16):
        letterbox([np.zeros((9, width, 3), np.uint8)])
    assert list(letterbox._plans) == [(9, 13), (9, 14), (9, 15)]


@pytest.mark.parametrize("bad", [np.zeros((5, 5), np.uint8), np.zeros((5, 5, 3), np.float32),
                                 np.zeros((5, 5, 4), np.uint8)])
def test_what_is_not_a_uint8_rgb_picture_is_refused(bad):
    with pytest.raises(ValueError, match="uint8 \\(H, W, 3\\)"):
        RemapLetterbox((64, 64))([bad])
    with pytest.raises(ValueError, match="no images"):
        RemapLetterbox((64, 64))([])
