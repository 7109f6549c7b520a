"""The ONNX export of a model file, cached beside it: the onnxruntime and openvino backends (and so
backend ``auto`` on a CPU) start from it without loading the Keras model or exporting again.

The file is ``<model stem>.<h>x<w>.<key>.onnx`` (``default`` for the model's own size) beside the model
(``$YOLO3_CACHE/onnx`` or ``~/.cache/yolo3/onnx`` where that folder is read-only), written atomically.
``<key>`` (16 hex digits) hashes the model file's bytes, what else shapes the loaded model (the anchors
file and class count a keras-yolo3 ``.h5`` is loaded with), the input size, the onnx version and the
source of the code that loads and exports it (``yolo3/modeling``, ``yolo3/core``, the ONNX writer): a
changed model or a new yolo3 exports again, and the export it replaces (same stem and size) is removed.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Callable, Sequence

from ..core.files import file_digest, writable_cache_folder
from ..core.heads import get_head_specs
from .onnx_export import _import, export_onnx, save_onnx

__all__ = ["export_cache_path", "cached_onnx_export", "model_stem"]

_PACKAGE = Path(__file__).resolve().parents[1]
#: the code whose change changes the export of the same file
_CODE = ("modeling", "core", "backends/onnx_export.py")
_CACHED_NAME = re.compile(r"^(?P<stem>.+)\.(?:\d+x\d+|default)\.[0-9a-f]{16}\.onnx$")


def _code_fingerprint() -> str:
    digest = hashlib.sha256(_import("onnx", "ONNX export").__version__.encode())
    for part in _CODE:
        root = _PACKAGE / part
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root]
        for path in files:
            digest.update(str(path.relative_to(_PACKAGE)).encode() + path.read_bytes())
    return digest.hexdigest()


def _folder(model_path: str) -> str:
    return writable_cache_folder(os.path.dirname(os.path.abspath(model_path)), "onnx")


def export_cache_path(model_path: str, input_size: Sequence[int] | None, loaded_with: str = "") -> str:
    """Where the export of ``model_path`` at ``input_size`` ((height, width), None: the model's own) is cached.

    Args:
        model_path: the model file (``.keras``, ``.h5``, ``convert.py -w`` weights).
        input_size: the fixed network input, or None for the model's default.
        loaded_with: anything else the loaded model depends on (the anchors and class count of an ``.h5``).
    """
    size = f"{input_size[0]}x{input_size[1]}" if input_size else "default"
    digest = hashlib.sha256(f"{file_digest(model_path)} {size} {loaded_with} {_code_fingerprint()}".encode())
    stem = os.path.splitext(os.path.basename(model_path))[0]
    return os.path.join(_folder(model_path), f"{stem}.{size}.{digest.hexdigest()[:16]}.onnx")


def model_stem(path: str) -> str:
    """The model's name of a cached export (``tiny.416x416.<key>.onnx`` -> ``tiny``), else the file's stem."""
    name = os.path.basename(path)
    match = _CACHED_NAME.match(name)
    return match.group("stem") if match else os.path.splitext(name)[0]


def _remove_replaced(path: str) -> None:
    """Remove the earlier exports of the same model stem and size (another model version or yolo3)."""
    folder, name = os.path.split(path)
    prefix = name[: -len(".0123456789abcdef.onnx")] + "."
    for other in os.listdir(folder):
        if other != name and other.startswith(prefix) and _CACHED_NAME.match(other) and \
                model_stem(other) == model_stem(name):
            try:
                os.remove(os.path.join(folder, other))
            except OSError:  # another process's file, or already gone
                pass


def cached_onnx_export(model_path: str, load: Callable[[], object], input_size: Sequence[int] | None,
                       loaded_with: str = "") -> tuple[str, bool]:
    """The cached ONNX export of ``model_path`` (:func:`export_cache_path`), written on the first call.
    Returns (the ``.onnx`` path, whether it was already there).

    Args:
        model_path: the model file.
        load: loads the Keras model (only called when the export is not cached).
        input_size: the fixed (height, width) network input, or None for the model's default.
        loaded_with: see :func:`export_cache_path`.
    """
    path = export_cache_path(model_path, input_size, loaded_with)
    if os.path.isfile(path):
        return path, True
    model = load()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_onnx(export_onnx(model, input_size=tuple(input_size) if input_size else _default_size(model)), path)
    _remove_replaced(path)
    return path, False


def _default_size(model) -> tuple[int, int]:
    return tuple(int(v) for v in get_head_specs(model)[0].net_size)
