"""TFLite export: the network plus Darknet decoding (float32, float16, int8)."""
from __future__ import annotations

import os
import sys
from typing import Iterator, Sequence

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from ..core.heads import get_head_specs
from ..datasets.annotations import AnnotationError, iter_annotations
from ..datasets.imageio import ImageReadError, read_image_rgb
from ..ops.letterbox import letterbox_image
from ..ops.postprocess import Postprocessor
from .common import (
    QUANTIZATIONS,
    ExportError,
    _net_size,
    _raw_outputs,
    _variable_holder,
    _write_atomic,
)

__all__ = ["tflite_network_function", "representative_images", "export_tflite", "INT8_FLOAT_OPS"]


#: TFLite op types kept in float32 in an int8 export: everything but convolutions, LeakyReLU
#: and pooling, so Darknet's decoding (sigmoid, exp, anchors, concatenation of the boxes) is exact
INT8_FLOAT_OPS = ("LOGISTIC", "EXP", "MUL", "ADD", "SUB", "DIV", "PACK", "UNPACK", "SPLIT", "SPLIT_V",
                  "STRIDED_SLICE", "SLICE", "CONCATENATION", "RESHAPE", "TILE", "GATHER", "TRANSPOSE",
                  "MAXIMUM", "MINIMUM", "TANH", "SOFTPLUS", "EXPAND_DIMS", "SQUEEZE")


# ---------------------------------------------------------------------------------------------
# TFLite
# ---------------------------------------------------------------------------------------------
def tflite_network_function(model, input_size: Sequence[int], batch_size: int = 1):
    """What goes into the TFLite file: the network and :meth:`yolo3.ops.postprocess.Postprocessor.decode`.

    Returns a ``tf.function`` (fixed input ``images`` float32 (batch, net_h, net_w, 3), letterboxed RGB
    0..1) returning ``{"boxes": (batch, N, 4) cx, cy, w, h fractions of the network input,
    "scores": (batch, N, C) objectness x class probability}``.

    Args:
        model: a Keras YOLO model.
        input_size: network (height, width), multiples of 32.
        batch_size: the fixed batch of the input.
    """
    post = Postprocessor(get_head_specs(model), input_size)
    input_size = post.input_size
    signature = [tf.TensorSpec([batch_size, input_size[0], input_size[1], 3], tf.float32, name="images")]

    @tf.function(input_signature=signature, autograph=False)
    def network(images):
        boxes, scores = post.decode(_raw_outputs(model, images))
        return {"boxes": boxes, "scores": scores}

    return network


def representative_images(annotation_path: str, net_size: Sequence[int], count: int = 100,
                          progress: bool = True) -> Iterator[np.ndarray]:
    """Letterboxed float32 (1, net_h, net_w, 3) inputs for int8 calibration: the first ``count``
    readable images listed in the annotation file (unreadable ones are reported and skipped).

    Args:
        annotation_path: a keras-yolo3 annotation file (one image path and its boxes a line).
        net_size: the network input (height, width) in pixels.
        count: how many images to yield at most.
        progress: show a tqdm progress bar on stderr.

    Yields:
        float32 (1, net_h, net_w, 3) Darknet letterboxes, RGB 0..1.
    """
    bar = None
    if progress:
        with open(annotation_path, encoding="utf-8", errors="replace") as f:
            listed = sum(1 for line in f if line.strip() and not line.lstrip().startswith("#"))
        bar = tqdm(total=min(count, listed), desc="int8 calibration", unit="image", file=sys.stderr)
    done = 0
    try:
        for item in iter_annotations(annotation_path):
            if done >= count:
                break
            try:
                image = read_image_rgb(item.path)
            except ImageReadError as exc:
                print(f"warning: calibration image skipped: {exc}", file=sys.stderr)
                continue
            yield letterbox_image(image, net_size)[None].astype(np.float32)
            done += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def _check_calibration(annotation_path: str | None) -> None:
    """Fail early (before the slow conversion) when int8 has no usable calibration data."""
    if not annotation_path:
        raise ExportError("--quantize int8 needs calibration images: --calibration ANNOTATION_FILE")
    if not os.path.isfile(annotation_path):
        raise ExportError(f"calibration annotation file not found: {annotation_path}")
    listed = 0
    try:
        for item in iter_annotations(annotation_path):
            listed += 1
            try:
                read_image_rgb(item.path)
                return
            except ImageReadError:
                continue
    except (AnnotationError, UnicodeDecodeError) as exc:
        raise ExportError(f"bad calibration annotation file: {exc}") from None
    if listed == 0:
        raise ExportError(f"calibration annotation file lists no images: {annotation_path}")
    raise ExportError(f"none of the {listed} images in {annotation_path} can be read")


def export_tflite(model, output: str, input_size: Sequence[int] | int | None = None, quantize: str = "float32",
                  calibration: str | None = None, calibration_count: int = 100,
                  progress: bool = True) -> str:
    """Write a TFLite flatbuffer (network + decoding, :func:`tflite_network_function`) to ``output``.

    Args:
        model: a Keras YOLO model.
        output: the ``.tflite`` file (written atomically).
        input_size: network (height, width) or one int, multiples of 32; default the model's.
        quantize: ``float32``, ``float16`` (weights stored as float16) or ``int8`` (weights and
            activations, calibrated on ``calibration_count`` images of the annotation file ``calibration``;
            input and outputs stay float32, ops without an int8 kernel stay float).
        calibration: annotation file whose pictures calibrate int8.
        calibration_count: how many of its readable pictures.
        progress: show a progress bar while calibrating.
    """
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    if quantize == "int8":
        _check_calibration(calibration)
        if calibration_count < 1:
            raise ExportError(f"--calibration-count must be at least 1, got {calibration_count}")
    net_size = _net_size(model, input_size)
    network = tflite_network_function(model, net_size)
    # The converter freezes the variables it finds on the trackable object; Keras 3 models expose
    # Keras wrappers it does not see (the weights would stay variables, read as garbage), so
    # hand it the backend tf.Variables.
    holder = _variable_holder(model)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [network.get_concrete_function()], holder)
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        seen = []

        def dataset():
            for x in representative_images(calibration, net_size, calibration_count, progress):
                seen.append(1)
                yield [x]
            if not seen:
                raise ExportError(f"no readable calibration images in {calibration}")

        converter.representative_dataset = dataset
        # Quantize only the heavy network ops; the decoding (and the few element-wise / shape
        # ops) stays float32. Quantizing the decoded boxes (one int8 scale shared by x, y, w, h
        # of every anchor) moved boxes by up to the whole object (IoU 0 with the float model).
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=dataset,
            debug_options=tf.lite.experimental.QuantizationDebugOptions(
                denylisted_ops=list(INT8_FLOAT_OPS)))
        return _finish_tflite(output, debugger.get_nondebug_quantized_model())
    return _finish_tflite(output, converter.convert())


def _finish_tflite(output: str, flatbuffer: bytes) -> str:
    _write_atomic(output, flatbuffer)
    return output
