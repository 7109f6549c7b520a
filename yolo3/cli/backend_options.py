"""The ``--backend``, ``--precision`` and ``--calibration`` flags of yolo_video.py and eval.py, checked
before any model is loaded (``--backend auto``, the default, resolved here: :mod:`yolo3.backends.auto`),
the one line saying what ``auto`` chose, and the one-line warning a precision fallback prints."""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
import warnings
from typing import Iterator

from ..backends.auto import BACKEND_PACKAGES, BackendChoice, choose_backend
from ..backends.openvino_runtime import PrecisionFallbackWarning
from .common import UsageError

__all__ = ["BACKEND_CHOICES", "PRECISION_CHOICES", "add_backend_arguments", "backend_options",
           "announce_backend", "precision_warnings_as_lines"]


BACKEND_CHOICES = ("auto", "tf", "onnxruntime", "openvino")  # yolo3.inference.detector.BACKENDS
PRECISION_CHOICES = ("fp32", "bf16", "int8")  # yolo3.backends.openvino_runtime.PRECISIONS
#: the optional packages each choice needs
_NEEDS = {**BACKEND_PACKAGES, "int8": ("nncf",)}


def add_backend_arguments(ap: argparse.ArgumentParser) -> None:
    """Add ``--backend``, ``--precision`` and ``--calibration`` to ``ap``."""
    ap.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                    help="auto (default): the fastest exact backend installed (tf on a GPU; on a CPU onnxruntime, "
                         "else openvino, else tf; openvino for --precision bf16/int8), said on stderr; or run the "
                         "network in TensorFlow, ONNX Runtime (needs onnxruntime + onnx) or OpenVINO Runtime "
                         "(needs openvino + onnx; network, decoding and NMS in one compiled model); for those two "
                         "a Keras model's ONNX export is cached beside it, an .onnx (or for openvino an IR .xml) "
                         "file is used as is")
    ap.add_argument("--precision", choices=PRECISION_CHOICES, default="fp32",
                    help="--backend openvino (auto picks it): fp32 (exact), bf16 (the CPU's bfloat16 units; fp32 "
                         "with a warning where it has none) or int8 (NNCF post-training quantization on "
                         "--calibration, cached beside the model; needs nncf)")
    ap.add_argument("--calibration", default=None, metavar="FILE|DIR",
                    help="--precision int8: an annotation file or a folder of pictures like the ones to detect "
                         "on (a few hundred is plenty); the quantized model is cached under the set's hash")


def backend_options(args: argparse.Namespace) -> dict:
    """``backend``, ``precision`` and ``calibration`` for :class:`yolo3.inference.detector.Detector`,
    checked: ``auto`` resolved (``args.backend_choice``, printed by :func:`announce_backend` when the
    tool has run); reduced precision needs ``--backend openvino``; int8 needs ``--calibration`` (an
    existing file or folder) unless the model is an int8 IR; the optional packages are installed.

    Raises:
        UsageError: one line saying what to change or install.
    """
    backend, precision, calibration = args.backend, args.precision, args.calibration
    args.backend_choice = None
    if backend == "auto":
        args.backend_choice = choose_backend(precision, getattr(args, "model", None))
        backend = args.backend_choice.backend
    if precision != "fp32" and backend != "openvino":
        raise UsageError(f"--precision {precision} needs --backend openvino (backend {backend} runs fp32)")
    if calibration is not None and precision != "int8":
        raise UsageError("--calibration is for --precision int8 only")
    model = getattr(args, "model", None) or ""
    if precision == "int8" and calibration is None and not model.lower().endswith(".xml"):
        raise UsageError("--precision int8 needs --calibration (an annotation file or a folder of pictures)")
    if calibration is not None and not os.path.exists(calibration):
        raise UsageError(f"--calibration {calibration} not found (give an annotation file or a folder of pictures)")
    needed = _NEEDS.get(backend, ()) + (_NEEDS["int8"] if calibration is not None else ())
    for package in needed:
        if importlib.util.find_spec(package) is None:
            what = ("--precision int8" if package == "nncf" else f"--precision {precision}" if precision != "fp32"
                    else f"--backend {backend}")
            raise UsageError(f"{what} needs the optional package '{package}': pip install {package}")
    return dict(backend=backend, precision=precision, calibration=calibration)


def announce_backend(args: argparse.Namespace) -> None:
    """Print what ``--backend auto`` chose and why (one line on stderr; nothing for an explicit backend)."""
    choice: BackendChoice | None = getattr(args, "backend_choice", None)
    if choice is not None:
        print(choice.line(), file=sys.stderr, flush=True)


@contextlib.contextmanager
def precision_warnings_as_lines() -> Iterator[None]:
    """Within the block, a :class:`yolo3.backends.openvino_runtime.PrecisionFallbackWarning` prints
    ``warning: message`` (one line on stderr) instead of Python's two-line warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PrecisionFallbackWarning)
        yield
    for item in caught:
        if issubclass(item.category, PrecisionFallbackWarning):
            print(f"warning: {item.message}", file=sys.stderr, flush=True)
        else:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
