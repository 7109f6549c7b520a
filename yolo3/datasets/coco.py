"""COCO instances JSON <-> annotation text file + class names file.

    yolo3-coco to-annotation instances_val2017.json --images-dir val2017 --out val.txt --names coco.names
    yolo3-coco from-annotation val.txt --classes coco.names --out instances.json

(the command line is :mod:`yolo3.cli.coco`, also ``python -m yolo3.cli.coco``).

COCO category ids (1..90 with gaps for COCO itself) become contiguous class ids 0..C-1 in the
order of increasing category id. The mapping, and each image's COCO id and size, are recorded in
a JSON sidecar ``<out>.categories.json``::

    {"format": "yolo3-coco-categories/1", "source": "...instances.json",
     "categories": [{"class_id": 0, "id": 1, "name": "person", "supercategory": "person"}, ...],
     "images": {"<path as written in the annotation file>": {"id": 397133, "file_name": "...",
                                                              "width": 640, "height": 427}, ...}}

``from-annotation`` and ``eval.py`` read it (when it sits beside the annotation file) so that
converted-back JSON and detection results carry the original category and image ids. Without a
sidecar both use the same defaults: COCO's own category ids for the 80 COCO classes (else class id
+ 1) and the number in COCO-style file names as image id (else 1..N in line order).

Crowd annotations (``iscrowd: 1``, one box around a group of objects) are left out and counted
by default (YOLO training has no notion of them); ``--include-crowd`` keeps them as ordinary boxes.
"""
from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from ..core.files import StagedFiles
from ..errors import Yolo3Error
from .annotations import (
    read_annotations,
    write_annotations,
)

__all__ = ["CocoFormatError", "CocoConversionReport", "SIDECAR_SUFFIX", "sidecar_path", "COCO_CATEGORY_IDS",
           "coco_results", "default_category_ids", "default_image_ids", "image_ids_for", "read_sidecar",
           "load_coco_json", "coco_to_annotations", "annotations_to_coco"]


SIDECAR_SUFFIX = ".categories.json"


SIDECAR_FORMAT = "yolo3-coco-categories/1"


class CocoFormatError(Yolo3Error):
    """A COCO JSON (or sidecar) that cannot be used; the message names the file and the entry."""


#: COCO's category id of each of the 80 Darknet/keras-yolo3 COCO classes, in coco_classes.txt order
COCO_CATEGORY_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
                     27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51,
                     52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77,
                     78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90)


def default_category_ids(class_names: Sequence[str]) -> list[int]:
    """COCO category id per class where no sidecar says otherwise.

    COCO's own ids (1..90 with gaps) for the 80 COCO classes in coco_classes.txt order
    (person ... toothbrush), else class id + 1.

    Args:
        class_names: class names, index = class id.

    Returns:
        One COCO category id per class.
    """
    if len(class_names) == 80 and class_names[0] == "person" and class_names[-1] == "toothbrush":
        return list(COCO_CATEGORY_IDS)
    return [i + 1 for i in range(len(class_names))]


def default_image_ids(images: Sequence) -> list[int]:
    """COCO image ids where no sidecar says otherwise.

    The number in COCO-style file names (000000000139.jpg -> 139) when every entry is a path whose
    name is a unique number, else 1..N in order (video frame indices included).

    Args:
        images: one entry per image: its path (str), or another value such as a video frame index.

    Returns:
        One COCO image id per entry.
    """
    stems = [os.path.splitext(os.path.basename(im))[0] if isinstance(im, str) else None for im in images]
    if stems and all(s is not None and s.isdigit() for s in stems) and len({int(s) for s in stems}) == len(stems):
        return [int(s) for s in stems]
    return list(range(1, len(images) + 1))


def coco_results(records: Sequence[dict], class_names: Sequence[str]) -> list[dict]:
    """yolo_video.py's native records as COCO detection results.

    Records ``{"image", "width", "height", "detections": [{"class_id", "score", "box": [x1, y1, x2, y2]}]}``
    (pixels, xyxy) become ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]`` (pixels, x, y the
    top-left corner) with :func:`default_category_ids` and :func:`default_image_ids`.

    Args:
        records: native records, one per image (``image``: its path or frame index).
        class_names: class names, index = ``class_id``.

    Returns:
        One COCO result dict per detection, in record order.
    """
    categories = default_category_ids(class_names)
    return [{"image_id": image_id, "category_id": categories[d["class_id"]],
             "bbox": [d["box"][0], d["box"][1], d["box"][2] - d["box"][0], d["box"][3] - d["box"][1]],
             "score": d["score"]}
            for image_id, r in zip(default_image_ids([r["image"] for r in records]), records)
            for d in r["detections"]]


def sidecar_path(annotation_path: str) -> str:
    """Where the category/image-id sidecar of an annotation file lives.

    Args:
        annotation_path: the annotation text file.

    Returns:
        ``annotation_path`` + :data:`SIDECAR_SUFFIX` (``.categories.json``).
    """
    return annotation_path + SIDECAR_SUFFIX


def read_sidecar(path: str) -> dict[str, Any]:
    """Read and check a ``.categories.json`` sidecar; raise :class:`CocoFormatError`.

    Args:
        path: the sidecar JSON file (format in the module docstring).

    Returns:
        The sidecar dict: ``categories[i]`` holds ``class_id`` i and its COCO ``id``; ``images`` defaults to ``{}``.

    Raises:
        CocoFormatError: not valid JSON, no ``categories`` list, or a category without ``class_id`` equal
            to its index and an integer ``id``.
        FileNotFoundError: ``path`` does not exist.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise CocoFormatError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("categories"), list):
        raise CocoFormatError(f"{path}: expected an object with a 'categories' list")
    for i, c in enumerate(data["categories"]):
        if not isinstance(c, dict) or c.get("class_id") != i or not isinstance(c.get("id"), int):
            raise CocoFormatError(f"{path}: categories[{i}] must hold class_id {i} and an integer COCO id")
    data.setdefault("images", {})
    return data


def load_coco_json(path: str) -> dict[str, Any]:
    """Load a COCO instances JSON and check the parts this module uses; raise :class:`CocoFormatError`.

    Args:
        path: COCO *instances* JSON (``images``, ``annotations`` with ``bbox`` [x, y, w, h] pixels, ``categories``).

    Returns:
        The parsed JSON dict, unchanged.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CocoFormatError: not UTF-8 JSON, a list missing, an entry without the keys used here, or repeated
            category ids.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"COCO JSON not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise CocoFormatError(f"{path}: not valid JSON ({e})") from None
    except UnicodeDecodeError:
        raise CocoFormatError(f"{path}: not UTF-8 text") from None
    if not isinstance(data, dict):
        raise CocoFormatError(f"{path}: expected a JSON object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise CocoFormatError(f"{path}: '{key}' list missing (is this a COCO *instances* file?)")
    for i, c in enumerate(data["categories"]):
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or not isinstance(c.get("name"), str):
            raise CocoFormatError(f"{path}: categories[{i}] needs an integer 'id' and a 'name'")
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            raise CocoFormatError(f"{path}: images[{i}] needs an 'id' and a 'file_name'")
    for i, a in enumerate(data["annotations"]):
        if not isinstance(a, dict) or "image_id" not in a or "category_id" not in a:
            raise CocoFormatError(f"{path}: annotations[{i}] needs 'image_id' and 'category_id'")
    ids = [c["id"] for c in data["categories"]]
    if len(set(ids)) != len(ids):
        raise CocoFormatError(f"{path}: category ids repeat")
    return data


@dataclass
class CocoConversionReport:
    """What a conversion wrote and what it left out (nothing is left out silently)."""

    images: int = 0
    num_classes: int = 0
    images_without_boxes: int = 0
    skipped_empty_images: int = 0
    boxes_per_class: Counter = field(default_factory=Counter)
    crowd_skipped: int = 0
    crowd_kept: int = 0
    zero_size_boxes: int = 0
    bad_boxes: list[str] = field(default_factory=list)
    unknown_image: int = 0
    unknown_category: Counter = field(default_factory=Counter)

    @property
    def boxes(self) -> int:
        return sum(self.boxes_per_class.values())


def _bbox(a: dict) -> tuple[float, float, float, float] | str:
    b = a.get("bbox")
    if not isinstance(b, (list, tuple)) or len(b) != 4:
        return "bbox is not 4 numbers"
    try:
        x, y, w, h = (float(v) for v in b)
    except (TypeError, ValueError):
        return "bbox is not 4 numbers"
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return "bbox has a non-finite value"
    if w < 0 or h < 0:
        return "bbox has a negative width or height"
    return x, y, x + w, y + h


def _boxes_per_image(data: dict[str, Any], cats: list[dict], include_crowd: bool,
                     report: CocoConversionReport) -> dict[Any, list[tuple]]:
    """{image id: [(x1, y1, x2, y2, class), ...]} of a COCO JSON's usable annotations (pixels, xyxy);
    what is left out is counted in ``report``. ``cats``: the categories in class order."""
    class_of = {c["id"]: i for i, c in enumerate(cats)}
    per_image: dict[Any, list[tuple]] = {im["id"]: [] for im in data["images"]}
    for i, a in enumerate(data["annotations"]):
        if a["image_id"] not in per_image:
            report.unknown_image += 1
            continue
        cls = class_of.get(a["category_id"])
        if cls is None:
            report.unknown_category[a["category_id"]] += 1
            continue
        box = _bbox(a)
        if isinstance(box, str):
            report.bad_boxes.append(f"annotations[{i}] (id {a.get('id')}): {box}")
            continue
        if a.get("iscrowd"):
            if not include_crowd:
                report.crowd_skipped += 1
                continue
            report.crowd_kept += 1
        if box[2] == box[0] or box[3] == box[1]:
            report.zero_size_boxes += 1
        per_image[a["image_id"]].append((*box, cls))
        report.boxes_per_class[cats[cls]["name"]] += 1
    return per_image


def coco_to_annotations(
    instances_path: str,
    images_dir: str,
    out_path: str,
    names_path: str,
    *,
    include_crowd: bool = False,
    skip_empty: bool = False,
    relative: bool = False,
) -> CocoConversionReport:
    """Convert a COCO instances JSON to an annotation file, a names file and the sidecar.

    Image paths are ``images_dir/file_name``: absolute, or relative to the annotation file's folder
    with ``relative``. Images without boxes are written as negatives unless ``skip_empty``.

    Args:
        instances_path: COCO instances JSON (``bbox`` [x, y, w, h] pixels, written as xyxy pixels).
        images_dir: folder holding the images; COCO ``file_name`` is relative to it.
        out_path: annotation text file to write; the sidecar goes to :func:`sidecar_path` of it.
        names_path: class names file to write, one a line, in order of increasing category id.
        include_crowd: keep ``iscrowd`` annotations as ordinary boxes (default: leave them out, counted).
        skip_empty: leave images without boxes out (counted) instead of writing them as negatives.
        relative: write image paths relative to the annotation file's folder instead of absolute.

    Returns:
        A :class:`CocoConversionReport` of what was written and what was left out.

    Raises:
        FileNotFoundError: ``instances_path`` does not exist.
        CocoFormatError: the JSON cannot be used (see :func:`load_coco_json`).
    """
    data = load_coco_json(instances_path)
    cats = sorted(data["categories"], key=lambda c: c["id"])
    names = [c["name"] for c in cats]
    report = CocoConversionReport(num_classes=len(names))
    per_image = _boxes_per_image(data, cats, include_crowd, report)
    out_dir = os.path.dirname(os.path.abspath(out_path))
    items: list[tuple[str, np.ndarray]] = []
    images_meta: dict[str, dict] = {}
    for im in data["images"]:
        rows = per_image[im["id"]]
        if not rows:
            if skip_empty:
                report.skipped_empty_images += 1
                continue
            report.images_without_boxes += 1
        full = os.path.abspath(os.path.join(images_dir, im["file_name"]))
        path = os.path.relpath(full, out_dir) if relative else full
        items.append((path, np.asarray(rows, np.float64).reshape(-1, 5)))
        images_meta[path] = {"id": im["id"], "file_name": im["file_name"],
                             "width": im.get("width"), "height": im.get("height")}
    os.makedirs(out_dir, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(names_path)), exist_ok=True)
    with StagedFiles() as staged:  # the three files together, or none
        report.images = write_annotations(staged.path_for(out_path), items)
        with open(staged.path_for(names_path), "w", encoding="utf-8") as f:
            f.write("".join(n + "\n" for n in names))
        _write_sidecar(staged.path_for(sidecar_path(out_path)), instances_path, cats, images_meta)
        staged.commit()
    return report


def _write_sidecar(path: str, instances_path: str, cats: list, images_meta: dict) -> None:
    sidecar = {
        "format": SIDECAR_FORMAT,
        "source": os.path.abspath(instances_path),
        "categories": [{"class_id": i, "id": c["id"], "name": c["name"],
                        "supercategory": c.get("supercategory", "")} for i, c in enumerate(cats)],
        "images": images_meta,
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(sidecar, f)


def image_ids_for(anns: Sequence[Any], sidecar: dict[str, Any] | None) -> list[int]:
    """COCO image id of each annotated image.

    The sidecar's where it lists the image (new ids beyond its largest for others), else
    :func:`default_image_ids`.

    Args:
        anns: annotated images (:class:`~yolo3.datasets.annotations.AnnotatedImage`), looked up by ``raw_path``.
        sidecar: a sidecar dict (:func:`read_sidecar`), or ``None`` for :func:`default_image_ids` of the paths.

    Returns:
        One COCO image id per entry of ``anns``.
    """
    if sidecar is None:
        return default_image_ids([a.raw_path for a in anns])
    known = sidecar.get("images", {})
    ids = [(known.get(a.raw_path) or {}).get("id") for a in anns]
    next_id = max([i for i in ids if isinstance(i, int)], default=0) + 1
    out = []
    for i in ids:
        if not isinstance(i, int):
            i, next_id = next_id, next_id + 1
        out.append(i)
    return out


def _image_size(path: str) -> tuple[int, int]:
    with Image.open(path) as im:  # header only
        return im.size


def annotations_to_coco(
    annotation_path: str,
    class_names: Sequence[str],
    *,
    sidecar: dict[str, Any] | None = None,
    images_dir: str | None = None,
    image_size: Callable[[str], tuple[int, int]] = _image_size,
) -> dict[str, Any]:
    """COCO instances dict from an annotation file (boxes only, ``iscrowd`` 0).

    Category ids and image ids/sizes/file names come from ``sidecar`` (see module docstring) where it
    has them; otherwise :func:`default_category_ids`, :func:`default_image_ids`, sizes read from the
    image headers and ``file_name`` = the path relative to ``images_dir`` (or as written).

    Args:
        annotation_path: annotation text file (boxes xyxy in original-image pixels).
        class_names: class names, index = class id; class ids must be below ``len(class_names)``.
        sidecar: categories/images sidecar (:func:`read_sidecar`), or ``None`` for the defaults.
        images_dir: folder ``file_name`` is made relative to where the sidecar does not give it
            (``None``: the path as written in the annotation file).
        image_size: returns an image's (width, height) in pixels from its path (default: the header, read
            with PIL); may raise ``OSError`` / ``ValueError``.

    Returns:
        A COCO instances dict (``info``, ``images``, ``annotations``, ``categories``); ``bbox`` is
        [x, y, w, h] in pixels, rounded to 4 decimals.

    Raises:
        AnnotationError: a bad annotation line or a class id out of range.
        FileNotFoundError: the annotation file is missing, or images whose size is unknown (named).
        CocoFormatError: the sidecar lists a different number of categories than ``class_names``.
    """
    anns = read_annotations(annotation_path, num_classes=len(class_names))
    if sidecar is not None:
        if len(sidecar["categories"]) != len(class_names):
            raise CocoFormatError(f"the categories sidecar lists {len(sidecar['categories'])} categories, "
                                  f"the class names {len(class_names)}")
        categories = [{"id": c["id"], "name": class_names[i], "supercategory": c.get("supercategory", "")}
                      for i, c in enumerate(sidecar["categories"])]
        known = sidecar.get("images", {})
    else:
        categories = [{"id": cid, "name": n, "supercategory": ""}
                      for cid, n in zip(default_category_ids(class_names), class_names)]
        known = {}
    images, annotations, missing = [], [], []
    for ann, image_id in zip(anns, image_ids_for(anns, sidecar)):
        meta = known.get(ann.raw_path) or {}
        width, height = meta.get("width"), meta.get("height")
        if not width or not height:
            try:
                width, height = image_size(ann.path)
            except (OSError, ValueError):
                missing.append(ann.path)
                continue
        file_name = meta.get("file_name")
        if file_name is None:
            file_name = os.path.relpath(ann.path, images_dir) if images_dir else ann.raw_path
        images.append({"id": image_id, "file_name": file_name, "width": int(width), "height": int(height)})
        for x1, y1, x2, y2, c in ann.boxes.astype(np.float64):
            w, h = x2 - x1, y2 - y1
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": categories[int(c)]["id"],
                                "bbox": [round(x1, 4), round(y1, 4), round(w, 4), round(h, 4)],
                                "area": round(w * h, 4), "iscrowd": 0})
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise FileNotFoundError(f"{len(missing)} image(s) missing or unreadable (COCO needs their sizes): "
                                f"{', '.join(missing[:5])}{more}")
    return {"info": {"description": f"converted from {os.path.basename(annotation_path)} by yolo3.datasets.coco"},
            "images": images, "annotations": annotations, "categories": categories}
