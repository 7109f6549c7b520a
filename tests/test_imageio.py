"""yolo3.datasets.imageio: every kind of picture comes back as uint8 (H, W, 3) RGB as Darknet's stb_image sees it."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from yolo3.datasets.imageio import ImageReadError, list_images, read_image_rgb


@pytest.fixture()
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)


def test_rgb_png_and_bmp_roundtrip(tmp_path, rgb):
    for ext in ("png", "bmp", "ppm", "tiff"):
        path = tmp_path / f"a.{ext}"
        Image.fromarray(rgb).save(path)
        out = read_image_rgb(path)
        assert out.dtype == np.uint8 and out.shape == (30, 40, 3) and out.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(out, rgb)


def test_channel_order_is_rgb_not_bgr(tmp_path):
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    Image.fromarray(red).save(tmp_path / "red.jpg", quality=95)
    out = read_image_rgb(tmp_path / "red.jpg")
    assert out[..., 0].mean() > 240 and out[..., 2].mean() < 15


def test_greyscale_is_replicated(tmp_path, rgb):
    grey = rgb[..., 0]
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    out = read_image_rgb(tmp_path / "g.png")
    assert out.shape == (30, 40, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)
    Image.fromarray(np.stack([grey, grey], -1), "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image_rgb(tmp_path / "la.png")[..., 1], grey)


def test_rgba_alpha_is_dropped_like_darknet(tmp_path, rgb):
    alpha = np.zeros((30, 40, 1), np.uint8)  # fully transparent: the colour channels still count
    Image.fromarray(np.concatenate([rgb, alpha], -1), "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image_rgb(tmp_path / "a.png"), rgb)
    # OpenCV's imread (and stb_image, used by Darknet) also drop alpha
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "a.png"))[..., ::-1], rgb)


def test_16_bit_keeps_high_byte(tmp_path):
    rng = np.random.default_rng(1)
    grey16 = rng.integers(0, 65536, size=(20, 25), dtype=np.uint16)
    rgb16 = rng.integers(0, 65536, size=(20, 25, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), grey16)
    cv2.imwrite(str(tmp_path / "c16.png"), rgb16[..., ::-1])
    out = read_image_rgb(tmp_path / "g16.png")
    np.testing.assert_array_equal(out[..., 2], (grey16 >> 8).astype(np.uint8))
    np.testing.assert_array_equal(read_image_rgb(tmp_path / "c16.png"), (rgb16 >> 8).astype(np.uint8))


def test_palette_and_cmyk(tmp_path, rgb):
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    np.testing.assert_array_equal(read_image_rgb(tmp_path / "p.png"), np.asarray(pal.convert("RGB")))
    pal.save(tmp_path / "p.gif")
    assert read_image_rgb(tmp_path / "p.gif").shape == (30, 40, 3)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg")
    assert read_image_rgb(tmp_path / "c.jpg").shape == (30, 40, 3)


def test_exif_orientation_is_applied(tmp_path, rgb):
    image = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view"
    image.save(tmp_path / "rot.jpg", exif=exif, quality=100, subsampling=0)
    out = read_image_rgb(tmp_path / "rot.jpg")
    assert out.shape == (40, 30, 3)
    expected = np.rot90(rgb, k=-1)
    assert np.abs(out.astype(int) - expected).mean() < 6  # JPEG loss only


@pytest.mark.parametrize("content,reason", [
    (b"", "corrupt"), (b"not a picture at all" * 10, "not a picture"), (None, "no such file")])
def test_unreadable_files_raise_image_read_error(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError) as info:
        read_image_rgb(path)
    assert info.value.path == str(path) and str(path) in str(info.value)
    assert reason in str(info.value) or "picture" in str(info.value)


def test_truncated_jpeg_raises(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.jpg"):
        read_image_rgb(tmp_path / "cut.jpg")
    with pytest.raises(ImageReadError, match="directory"):
        read_image_rgb(tmp_path)


def test_list_images_files_folders_globs(tmp_path, rgb):
    folder = tmp_path / "pics"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.jpg", "a.PNG", "notes.txt", "sub/c.jpg"):
        if name.endswith(".txt"):
            (folder / name).write_text("x")
        else:
            Image.fromarray(rgb).save(folder / name, format="PNG")
    got = list_images([str(folder)])
    assert got == [str(folder / "a.PNG"), str(folder / "b.jpg")]
    assert list_images([str(folder)], recursive=True)[-1] == str(folder / "sub" / "c.jpg")
    assert list_images([str(folder / "*.jpg")]) == [str(folder / "b.jpg")]
    # missing files and empty globs stay, so reading them reports the name; duplicates go
    missing = str(tmp_path / "missing.jpg")
    assert list_images([missing, str(folder / "*.gif"), str(folder / "b.jpg"), str(folder / "b.jpg")]) == [
        missing, str(folder / "*.gif"), str(folder / "b.jpg")]
