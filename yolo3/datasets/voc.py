"""Pascal VOC XML annotations -> the project's annotation text format.

Two layouts are understood:

* a VOCdevkit: ``VOC2007/``, ``VOC2012/``... each holding ``Annotations/``, ``ImageSets/Main/``,
  ``JPEGImages/`` (the folder holding ``VOCdevkit/`` works too);
* a single VOC-layout folder with those three sub-folders, as VoTT's "Pascal VOC" export writes it.
  VoTT writes no ``ImageSets/Main/train.txt``, only ``<tag>_train.txt`` / ``<tag>_val.txt`` listing
  every image (``image.jpg 1`` or ``-1``); an image set is then the union of those files.

Box coordinates are copied as written in the XML (VOC's are 1-based pixels; VoTT's are floats),
so a conversion round-trips every box exactly. Nothing is dropped silently: objects with class
names not in the class list, malformed XML files and missing images are counted and listed in
the :class:`ConversionReport`.
"""
from __future__ import annotations

import glob
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from tqdm import tqdm

from ..errors import Yolo3Error
from .annotations import write_annotations

__all__ = ["VOC_CLASSES", "VocError", "VocXmlError", "VocObject", "VocImage", "ImageSet", "ConversionReport",
           "parse_voc_xml", "find_image_sets", "convert_image_set"]


VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)


_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")


_YEAR_SET = re.compile(r"^(\d{4})_(.+)$")


class VocError(Yolo3Error):
    """Unusable input: not a VOC folder, an image set that does not exist, an ambiguous set name."""


class VocXmlError(Yolo3Error):
    """A VOC XML file that cannot be used; ``str(err)`` is ``path: reason``.

    Args:
        path: the XML file, kept as ``path``.
        reason: why it cannot be used, kept as ``reason``.
    """

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass
class VocObject:
    """One ``<object>``: class ``name``, ``box`` (x_min, y_min, x_max, y_max) pixels as written, ``difficult``."""

    name: str
    box: tuple[float, float, float, float]
    difficult: bool = False


@dataclass
class VocImage:
    """One annotation XML: ``filename`` and ``size`` (width, height; 0 if absent) as written, the usable
    ``objects`` and ``bad_objects`` (index 1-based, reason) for objects that could not be read."""

    path: str
    filename: str
    size: tuple[int, int]
    objects: list[VocObject]
    bad_objects: list[tuple[int, str]] = field(default_factory=list)


def _text(elem: ET.Element, tag: str) -> str | None:
    child = elem.find(tag)
    return None if child is None or child.text is None else child.text.strip()


def parse_voc_xml(path: str) -> VocImage:
    """Read one VOC annotation XML; raise :class:`VocXmlError` when the file as a whole is unusable.

    An ``<object>`` without a name, without ``<bndbox>``, with non-numeric coordinates or with
    ``xmax < xmin`` / ``ymax < ymin`` is left out and listed in ``bad_objects``.

    Args:
        path: VOC annotation XML file (``<annotation>`` root, ``<bndbox>`` pixel coordinates).

    Returns:
        A :class:`VocImage`, box coordinates as written (VOC's are 1-based pixels).

    Raises:
        VocXmlError: the file cannot be read or is not well-formed XML, its root is not
            ``<annotation>``, or its ``<size>`` is not numeric.
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise VocXmlError(path, f"not well-formed XML ({e})") from None
    except OSError as e:
        raise VocXmlError(path, f"cannot read ({e.strerror or e})") from None
    if root.tag != "annotation":
        raise VocXmlError(path, f"root element is <{root.tag}>, expected <annotation>")
    filename = _text(root, "filename") or ""
    size = (0, 0)
    size_el = root.find("size")
    if size_el is not None:
        try:
            size = (int(float(_text(size_el, "width") or 0)), int(float(_text(size_el, "height") or 0)))
        except ValueError:
            raise VocXmlError(path, "<size> width/height is not a number") from None
    objects: list[VocObject] = []
    bad: list[tuple[int, str]] = []
    for i, obj in enumerate(root.findall("object"), 1):
        name = _text(obj, "name")
        if not name:
            bad.append((i, "object without <name>"))
            continue
        bnd = obj.find("bndbox")
        if bnd is None:
            bad.append((i, f"object '{name}' without <bndbox>"))
            continue
        try:
            coords = [float(_text(bnd, t) or "nan") for t in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError:
            bad.append((i, f"object '{name}' has a <bndbox> coordinate that is not a number"))
            continue
        if not all(np.isfinite(coords)):
            bad.append((i, f"object '{name}' has a missing or non-finite <bndbox> coordinate"))
            continue
        x1, y1, x2, y2 = coords
        if x2 < x1 or y2 < y1:
            bad.append((i, f"object '{name}' has xmax < xmin or ymax < ymin"))
            continue
        diff_text = _text(obj, "difficult") or "0"
        try:
            difficult = bool(int(float(diff_text)))
        except ValueError:
            difficult = diff_text.lower() == "true"
        objects.append(VocObject(name, (x1, y1, x2, y2), difficult))
    return VocImage(path, filename, size, objects, bad)


@dataclass
class ImageSet:
    """An image set to convert: ``label`` names the output (``2007_train`` or ``train``), ``folder`` is the
    VOC-layout folder, ``ids`` the image ids in order (with an extension where VoTT wrote one),
    ``source`` the ImageSets file(s) they came from."""

    label: str
    folder: str
    name: str
    ids: list[str]
    source: list[str]


def _is_voc_folder(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "Annotations"))


def _year_folders(devkit: str) -> dict[str, str]:
    out = {}
    for entry in sorted(os.listdir(devkit)):
        m = re.fullmatch(r"VOC(\d{4})", entry)
        if m and _is_voc_folder(os.path.join(devkit, entry)):
            out[m.group(1)] = os.path.join(devkit, entry)
    return out


def _read_ids(path: str, flagged: bool = False) -> list[str]:
    """Image ids, one a line; ``flagged`` lines end in a 1 / 0 / -1 flag (ids may hold spaces)."""
    ids = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if flagged:
                parts = line.rsplit(None, 1)
                if len(parts) == 2 and parts[1] in ("1", "0", "-1"):
                    line = parts[0]
            ids.append(line)
    return ids


def _load_set(folder: str, name: str, label: str) -> ImageSet | None:
    main = os.path.join(folder, "ImageSets", "Main")
    direct = os.path.join(main, f"{name}.txt")
    if os.path.isfile(direct):
        return ImageSet(label, folder, name, _read_ids(direct), [direct])
    # VoTT: one '<tag>_<set>.txt' per tag, each listing every image of the set with 1 / -1.
    pattern = os.path.join(glob.escape(main), f"*_{glob.escape(name)}.txt")
    files = sorted(glob.glob(pattern))
    if not files:
        return None
    ids: dict[str, None] = {}
    for f in files:
        for i in _read_ids(f, flagged=True):
            ids.setdefault(i)
    return ImageSet(label, folder, name, list(ids), files)


def find_image_sets(voc_root: str, sets: Sequence[str] | None = None) -> list[ImageSet]:
    """Resolve set names (``2007_train``, ``train``...) under ``voc_root``; raise :class:`VocError`.

    In a VOCdevkit a bare name (``train``) needs exactly one year folder; otherwise write ``2007_train``.

    Args:
        voc_root: a VOC-layout folder, a VOCdevkit, or the folder holding ``VOCdevkit/``.
        sets: image set names; ``None``: every ``train``, ``val`` and ``test`` set found (of every year
            in a VOCdevkit).

    Returns:
        One :class:`ImageSet` per name, in order (or per set found).

    Raises:
        VocError: ``voc_root`` missing or not a VOC folder, a set not found, a bare name ambiguous
            between years, or (``sets=None``) no set found.
    """
    if not os.path.isdir(voc_root):
        raise VocError(f"VOC root not found: {voc_root}")
    single = _is_voc_folder(voc_root)
    years: dict[str, str] = {}
    if not single:
        devkit = voc_root
        years = _year_folders(devkit)
        if not years and os.path.isdir(os.path.join(voc_root, "VOCdevkit")):
            years = _year_folders(os.path.join(voc_root, "VOCdevkit"))
        if not years:
            raise VocError(f"{voc_root} is neither a VOC-layout folder (Annotations/, ImageSets/Main/, JPEGImages/) "
                           "nor a VOCdevkit (VOC2007/, VOC2012/...)")

    if sets is None:
        found = []
        places = [("", voc_root)] if single else [(f"{y}_", f) for y, f in years.items()]
        for prefix, folder in places:
            for name in ("train", "val", "test"):
                s = _load_set(folder, name, prefix + name)
                if s is not None:
                    found.append(s)
        if not found:
            raise VocError(f"no train/val/test image sets under {voc_root}; name them with --sets")
        return found

    out = []
    for spec in sets:
        m = _YEAR_SET.match(spec)
        if single:
            s = _load_set(voc_root, spec, spec)
            if s is None and m:
                s = _load_set(voc_root, m.group(2), spec)
            if s is None:
                expected = os.path.join(voc_root, "ImageSets", "Main", spec + ".txt")
                raise VocError(f"image set '{spec}' not found: expected {expected}"
                               " (or VoTT's <tag>_" + (m.group(2) if m else spec) + ".txt)")
            out.append(s)
            continue
        if m:
            year, name = m.group(1), m.group(2)
            if year not in years:
                raise VocError(f"image set '{spec}': no VOC{year} folder (found: "
                               f"{', '.join('VOC' + y for y in years)})")
            folders = {year: years[year]}
        else:
            name = spec
            if len(years) > 1:
                raise VocError(f"image set '{spec}' is ambiguous in a VOCdevkit with "
                               f"{', '.join('VOC' + y for y in years)}: write e.g. {next(iter(years))}_{spec}")
            folders = dict(years)
        (year, folder), = folders.items()
        s = _load_set(folder, name, f"{year}_{name}")
        if s is None:
            raise VocError(f"image set '{spec}' not found: expected "
                           f"{os.path.join(folder, 'ImageSets', 'Main', name + '.txt')}")
        out.append(s)
    return out


@dataclass
class ConversionReport:
    """What :func:`convert_image_set` wrote and what it left out (nothing is left out silently)."""

    label: str
    out_path: str
    images: int = 0
    boxes_per_class: Counter = field(default_factory=Counter)
    empty_images: int = 0
    unknown_classes: Counter = field(default_factory=Counter)
    difficult_skipped: int = 0
    difficult_kept: int = 0
    malformed_files: list[tuple[str, str]] = field(default_factory=list)
    bad_objects: list[tuple[str, int, str]] = field(default_factory=list)
    missing_images: list[str] = field(default_factory=list)

    @property
    def boxes(self) -> int:
        return sum(self.boxes_per_class.values())

    @property
    def problems(self) -> int:
        """Count of things left out for a reason other than a user choice (--skip-difficult)."""
        return (sum(self.unknown_classes.values()) + len(self.malformed_files) + len(self.bad_objects)
                + len(self.missing_images))


def _find_image(folder: str, image_id: str, xml_filename: str) -> str | None:
    images = os.path.join(folder, "JPEGImages")
    stem, ext = os.path.splitext(image_id)
    candidates = []
    if ext.lower() in _IMAGE_EXTS:
        candidates.append(image_id)
    else:
        stem = image_id
    if xml_filename:
        candidates.append(os.path.basename(xml_filename))
    candidates.append(stem + ".jpg")
    for c in candidates:
        p = os.path.join(images, c)
        if os.path.isfile(p):
            return p
    for p in sorted(glob.glob(os.path.join(glob.escape(images), glob.escape(stem) + ".*"))):
        if os.path.splitext(p)[1].lower() in _IMAGE_EXTS:
            return p
    return None


def convert_image_set(
    image_set: ImageSet,
    class_names: Sequence[str],
    out_path: str,
    *,
    skip_difficult: bool = False,
    relative: bool = False,
    progress: bool = False,
    write_to: str | None = None,
) -> ConversionReport:
    """Write ``image_set`` as an annotation file at ``out_path``; return the report.

    Paths are absolute, or with ``relative`` relative to the output file's folder (the folder the
    project's annotation reader resolves relative paths against). Images without a usable
    object are written as lines without boxes (negatives), never dropped.

    Args:
        image_set: the set to convert (from :func:`find_image_sets`).
        class_names: class names, index = class id; objects of other classes are left out and counted.
        out_path: annotation text file to write (its folder is created); boxes xyxy pixels as in the XML.
        skip_difficult: leave out objects marked ``difficult`` (counted) instead of keeping them.
        relative: write image paths relative to the output file's folder instead of absolute.
        progress: show a tqdm bar over the images.
        write_to: write the lines to this file instead (e.g. a staged temporary file that replaces
            ``out_path`` later); relative paths stay relative to ``out_path``'s folder.

    Returns:
        A :class:`ConversionReport` of what was written and what was left out.
    """
    index = {name: i for i, name in enumerate(class_names)}
    report = ConversionReport(image_set.label, out_path)
    out_dir = os.path.dirname(os.path.abspath(out_path))
    ann_dir = os.path.join(image_set.folder, "Annotations")
    items: list[tuple[str, np.ndarray]] = []
    ids = image_set.ids
    if progress:
        ids = tqdm(ids, desc=image_set.label, unit="img", leave=False, disable=None)
    for image_id in ids:
        stem = os.path.splitext(image_id)[0] if os.path.splitext(image_id)[1].lower() in _IMAGE_EXTS else image_id
        xml_path = os.path.join(ann_dir, stem + ".xml")
        if not os.path.isfile(xml_path):
            report.malformed_files.append((xml_path, "annotation XML not found"))
            continue
        try:
            voc = parse_voc_xml(xml_path)
        except VocXmlError as e:
            report.malformed_files.append((e.path, e.reason))
            continue
        report.bad_objects.extend((xml_path, i, reason) for i, reason in voc.bad_objects)
        image_path = _find_image(image_set.folder, image_id, voc.filename)
        if image_path is None:
            report.missing_images.append(os.path.join(image_set.folder, "JPEGImages", voc.filename or stem + ".jpg"))
            continue
        rows = []
        for obj in voc.objects:
            cls = index.get(obj.name)
            if cls is None:
                report.unknown_classes[obj.name] += 1
                continue
            if obj.difficult:
                if skip_difficult:
                    report.difficult_skipped += 1
                    continue
                report.difficult_kept += 1
            rows.append((*obj.box, cls))
            report.boxes_per_class[class_names[cls]] += 1
        boxes = np.asarray(rows, np.float64).reshape(-1, 5)
        if not len(boxes):
            report.empty_images += 1
        path = os.path.relpath(os.path.abspath(image_path), out_dir) if relative else os.path.abspath(image_path)
        items.append((path, boxes))
    os.makedirs(out_dir, exist_ok=True)
    report.images = write_annotations(write_to or out_path, items)
    return report
