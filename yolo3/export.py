"""Export a YOLO model for deployment: SavedModel (whole pipeline), TFLite, ONNX.

- **SavedModel** (:func:`export_saved_model`): a self-contained serving graph with Darknet's
  letterbox, the network, decoding (score = objectness x class probability) and per-class NMS.
  Signatures (loadable with plain ``tf.saved_model.load``, no ``yolo3`` needed):

  ``serving_default(images)``: uint8 (B, H, W, 3) RGB, one size within a batch;
  ``serve_bytes(image_bytes)``: string (B,) encoded JPEG/PNG/BMP/GIF files (any sizes), decoded in
  the graph (JPEG with the accurate integer DCT, which matches PIL/libjpeg pixel for pixel).
  Both return ``boxes`` float32 (B, K, 4) x1, y1, x2, y2 in input-image pixels (not clipped),
  ``scores`` float32 (B, K), ``classes`` int32 (B, K), ``num_detections`` int32 (B,); rows past
  ``num_detections`` are zero padding, K = ``max_detections``. Thresholds are fixed at export.

- **TFLite** (:func:`export_tflite`): the network plus Darknet decoding, batch 1, input
  ``images`` float32 (1, net_h, net_w, 3) letterboxed RGB 0..1; outputs ``boxes`` (1, N, 4)
  centre x, centre y, width, height as fractions of the network input and ``scores`` (1, N, C)
  objectness x class probability. The letterbox and the per-class NMS are done by
  :class:`yolo3.tflite_runtime.TFLiteDetector`: ``tf.image.combined_non_max_suppression`` is no
  TFLite builtin (it would need the Flex delegate, SELECT_TF_OPS, which the standalone
  LiteRT/TFLite runtimes on phones do not ship), and the letterbox of images of any size needs
  dynamic shapes. ``float16`` stores the weights as float16; ``int8`` quantizes weights and
  activations with a representative data set read from an annotation file.

- **ONNX** (:func:`export_onnx_file`): the bare network with the head metadata, through
  :mod:`yolo3.onnx_backend` (written from the Keras layers; tf2onnx only as a fallback for layers
  it does not know); run it with ``Detector(path, backend="onnxruntime")``.

``python export.py --help`` is the command line (:func:`main`).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Iterator, Sequence

import numpy as np

__all__ = ["FORMATS", "QUANTIZATIONS", "ExportError", "build_serving_functions", "export_saved_model",
           "tflite_network_function", "representative_images", "export_tflite", "export_onnx_file",
           "export_model", "default_output", "INT8_FLOAT_OPS", "main"]

FORMATS = ("saved_model", "tflite", "onnx")
QUANTIZATIONS = ("float32", "float16", "int8")
DEFAULT_MODEL = os.path.join("model_data", "yolov3-tiny.keras")
#: TFLite op types kept in float32 in an int8 export: everything but convolutions, LeakyReLU
#: and pooling, so Darknet's decoding (sigmoid, exp, anchors, concatenation of the boxes) is exact
INT8_FLOAT_OPS = ("LOGISTIC", "EXP", "MUL", "ADD", "SUB", "DIV", "PACK", "UNPACK", "SPLIT", "SPLIT_V",
                  "STRIDED_SLICE", "SLICE", "CONCATENATION", "RESHAPE", "TILE", "GATHER", "TRANSPOSE",
                  "MAXIMUM", "MINIMUM", "TANH", "SOFTPLUS", "EXPAND_DIMS", "SQUEEZE")


class ExportError(ValueError):
    """A user error (bad option, missing file, unwritable output, no calibration data); ``str()``
    is one line meant for the user."""


# ---------------------------------------------------------------------------------------------
# SavedModel
# ---------------------------------------------------------------------------------------------
def _raw_outputs(model, net_input) -> list:
    raw = model(net_input, training=False)
    return list(raw) if isinstance(raw, (list, tuple)) else [raw]


def build_serving_functions(model, net_size: Sequence[int], score: float = 0.25, iou: float = 0.45,
                            max_detections: int = 100, xla: bool = True
                            ) -> tuple[Callable, Callable]:
    """The two serving functions of :func:`export_saved_model`, as plain Python callables
    (``images`` uint8 (B, H, W, 3) -> dict; ``image_bytes`` string (B,) -> dict).

    ``net_size``: (height, width), multiples of 32. ``xla``: compile the letterbox (about 8x
    faster on CPU) and the network + decoding with XLA, as the Detector does; needs a TensorFlow
    with XLA's CPU/GPU JIT, as the pip packages are.
    """
    import tensorflow as tf

    from .decode import batched_nms, class_scores, decode_heads
    from .heads import get_head_specs
    from .letterbox import boxes_to_image, letterbox

    specs = get_head_specs(model)
    net_size = (int(net_size[0]), int(net_size[1]))
    score, iou, max_detections = float(score), float(iou), int(max_detections)
    # Like yolo3.detector.Detector: two XLA clusters (the letterbox; the network + decoding), then
    # CombinedNonMaxSuppression, which has no XLA kernel, in plain TF.
    letterbox_fn = tf.function(lambda images, sizes: letterbox(images, sizes, net_size),
                               jit_compile=bool(xla), autograph=False)

    def network_and_decode(net_input, sizes):
        decoded = decode_heads(_raw_outputs(model, net_input), specs, net_size)
        scores = class_scores(decoded.objectness, decoded.class_probs, score)
        return boxes_to_image(decoded.boxes, sizes, net_size), scores

    network_fn = tf.function(network_and_decode, jit_compile=bool(xla), autograph=False)

    def detect(images, sizes):
        boxes, scores = network_fn(letterbox_fn(images, sizes), sizes)
        result = batched_nms(boxes, scores, iou, score, max_detections)
        return {"boxes": tf.identity(result.boxes, name="boxes"),
                "scores": tf.identity(result.scores, name="scores"),
                "classes": tf.identity(result.class_ids, name="classes"),
                "num_detections": tf.identity(result.count, name="num_detections")}

    def serve_images(images):
        shape = tf.shape(images)
        sizes = tf.tile(tf.reshape(shape[1:3], [1, 2]), [shape[0], 1])
        return detect(images, sizes)

    @tf.function(autograph=False)
    def decode_images(image_bytes):
        """string (B,) -> zero-padded uint8 (B, H_max, W_max, 3) and int32 (B, 2) sizes."""
        count = tf.shape(image_bytes)[0]

        def decode_one(data):
            # JPEG with the accurate integer DCT: identical pixels to PIL / OpenCV (libjpeg);
            # TF's default (fast DCT) differs by up to 8 grey levels.
            return tf.cond(
                tf.io.is_jpeg(data),
                lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
                lambda: tf.ensure_shape(tf.io.decode_image(data, channels=3, dtype=tf.uint8,
                                                           expand_animations=False), [None, None, 3]))

        decoded = tf.TensorArray(tf.uint8, size=count, infer_shape=False,
                                 element_shape=tf.TensorShape([None, None, 3]))
        sizes = tf.TensorArray(tf.int32, size=count, element_shape=tf.TensorShape([2]))

        def read(i, decoded, sizes):
            image = decode_one(image_bytes[i])
            return i + 1, decoded.write(i, image), sizes.write(i, tf.shape(image)[:2])

        _, decoded, sizes = tf.while_loop(lambda i, *_: i < count, read, (0, decoded, sizes))
        sizes = sizes.stack()
        max_hw = tf.reduce_max(sizes, axis=0)
        padded = tf.TensorArray(tf.uint8, size=count, element_shape=tf.TensorShape([None, None, 3]))

        def pad(i, padded):
            image = decoded.read(i)
            hw = tf.shape(image)[:2]
            image = tf.pad(image, [[0, max_hw[0] - hw[0]], [0, max_hw[1] - hw[1]], [0, 0]])
            return i + 1, padded.write(i, image)

        _, padded = tf.while_loop(lambda i, *_: i < count, pad, (0, padded))
        return padded.stack(), sizes

    def serve_bytes(image_bytes):
        images, sizes = decode_images(image_bytes)
        return detect(images, sizes)

    return serve_images, serve_bytes


def export_saved_model(model, output: str, size: Sequence[int] | None = None, score: float = 0.25,
                       iou: float = 0.45, max_detections: int = 100, xla: bool = True) -> str:
    """Write a SavedModel with the whole detection pipeline (see the module docstring) to the
    folder ``output``; returns it. ``size``: network (height, width), default the model's."""
    import shutil

    import tensorflow as tf

    net_size = _net_size(model, size)
    serve_images, serve_bytes = build_serving_functions(model, net_size, score, iou, max_detections, xla)
    # Track the backend tf.Variables themselves: keras.export.ExportArchive also tracks the Keras
    # wrappers and writes every weight twice (70 MB instead of 35 MB for yolov3-tiny).
    module = _variable_holder(model)
    module.serving_default = tf.function(
        serve_images, autograph=False,
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    module.serve_bytes = tf.function(
        serve_bytes, autograph=False,
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    signatures = {"serving_default": module.serving_default.get_concrete_function(),
                  "serve_bytes": module.serve_bytes.get_concrete_function()}
    tmp = f"{os.path.abspath(output).rstrip(os.sep)}.tmp-{os.getpid()}"
    try:
        tf.saved_model.save(module, tmp, signatures=signatures)
        if os.path.isdir(output):
            shutil.rmtree(output)
        os.replace(tmp, output)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return output


# ---------------------------------------------------------------------------------------------
# TFLite
# ---------------------------------------------------------------------------------------------
def tflite_network_function(model, net_size: Sequence[int], batch_size: int = 1):
    """A ``tf.function`` (fixed input ``images`` float32 (batch, net_h, net_w, 3), letterboxed RGB
    0..1) returning ``{"boxes": (batch, N, 4) cx, cy, w, h fractions of the network input,
    "scores": (batch, N, C) objectness x class probability}``: what goes into the TFLite file."""
    import tensorflow as tf

    from .decode import decode_heads
    from .heads import get_head_specs

    specs = get_head_specs(model)
    net_size = (int(net_size[0]), int(net_size[1]))
    signature = [tf.TensorSpec([batch_size, net_size[0], net_size[1], 3], tf.float32, name="images")]

    @tf.function(input_signature=signature, autograph=False)
    def network(images):
        decoded = decode_heads(_raw_outputs(model, images), specs, net_size)
        scores = decoded.objectness[..., None] * decoded.class_probs
        return {"boxes": decoded.boxes, "scores": scores}

    return network


def representative_images(annotation_path: str, net_size: Sequence[int], count: int = 100,
                          progress: bool = True) -> Iterator[np.ndarray]:
    """Letterboxed float32 (1, net_h, net_w, 3) inputs for int8 calibration: the first ``count``
    readable images listed in the annotation file (unreadable ones are reported and skipped)."""
    from .annotations import iter_annotations
    from .imageio import ImageReadError, read_image_rgb
    from .letterbox import letterbox_image

    bar = None
    if progress:
        from tqdm import tqdm

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
    from .annotations import AnnotationError, iter_annotations

    if not annotation_path:
        raise ExportError("--quantize int8 needs calibration images: --calibration ANNOTATION_FILE")
    if not os.path.isfile(annotation_path):
        raise ExportError(f"calibration annotation file not found: {annotation_path}")
    from .imageio import ImageReadError, read_image_rgb

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


def export_tflite(model, output: str, size: Sequence[int] | None = None, quantize: str = "float32",
                  calibration: str | None = None, calibration_count: int = 100,
                  progress: bool = True) -> str:
    """Write a TFLite flatbuffer (network + decoding, see the module docstring) to ``output``.

    ``quantize``: ``float32``, ``float16`` (weights stored as float16) or ``int8`` (weights and
    activations, calibrated on ``calibration_count`` images of the annotation file
    ``calibration``; input and outputs stay float32, ops without an int8 kernel stay float).
    """
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise ExportError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    if quantize == "int8":
        _check_calibration(calibration)
        if calibration_count < 1:
            raise ExportError(f"--calibration-count must be at least 1, got {calibration_count}")
    net_size = _net_size(model, size)
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


# ---------------------------------------------------------------------------------------------
# ONNX
# ---------------------------------------------------------------------------------------------
def export_onnx_file(model, output: str, size: Sequence[int] | None = None, opset: int | None = None,
                     fixed_size: bool = True, method: str = "auto") -> str:
    """Write the bare network to ``output`` as ONNX (:func:`yolo3.onnx_backend.export_onnx`,
    head metadata included), input fixed to ``size`` (default the model's) unless ``fixed_size``
    is False; batch dynamic. ``method``: ``"native"`` (written from the Keras layers), ``"tf2onnx"``
    or ``"auto"`` (native, tf2onnx for layers the native writer does not know). Raises
    :class:`ExportError` when a needed package is missing."""
    from .onnx_backend import DEFAULT_OPSET, OnnxUnavailableError, export_onnx, save_onnx

    net_size = _net_size(model, size)
    try:
        proto = export_onnx(model, input_size=net_size if fixed_size else None,
                            opset=opset or DEFAULT_OPSET, method=method)
    except OnnxUnavailableError as exc:
        raise ExportError(str(exc)) from None
    save_onnx(proto, output)
    return output


# ---------------------------------------------------------------------------------------------
# helpers and command line
# ---------------------------------------------------------------------------------------------
def _variable_holder(model):
    """A ``tf.Module`` tracking the model's backend ``tf.Variable`` objects (not Keras's wrappers)."""
    import tensorflow as tf

    module = tf.Module()
    module.network_variables = [v.value for v in model.variables]
    return module


def _net_size(model, size) -> tuple[int, int]:
    if size is None:
        from .heads import model_net_size

        return tuple(int(v) for v in model_net_size(model))
    hw = (int(size), int(size)) if isinstance(size, (int, np.integer)) else tuple(int(v) for v in size)
    if len(hw) != 2 or min(hw) <= 0 or hw[0] % 32 or hw[1] % 32:
        raise ExportError(f"network size must be a positive multiple of 32, got {size}")
    return hw


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _check_output(path: str, fmt: str) -> None:
    """Fail before the slow conversion when ``path`` cannot be written."""
    target = os.path.abspath(path)
    if fmt == "saved_model":
        if os.path.isfile(target):
            raise ExportError(f"output {path} is a file; a SavedModel is a folder")
        if os.path.isdir(target) and os.listdir(target) and not os.path.isfile(
                os.path.join(target, "saved_model.pb")):
            raise ExportError(f"output folder {path} is not empty and holds no SavedModel; "
                              "choose another --output")
    elif os.path.isdir(target):
        raise ExportError(f"output {path} is a folder; give a file name")
    parent = os.path.dirname(target)
    existing = parent
    while existing and not os.path.isdir(existing):
        if os.path.exists(existing):
            raise ExportError(f"cannot write {path}: {existing} is not a folder")
        existing = os.path.dirname(existing)
    if os.path.exists(target) and not os.path.isdir(target) and not os.access(target, os.W_OK):
        raise ExportError(f"cannot write {path}: permission denied")
    # os.access says yes to root everywhere; only creating a file tells (read-only mounts, /proc)
    probe = os.path.join(existing or ".", f".export-probe-{os.getpid()}")
    try:
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {existing} is not writable "
                          f"({exc.strerror or exc})") from None


def default_output(model_path: str, fmt: str, quantize: str = "float32") -> str:
    """``model_data/yolov3-tiny.keras`` -> ``model_data/yolov3-tiny_saved_model``,
    ``..._float16.tflite``, ``....onnx``."""
    stem = os.path.splitext(model_path)[0]
    if fmt == "saved_model":
        return stem + "_saved_model"
    if fmt == "tflite":
        return stem + ("" if quantize == "float32" else f"_{quantize}") + ".tflite"
    return stem + ".onnx"


def export_model(model, fmt: str, output: str, size=None, score: float = 0.25, iou: float = 0.45,
                 max_detections: int = 100, quantize: str = "float32", calibration: str | None = None,
                 calibration_count: int = 100, xla: bool = True, progress: bool = True,
                 onnx_method: str = "auto") -> str:
    """Export the Keras YOLO ``model`` in format ``fmt`` (one of :data:`FORMATS`) to ``output``."""
    if fmt == "saved_model":
        return export_saved_model(model, output, size, score, iou, max_detections, xla)
    if fmt == "tflite":
        return export_tflite(model, output, size, quantize, calibration, calibration_count, progress)
    if fmt == "onnx":
        return export_onnx_file(model, output, size, method=onnx_method)
    raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="export.py",
        description="Export a converted or trained YOLO model for deployment: a SavedModel with "
                    "letterbox, decoding and NMS inside (uint8 images or JPEG/PNG bytes in, boxes in "
                    "image pixels out), a TFLite file (float32/float16/int8; use "
                    "yolo3.tflite_runtime.TFLiteDetector), or ONNX (the network, for ONNX Runtime).")
    ap.add_argument("--model", default=DEFAULT_MODEL,
                    help=f"Keras model (.keras/.h5) or convert.py -w weights file (default {DEFAULT_MODEL})")
    ap.add_argument("--format", default="saved_model", metavar="FORMAT",
                    help=f"one of {', '.join(FORMATS)} (default saved_model)")
    ap.add_argument("--output", default=None,
                    help="output folder (saved_model) or file; default next to the model "
                         "(e.g. model_data/yolov3-tiny_saved_model, yolov3-tiny_int8.tflite)")
    ap.add_argument("--size", type=int, default=None,
                    help="network input size (multiple of 32); default the model's")
    ap.add_argument("--score", type=float, default=0.25,
                    help="score threshold baked into the SavedModel (default 0.25)")
    ap.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (SavedModel; default 0.45)")
    ap.add_argument("--max-detections", type=int, default=100,
                    help="detections per image (SavedModel; default 100)")
    ap.add_argument("--quantize", default="float32", metavar="TYPE",
                    help=f"TFLite: one of {', '.join(QUANTIZATIONS)} (default float32)")
    ap.add_argument("--calibration", default=None, metavar="ANNOTATION_FILE",
                    help="TFLite int8: annotation file whose images calibrate the quantization")
    ap.add_argument("--calibration-count", type=int, default=100, metavar="N",
                    help="TFLite int8: number of calibration images (default 100)")
    ap.add_argument("--onnx-method", choices=("auto", "native", "tf2onnx"), default="auto",
                    help="ONNX: write the graph from the Keras layers (native), convert with tf2onnx "
                         "(needs ~60x the weights' size in memory), or native with tf2onnx for unknown "
                         "layers (auto, default)")
    ap.add_argument("--no-xla", dest="xla", action="store_false",
                    help="SavedModel: no XLA-compiled parts (for TF builds without XLA; slower)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return ap


def _validate(args) -> None:
    if args.format not in FORMATS:
        raise ExportError(f"unknown format {args.format!r}; choose one of {', '.join(FORMATS)}")
    if args.quantize not in QUANTIZATIONS:
        raise ExportError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, got {args.quantize!r}")
    if args.quantize != "float32" and args.format != "tflite":
        raise ExportError(f"--quantize {args.quantize} applies to --format tflite only")
    if not os.path.isfile(args.model):
        raise ExportError(f"model file not found: {args.model}")
    if args.size is not None and (args.size <= 0 or args.size % 32):
        raise ExportError(f"--size must be a positive multiple of 32, got {args.size}")
    if not 0.0 <= args.score < 1.0:
        raise ExportError(f"--score must be in [0, 1), got {args.score}")
    if not 0.0 <= args.iou <= 1.0:
        raise ExportError(f"--iou must be in [0, 1], got {args.iou}")
    if args.max_detections < 1:
        raise ExportError(f"--max-detections must be at least 1, got {args.max_detections}")
    if args.format == "tflite" and args.quantize == "int8":
        if args.calibration_count < 1:
            raise ExportError(f"--calibration-count must be at least 1, got {args.calibration_count}")
        _check_calibration(args.calibration)
    if args.onnx_method != "auto" and args.format != "onnx":
        raise ExportError(f"--onnx-method {args.onnx_method} applies to --format onnx only")
    if args.format == "onnx":
        for name in ("onnx", "tf2onnx") if args.onnx_method == "tf2onnx" else ("onnx",):
            try:
                __import__(name)
            except ImportError:
                raise ExportError(f"ONNX export needs the optional package '{name}': "
                                  f"pip install {name} onnxruntime (onnxruntime to run the file)") from None
    _check_output(args.output, args.format)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.model == DEFAULT_MODEL and not os.path.exists(args.model):
        beside_scripts = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                      DEFAULT_MODEL)
        if os.path.exists(beside_scripts):
            args.model = beside_scripts
    if args.output is None:
        args.output = default_output(args.model, args.format, args.quantize)
    try:
        _validate(args)
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        from .model import load_model

        try:
            model = load_model(args.model)
        except Exception as exc:  # any failure to read the file is the user's file's problem
            raise ExportError(f"cannot load model {args.model}: {exc}".splitlines()[0]) from None
        from .heads import get_head_specs

        try:
            get_head_specs(model)
        except ValueError as exc:
            raise ExportError(f"{args.model}: {exc}") from None
        size = None if args.size is None else (args.size, args.size)
        export_model(model, args.format, args.output, size=size, score=args.score, iou=args.iou,
                     max_detections=args.max_detections, quantize=args.quantize,
                     calibration=args.calibration, calibration_count=args.calibration_count,
                     xla=args.xla, progress=not args.quiet, onnx_method=args.onnx_method)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"wrote {args.output}")
    return 0
