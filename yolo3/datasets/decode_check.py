"""Decoding every image of a data set once, before the long work starts.

Reading headers (what :mod:`yolo3.datasets.cleaning` does) passes a truncated JPEG, or a TIFF / WebP /
PPM that PIL opens but TensorFlow's decoder does not; the run then dies hours later in ``fit()`` or
mid-evaluation, naming no file. :func:`find_undecodable` decodes each image with the decoder the run
will use (given by the caller: training passes its ``tf.io.decode_image`` reader, evaluation
:func:`yolo3.datasets.imageio.read_image_rgb`), in parallel threads with a progress bar, and remembers
every result by (path, size, mtime) in a JSON cache per decoder, so a second run over the same files
checks nothing again.
"""
from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable

from tqdm import tqdm

from ..core.files import atomic_open, default_cache_dir
from ..errors import Yolo3Error, first_names

__all__ = ["DecodeReport", "UndecodableImagesError", "find_undecodable", "check_decodable", "cache_file"]

#: cache format; a file of another version is ignored
_VERSION = 1


class UndecodableImagesError(Yolo3Error):
    """Images the run's decoder cannot decode (named, with the decoder's reason for the first)."""


@dataclass
class DecodeReport:
    """What :func:`find_undecodable` did: ``checked`` images decoded now, ``cached`` answered from the
    cache, ``bad`` (path, reason) of the images that failed, in input order."""

    checked: int = 0
    cached: int = 0
    bad: list[tuple[str, str]] = field(default_factory=list)


def cache_file(decoder: str, cache_dir: str | None = None) -> str:
    """The JSON cache of one decoder's results.

    Args:
        decoder: a short name of the decoder (``"tf"``, ``"pil"``); one cache each.
        cache_dir: the folder (default ``$YOLO3_CACHE`` or ``~/.cache/yolo3``).
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", decoder)
    return os.path.join(cache_dir or default_cache_dir(), f"decode-check-{safe}.json")


def _load_cache(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data["images"] if data.get("version") == _VERSION and isinstance(data.get("images"), dict) else {}
    except (OSError, ValueError, AttributeError, KeyError):
        return {}  # no cache, or a damaged one: decode again


def _save_cache(path: str, images: dict) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_open(path) as f:
            json.dump({"version": _VERSION, "images": images}, f)
    except OSError:
        pass  # a read-only cache folder only costs the next run its speed


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _try(decode: Callable[[str], object], path: str) -> str | None:
    try:
        decode(path)
    except Exception as exc:  # noqa: BLE001 - any decoder error means the image is unusable
        text = re.sub(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\].*$", "", str(exc).strip()).splitlines()
        return (text[0] if text else type(exc).__name__)[:200]
    return None


def find_undecodable(paths: Iterable[str], decode: Callable[[str], object], decoder: str, *,
                     cache_dir: str | None = None, use_cache: bool = True, workers: int | None = None,
                     progress: bool = True) -> DecodeReport:
    """Decode every image once (or look its result up) and report those that fail.

    Args:
        paths: image files (duplicates are decoded once).
        decode: decodes one file, raising on failure (its result is dropped).
        decoder: the decoder's name, which picks the cache file.
        cache_dir: the cache folder (see :func:`cache_file`).
        use_cache: read and update the cache (False: decode everything, write nothing).
        workers: decoding threads (default: the CPU count, at most 8).
        progress: show a tqdm bar over the images decoded now.
    """
    paths = list(dict.fromkeys(os.path.abspath(p) for p in paths))
    cache_path = cache_file(decoder, cache_dir)
    cache = _load_cache(cache_path) if use_cache else {}
    report, results, todo = DecodeReport(), {}, []
    for path in paths:
        stamp = _stamp(path)
        entry = cache.get(path)
        if stamp is not None and isinstance(entry, list) and len(entry) == 3 and entry[:2] == stamp:
            results[path] = entry[2]
            report.cached += 1
        else:
            todo.append((path, stamp))
    if todo:
        with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool, \
                tqdm(total=len(todo), desc=f"decoding images ({decoder})", unit="img", disable=not progress,
                     mininterval=0.5) as bar:
            for (path, stamp), error in zip(todo, pool.map(lambda item: _try(decode, item[0]), todo)):
                results[path] = error if stamp is not None else "file not found"
                if stamp is not None:
                    cache[path] = stamp + [error]
                bar.update(1)
        report.checked = len(todo)
        if use_cache:
            _save_cache(cache_path, cache)
    report.bad = [(p, results[p]) for p in paths if results[p] is not None]
    return report


def check_decodable(paths: Iterable[str], decode: Callable[[str], object], decoder: str, *,
                    skip_bad: bool = False, **options) -> list[str]:
    """The paths that decode; :class:`UndecodableImagesError` naming the others unless ``skip_bad``.

    Args:
        paths: image files.
        decode: as for :func:`find_undecodable`.
        decoder: as for :func:`find_undecodable`.
        skip_bad: leave undecodable images out (the caller reports how many) instead of raising.
        options: the keyword options of :func:`find_undecodable`.
    """
    paths = list(paths)
    report = find_undecodable(paths, decode, decoder, **options)
    if report.bad and not skip_bad:
        first_path, first_reason = report.bad[0]
        raise UndecodableImagesError(
            f"{len(report.bad)} image(s) cannot be decoded: {first_names(p for p, _ in report.bad)} "
            f"({first_path}: {first_reason}); fix or remove them, or pass --skip-missing")
    bad = {p for p, _ in report.bad}
    return [p for p in paths if os.path.abspath(p) not in bad]
