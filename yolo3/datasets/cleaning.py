"""Validating an annotation file once before training: the *clean* file the pipeline reads, and splits."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..core.files import atomic_open, temporary_sibling
from ..errors import Yolo3Error, first_names
from .annotations import iter_annotations
from .decode_check import find_undecodable

__all__ = ["DataError", "AnnotationReport", "prepare_annotations", "split_annotations", "count_lines"]


class DataError(Yolo3Error):
    """A problem with the training data that the user must fix (message is one line)."""


@dataclass
class AnnotationReport:
    """What :func:`prepare_annotations` found."""

    images: int = 0
    boxes: int = 0
    boxes_clipped: int = 0
    boxes_zero_area: int = 0
    images_without_boxes: int = 0
    exif_rotated: int = 0
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def summary(self, name: str = "annotations") -> str:
        """One line for the log: images, boxes, what was clipped, dropped or skipped.

        Args:
            name: what the report is about (usually the annotation file).
        """
        text = (f"{name}: {self.images} images, {self.boxes} boxes ({self.images_without_boxes} images without "
                f"boxes); {self.boxes_clipped} boxes clipped to their image, {self.boxes_zero_area} zero-area "
                f"boxes dropped")
        if self.exif_rotated:
            text += f"; {self.exif_rotated} images with EXIF rotation (applied)"
        if self.missing:
            text += f"; {len(self.missing)} missing images skipped: {first_names(self.missing)}"
        if self.unreadable:
            text += f"; {len(self.unreadable)} unreadable images skipped: {first_names(self.unreadable)}"
        return text


def _image_header(path: str) -> tuple[int, int, int]:
    """(width, height, exif_orientation) of an image as displayed (after EXIF rotation)."""

    with Image.open(path) as im:
        w, h = im.size
        try:
            orientation = int(im.getexif().get(0x0112, 1) or 1)
        except Exception:  # noqa: BLE001 - a broken EXIF block is not a broken image
            orientation = 1
    if orientation not in range(1, 9):
        orientation = 1
    if orientation >= 5:
        w, h = h, w
    return w, h, orientation


def _format_clean(path: str, orientation: int, boxes: np.ndarray) -> str:
    parts = " ".join(f"{b[0]:.2f},{b[1]:.2f},{b[2]:.2f},{b[3]:.2f},{int(b[4])}" for b in boxes)
    return f"{path}\t{orientation}\t{parts}\n"


def _write_clean(tmp: str, report: AnnotationReport, annotation_path: str, num_classes: int | None,
                 root: str | None, progress: bool) -> None:
    """Check every line and image of the annotation file; the clean lines go to ``tmp``, counts to ``report``."""
    with open(tmp, "w", encoding="utf-8") as out:
        for item in tqdm(iter_annotations(annotation_path, num_classes=num_classes, root=root),
                         desc=f"checking {os.path.basename(annotation_path)}", unit="img", disable=not progress,
                         mininterval=1.0):
            if "\t" in item.path:
                raise DataError(f"{annotation_path}:{item.lineno}: image path contains a TAB")
            if not os.path.isfile(item.path):
                report.missing.append(item.raw_path or item.path)
                continue
            try:
                w, h, orientation = _image_header(item.path)
            except Exception:  # noqa: BLE001 - any decoder error means the image is unusable
                report.unreadable.append(item.raw_path or item.path)
                continue
            boxes = item.boxes.astype(np.float32).reshape(-1, 5)
            clipped = boxes.copy()
            clipped[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
            clipped[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
            report.boxes_clipped += int(np.any(clipped[:, :4] != boxes[:, :4], axis=1).sum())
            keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
            report.boxes_zero_area += int((~keep).sum())
            clipped = clipped[keep]
            report.images += 1
            report.boxes += len(clipped)
            report.images_without_boxes += int(len(clipped) == 0)
            report.exif_rotated += int(orientation != 1)
            out.write(_format_clean(os.path.abspath(item.path), orientation, clipped))


def _drop_undecodable(tmp: str, report: AnnotationReport, decode: Callable[[str], object], decoder: str,
                      progress: bool) -> None:
    """Decode every image of the clean file once (:mod:`yolo3.datasets.decode_check`, cached); those that
    fail go to ``report.unreadable`` and their lines out of ``tmp``."""
    with open(tmp, encoding="utf-8") as f:
        lines = f.readlines()
    paths = [line.split("\t", 1)[0] for line in lines]
    bad = {p for p, _ in find_undecodable(paths, decode, decoder, progress=progress).bad}
    if not bad:
        return
    kept = []
    for path, line in zip(paths, lines):
        if os.path.abspath(path) in bad:
            report.unreadable.append(path)
            report.images -= 1
            boxes = line.rstrip("\n").split("\t")[2].split()
            report.boxes -= len(boxes)
            report.images_without_boxes -= int(not boxes)
        else:
            kept.append(line)
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(kept)


def prepare_annotations(
    annotation_path: str,
    out_path: str,
    num_classes: int | None = None,
    root: str | None = None,
    skip_missing: bool = False,
    progress: bool = True,
    decode: Callable[[str], object] | None = None,
    decoder: str = "tf",
) -> AnnotationReport:
    """Validate ``annotation_path`` and write the clean file ``out_path`` for :func:`make_dataset`.

    Boxes are clipped to the image (as displayed, after EXIF rotation); boxes with zero area after
    clipping are dropped and counted.

    Args:
        annotation_path: annotation text file (boxes xyxy in original-image pixels).
        out_path: clean file to write, one ``abs_path<TAB>exif_orientation<TAB>x1,y1,x2,y2,class ...`` a line
            (pixels); not written when an error is raised.
        num_classes: when given, class ids must be in ``[0, num_classes)``.
        root: folder relative image paths are resolved against (``None``: see
            :func:`~yolo3.datasets.annotations.iter_annotations`).
        skip_missing: leave missing/unreadable images out and list them in the report instead of raising.
        progress: show a tqdm bar over images.
        decode: decode every image once with this function (the run's own decoder, e.g. training's
            ``load_image``), in threads, cached by path/size/mtime; images it fails on are unreadable.
            None: headers only.
        decoder: the decoder's name (one cache each).

    Returns:
        An :class:`AnnotationReport` of what was written, clipped, dropped and skipped.

    Raises:
        AnnotationError: (:class:`yolo3.datasets.annotations.AnnotationError`, ``file:line: reason``) a
            malformed line or a class id outside ``[0, num_classes)``.
        FileNotFoundError: the annotation file is missing.
        DataError: missing/unreadable images, named (unless ``skip_missing``); an image path containing a
            TAB; no usable image at all.
    """

    report = AnnotationReport()
    tmp = temporary_sibling(out_path)
    try:
        _write_clean(tmp, report, annotation_path, num_classes, root, progress)
        if decode is not None:
            _drop_undecodable(tmp, report, decode, decoder, progress)
    except BaseException:  # a malformed line or Ctrl-C: no temporary file is left behind
        os.unlink(tmp)
        raise
    bad = report.missing + report.unreadable
    if bad and not skip_missing:
        os.unlink(tmp)
        kinds = []
        if report.missing:
            kinds.append(f"{len(report.missing)} images not found: {first_names(report.missing)}")
        if report.unreadable:
            kinds.append(f"{len(report.unreadable)} images unreadable: {first_names(report.unreadable)}")
        raise DataError(f"{annotation_path}: " + "; ".join(kinds) + " (fix the paths or pass --skip-missing)")
    if report.images == 0:
        os.unlink(tmp)
        raise DataError(f"{annotation_path}: no usable images")
    os.replace(tmp, out_path)
    return report


def count_lines(path: str) -> int:
    """Non-blank lines of a text file (the images of a clean annotation file).

    Args:
        path: the file.
    """
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def split_annotations(clean_path: str, val_split: float, seed: int, train_out: str, val_out: str) -> tuple[int, int]:
    """Split a clean file into train/val files.

    ``round(n * val_split)`` lines (at least 1 when ``val_split`` > 0 and n > 1, at most n - 1) chosen
    by a seeded permutation go to ``val_out``, the others to ``train_out``, both in file order. Streams
    the file; keeps only the validation line numbers in memory.

    Args:
        clean_path: clean annotation file (from :func:`prepare_annotations`) with n non-blank lines.
        val_split: fraction of the lines (0..1) that go to validation.
        seed: seed of the permutation that picks the validation lines.
        train_out: training file to write.
        val_out: validation file to write.

    Returns:
        (n_train, n_val): the line counts written.
    """
    n = count_lines(clean_path)
    n_val = int(round(n * val_split))
    if val_split > 0 and n > 1:
        n_val = max(1, n_val)
    n_val = min(n_val, n - 1)
    val_idx = set(np.random.default_rng(seed).permutation(n)[:n_val].tolist())
    with open(clean_path, encoding="utf-8") as f, atomic_open(train_out) as ft, atomic_open(val_out) as fv:
        i = 0
        for line in f:
            if not line.strip():
                continue
            (fv if i in val_idx else ft).write(line)
            i += 1
    return n - n_val, n_val
