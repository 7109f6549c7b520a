"""OpenVINO IR export: the network as ``.xml`` + ``.bin``, fp32 or int8 (NNCF), head metadata inside.

The IR holds the bare network (input ``images`` float32 (N, H, W, 3) letterboxed RGB 0..1, outputs
the raw heads); ``Detector(path, backend="openvino")`` attaches the decoding + per-class NMS graph
with its own thresholds when it compiles the model. bf16 is no file format but a choice made when
the IR is compiled: export fp32 and run it with ``precision="bf16"``.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Sequence

from ..backends.openvino_quantize import calibration_pictures, quantize_model
from ..backends.openvino_runtime import OpenVinoNetwork, OpenVinoUnavailableError, save_ir
from ..ops.letterbox import letterbox_image
from .common import ExportError, _net_size

__all__ = ["IR_PRECISIONS", "export_openvino_ir", "check_openvino_target"]


IR_PRECISIONS = ("fp32", "int8")


def check_openvino_target(precision: str, calibration: str | None) -> None:
    """Fail before the model is loaded: a precision an IR cannot hold, int8 without calibration
    pictures, or openvino / nncf not installed."""
    if precision == "bf16":
        raise ExportError("bf16 is chosen when the IR is compiled, not stored in it: export fp32 and run it with "
                          "--backend openvino --precision bf16")
    if precision not in IR_PRECISIONS:
        raise ExportError(f"--precision must be one of {', '.join(IR_PRECISIONS)} for --format openvino, "
                          f"got {precision!r}")
    needed = ("openvino", "onnx") + (("nncf",) if precision == "int8" else ())
    for name in needed:
        if importlib.util.find_spec(name) is None:
            raise ExportError(f"--format openvino{' --precision int8' if name == 'nncf' else ''} needs the "
                              f"optional package '{name}': pip install {name}")
    if precision == "int8" and not calibration:
        raise ExportError("--precision int8 needs --calibration (an annotation file or a folder of pictures)")
    if calibration and not os.path.exists(calibration):
        raise ExportError(f"--calibration {calibration} not found (give an annotation file or a folder of pictures)")


def export_openvino_ir(model, output: str, input_size: Sequence[int] | int | None = None, precision: str = "fp32",
                       calibration: str | None = None, calibration_count: int | None = None) -> str:
    """Write ``model``'s network as OpenVINO IR ``output`` (``.xml``, its ``.bin`` beside it).

    Args:
        model: a Keras YOLO model.
        output: the ``.xml`` file (both files replaced only once written).
        input_size: network (height, width) or one int the input is fixed to; default the model's.
        precision: ``"fp32"`` or ``"int8"`` (NNCF post-training quantization on ``calibration``).
        calibration: int8: an annotation file or a folder of pictures.
        calibration_count: int8: use at most this many of the pictures (sorted by path); None: all.

    Raises:
        ExportError: a bad option, missing package or calibration set.
    """
    check_openvino_target(precision, calibration)
    net_size = _net_size(model, input_size)
    try:
        network = OpenVinoNetwork(model, input_size=net_size)
    except OpenVinoUnavailableError as exc:
        raise ExportError(str(exc)) from None
    ir = network.model
    if precision == "int8":
        pictures = calibration_pictures(calibration)[:calibration_count]
        ir = quantize_model(network, pictures, lambda image: letterbox_image(image, net_size)[None])
    save_ir(ir, output, network.head_specs)
    return output
