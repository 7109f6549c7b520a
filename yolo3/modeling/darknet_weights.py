"""Reading Darknet ``.weights`` files into a model built from the same cfg: whole files, and the partial
backbone files Darknet trains from (``darknet53.conv.74``, ``yolov4.conv.137``, ``yolov4-tiny.conv.29``:
its header, then the values of the cfg's first K convolutions)."""
from __future__ import annotations

from typing import Iterable

import numpy as np
from tqdm import tqdm

from .builder import build_model_from_cfg
from .cfg import DarknetCfg, DarknetError, parse_cfg

__all__ = ["WeightsError", "conv_weight_count", "read_weights_header", "load_darknet_weights",
           "load_darknet_weights_prefix", "looks_like_darknet_weights", "is_darknet_weights_file", "convert"]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class WeightsError(DarknetError):
    pass


def conv_weight_count(model, cfg: DarknetCfg) -> int:
    """Number of float32 values the model's convolutions read from a ``.weights`` file.

    Per convolution: the kernel, plus beta, gamma, mean and variance (4 x filters) with
    ``batch_normalize=1``, else the bias (filters).

    Args:
        model: a Keras model built from ``cfg`` by :func:`build_model_from_cfg` (layers ``conv_{i}``).
        cfg: the parsed cfg the model was built from.
    """
    total = 0
    for i, sec in enumerate(cfg.layers):
        if sec.type != "convolutional":
            continue
        kernel = model.get_layer(f"conv_{i}").kernel.shape
        n = kernel[-1]
        total += n * (4 if sec.get_int("batch_normalize", 0) else 1) + int(np.prod(kernel))
    return total


def read_weights_header(f) -> tuple[tuple[int, int, int], int, int]:
    """Read the header from an open binary file: ((major, minor, revision), seen, header_bytes).

    ``seen`` is 64-bit when ``major*10 + minor >= 2`` and both are below 1000, else 32-bit,
    as Darknet's ``load_weights_upto`` reads it.

    Args:
        f: a binary file object positioned at the start of a ``.weights`` file; left just after the header.

    Returns:
        ``((major, minor, revision), seen, header_bytes)``: ``seen`` is the count of images trained on
        (0 when the file ends inside it), ``header_bytes`` is 20 or 16.

    Raises:
        WeightsError: the file is shorter than the 12-byte version triple.
    """
    head = f.read(12)
    if len(head) < 12:
        raise WeightsError(f"weights file too short for a header ({len(head)} bytes)")
    major, minor, revision = np.frombuffer(head, "<i4")
    if (major * 10 + minor) >= 2 and major < 1000 and minor < 1000:
        raw = f.read(8)
        seen = int(np.frombuffer(raw, "<u8")[0]) if len(raw) == 8 else 0
        size = 20
    else:
        raw = f.read(4)
        seen = int(np.frombuffer(raw, "<i4")[0]) if len(raw) == 4 else 0
        size = 16
    return (int(major), int(minor), int(revision)), seen, size


def _read_weights_file(path: str) -> tuple[tuple[int, int, int], int, int, bytes]:
    """(version, seen, header bytes, the bytes after the header) of a Darknet weights file."""
    try:
        with open(path, "rb") as f:
            version, seen, header_size = read_weights_header(f)
            return version, seen, header_size, f.read()
    except FileNotFoundError:
        raise WeightsError(f"weights file not found: {path}") from None
    except IsADirectoryError:
        raise WeightsError(f"weights file {path} is a folder") from None
    except OSError as exc:
        raise WeightsError(f"cannot read weights file {path}: {exc}") from None


def load_darknet_weights(model, cfg: DarknetCfg, weights_path: str, progress: bool = True) -> dict:
    """Load a Darknet ``.weights`` file into a model built by :func:`build_model_from_cfg`.

    Args:
        model: the Keras model built from ``cfg`` (layers ``conv_{i}`` and ``bn_{i}``); its weights are set
            in place (Darknet's (out, in, h, w) kernels transposed to Keras's (h, w, in, out)).
        cfg: the parsed cfg the model was built from.
        weights_path: the ``.weights`` file.
        progress: show a tqdm bar over the convolutions.

    Returns:
        The header: ``{"version": (major, minor, revision), "seen": int, "values": n}``, ``n`` the float32
        values read.

    Raises:
        WeightsError: the file is missing or unreadable, or holds fewer or more values than the cfg needs.
    """
    version, seen, header_size, body = _read_weights_file(weights_path)
    needed = conv_weight_count(model, cfg)
    available_bytes = len(body)
    if available_bytes != needed * 4:
        have = available_bytes / 4
        have_s = f"{int(have)}" if have == int(have) else f"{have:.2f}"
        kind = "shorter" if available_bytes < needed * 4 else "longer"
        raise WeightsError(
            f"{weights_path} is {kind} than {cfg.path} needs: it holds {have_s} float32 values after its "
            f"{header_size}-byte header, the cfg's convolutions need {needed} "
            f"(wrong cfg for these weights, or a different class count?)")
    data = np.frombuffer(body, dtype="<f4")
    convs = [(i, s) for i, s in enumerate(cfg.layers) if s.type == "convolutional"]
    iterator: Iterable = convs
    if progress:
        iterator = tqdm(convs, desc="loading weights", unit="conv", leave=False)
    offset = 0
    for i, sec in iterator:
        offset = _load_conv(model, i, sec, data, offset)
    assert offset == data.size
    return {"version": version, "seen": seen, "values": int(offset)}


def _conv_values(model, i: int, sec, filters: int | None = None) -> int:
    """Float32 values convolution ``i`` reads: kernel plus 4 x filters (BN) or filters (bias)."""
    kh, kw, cin, n = model.get_layer(f"conv_{i}").kernel.shape
    n = n if filters is None else filters
    return n * (4 if sec.get_int("batch_normalize", 0) else 1) + int(kh * kw * cin * n)


def _load_conv(model, i: int, sec, data: np.ndarray, offset: int) -> int:
    """Set ``conv_i`` (and ``bn_i``) from ``data[offset:]`` in Darknet's order; returns the new offset."""
    conv = model.get_layer(f"conv_{i}")
    kh, kw, cin, n = conv.kernel.shape

    def take(count: int) -> np.ndarray:
        nonlocal offset
        out = data[offset:offset + count]
        offset += count
        return out

    if sec.get_int("batch_normalize", 0):
        beta, gamma, mean, var = take(n), take(n), take(n), take(n)
        kernel = take(n * cin * kh * kw).reshape(n, cin, kh, kw).transpose(2, 3, 1, 0)
        conv.set_weights([kernel])
        model.get_layer(f"bn_{i}").set_weights([gamma, beta, mean, var])
    else:
        bias = take(n)
        kernel = take(n * cin * kh * kw).reshape(n, cin, kh, kw).transpose(2, 3, 1, 0)
        conv.set_weights([kernel, bias])
    return offset


def looks_like_darknet_weights(head: bytes) -> bool:
    """Whether the first 20 bytes of a file look like a Darknet ``.weights`` header (version 0.x or 1.x).

    Args:
        head: the file's first bytes (at least 20 for a yes).
    """
    if len(head) < 20:
        return False
    major, minor, revision = np.frombuffer(head[:12], np.int32)
    return 0 <= major <= 1 and 0 <= minor < 100 and 0 <= revision < 1_000_000


def is_darknet_weights_file(path: str) -> bool:
    """Whether ``path`` is a Darknet ``.weights`` file (full or partial): neither a zip (``.keras``) nor
    HDF5 (``.h5``), and its header looks like Darknet's.

    Args:
        path: an existing file.
    """
    with open(path, "rb") as f:
        head = f.read(20)
    return not head.startswith((b"PK", _HDF5_SIGNATURE)) and looks_like_darknet_weights(head)


def _head_convs(cfg: DarknetCfg) -> set[int]:
    """Sections of the convolutions that feed a ``[yolo]`` section (their filters follow the class count)."""
    layers = cfg.layers
    return {i for i, s in enumerate(layers) if s.type == "convolutional" and i + 1 < len(layers)
            and layers[i + 1].type == "yolo"}


def _head_anchor_count(sec) -> int:
    return len(sec.get_ints("mask")) if "mask" in sec.options else sec.get_int("num", 1)


def _layout_for_classes(model, cfg: DarknetCfg, values: int) -> list[tuple[int, object, int, bool]] | None:
    """The file layout (section, section object, values, load?) of a whole ``.weights`` file made for the
    same cfg with another class count, when ``values`` fits one (None otherwise); head convolutions of
    another class count are read but not loaded."""
    convs = [(i, s) for i, s in enumerate(cfg.layers) if s.type == "convolutional"]
    heads = _head_convs(cfg)
    fixed, per_class = sum(_conv_values(model, i, s) for i, s in convs if i not in heads), 0
    for i in heads:
        kh, kw, cin, _ = model.get_layer(f"conv_{i}").kernel.shape
        anchors, per_filter = _head_anchor_count(cfg.layers[i + 1]), 1 + int(kh * kw * cin)
        per_class += anchors * per_filter
        fixed += 5 * anchors * per_filter
    if not heads or values <= fixed or (values - fixed) % per_class:
        return None
    classes = (values - fixed) // per_class
    layout = []
    for i, s in convs:
        filters = _head_anchor_count(cfg.layers[i + 1]) * (5 + classes) if i in heads else None
        load = filters is None or filters == model.get_layer(f"conv_{i}").kernel.shape[-1]
        layout.append((i, s, _conv_values(model, i, s, filters), load))
    return layout


def load_darknet_weights_prefix(model, cfg: DarknetCfg, weights_path: str) -> dict:
    """Load a Darknet weights file into the first convolutions of ``model``: a partial backbone file
    (``darknet53.conv.74``, ``yolov4.conv.137`` ...: the header, then the first K convolutions in cfg
    order, K given by the file's length) or a whole ``.weights`` file of the same cfg (for any class
    count: head convolutions of another class count are then left as built).

    Args:
        model: a model built from ``cfg`` (layers ``conv_{i}``, ``bn_{i}``), changed in place.
        cfg: the parsed cfg the model was built from.
        weights_path: the Darknet weights file.

    Returns:
        ``{"version": (major, minor, revision), "seen": int, "values": n, "loaded": [sections],
        "skipped": [sections]}``: ``loaded`` the sections of the convolutions set, ``skipped`` those of
        head convolutions read but left as built (another class count).

    Raises:
        WeightsError: the file is missing or unreadable, or its length does not end on a convolution
            boundary of ``model`` (nor fits the whole cfg at some class count): a cfg/weights mismatch.
    """
    version, seen, header_size, body = _read_weights_file(weights_path)
    data_bytes = len(body)
    data = np.frombuffer(body, dtype="<f4") if data_bytes and data_bytes % 4 == 0 else None
    convs = [(i, s) for i, s in enumerate(cfg.layers) if s.type == "convolutional"]
    layout, total = [], 0
    for i, s in convs:
        total += _conv_values(model, i, s)
        layout.append((i, s, _conv_values(model, i, s), True))
        if data is not None and total == data.size:
            break
    else:
        layout = _layout_for_classes(model, cfg, data.size) if data is not None else None
        if layout is None:
            raise WeightsError(_mismatch(model, cfg, weights_path, data_bytes, header_size))
    offset, loaded, skipped = 0, [], []
    for i, s, count, load in layout:
        if load:
            _load_conv(model, i, s, data, offset)
            loaded.append(i)
        else:
            skipped.append(i)
        offset += count
    assert offset == data.size
    return {"version": version, "seen": seen, "values": int(offset), "loaded": loaded, "skipped": skipped}


def _mismatch(model, cfg: DarknetCfg, path: str, data_bytes: int, header_size: int) -> str:
    """The one-line cfg/weights mismatch message: the file's value count and the nearest boundaries."""
    have = data_bytes / 4
    bounds, total = [], 0
    for i, s in enumerate(cfg.layers):
        if s.type == "convolutional":
            total += _conv_values(model, i, s)
            bounds.append((total, i))
    below = [(v, i) for v, i in bounds if v < have]
    above = [(v, i) for v, i in bounds if v > have]
    near = []
    if below:
        near.append(f"{below[-1][0]} (through conv_{below[-1][1]})")
    if above:
        near.append(f"{above[0][0]} (through conv_{above[0][1]})")
    have_s = f"{int(have)}" if have == int(have) else f"{have:.2f}"
    return (f"{path} does not fit {cfg.path}: it holds {have_s} float32 values after its {header_size}-byte header, "
            f"which does not end on a convolution of the model (nearest: {' or '.join(near) or 'none'}); "
            "cfg/weights mismatch: weights made for another cfg?")


def convert(cfg_path: str, weights_path: str, progress: bool = True):
    """Build the model for ``cfg_path`` and load ``weights_path`` into it.

    Args:
        cfg_path: the Darknet ``.cfg`` file.
        weights_path: the matching ``.weights`` file.
        progress: show tqdm bars while building and loading.

    Returns:
        The Keras model with the Darknet weights loaded.

    Raises:
        DarknetError: the cfg cannot be read or parsed (:class:`CfgError`), or the weights do not fit it
            (:class:`WeightsError`).
    """
    cfg = parse_cfg(cfg_path)
    model = build_model_from_cfg(cfg, progress=progress)
    load_darknet_weights(model, cfg, weights_path, progress=progress)
    return model
