"""ONNX export of the bare network with its head metadata."""
from __future__ import annotations

from typing import Sequence

from ..backends.onnx_export import DEFAULT_OPSET, OnnxUnavailableError, export_onnx, save_onnx
from .common import ExportError, _net_size

__all__ = ["export_onnx_file"]


def export_onnx_file(model, output: str, input_size: Sequence[int] | int | None = None, opset: int | None = None,
                     fixed_size: bool = True, method: str = "auto") -> str:
    """Write the bare network to ``output`` as ONNX (:func:`yolo3.backends.onnx_export.export_onnx`,
    head metadata included); batch dynamic.

    Args:
        model: a Keras YOLO model.
        output: the ``.onnx`` file (written atomically).
        input_size: network (height, width) or one int the input is fixed to; default the model's.
        opset: ONNX opset (default :data:`yolo3.backends.onnx_export.DEFAULT_OPSET`).
        fixed_size: False leaves the input height and width dynamic.
        method: ``"native"`` (written from the Keras layers), ``"tf2onnx"`` or ``"auto"`` (native,
            tf2onnx for layers the native writer does not know).

    Raises:
        ExportError: a needed package is missing.
    """
    net_size = _net_size(model, input_size)
    try:
        proto = export_onnx(model, input_size=net_size if fixed_size else None,
                            opset=opset or DEFAULT_OPSET, method=method)
    except OnnxUnavailableError as exc:
        raise ExportError(str(exc)) from None
    save_onnx(proto, output)
    return output
