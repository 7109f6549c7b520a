"""Saving and loading models and weights files; copying weights between models by layer name."""
from __future__ import annotations

import json
import os
import tempfile
import zipfile

import h5py
import keras

from ..core.files import atomic_path
from .builder import build_model_from_cfg
from .cfg import DarknetError, ModelFileError, ModelNotFoundError, parse_cfg_text
from .darknet_weights import looks_like_darknet_weights
from .keras_yolo3 import is_keras_yolo3_file, load_keras_yolo3

__all__ = ["save_model", "save_weights_file", "load_model", "load_weights_into", "WEIGHTS_META_ATTR",
           "ModelFileError", "ModelNotFoundError"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


#: Root attribute of a ``convert.py -w`` weights file holding the cfg text and metadata (JSON).
WEIGHTS_META_ATTR = "yolo3_meta"


def _check_folder(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"output directory does not exist: {folder}")


def save_model(model, path: str) -> None:
    """Save a full model to ``path`` (``.keras`` or ``.h5``) atomically: all or nothing.

    Args:
        model: the Keras model.
        path: the output file; its extension picks the format; its folder must exist.

    Raises:
        ValueError: ``path`` ends in neither ``.keras`` nor ``.h5``.
        FileNotFoundError: the output folder does not exist.
    """
    ext = ".keras" if path.endswith(".keras") else ".h5" if path.endswith(".h5") else None
    if ext is None:
        raise ValueError(f"model file must end in .keras or .h5: {path}")
    _check_folder(path)
    with atomic_path(path) as tmp:
        model.save(tmp)


def save_weights_file(model, path: str, cfg_text: str, extra: dict | None = None) -> None:
    """Write weights only (Keras ``.weights.h5`` layout) with the cfg text embedded.

    The file's root attribute :data:`WEIGHTS_META_ATTR` holds JSON ``{"cfg": text, ...}`` so the
    architecture can be rebuilt and the weights loaded by layer name (:func:`load_weights_into`).
    Any file name works (keras-yolo3 wrote ``model_data/yolo_weights.h5``).

    Args:
        model: the Keras model (built from ``cfg_text``); its name is stored as ``model_name``.
        path: the output file, written atomically; its folder must exist.
        cfg_text: the Darknet cfg text the model was built from.
        extra: further JSON-serialisable metadata merged into the stored dict.

    Raises:
        FileNotFoundError: the output folder does not exist.
    """

    _check_folder(path)
    with atomic_path(path, suffix=".weights.h5") as tmp:  # Keras writes weights only to *.weights.h5
        model.save_weights(tmp)
        meta = {"cfg": cfg_text, "format": "yolo3-weights-1", "model_name": model.name}
        meta.update(extra or {})
        with h5py.File(tmp, "a") as f:
            f.attrs[WEIGHTS_META_ATTR] = json.dumps(meta)


def _weights_meta(path: str) -> dict | None:
    try:
        with h5py.File(path, "r") as f:
            if WEIGHTS_META_ATTR in f.attrs:
                return json.loads(f.attrs[WEIGHTS_META_ATTR])
    except OSError:
        return None
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def _load_keras_file(path: str, compile: bool, what: str):
    """``keras.models.load_model`` with every failure as one :class:`ModelFileError` line."""
    try:
        return keras.models.load_model(path, compile=compile)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types (ValueError, TypeError, OSError ...)
        text = str(exc)
        if "Lambda" in text or "safe_mode" in text:
            raise ModelFileError(f"{path} contains a Lambda layer (arbitrary Python code), which is not loaded; "
                                 "export the model without it") from None
        if isinstance(exc, FileNotFoundError) or "File not found" in text:  # Keras' words for a broken zip
            raise ModelFileError(f"{path} is a damaged or incomplete {what} ({_first_line(exc)})") from None
        raise ModelFileError(f"cannot load {what} {path}: {type(exc).__name__}: {_first_line(exc)}") from None


def _load_hdf5(path: str, compile: bool, anchors, num_classes):
    meta = _weights_meta(path)
    if meta is not None:
        try:
            model = build_model_from_cfg(parse_cfg_text(meta["cfg"], path), name=meta.get("model_name"))
            _load_keras_weights(model, path)
        except DarknetError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged weights file
            raise ModelFileError(f"{path} is a damaged yolo3 weights file ({_first_line(exc)})") from None
        return model
    if is_keras_yolo3_file(path):
        return load_keras_yolo3(path, anchors, num_classes)
    try:
        with h5py.File(path, "r") as f:
            full = "model_config" in f.attrs
    except OSError as exc:
        raise ModelFileError(f"{path} is a damaged HDF5 (.h5) file ({_first_line(exc)})") from None
    if not full:
        raise ModelFileError(f"{path} holds weights only, without the model's architecture (a Keras "
                             "save_weights file?); give a full model, a convert.py -w file or keras-yolo3's .h5")
    return _load_keras_file(path, compile, "Keras .h5 model")


def load_model(path: str, compile: bool = False, *, anchors=None, num_classes: int | None = None):
    """Load a full model (``.keras``/``.h5``), a ``convert.py -w`` weights file, or keras-yolo3's Keras 2
    ``.h5`` (full model or weights; :mod:`yolo3.modeling.keras_yolo3`) as a model.

    Full models load with Keras' default ``safe_mode=True``.

    Args:
        path: a ``.keras`` zip, a full ``.h5`` model, or a weights file with :data:`WEIGHTS_META_ATTR`
            (rebuilt from its embedded cfg, then the weights loaded).
        compile: passed to ``keras.models.load_model`` (full models only).
        anchors: (N, 2) anchors in network pixels for keras-yolo3 files (which hold none); ignored otherwise.
        num_classes: the class count expected for keras-yolo3 files; ignored otherwise.

    Raises:
        ModelNotFoundError: ``path`` does not exist (a ``FileNotFoundError``).
        ModelFileError: a folder, a damaged file, a Darknet ``.weights`` file, weights without an
            architecture, a Lambda layer, or anything else Keras cannot load (one line).
    """
    if os.path.isdir(path):
        raise ModelFileError(f"model {path} is a folder, not a model file")
    if not os.path.isfile(path):
        raise ModelNotFoundError(f"model file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(20)
    if zipfile.is_zipfile(path):
        return _load_keras_file(path, compile, ".keras model")
    if head.startswith(_HDF5_SIGNATURE):
        return _load_hdf5(path, compile, anchors, num_classes)
    if head.startswith(b"PK"):
        raise ModelFileError(f"{path} is a damaged or incomplete .keras model (a broken zip archive)")
    if looks_like_darknet_weights(head):
        raise ModelFileError(f"{path} looks like a Darknet .weights file: convert it first "
                             f"(python convert.py CFG {path} model_data/model.keras)")
    raise ModelFileError(f"{path} is not a model file (neither a .keras zip nor an HDF5 .h5)")


def _load_keras_weights(model, path: str) -> None:
    if path.endswith(".weights.h5"):
        model.load_weights(path)
        return
    with tempfile.TemporaryDirectory() as d:
        link = os.path.join(d, "w.weights.h5")
        os.symlink(os.path.abspath(path), link)
        model.load_weights(link)


def load_weights_into(model, path: str) -> tuple[list[str], list[str]]:
    """Copy weights into ``model`` by layer name from a model or weights file at ``path``.

    Layers whose weight shapes differ (e.g. heads trained for another class count) or that
    the source lacks are skipped; layers without weights are ignored.

    Args:
        model: the Keras model to update in place.
        path: anything :func:`load_model` reads.

    Returns:
        (loaded layer names, skipped layer names).

    Raises:
        DarknetError: no layer matched by name and shape.
    """
    source = load_model(path)
    by_name = {layer.name: layer for layer in source.layers}
    loaded, skipped = [], []
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        src = by_name.get(layer.name)
        src_weights = src.get_weights() if src is not None else None
        if src_weights is None or len(src_weights) != len(weights) or any(
                a.shape != b.shape for a, b in zip(src_weights, weights)):
            skipped.append(layer.name)
            continue
        layer.set_weights(src_weights)
        loaded.append(layer.name)
    if not loaded:
        raise DarknetError(f"no layer of {path} matches the model by name and shape")
    return loaded, skipped
