"""ONNX export of the bare network with its head metadata."""
from __future__ import annotations

from typing import Sequence

from .common import ExportError, _net_size

__all__ = ["export_onnx_file"]


# ---------------------------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------------------------
def export_onnx_file(model, output: str, size: Sequence[int] | None = None, opset: int | None = None,
                     fixed_size: bool = True, method: str = "auto") -> str:
    """Write the bare network to ``output`` as ONNX (:func:`yolo3.backends.onnx_export.export_onnx`,
    head metadata included), input fixed to ``size`` (default the model's) unless ``fixed_size``
    is False; batch dynamic. ``method``: ``"native"`` (written from the Keras layers), ``"tf2onnx"``
    or ``"auto"`` (native, tf2onnx for layers the native writer does not know). Raises
    :class:`ExportError` when a needed package is missing."""
    from ..backends.onnx_export import (
        DEFAULT_OPSET,
        OnnxUnavailableError,
        export_onnx,
        save_onnx,
    )

    net_size = _net_size(model, size)
    try:
        proto = export_onnx(model, input_size=net_size if fixed_size else None,
                            opset=opset or DEFAULT_OPSET, method=method)
    except OnnxUnavailableError as exc:
        raise ExportError(str(exc)) from None
    save_onnx(proto, output)
    return output
