"""Reading pictures as 8-bit RGB arrays the way Darknet sees them, and listing image files.

Darknet decodes with stb_image asking for 3 channels, so :func:`read_image_rgb` does the same
conversions: greyscale is replicated to RGB, an alpha channel is DROPPED (not composited; stb and
OpenCV's ``imread`` do the same, so boxes match Darknet's on RGBA PNGs), 16-bit samples keep their
high byte (``v >> 8``, stb's ``stbi__convert_16_to_8``), palette images are expanded. Unlike
Darknet, the EXIF orientation tag is applied (``PIL.ImageOps.exif_transpose``), so boxes refer to
the picture as a viewer shows it.
"""
from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, ImageOps

from ..errors import Yolo3Error

__all__ = ["ImageReadError", "IMAGE_EXTENSIONS", "read_image_rgb", "pil_to_rgb_array", "list_images"]


IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
     ".pgm", ".pbm", ".pnm"})


_GLOB_CHARS = set("*?[")


class ImageReadError(Yolo3Error):
    """A file that cannot be read as a picture; ``str()`` is ``"path: reason"``.

    Args:
        path: the file, kept as ``path`` (a str).
        reason: why it cannot be read, kept as ``reason``.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


def _wide_to_uint8(array: np.ndarray) -> np.ndarray:
    """16-bit (or 32-bit integer holding 16-bit) samples to 8 bits by keeping the high byte."""
    return (np.clip(array, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)


def pil_to_rgb_array(image: Image.Image) -> np.ndarray:
    """A PIL image (any mode) as a C-contiguous uint8 (H, W, 3) RGB array.

    The EXIF orientation is NOT applied here (see :func:`read_image_rgb`). Alpha is dropped.

    Args:
        image: the picture, any mode: greyscale is replicated, 16-bit keeps the high byte, float (``F``)
            with a maximum <= 1 is scaled to 0..255 (else clipped), others go through ``convert("RGB")``.

    Returns:
        uint8 (H, W, 3) RGB, pixels 0..255.
    """
    mode = image.mode
    if mode in ("RGB",):
        array = np.asarray(image)
    elif mode in ("RGBA", "RGBX", "RGBa"):
        array = np.asarray(image)[..., :3]
    elif mode in ("L", "LA", "La"):
        grey = np.asarray(image.getchannel(0))
        array = np.repeat(grey[..., None], 3, axis=2)
    elif mode.startswith("I;16") or mode == "I":
        grey = _wide_to_uint8(np.asarray(image).astype(np.int64))
        array = np.repeat(grey[..., None], 3, axis=2)
    elif mode == "F":
        grey = np.asarray(image, dtype=np.float32)
        finite_max = float(np.nanmax(grey)) if grey.size else 0.0
        if finite_max <= 1.0:  # float pictures in 0..1
            grey = grey * 255.0
        grey = np.clip(np.nan_to_num(grey), 0, 255).astype(np.uint8)
        array = np.repeat(grey[..., None], 3, axis=2)
    else:  # P, PA, 1, CMYK, YCbCr, LAB, HSV, ...: PIL's own conversion
        array = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(array, dtype=np.uint8)


def read_image_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode a picture file into a uint8 (H, W, 3) RGB array (pixels 0..255).

    Handles greyscale, RGBA (alpha dropped), 16-bit (high byte), palette and EXIF-rotated files; the
    first frame of animated or multi-page files.

    Args:
        path: the picture file.

    Returns:
        uint8 (H, W, 3) RGB, pixels 0..255, as a viewer shows it (EXIF orientation applied).

    Raises:
        ImageReadError: a missing, unreadable, truncated or corrupt file (also a folder, a picture too
            large to decode safely or an empty one).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageReadError(path, "no such file")
    if os.path.isdir(path):
        raise ImageReadError(path, "is a directory")
    try:
        with Image.open(path) as image:
            image.load()  # decode fully now, so truncated files fail here
            try:
                image = ImageOps.exif_transpose(image)
            except Exception:  # a broken EXIF block: keep the pixels as stored
                pass
            array = pil_to_rgb_array(image)
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, f"too large to decode safely ({exc})") from None
    except Image.UnidentifiedImageError:
        raise ImageReadError(path, "not a picture PIL can decode") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # PIL's ways of saying "corrupt"
        raise ImageReadError(path, f"corrupt or truncated picture ({exc})") from None
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageReadError(path, f"empty picture of shape {array.shape}")
    return array


def _is_image_file(path: str) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(paths: Iterable[str | os.PathLike], recursive: bool = False) -> list[str]:
    """Expand files, folders and glob patterns into a list of picture paths, in argument order.

    A folder gives its picture files (by extension, sorted; sub-folders too if ``recursive``); a glob
    gives its sorted matches that are picture files; a plain path is kept as given even when it
    does not exist or has another extension, so reading it reports the problem by name. A glob
    that matches nothing is kept as given for the same reason. Duplicates are dropped.

    Args:
        paths: files, folders and glob patterns (``**`` matches sub-folders in a pattern).
        recursive: also list the picture files in the sub-folders of a folder.

    Returns:
        Picture paths (str), in argument order, without duplicates.
    """
    result: list[str] = []
    seen: set[str] = set()

    def add(p: str) -> None:
        if p not in seen:
            seen.add(p)
            result.append(p)

    for item in paths:
        item = os.fspath(item)
        if os.path.isdir(item):
            pattern = os.path.join(item, "**", "*") if recursive else os.path.join(item, "*")
            for p in sorted(glob.glob(pattern, recursive=recursive)):
                if os.path.isfile(p) and _is_image_file(p):
                    add(p)
        elif not os.path.exists(item) and _GLOB_CHARS & set(item):
            matches = sorted(p for p in glob.glob(item, recursive=True)
                             if os.path.isfile(p) and _is_image_file(p))
            if matches:
                for p in matches:
                    add(p)
            else:
                add(item)
        else:
            add(item)
    return result
