"""Files shipped inside the package: Darknet cfgs of the built-in models, their COCO anchors and the
COCO / VOC class lists, so an installed package works without the repository checkout.

``resource_path("coco_classes.txt")`` gives the bundled file. :func:`resolve_data_path` keeps
keras-yolo3's paths working: ``model_data/coco_classes.txt`` is the user's file where it exists,
else the bundled copy of that name.
"""
from __future__ import annotations

import os
from importlib import resources

__all__ = ["RESOURCE_NAMES", "resource_path", "resolve_data_path"]

#: the bundled files
RESOURCE_NAMES = ("coco_classes.txt", "voc_classes.txt", "yolo_anchors.txt", "tiny_yolo_anchors.txt",
                  "yolov3.cfg", "yolov3-tiny.cfg", "yolov3-spp.cfg")


def resource_path(name: str) -> str:
    """Path of the bundled file ``name`` (one of :data:`RESOURCE_NAMES`).

    Args:
        name: the bundled file's name, e.g. ``"coco_classes.txt"``.

    Returns:
        The file's path on disk.

    Raises:
        KeyError: ``name`` is not a bundled file.
    """
    if name not in RESOURCE_NAMES:
        raise KeyError(f"no bundled file {name!r} (bundled: {', '.join(RESOURCE_NAMES)})")
    return os.fspath(resources.files(__name__).joinpath(name))


def resolve_data_path(path: str | os.PathLike) -> str:
    """``path`` itself where it exists; else, when it is ``model_data/<name>`` (keras-yolo3's layout)
    or a bare ``<name>`` of a bundled file, the bundled copy; else ``path`` unchanged (so the caller
    reports it missing).

    Args:
        path: the file the user named.

    Returns:
        The path to open, as a ``str``.
    """
    path = os.fspath(path)
    if os.path.exists(path):
        return path
    head, name = os.path.split(os.path.normpath(path))
    if name in RESOURCE_NAMES and os.path.basename(head) in ("", "model_data"):
        return resource_path(name)
    return path
