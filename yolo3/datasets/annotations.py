"""Annotation text files: one image a line, ``path x_min,y_min,x_max,y_max,class_id ...``.

Boxes are in original-image pixels, xyxy, class ids 0-based. The image path is the first
whitespace-separated token; a path containing spaces is written with a TAB after it
(everything before the first TAB is the path). Relative paths are resolved against ``root``
(by default the annotation file's folder, falling back to the working directory as the
original keras-yolo3 did).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np

from ..core.files import atomic_open
from ..errors import Yolo3Error

__all__ = ["AnnotationError", "DataFileError", "DataFormatError", "read_text_file", "AnnotatedImage",
           "parse_annotation_line", "iter_annotations", "read_annotations",
           "format_annotation_line", "write_annotations", "read_class_names", "read_anchors", "write_anchors"]


class AnnotationError(Yolo3Error):
    """A malformed annotation line; ``str(err)`` is ``file:line: reason``.

    Args:
        source: the annotation file (or ``"<string>"``), kept as ``source``.
        lineno: 1-based line number, kept as ``lineno``.
        reason: what is wrong with the line, kept as ``reason``.
    """

    def __init__(self, source: str, lineno: int, reason: str):
        self.source = source
        self.lineno = lineno
        self.reason = reason
        super().__init__(f"{source}:{lineno}: {reason}")


class DataFileError(Yolo3Error, FileNotFoundError):
    """A data file (annotations, class names, anchors) that is missing, a folder, or not UTF-8 text;
    one line naming the file. Also a ``FileNotFoundError``, which these readers raised before."""


class DataFormatError(Yolo3Error):
    """A class-names or anchors file whose content is not what it should be (empty, not numbers, an odd
    count); one line naming the file. Also a ``ValueError``, which these readers raised before."""


def _check_text_file(path: str, what: str) -> None:
    if os.path.isdir(path):
        raise DataFileError(f"{what} {path} is a folder, not a file")
    if not os.path.isfile(path):
        raise DataFileError(f"{what} not found: {path}")


def read_text_file(path: str, what: str = "file") -> str:
    """The whole UTF-8 text of ``path`` (a BOM dropped).

    Args:
        path: the file.
        what: what the file is, for messages (``"classes file"``).

    Raises:
        DataFileError: missing, a folder, unreadable or not UTF-8 (the message names the file and line).
    """
    _check_text_file(path, what)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise DataFileError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataFileError(f"{what} {path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x})") from None


@dataclass
class AnnotatedImage:
    """One annotation line.

    ``boxes``: float32 array (N, 5) of x_min, y_min, x_max, y_max (pixels), class_id.
    ``path``: the image path as resolved (absolute if a root was given), ``raw_path`` as written.
    """

    path: str
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.float32))
    lineno: int = 0
    raw_path: str = ""

    @property
    def class_ids(self) -> np.ndarray:
        return self.boxes[:, 4].astype(np.int64)


def _split_line(line: str) -> tuple[str, list[str]]:
    line = line.rstrip("\r\n")
    if "\t" in line:
        path, rest = line.split("\t", 1)
        return path.strip(), rest.split()
    tokens = line.split()
    return tokens[0], tokens[1:]


def parse_annotation_line(
    line: str,
    *,
    source: str = "<string>",
    lineno: int = 0,
    num_classes: int | None = None,
    root: str | None = None,
) -> AnnotatedImage:
    """Parse one annotation line; raise :class:`AnnotationError` naming ``source:lineno``.

    Checks: 5 comma-separated fields a box, numbers, ``x_max >= x_min`` and ``y_max >= y_min``,
    integer class id in ``[0, num_classes)`` when ``num_classes`` is given. Zero-area boxes are
    kept here (training drops and counts them).

    Args:
        line: ``path x_min,y_min,x_max,y_max,class_id ...`` (xyxy, original-image pixels); a trailing
            newline is ignored, a TAB ends a path that contains spaces.
        source: file name used in error messages.
        lineno: line number used in error messages and kept in the result.
        num_classes: when given, class ids must be below it.
        root: folder a relative image path is joined to (``None``: the path is kept as written).

    Returns:
        An :class:`AnnotatedImage` with float32 (N, 5) boxes.

    Raises:
        AnnotationError: an empty or malformed line, or a class id out of range.
    """
    if not line.strip():
        raise AnnotationError(source, lineno, "empty line")
    raw_path, tokens = _split_line(line)
    rows = []
    for i, tok in enumerate(tokens):
        fields = tok.split(",")
        if len(fields) != 5:
            raise AnnotationError(
                source, lineno,
                f"box {i + 1} '{tok}' has {len(fields)} fields, expected 5 (x_min,y_min,x_max,y_max,class_id)")
        try:
            x1, y1, x2, y2 = (float(v) for v in fields[:4])
        except ValueError:
            raise AnnotationError(source, lineno,
                                  f"box {i + 1} '{tok}' has a coordinate that is not a number") from None
        if not (math.isfinite(x1) and math.isfinite(y1) and math.isfinite(x2) and math.isfinite(y2)):
            raise AnnotationError(source, lineno, f"box {i + 1} '{tok}' has a non-finite coordinate")
        if max(abs(x1), abs(y1), abs(x2), abs(y2)) > 1e9:
            raise AnnotationError(source, lineno, f"box {i + 1} '{tok}' has a coordinate beyond 1e9 pixels")
        try:
            cls_f = float(fields[4])
        except ValueError:
            raise AnnotationError(source, lineno, f"box {i + 1} '{tok}' has a class id that is not a number") from None
        if not math.isfinite(cls_f) or cls_f != int(cls_f):
            raise AnnotationError(source, lineno, f"box {i + 1} '{tok}' has a class id that is not an integer")
        cls = int(cls_f)
        if cls < 0 or (num_classes is not None and cls >= num_classes):
            bound = f"0..{num_classes - 1}" if num_classes is not None else ">= 0"
            raise AnnotationError(source, lineno, f"box {i + 1} '{tok}' has class id {cls} out of range ({bound})")
        if x2 < x1:
            raise AnnotationError(source, lineno, f"box {i + 1} '{tok}' has x_max < x_min")
        if y2 < y1:
            raise AnnotationError(source, lineno, f"box {i + 1} '{tok}' has y_max < y_min")
        rows.append((x1, y1, x2, y2, cls))
    boxes = np.array(rows, np.float32).reshape(len(rows), 5)
    path = raw_path
    if root is not None and not os.path.isabs(raw_path):
        path = os.path.join(root, raw_path)
    return AnnotatedImage(path=path, boxes=boxes, lineno=lineno, raw_path=raw_path)


def _resolve_root(annotation_path: str, root: str | None, first_raw: str | None) -> str | None:
    if root is not None:
        return root
    if first_raw is None or os.path.isabs(first_raw):
        return None
    folder = os.path.dirname(os.path.abspath(annotation_path))
    # Keep the original's behaviour (paths relative to the working directory) when that is
    # where the images are; otherwise resolve against the annotation file's folder.
    if os.path.exists(first_raw) and not os.path.exists(os.path.join(folder, first_raw)):
        return None
    return folder


def iter_annotations(
    path: str, num_classes: int | None = None, root: str | None = None
) -> Iterator[AnnotatedImage]:
    """Stream the annotation file at ``path`` (blank lines and ``#`` comments skipped).

    Args:
        path: annotation text file (UTF-8).
        num_classes: when given, class ids must be in ``[0, num_classes)``.
        root: folder relative image paths are resolved against; ``None``: the annotation file's folder, or
            the working directory when the first relative image path exists there and not in that folder.

    Yields:
        One :class:`AnnotatedImage` a line, boxes float32 (N, 5) xyxy in original-image pixels, class id.

    Raises:
        DataFileError: ``path`` does not exist or is a folder (a ``FileNotFoundError``).
        AnnotationError: a malformed line or one that is not UTF-8 (when it is reached).
    """
    _check_text_file(path, "annotation file")
    resolved_root: str | None = root
    decided = root is not None
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise AnnotationError(path, lineno, f"not UTF-8 text (byte {raw[exc.start]:#04x} at column "
                                                    f"{exc.start + 1})") from None
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not decided:
                resolved_root = _resolve_root(path, None, _split_line(line)[0])
                decided = True
            yield parse_annotation_line(line, source=path, lineno=lineno, num_classes=num_classes, root=resolved_root)


def read_annotations(path: str, num_classes: int | None = None, root: str | None = None) -> list[AnnotatedImage]:
    """Read a whole annotation file; see :func:`iter_annotations`.

    Args:
        path: annotation text file.
        num_classes: when given, class ids must be in ``[0, num_classes)``.
        root: folder relative image paths are resolved against (``None``: as :func:`iter_annotations`).

    Returns:
        One :class:`AnnotatedImage` a line, in file order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        AnnotationError: a malformed line.
    """
    return list(iter_annotations(path, num_classes=num_classes, root=root))


def format_annotation_line(path: str, boxes: np.ndarray | Sequence[Sequence[float]]) -> str:
    """One annotation line (no newline) for ``path`` and (N, 5) xyxy+class boxes.

    Args:
        path: image path as written; followed by a TAB instead of a space when it contains whitespace.
        boxes: (N, 5) x_min, y_min, x_max, y_max (pixels), class_id; may be empty. Coordinates are
            written with at most 2 decimals, class ids as integers.

    Returns:
        The line; ``path`` alone when there are no boxes.
    """
    parts = []
    for b in np.asarray(boxes, dtype=np.float64).reshape(-1, 5):
        coords = ",".join(_fmt(v) for v in b[:4])
        parts.append(f"{coords},{int(b[4])}")
    sep = "\t" if any(c.isspace() for c in path) else " "
    return path + (sep + " ".join(parts) if parts else "")


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.2f}".rstrip("0").rstrip(".")


def write_annotations(path: str, items: Iterable[tuple[str, np.ndarray]]) -> int:
    """Write ``(image_path, boxes)`` pairs as an annotation file; returns the line count.

    Args:
        path: annotation file to write (replaced at once, through a temporary file beside it).
        items: ``(image_path, boxes)`` pairs, boxes (N, 5) xyxy pixels and class id, as for
            :func:`format_annotation_line`.

    Returns:
        The number of lines (images) written.
    """
    n = 0
    with atomic_open(path) as f:
        for image_path, boxes in items:
            f.write(format_annotation_line(image_path, boxes) + "\n")
            n += 1
    return n


def read_class_names(path: str) -> list[str]:
    """Class names, one a line (blank lines ignored).

    Args:
        path: classes text file (UTF-8).

    Returns:
        The names, stripped, in file order (index = class id).

    Raises:
        DataFileError: ``path`` does not exist, is a folder or is not UTF-8 (a ``FileNotFoundError``).
        ValueError: the file holds no names.
    """
    names = [ln.strip() for ln in read_text_file(path, "classes file").splitlines() if ln.strip()]
    if not names:
        raise DataFormatError(f"classes file is empty: {path}")
    return names


def read_anchors(path: str) -> np.ndarray:
    """Anchors file (``w,h, w,h, ...`` on one or more lines) as float32 (N, 2) in network pixels.

    Args:
        path: anchors text file.

    Returns:
        float32 (N, 2) anchor widths and heights in network-input pixels, in file order.

    Raises:
        DataFileError: ``path`` does not exist, is a folder or is not UTF-8 (a ``FileNotFoundError``).
        ValueError: a value is not a positive finite number, or the count of numbers is zero or odd.
    """
    text = read_text_file(path, "anchors file").replace("\n", ",")
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise DataFormatError(f"anchors file has a value that is not a number: {path}") from None
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise DataFormatError(f"anchors file has a value that is not a positive finite number: {path}")
    if not values or len(values) % 2:
        raise DataFormatError(f"anchors file must hold an even, non-zero count of numbers: {path}")
    return np.asarray(values, np.float32).reshape(-1, 2)


def write_anchors(path: str, anchors: np.ndarray) -> None:
    """Write anchors as one line ``w,h,  w,h, ...`` (integers where they are whole).

    Args:
        path: anchors text file to write.
        anchors: (N, 2) (or flat 2N) widths and heights in network-input pixels; rounded to 2 decimals.
    """
    pairs = np.asarray(anchors).reshape(-1, 2)
    text = ",  ".join(f"{_fmt(round(float(w), 2))},{_fmt(round(float(h), 2))}" for w, h in pairs)
    with atomic_open(path) as f:
        f.write(text + "\n")
