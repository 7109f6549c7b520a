"""Synthetic detection data: simple shapes of a few classes on textured, noisy backgrounds.

``yolo3-shapes OUT --num N [--size 416] [--seed 0] [--classes circle,square,triangle]``
(:mod:`yolo3.cli.shapes`, also ``python -m yolo3.cli.shapes``) writes, under ``OUT``::

    JPEGImages/000000.jpg ...        images (longer side = --size, the other 75-100 % of it)
    Annotations/000000.xml ...       Pascal VOC XML, one per image
    ImageSets/Main/trainval.txt      all image ids (and train.txt / val.txt with --val-fraction)
    annotations.txt                  yolo3 annotation file (paths relative to OUT), all images
    train.txt / val.txt              the same split as annotation files (with --val-fraction)
    classes.txt                      class names, one a line

Each class is one shape drawn in its own hue family (with jitter), in sizes from about 4 % to
45 % of the image side, small ones included, with some overlap between objects. The output is
deterministic for a given --seed (each image uses its own RNG seeded with (seed, index)).
"""
from __future__ import annotations

import math
import os
from typing import Sequence
from xml.sax.saxutils import escape

import cv2
import numpy as np
from tqdm import tqdm

from ..core.boxes import box_iou_xyxy
from ..errors import Yolo3Error
from .annotations import write_annotations

__all__ = ["SHAPE_CLASSES", "generate_shapes_dataset", "render_image"]

# name -> base hue (OpenCV hue, 0..179) of the class's colour family.
SHAPE_CLASSES: dict[str, int] = {
    "circle": 0,        # reds
    "square": 60,       # greens
    "triangle": 120,    # blues
    "star": 25,         # oranges/yellows
    "cross": 150,       # magentas
    "diamond": 90,      # cyans
    "hexagon": 40,      # yellow-greens
    "ring": 170,        # pinks
}


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Low-saturation textured background: gradient, blotches, lines and pixel noise (uint8 BGR)."""
    base = rng.uniform(60, 200) + rng.normal(0, 20, size=3)
    tilt = rng.uniform(-60, 60) + rng.normal(0, 15, size=3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(ang) * xx / w + np.sin(ang) * yy / h)[..., None]
    img = base[None, None, :] + tilt[None, None, :] * ramp
    # Coarse texture: upsampled noise.
    cells = int(rng.integers(4, 16))
    coarse = rng.normal(0, 25, size=(cells, cells, 1)).astype(np.float32)
    img = img + cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    # Grey-ish blotches and lines as distractors.
    for _ in range(int(rng.integers(3, 10))):
        grey = int(rng.integers(40, 220))
        colour = tuple(int(np.clip(grey + rng.normal(0, 12), 0, 255)) for _ in range(3))
        if rng.random() < 0.5:
            p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(img, p1, p2, colour, int(rng.integers(1, 4)), cv2.LINE_AA)
        else:
            c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.integers(5, max(6, w // 5))), int(rng.integers(5, max(6, h // 5))))
            cv2.ellipse(img, c, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
    noise = rng.normal(0, rng.uniform(3, 12), size=img.shape)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _colour(rng: np.random.Generator, hue: int) -> tuple[int, int, int]:
    h = (hue + int(rng.integers(-8, 9))) % 180
    s = int(rng.integers(150, 256))
    v = int(rng.integers(150, 256))
    bgr = cv2.cvtColor(np.uint8([[[h, s, v]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def _regular_polygon(cx: float, cy: float, r: float, n: int, rot: float) -> np.ndarray:
    a = rot + np.arange(n) * 2 * math.pi / n
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1)


def _shape_points(kind: str, cx: float, cy: float, r: float, rng: np.random.Generator) -> np.ndarray | None:
    """Polygon vertices (K, 2) in pixels for polygon shapes; None for circle/ring."""
    rot = float(rng.uniform(0, 2 * math.pi))
    if kind == "square":
        return _regular_polygon(cx, cy, r, 4, math.pi / 4 + float(rng.uniform(-0.3, 0.3)))
    if kind == "triangle":
        return _regular_polygon(cx, cy, r, 3, rot)
    if kind == "diamond":
        pts = _regular_polygon(cx, cy, r, 4, 0.0)
        pts[:, 0] = cx + (pts[:, 0] - cx) * 0.6
        return pts
    if kind == "hexagon":
        return _regular_polygon(cx, cy, r, 6, rot)
    if kind == "star":
        outer = _regular_polygon(cx, cy, r, 5, rot)
        inner = _regular_polygon(cx, cy, r * 0.45, 5, rot + math.pi / 5)
        return np.stack([outer, inner], 1).reshape(-1, 2)
    if kind == "cross":
        t = r * 0.35
        base = np.array([[-t, -r], [t, -r], [t, -t], [r, -t], [r, t], [t, t], [t, r], [-t, r], [-t, t],
                         [-r, t], [-r, -t], [-t, -t]], np.float64)
        c, s = math.cos(rot / 4), math.sin(rot / 4)
        rotm = np.array([[c, -s], [s, c]])
        return base @ rotm.T + np.array([cx, cy])
    return None


def render_image(
    rng: np.random.Generator,
    size: int,
    classes: Sequence[str],
    min_objects: int = 1,
    max_objects: int = 6,
    max_overlap: float = 0.35,
    radius: tuple[float, float] = (0.02, 0.22),
) -> tuple[np.ndarray, np.ndarray]:
    """One image (uint8 BGR, (H, W, 3)) and its boxes float32 (N, 5): x1, y1, x2, y2 pixels, class id.

    The longer side is ``size``, the other 75-100 % of it.

    Args:
        rng: random generator; the same state gives the same image.
        size: longer image side in pixels.
        classes: shape names (keys of :data:`SHAPE_CLASSES`); class id = index in this list.
        min_objects: fewest objects aimed for (fewer may fit under ``max_overlap``).
        max_objects: most objects.
        max_overlap: largest IoU (0..1) allowed between a new box and an earlier one.
        radius: range of object radii as fractions of ``size`` (log-uniform; at least 5 pixels).

    Returns:
        ``(image, boxes)``: uint8 BGR (H, W, 3) and float32 (N, 5) x1, y1, x2, y2 (pixels), class id.
    """
    long_side = size
    short_side = int(round(size * rng.uniform(0.75, 1.0)))
    h, w = (short_side, long_side) if rng.random() < 0.5 else (long_side, short_side)
    img = _background(rng, h, w)
    boxes: list[list[float]] = []
    n = int(rng.integers(min_objects, max_objects + 1))
    attempts = 0
    while len(boxes) < n and attempts < 50 * n:
        attempts += 1
        cls = int(rng.integers(0, len(classes)))
        kind = classes[cls]
        # Log-uniform sizes: many small objects, some large ones.
        r = float(np.exp(rng.uniform(np.log(radius[0] * size), np.log(radius[1] * size))))
        r = max(r, 5.0)
        cx = float(rng.uniform(r * 0.6, w - r * 0.6))
        cy = float(rng.uniform(r * 0.6, h - r * 0.6))
        pts = _shape_points(kind, cx, cy, r, rng)
        if pts is None:  # circle / ring: axis-aligned ellipse close to a circle
            ry = r * float(rng.uniform(0.8, 1.0))
            box = np.array([cx - r, cy - ry, cx + r, cy + ry])
        else:
            box = np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()])
        box = np.array([max(box[0], 0), max(box[1], 0), min(box[2], w - 1), min(box[3], h - 1)])
        if box[2] - box[0] < 4 or box[3] - box[1] < 4:
            continue
        if len(boxes) and box_iou_xyxy(box, np.asarray(boxes)[:, :4]).max() > max_overlap:
            continue
        colour = _colour(rng, SHAPE_CLASSES[kind])
        if pts is None:
            thickness = -1 if kind == "circle" else max(2, int(r * 0.3))
            axes = (int(round(r)), int(round(ry)))
            if kind == "ring":
                axes = (max(1, axes[0] - thickness // 2), max(1, axes[1] - thickness // 2))
            cv2.ellipse(img, (int(round(cx)), int(round(cy))), axes, 0, 0, 360, colour, thickness, cv2.LINE_AA)
        else:
            cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], colour, cv2.LINE_AA, shift=4)
        boxes.append([*np.round(box, 1).tolist(), cls])
    return img, np.asarray(boxes, np.float32).reshape(-1, 5)


def _voc_xml(filename: str, w: int, h: int, boxes: np.ndarray, classes: Sequence[str]) -> str:
    objs = []
    for x1, y1, x2, y2, c in boxes:
        objs.append(
            "  <object>\n"
            f"    <name>{escape(classes[int(c)])}</name>\n    <pose>Unspecified</pose>\n"
            "    <truncated>0</truncated>\n    <difficult>0</difficult>\n"
            f"    <bndbox><xmin>{x1:g}</xmin><ymin>{y1:g}</ymin><xmax>{x2:g}</xmax><ymax>{y2:g}</ymax></bndbox>\n"
            "  </object>\n")
    return ("<annotation>\n  <folder>JPEGImages</folder>\n"
            f"  <filename>{escape(filename)}</filename>\n"
            f"  <size><width>{w}</width><height>{h}</height><depth>3</depth></size>\n"
            "  <segmented>0</segmented>\n" + "".join(objs) + "</annotation>\n")


def _check_options(classes: list[str], num: int, size: int, val_fraction: float, radius: tuple[float, float]) -> None:
    """Raise ValueError (a :class:`yolo3.errors.Yolo3Error`) for the option problems
    :func:`generate_shapes_dataset` lists."""
    unknown = [c for c in classes if c not in SHAPE_CLASSES]
    if unknown:
        raise Yolo3Error(f"unknown shape class(es) {', '.join(unknown)}; choose from {', '.join(SHAPE_CLASSES)}")
    if len(set(classes)) != len(classes) or not classes:
        raise Yolo3Error("classes must be distinct and non-empty")
    if num < 1:
        raise Yolo3Error("--num must be at least 1")
    if size < 32:
        raise Yolo3Error("--size must be at least 32")
    if not 0.0 <= val_fraction < 1.0:
        raise Yolo3Error("--val-fraction must be in [0, 1)")
    if not 0.0 < radius[0] <= radius[1] <= 0.5:
        raise Yolo3Error("object radius fractions must satisfy 0 < min <= max <= 0.5")


def generate_shapes_dataset(
    out_dir: str,
    num: int,
    size: int = 416,
    seed: int = 0,
    classes: Sequence[str] = ("circle", "square", "triangle"),
    min_objects: int = 1,
    max_objects: int = 6,
    val_fraction: float = 0.0,
    progress: bool = True,
    radius: tuple[float, float] = (0.02, 0.22),
) -> dict[str, str]:
    """Write ``num`` images with boxes under ``out_dir``; returns the paths written (see module doc).

    Args:
        out_dir: output folder (created).
        num: number of images (>= 1).
        size: longer image side in pixels (>= 32).
        seed: base seed; image i uses its own generator seeded with ``(seed, i)``.
        classes: distinct shape names from :data:`SHAPE_CLASSES`; class id = index in this list.
        min_objects: fewest objects aimed for per image.
        max_objects: most objects per image.
        val_fraction: fraction in [0, 1); > 0 also writes ``train.txt`` / ``val.txt`` (the last images are
            validation).
        progress: show a tqdm bar.
        radius: range of object radii as fractions of ``size``, 0 < min <= max <= 0.5.

    Returns:
        Paths by role: ``root``, ``images``, ``annotations_xml``, ``annotation``, ``classes`` and, with a
        validation split, ``train`` and ``val``.

    Raises:
        ValueError: unknown, repeated or no classes, or ``num``, ``size``, ``val_fraction`` or ``radius``
            out of range.
    """
    classes = list(classes)
    _check_options(classes, num, size, val_fraction, radius)
    img_dir = os.path.join(out_dir, "JPEGImages")
    xml_dir = os.path.join(out_dir, "Annotations")
    sets_dir = os.path.join(out_dir, "ImageSets", "Main")
    for d in (img_dir, xml_dir, sets_dir):
        os.makedirs(d, exist_ok=True)
    items: list[tuple[str, np.ndarray]] = []
    ids: list[str] = []
    for i in tqdm(range(num), desc="shapes", unit="img", disable=not progress):
        rng = np.random.default_rng([seed, i])
        img, boxes = render_image(rng, size, classes, min_objects, max_objects, radius=radius)
        image_id = f"{i:06d}"
        name = image_id + ".jpg"
        cv2.imwrite(os.path.join(img_dir, name), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        with open(os.path.join(xml_dir, image_id + ".xml"), "w", encoding="utf-8") as f:
            f.write(_voc_xml(name, img.shape[1], img.shape[0], boxes, classes))
        items.append((f"JPEGImages/{name}", boxes))
        ids.append(image_id)
    paths = {"root": out_dir, "images": img_dir, "annotations_xml": xml_dir}
    paths["annotation"] = os.path.join(out_dir, "annotations.txt")
    write_annotations(paths["annotation"], items)
    paths["classes"] = os.path.join(out_dir, "classes.txt")
    with open(paths["classes"], "w", encoding="utf-8") as f:
        f.write("\n".join(classes) + "\n")
    with open(os.path.join(sets_dir, "trainval.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(ids) + "\n")
    n_val = int(round(num * val_fraction))
    if n_val > 0:
        splits = {"train": slice(0, num - n_val), "val": slice(num - n_val, num)}
        for split, sl in splits.items():
            with open(os.path.join(sets_dir, f"{split}.txt"), "w", encoding="utf-8") as f:
                f.write("\n".join(ids[sl]) + "\n")
            paths[split] = os.path.join(out_dir, f"{split}.txt")
            write_annotations(paths[split], items[sl])
    return paths
