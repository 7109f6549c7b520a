"""Reading Darknet ``.weights`` files into a model built from the same cfg."""
from __future__ import annotations

import os
from typing import Iterable

import numpy as np
from tqdm import tqdm

from .builder import build_model_from_cfg
from .cfg import DarknetCfg, DarknetError, parse_cfg

__all__ = ["WeightsError", "conv_weight_count", "read_weights_header", "load_darknet_weights", "convert"]


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
    try:
        file_size = os.path.getsize(weights_path)
        f = open(weights_path, "rb")
    except FileNotFoundError:
        raise WeightsError(f"weights file not found: {weights_path}") from None
    except OSError as exc:
        raise WeightsError(f"cannot read weights file {weights_path}: {exc}") from None
    with f:
        version, seen, header_size = read_weights_header(f)
        needed = conv_weight_count(model, cfg)
        available_bytes = file_size - header_size
        if available_bytes != needed * 4:
            have = available_bytes / 4
            have_s = f"{int(have)}" if have == int(have) else f"{have:.2f}"
            kind = "shorter" if available_bytes < needed * 4 else "longer"
            raise WeightsError(
                f"{weights_path} is {kind} than {cfg.path} needs: it holds {have_s} float32 values after its "
                f"{header_size}-byte header, the cfg's convolutions need {needed} "
                f"(wrong cfg for these weights, or a different class count?)")
        data = np.frombuffer(f.read(), dtype="<f4")
    offset = 0
    convs = [(i, s) for i, s in enumerate(cfg.layers) if s.type == "convolutional"]
    iterator: Iterable = convs
    if progress:
        iterator = tqdm(convs, desc="loading weights", unit="conv", leave=False)
    for i, sec in iterator:
        conv = model.get_layer(f"conv_{i}")
        kh, kw, cin, n = conv.kernel.shape

        def take(count: int) -> np.ndarray:
            nonlocal offset
            out = data[offset:offset + count]
            offset += count
            return out

        if sec.get_int("batch_normalize", 0):
            beta = take(n)
            gamma = take(n)
            mean = take(n)
            var = take(n)
            kernel = take(n * cin * kh * kw).reshape(n, cin, kh, kw).transpose(2, 3, 1, 0)
            conv.set_weights([kernel])
            model.get_layer(f"bn_{i}").set_weights([gamma, beta, mean, var])
        else:
            bias = take(n)
            kernel = take(n * cin * kh * kw).reshape(n, cin, kh, kw).transpose(2, 3, 1, 0)
            conv.set_weights([kernel, bias])
    assert offset == data.size
    return {"version": version, "seen": seen, "values": int(offset)}


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
