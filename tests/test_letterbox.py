"""yolo3.ops.letterbox against a line-by-line numpy transcription of Darknet's C code (image.c, yolo_layer.c)."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from yolo3.ops.letterbox import (
    boxes_to_image,
    letterbox,
    letterbox_image,
    letterbox_size,
    stack_images,
)

F = np.float32


# ---- Darknet, transcribed (float32 arithmetic as in the C source) --------------------------------
def darknet_resize_image(im: np.ndarray, w: int, h: int) -> np.ndarray:
    """image.c resize_image; ``im`` float32 (C, H, W) like Darknet's planar image."""
    C, H, W = im.shape
    part = np.zeros((C, H, w), F)
    w_scale = F(W - 1) / F(w - 1)
    h_scale = F(H - 1) / F(h - 1)
    for c in range(w):
        if c == w - 1 or W == 1:
            part[:, :, c] = im[:, :, W - 1]
        else:
            sx = F(c) * w_scale
            ix = int(sx)
            dx = sx - F(ix)
            part[:, :, c] = (F(1) - dx) * im[:, :, ix] + dx * im[:, :, ix + 1]
    resized = np.zeros((C, h, w), F)
    for r in range(h):
        sy = F(r) * h_scale
        iy = int(sy)
        dy = sy - F(iy)
        resized[:, r, :] = (F(1) - dy) * part[:, iy, :]
        if r == h - 1 or H == 1:
            continue
        resized[:, r, :] += dy * part[:, iy + 1, :]
    return resized


def darknet_letterbox_image(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    """image.c letterbox_image on a uint8 (H, W, 3) picture; returns float32 (h, w, 3)."""
    im = (rgb.astype(np.float64) / 255.).astype(F).transpose(2, 0, 1)  # load_image_stb: data/255.
    C, H, W = im.shape
    if F(w) / F(W) < F(h) / F(H):
        new_w, new_h = w, (H * w) // W
    else:
        new_h, new_w = h, (W * h) // H
    resized = darknet_resize_image(im, new_w, new_h)
    boxed = np.full((C, h, w), 0.5, F)
    dx, dy = (w - new_w) // 2, (h - new_h) // 2
    boxed[:, dy:dy + new_h, dx:dx + new_w] = resized
    return boxed.transpose(1, 2, 0)


def darknet_correct_box(cx, cy, bw, bh, im_w, im_h, netw, neth):
    """yolo_layer.c correct_yolo_boxes (relative=0) for one box, then corners."""
    if F(netw) / F(im_w) < F(neth) / F(im_h):
        new_w, new_h = netw, (im_h * netw) // im_w
    else:
        new_h, new_w = neth, (im_w * neth) // im_h
    x = (cx - (netw - new_w) / 2. / netw) / (F(new_w) / netw) * im_w
    y = (cy - (neth - new_h) / 2. / neth) / (F(new_h) / neth) * im_h
    w = bw * (F(netw) / new_w) * im_w
    h = bh * (F(neth) / new_h) * im_h
    return [x - w / 2, y - h / 2, x + w / 2, y + h / 2]


# ---- tests --------------------------------------------------------------------------------------
SIZES = [(576, 768), (424, 640), (768, 576), (416, 416), (100, 37), (37, 100), (1, 50), (50, 1),
         (2, 2), (5, 700), (577, 1023), (1000, 999), (333, 416), (120, 80)]


@pytest.mark.parametrize("hw", SIZES)
def test_letterbox_matches_darknet_c_code(hw):
    rng = np.random.default_rng(hw[0] * 7919 + hw[1])
    image = rng.integers(0, 256, size=(*hw, 3), dtype=np.uint8)
    ours = letterbox_image(image, (416, 416))
    ref = darknet_letterbox_image(image, 416, 416)
    assert ours.shape == ref.shape == (416, 416, 3)
    # same operations in the same order: equal up to float rounding of fused arithmetic
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-6)


def test_last_row_quirk_is_reproduced():
    """For some sizes Darknet's float (out-1)*scale falls just below in-1, so its last row is
    (1-dy)*row[in-2] with dy ~ 1: a black bottom row. We copy it (boxes near the bottom edge depend on it)."""
    image = np.full((97, 105, 3), 200, np.uint8)  # -> 416x384: float32 383*(96/383) < 96
    new_h, new_w = (int(v) for v in letterbox_size(97, 105, 416, 416))
    assert (new_h, new_w) == (384, 416)
    assert int(F(new_h - 1) * (F(97 - 1) / F(new_h - 1))) == 95  # the quirk applies to this size
    ours = letterbox_image(image, (416, 416))
    np.testing.assert_allclose(ours, darknet_letterbox_image(image, 416, 416), atol=2e-6)
    top = (416 - new_h) // 2
    assert ours[top + new_h - 2].min() == pytest.approx(200 / 255, abs=1e-6)
    assert ours[top + new_h - 1].max() < 1e-3  # Darknet's black last row


def test_non_square_network_and_batch_of_mixed_sizes():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=s + (3,), dtype=np.uint8) for s in [(300, 500), (480, 200), (64, 64)]]
    batch, sizes = stack_images(images, multiple=128)
    assert batch.shape == (3, 512, 512, 3) and sizes.tolist() == [[300, 500], [480, 200], [64, 64]]
    out = tf.function(lambda b, s: letterbox(b, s, (320, 608)))(batch, sizes).numpy()
    for image, got in zip(images, out):
        np.testing.assert_allclose(got, darknet_letterbox_image(image, 608, 320), atol=2e-6)


def test_letterbox_runs_under_xla_and_without_retracing():
    fn = tf.function(lambda b, s: letterbox(b, s, (416, 416)), jit_compile=True,
                     input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8),
                                      tf.TensorSpec([None, 2], tf.int32)])
    image = np.random.default_rng(1).integers(0, 256, size=(123, 321, 3), dtype=np.uint8)
    batch, sizes = stack_images([image, image[:100, :200]])
    out = fn(batch, sizes).numpy()
    np.testing.assert_allclose(out[0], darknet_letterbox_image(image, 416, 416), atol=2e-6)
    np.testing.assert_allclose(out[1], darknet_letterbox_image(image[:100, :200], 416, 416), atol=2e-6)


def test_one_pixel_high_result_does_not_crash():
    """Darknet divides by zero when the resized height is 1 pixel (w > 416*h); we take row 0."""
    image = np.random.default_rng(3).integers(0, 256, size=(1, 900, 3), dtype=np.uint8)
    out = letterbox_image(image, (416, 416))
    assert np.isfinite(out).all() and out.shape == (416, 416, 3)


@pytest.mark.parametrize("hw", [(576, 768), (424, 640), (768, 576), (375, 500), (1, 50), (999, 1001)])
def test_letterbox_size_is_integer_arithmetic(hw):
    h, w = hw
    new_h, new_w = (int(v) for v in letterbox_size(h, w, 416, 416))
    if F(416) / F(w) < F(416) / F(h):
        assert (new_w, new_h) == (416, h * 416 // w)
    else:
        assert (new_h, new_w) == (416, w * 416 // h)


def test_boxes_to_image_matches_correct_yolo_boxes():
    rng = np.random.default_rng(2)
    sizes = np.array([[576, 768], [424, 640], [331, 97], [416, 416], [500, 333]], np.int32)
    boxes = rng.uniform(0.05, 0.95, size=(len(sizes), 7, 4)).astype(F)
    ours = boxes_to_image(boxes, sizes, (416, 416)).numpy()
    for b, (h, w) in enumerate(sizes):
        for n in range(boxes.shape[1]):
            ref = darknet_correct_box(*boxes[b, n], int(w), int(h), 416, 416)
            np.testing.assert_allclose(ours[b, n], ref, rtol=1e-5, atol=1e-3)


def test_boxes_use_float_offset_half_pixel_quirk():
    """640x424 -> 416x275: padding 141 is odd; the paste is at row 70 but boxes map back with 70.5."""
    sizes = np.array([[424, 640]], np.int32)
    centre_row = np.array([[[0.5, (70.5 + 275 / 2) / 416, 0.1, 0.1]]], F)  # image centre via the float offset
    x1, y1, x2, y2 = boxes_to_image(centre_row, sizes, (416, 416)).numpy()[0, 0]
    assert (y1 + y2) / 2 == pytest.approx(212.0, abs=1e-3)
    assert (x1 + x2) / 2 == pytest.approx(320.0, abs=1e-3)


def test_stack_images_rejects_non_rgb():
    with pytest.raises(ValueError):
        stack_images([np.zeros((4, 4), np.uint8)])
    with pytest.raises(ValueError):
        stack_images([np.zeros((4, 4, 3), np.float32)])
    with pytest.raises(ValueError):
        stack_images([])
