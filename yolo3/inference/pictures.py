"""Detection on pictures: files, folders and globs (batched, reading and drawing overlapped with the
network), the interactive prompt loop of keras-yolo3's ``yolo_video.py --image``, and the detections JSON.

Each picture gives one record ``{"image": path, "width", "height", "detections": [{class_id, class,
score, box}]}`` (boxes x1, y1, x2, y2 in image pixels), appended to the caller's list.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from ..core.files import OutputError, atomic_open, atomic_path, check_output_dir, same_file
from ..datasets.coco import coco_results
from ..datasets.imageio import ImageReadError, list_images, read_image_rgb
from ..errors import Yolo3Error
from .video import pipelined_detect

__all__ = ["PICTURE_FORMATS", "NoPicturesError", "PictureOptions", "output_name", "save_picture", "describe",
           "show_picture", "detect_pictures", "prompt_pictures", "write_detections_json", "check_picture_outputs"]

#: picture file extensions a drawn picture keeps (others are written as .png)
PICTURE_FORMATS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


class NoPicturesError(Yolo3Error):
    """The paths given name no picture (an empty folder, a glob matching nothing)."""


@dataclass
class PictureOptions:
    """What to do with each picture besides detecting.

    ``output``: folder for the drawn pictures (None: none written); ``show``: show each drawn picture
    in a window until a key is pressed; ``batch_size``: pictures a network call; ``quiet``: no
    progress bar or per-picture lines.
    """

    output: str | None = None
    show: bool = False
    batch_size: int = 1
    quiet: bool = False


def output_name(path: str, used: set[str]) -> str:
    """A file name in the output folder for picture ``path``: its own name, made unique.

    Args:
        path: the picture's path.
        used: names given so far (updated).
    """
    stem, ext = os.path.splitext(os.path.basename(path))
    if ext.lower() not in PICTURE_FORMATS:
        ext = ".png"
    name, n = stem + ext, 1
    while name in used:
        name, n = f"{stem}_{n}{ext}", n + 1
    used.add(name)
    return name


def save_picture(rgb: np.ndarray, path: str) -> None:
    """Write a uint8 RGB picture (JPEG at quality 95, other formats by extension).

    Args:
        rgb: (H, W, 3) uint8 RGB.
        path: the file to write.
    """

    image = Image.fromarray(rgb)
    with atomic_path(path) as tmp:
        if path.lower().endswith((".jpg", ".jpeg")):
            image.save(tmp, quality=95)
        else:
            image.save(tmp)


def check_picture_outputs(pictures: Sequence[str], output: str, flag: str = "--output") -> None:
    """Refuse (:class:`yolo3.core.files.OutputError`) an output folder where a drawn copy would replace
    one of the pictures being read, or that cannot be written; nothing is touched.

    Args:
        pictures: the picture files of the run (:func:`yolo3.datasets.imageio.list_images`).
        output: the folder for the drawn copies.
        flag: the option's name, for the message.
    """
    check_output_dir(output, flag)
    if not os.path.isdir(output):
        return
    inputs = {os.path.normcase(os.path.realpath(p)): p for p in pictures}
    used: set[str] = set()
    for path in pictures:
        target = os.path.join(output, output_name(path, used))
        clash = inputs.get(os.path.normcase(os.path.realpath(target)))
        if clash is not None or (os.path.exists(target) and any(same_file(target, p) for p in pictures)):
            raise OutputError(f"{flag} {output}: the drawn copy of {path} would replace the input picture "
                              f"{clash or target}; choose another folder")


def describe(path, det, class_names: Sequence[str]) -> str:
    """``path: N object(s): dog 0.93, car 0.51``.

    Args:
        path: the picture's name.
        det: its detections (``scores``, ``class_ids``).
        class_names: the class names.
    """
    items = ", ".join(f"{class_names[int(c)]} {float(s):.2f}" for s, c in zip(det.scores, det.class_ids))
    return f"{path}: {len(det)} object(s){': ' + items if items else ''}"


def show_picture(rgb: np.ndarray) -> None:
    """Show a drawn picture (uint8 RGB) until a key is pressed.

    Args:
        rgb: uint8 (H, W, 3) RGB picture, shown in an OpenCV window named ``yolo3``.
    """

    cv2.imshow("yolo3", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.waitKey(0)


def _drawn_output(detector, options: PictureOptions, used: set[str]) -> Callable:
    """``finish(path, image, det)``: draw, then save and/or show, as the options ask; returns the saved path."""
    def finish(path: str, image: np.ndarray, det) -> str | None:
        if not (options.output or options.show):
            return None
        drawn = detector.draw(image, det)
        out = None
        if options.output:
            out = os.path.join(options.output, output_name(path, used))
            try:
                save_picture(drawn, out)
            except OSError as exc:  # disk full, folder removed mid-run: one line, no half-written picture
                raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from None
        if options.show:
            show_picture(drawn)
        return out

    return finish


def detect_pictures(detector, paths: Sequence[str], records: list, options: PictureOptions) -> int:
    """Detect on every picture of ``paths`` (files, folders, globs), batched and overlapped; per-picture lines
    go to stdout, unreadable pictures and the summary to stderr. Returns the count that could not be read.

    Args:
        detector: a :class:`yolo3.inference.detector.Detector`.
        paths: files, folders or globs.
        records: receives one record per picture read.
        options: output folder, display, batch size, quiet.

    Raises:
        NoPicturesError: the paths name no picture.
    """
    pictures = list_images(paths)
    if not pictures:
        raise NoPicturesError("no pictures given (empty folder?)")
    if options.output:
        check_picture_outputs(pictures, options.output)
        os.makedirs(options.output, exist_ok=True)
    failed: list[str] = []
    finish = _drawn_output(detector, options, set())
    bar = tqdm(total=len(pictures), unit="img", desc="pictures", disable=options.quiet or len(pictures) < 2,
               dynamic_ncols=True)

    def read_all():
        for path in pictures:
            try:
                yield path, read_image_rgb(path)
            except ImageReadError as exc:
                failed.append(path)
                tqdm.write(f"error: cannot read {exc}", file=sys.stderr)
                bar.update(1)

    def handle(path, image, det):
        records.append(det.record(path, image.shape, detector.class_names))
        if not options.quiet:
            tqdm.write(describe(path, det, detector.class_names))
        finish(path, image, det)

    try:
        pipelined_detect(detector, read_all(), handle, batch_size=options.batch_size, on_batch=bar.update)
    finally:
        bar.close()
    print(f"{len(pictures) - len(failed)} picture(s) processed"
          + (f", {len(failed)} could not be read" if failed else "")
          + (f"; drawn pictures in {options.output}" if options.output else ""), file=sys.stderr)
    return len(failed)


def prompt_pictures(detector, records: list, options: PictureOptions,
                    ask: Callable[[str], str] = input) -> int:
    """keras-yolo3's loop asking for file names (an empty line, ``q`` or EOF ends it); returns 0.

    Args:
        detector: a :class:`yolo3.inference.detector.Detector`.
        records: receives one record per picture read.
        options: output folder and display (batch size and quiet do not apply).
        ask: reads one answer after showing the prompt (default :func:`input`).
    """
    finish = _drawn_output(detector, options, set())
    while True:
        try:
            path = ask("Input image filename:").strip().strip("'\"")
        except EOFError:
            print()
            break
        if path in ("", "q", "quit", "exit"):
            break
        try:
            image = read_image_rgb(path)
        except ImageReadError as exc:
            print(f"Open Error! Try again! ({exc})")
            continue
        det = detector.detect_one(image)
        records.append(det.record(path, image.shape, detector.class_names))
        print(describe(path, det, detector.class_names))
        if options.output:
            os.makedirs(options.output, exist_ok=True)
            if same_file(os.path.join(options.output, output_name(path, set())), path):
                print(f"not saved: the drawn copy would replace {path}")
                continue
        out = finish(path, image, det)
        if out:
            print(f"saved {out}")
    return 0


def write_detections_json(path: str, records: list, fmt: str, class_names: Sequence[str]) -> None:
    """Write native records (or, with ``fmt == "coco"``, COCO results) to ``path`` atomically.

    Args:
        path: the JSON file.
        records: one record per picture or frame.
        fmt: ``"native"`` or ``"coco"`` (:func:`yolo3.datasets.coco.coco_results`).
        class_names: the class names (COCO category ids follow them).
    """
    data = coco_results(records, class_names) if fmt == "coco" else records
    with atomic_open(path) as f:
        json.dump(data, f, indent=1)
