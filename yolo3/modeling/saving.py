"""Saving and loading models and weights files; copying weights between models by layer name."""
from __future__ import annotations

import json
import os
import tempfile
import zipfile

import h5py
import keras

from .builder import build_model_from_cfg
from .cfg import DarknetError, parse_cfg_text

__all__ = ["save_model", "save_weights_file", "load_model", "load_weights_into", "WEIGHTS_META_ATTR"]


#: Root attribute of a ``convert.py -w`` weights file holding the cfg text and metadata (JSON).
WEIGHTS_META_ATTR = "yolo3_meta"


def _atomic_target(path: str, suffix: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"output directory does not exist: {folder}")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    os.unlink(tmp)
    return tmp


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
    tmp = _atomic_target(path, ext)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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

    tmp = _atomic_target(path, ".weights.h5")
    try:
        model.save_weights(tmp)
        meta = {"cfg": cfg_text, "format": "yolo3-weights-1", "model_name": model.name}
        meta.update(extra or {})
        with h5py.File(tmp, "a") as f:
            f.attrs[WEIGHTS_META_ATTR] = json.dumps(meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _weights_meta(path: str) -> dict | None:
    try:
        with h5py.File(path, "r") as f:
            if WEIGHTS_META_ATTR in f.attrs:
                return json.loads(f.attrs[WEIGHTS_META_ATTR])
    except OSError:
        return None
    return None


def load_model(path: str, compile: bool = False):
    """Load a full model (``.keras``/``.h5``) or a ``convert.py -w`` weights file as a model.

    Full models load with Keras' default ``safe_mode=True``.

    Args:
        path: a ``.keras`` zip, a full ``.h5`` model, or a weights file with :data:`WEIGHTS_META_ATTR`
            (rebuilt from its embedded cfg, then the weights loaded).
        compile: passed to ``keras.models.load_model`` (full models only).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is neither a Keras model nor a yolo3 weights file.
    """


    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file not found: {path}")
    if zipfile.is_zipfile(path):
        return keras.models.load_model(path, compile=compile)
    meta = _weights_meta(path)
    if meta is not None:
        model = build_model_from_cfg(parse_cfg_text(meta["cfg"], path), name=meta.get("model_name"))
        _load_keras_weights(model, path)
        return model
    try:
        return keras.models.load_model(path, compile=compile)
    except Exception as exc:  # noqa: BLE001 - reported as one line
        raise ValueError(f"{path} is neither a Keras model nor a yolo3 weights file: {exc}") from None


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
