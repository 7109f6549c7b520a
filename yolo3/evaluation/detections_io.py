"""Reading and writing detection files (native JSON, COCO results)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..datasets.annotations import AnnotatedImage, read_text_file
from .metrics import DetectionsLike, EvaluationError, ImageDetections

__all__ = ["clip_detections", "coco_results_json", "DetectionsFile", "load_detections_json"]


def clip_detections(detections: Sequence[DetectionsLike], image_sizes: Sequence[tuple[int, int] | None]
                    ) -> list[ImageDetections]:
    """Detections with boxes clipped to their image ((width, height); unchanged where the size is None).

    Args:
        detections: one entry an image: ``boxes`` (N, 4) x1, y1, x2, y2 in image pixels, ``scores`` (N,),
            ``class_ids`` (N,).
        image_sizes: ``image_sizes[i]`` is image i's (width, height) in pixels, or None (no clipping).

    Returns:
        New :class:`ImageDetections` (float32 boxes, float32 scores, int64 class ids); the inputs are not changed.
    """
    out = []
    for det, size in zip(detections, image_sizes):
        boxes = np.asarray(det.boxes, np.float32).reshape(-1, 4).copy()
        if size is not None and size[0] and size[1]:
            np.clip(boxes[:, 0::2], 0, size[0], out=boxes[:, 0::2])
            np.clip(boxes[:, 1::2], 0, size[1], out=boxes[:, 1::2])
        out.append(ImageDetections(boxes, np.asarray(det.scores, np.float32).reshape(-1),
                                   np.asarray(det.class_ids, np.int64).reshape(-1)))
    return out


def coco_results_json(detections: Sequence[DetectionsLike], image_ids: Sequence[int],
                      category_ids: Sequence[int]) -> list[dict]:
    """COCO results list ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` for all images.

    Args:
        detections: one entry an image: ``boxes`` (N, 4) x1, y1, x2, y2 in image pixels, ``scores`` (N,),
            ``class_ids`` (N,).
        image_ids: the COCO image id of each entry of ``detections``.
        category_ids: the COCO category id of each class id (``category_ids[class_id]``).

    Returns:
        One dict a detection, ``bbox`` as top-left x, y, width, height in pixels (rounded to 0.001),
        ``score`` rounded to 1e-6.
    """
    out = []
    for det, image_id in zip(detections, image_ids):
        for (x1, y1, x2, y2), s, c in zip(np.asarray(det.boxes, np.float64).reshape(-1, 4),
                                          np.asarray(det.scores).reshape(-1), np.asarray(det.class_ids).reshape(-1)):
            out.append({"image_id": int(image_id), "category_id": int(category_ids[int(c)]),
                        "bbox": [round(float(x1), 3), round(float(y1), 3), round(float(x2 - x1), 3),
                                 round(float(y2 - y1), 3)], "score": round(float(s), 6)})
    return out


def _norm(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


@dataclass
class DetectionsFile:
    """A ``yolo_video.py --json`` file matched against annotated images.

    ``detections[i]`` / ``image_sizes[i]`` belong to ground-truth image i (empty detections and None
    size where the file has no entry for it, listed in ``images_without_entry``).
    ``unmatched_entries``: entries naming no annotated image (or a video frame index).
    ``matched_by_name``: entries matched by file name only (their folders differ).
    """

    detections: list[ImageDetections]
    image_sizes: list[tuple[int, int] | None]
    images_without_entry: list[str]
    unmatched_entries: list[str]
    matched_by_name: int


def _entry_error(path: str, i: int, msg: str) -> EvaluationError:
    return EvaluationError(f"{path}: entry {i}: {msg}")


def load_detections_json(
    path: str,
    ground_truth: Sequence[AnnotatedImage],
    num_classes: int,
    class_names: Sequence[str] | None = None,
) -> DetectionsFile:
    """Read a ``yolo_video.py --json`` detections file and line its entries up with ``ground_truth``.

    Format: ``[{"image": path, "width": w, "height": h, "detections": [{"class_id", "class", "score",
    "box": [x1, y1, x2, y2]}, ...]}, ...]``. Image paths are matched after resolving (absolute,
    symlinks, case on Windows): as written, relative to the working directory, relative to the JSON
    file's folder, and finally by file name when that name is unique on both sides. Raises
    :class:`EvaluationError` for malformed content, class ids out of range, class names that
    contradict ``class_names``, or an image listed twice; ``FileNotFoundError`` for a missing file.

    Args:
        path: the detections JSON.
        ground_truth: the annotated images the entries are matched to.
        num_classes: class ids must be below this.
        class_names: where given, an entry's class name must be the name of its class id.
    """
    data = _read_entries(path)
    by_path = {_norm(g.path): i for i, g in enumerate(ground_truth)}
    parsed, unmatched = _parse_entries(path, data, by_path, num_classes, class_names)
    dets: list[ImageDetections | None] = [None] * len(ground_truth)
    sizes: list[tuple[int, int] | None] = [None] * len(ground_truth)
    by_name = _match_by_name(parsed, ground_truth, unmatched)
    for idx, det, size, _ in parsed:
        if idx < 0:
            continue
        if dets[idx] is not None:
            raise EvaluationError(f"{path}: image {ground_truth[idx].path} has more than one entry")
        dets[idx] = det
        sizes[idx] = size
    missing = [g.path for g, d in zip(ground_truth, dets) if d is None]
    return DetectionsFile([d if d is not None else ImageDetections() for d in dets], sizes, missing, unmatched,
                          by_name)


def _read_entries(path: str) -> list:
    """The list of entries of a detections JSON (a bare list, or the ``images`` list of an object)."""
    text = read_text_file(path, "detections file")  # DataFileError: missing, a folder, not UTF-8
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise EvaluationError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise EvaluationError(f"{path}: JSON nested too deeply") from None
    if isinstance(data, dict) and isinstance(data.get("images"), list):
        data = data["images"]
    if not isinstance(data, list):
        raise EvaluationError(f"{path}: expected a list of {{'image', 'width', 'height', 'detections'}} entries")
    return data


def _parse_entries(path: str, data: list, by_path: dict[str, int], num_classes: int,
                   class_names: Sequence[str] | None) -> tuple[list, list[str]]:
    """Every entry as (ground-truth index or -1, detections, (width, height) or None, image path), in file
    order, and the names of entries that are video frames (no path)."""
    json_dir = os.path.dirname(os.path.abspath(path))
    unmatched: list[str] = []
    parsed: list[tuple[int, ImageDetections, tuple[int, int] | None, str]] = []
    for i, entry in enumerate(data):
        if isinstance(entry, dict) and "image_id" in entry and "image" not in entry:
            raise _entry_error(path, i, "this is COCO results format; write the detections with "
                                        "yolo_video.py --json-format native")
        if not isinstance(entry, dict) or "image" not in entry:
            raise _entry_error(path, i, "expected an object with an 'image' key")
        image = entry["image"]
        det = _parse_entry(path, i, entry, num_classes, class_names)
        size = None
        if entry.get("width") and entry.get("height"):
            try:
                size = (int(entry["width"]), int(entry["height"]))
            except (TypeError, ValueError, OverflowError):
                raise _entry_error(path, i, "width/height are not integers") from None
            if min(size) < 0:
                raise _entry_error(path, i, f"width/height {size[0]}x{size[1]} are negative")
        if not isinstance(image, str):
            unmatched.append(f"frame {image}")
            continue
        cands = [image] if os.path.isabs(image) else [os.path.abspath(image), os.path.join(json_dir, image)]
        idx = next((by_path[k] for k in map(_norm, cands) if k in by_path), None)
        parsed.append((-1 if idx is None else idx, det, size, image))
    return parsed, unmatched


def _match_by_name(parsed: list, ground_truth: Sequence[AnnotatedImage], unmatched: list[str]) -> int:
    """File-name fallback for entries not matched by path, only where the name is unique among annotated
    images and among entries: fills in their index in ``parsed``, appends the others to ``unmatched``;
    returns how many were matched this way."""
    names: dict[str, list[int]] = {}
    for i, g in enumerate(ground_truth):
        names.setdefault(os.path.basename(g.path), []).append(i)
    entry_names: dict[str, int] = {}
    for idx, _, _, image in parsed:
        if idx < 0:
            entry_names[os.path.basename(image)] = entry_names.get(os.path.basename(image), 0) + 1
    by_name = 0
    for n, (idx, det, size, image) in enumerate(parsed):
        if idx >= 0:
            continue
        base = os.path.basename(image)
        cands = names.get(base, [])
        if len(cands) == 1 and entry_names[base] == 1:
            parsed[n] = (cands[0], det, size, image)
            by_name += 1
        else:
            unmatched.append(image)
    return by_name


def _check_box_and_score(path: str, i: int, k: int, box: np.ndarray, score: float) -> None:
    """A finite score in [0, 1] and a finite box with x1 <= x2, y1 <= y2; else :class:`EvaluationError`."""
    if not np.isfinite(score) or not 0 <= score <= 1:
        raise _entry_error(path, i, f"detection {k} has score {score} (expected a number in [0, 1])")
    if not np.all(np.isfinite(box)):
        raise _entry_error(path, i, f"detection {k} has a box with a non-finite number: {box.tolist()}")
    if box[2] < box[0] or box[3] < box[1]:
        raise _entry_error(path, i, f"detection {k} has a reversed box {box.tolist()} (expected x1, y1, x2, y2 "
                                    "with x1 <= x2 and y1 <= y2)")


def _parse_entry(path: str, i: int, entry: dict, num_classes: int,
                 class_names: Sequence[str] | None) -> ImageDetections:
    items = entry.get("detections", [])
    if not isinstance(items, list):
        raise _entry_error(path, i, "'detections' is not a list")
    boxes = np.zeros((len(items), 4), np.float32)
    scores = np.zeros(len(items), np.float32)
    cls = np.zeros(len(items), np.int64)
    for k, d in enumerate(items):
        try:
            boxes[k] = [float(v) for v in d["box"]]
            scores[k] = float(d["score"])
            c = d["class_id"]
        except (KeyError, TypeError, ValueError, OverflowError):
            raise _entry_error(path, i, f"detection {k} needs 'class_id', 'score' and a 4-number 'box'") from None
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < num_classes:
            raise _entry_error(path, i, f"detection {k} has class_id {c!r} out of range 0..{num_classes - 1}")
        _check_box_and_score(path, i, k, boxes[k], scores[k])
        if class_names is not None and "class" in d and d["class"] != class_names[c]:
            raise _entry_error(path, i, f"detection {k}: class_id {c} is '{d['class']}' in the detections but "
                                        f"'{class_names[c]}' in the class names file (wrong --classes?)")
        cls[k] = c
    return ImageDetections(boxes, scores, cls)
