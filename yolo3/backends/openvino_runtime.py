"""Running a YOLO network, its decoding and per-class NMS in OpenVINO Runtime.

:class:`OpenVinoNetwork` reads the project's own ONNX export (:func:`yolo3.backends.onnx_export.export_onnx`,
from a Keras model or a ``.onnx`` file) or an OpenVINO IR (``.xml`` + ``.bin``, written by
:func:`save_ir`), keeps the head metadata (anchors, classes) and compiles it for the CPU, one batch size at a time
(:class:`OpenVinoPipeline`); the decoding + per-class NMS of
:class:`yolo3.ops.postprocess_numpy.NumpyPostprocess` read its output tensors in place.

Two earlier designs were measured and left: the NMS compiled into the network's model (its
data-dependent shapes made OpenVINO's CPU plugin run the whole network as a dynamic model: YOLOv3-416
int8, batch 1, 22.4 ms against 19.6), and the NMS as a second compiled OpenVINO model (0.2-0.25 ms a
run whatever its work, 17 us on yolov3-tiny; the NumPy steps take 0.16 ms warm, 0.23 right after
the network).

Precisions (``precision=``): ``fp32`` (default, exact: ``INFERENCE_PRECISION_HINT`` f32, which
OpenVINO would otherwise lower to bf16 on CPUs with AMX), ``bf16`` (the CPU's bfloat16 units; where
``OPTIMIZATION_CAPABILITIES`` lacks ``BF16`` it falls back to fp32 with a
:class:`PrecisionFallbackWarning`), ``int8`` (NNCF post-training quantization,
:mod:`yolo3.backends.openvino_quantize`).

Optional dependency: ``openvino`` (``pip install openvino``; ``nncf`` for int8). Checked with
openvino 2026.4.1 and nncf 3.4.0.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from ..core.files import atomic_path, file_digest
from ..core.heads import head_specs_from_json, head_specs_to_json
from ..errors import Yolo3Error
from ..ops.letterbox_remap import letterbox_size_np
from ..ops.postprocess_numpy import NumpyPostprocess
from .onnx_export import HEADS_METADATA_KEY, export_onnx
from .openvino_letterbox import with_letterbox

if TYPE_CHECKING:
    from ..ops.postprocess import Postprocessor

__all__ = ["PRECISIONS", "OpenVinoUnavailableError", "OpenVinoModelError", "PrecisionFallbackWarning",
           "OpenVinoNetwork", "OpenVinoPipeline", "import_optional", "cpu_has_bf16", "compile_config", "save_ir"]


PRECISIONS = ("fp32", "bf16", "int8")
STATIC_BATCHES = 4  # batch sizes a pipeline compiles for (OpenVinoPipeline); others run dynamic-batch
#: the largest network (bytes of weights) that an fp32 pipeline also compiles with the letterbox in front
#: (OpenVinoPipeline.infer_pictures). That second compiled copy made yolov3-tiny (35 MB) 10% faster
#: end to end for 53 MB more memory and 0.07 s once; YOLOv3 (248 MB) 1% for 330 MB and 0.8 s.
LETTERBOXED_MAX_WEIGHT_BYTES = 64 << 20


#: where an IR keeps the head metadata (the model's rt_info)
IR_HEADS_PATH = ["yolo3", HEADS_METADATA_KEY]


class OpenVinoUnavailableError(Yolo3Error, ImportError):
    """openvino (or, for int8, nncf) is not installed; the message says what to install."""


class OpenVinoModelError(Yolo3Error):
    """A model file OpenVINO cannot read, or one without yolo3's head metadata; one line."""


class PrecisionFallbackWarning(UserWarning):
    """The precision asked for is not available on this CPU: the model runs in fp32 instead."""


def import_optional(name: str, purpose: str):
    """The optional module ``name`` (``openvino``, ``nncf``), or :class:`OpenVinoUnavailableError`."""
    try:
        return __import__(name)
    except ImportError:
        raise OpenVinoUnavailableError(f"{purpose} needs the optional package '{name}': pip install {name} "
                                       "(or pip install 'yolo3[openvino]')") from None


def cpu_has_bf16(core) -> bool:
    """Whether OpenVINO's CPU plugin runs bfloat16 natively here (AVX-512 BF16 or AMX)."""
    return "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def compile_config(core, precision: str, threads: int | None = None) -> dict:
    """The CPU plugin's settings for ``precision`` (``fp32``, ``bf16``, ``int8``): fp32 and int8
    pin ``INFERENCE_PRECISION_HINT`` to f32 (int8 runs its quantized layers in int8, the rest exact);
    bf16 asks for bf16 where :func:`cpu_has_bf16`, else warns (:class:`PrecisionFallbackWarning`) and
    keeps f32."""
    if precision not in PRECISIONS:
        raise OpenVinoModelError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    hint = "f32"
    if precision == "bf16":
        if cpu_has_bf16(core):
            hint = "bf16"
        else:
            warnings.warn("bf16 asked for, but this CPU has no bfloat16 units (no AVX-512 BF16 or AMX): "
                          "running fp32", PrecisionFallbackWarning, stacklevel=3)
    config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


#: where OpenVINO's ONNX reader puts an ONNX file's metadata_props (the head metadata among them)
ONNX_HEADS_PATH = ["framework", HEADS_METADATA_KEY]


def _read_model(core, source, name: str, heads_path: list[str]):
    """``core.read_model(source)`` (a path, or an ONNX file's bytes) and the head metadata at ``heads_path``
    of its rt_info (None where absent). A path reads much faster than the same bytes (YOLOv3's 248 MB
    ONNX file: 0.26 s against 1.9)."""
    try:
        model = core.read_model(source)
    except Exception as exc:  # noqa: BLE001 - OpenVINO's own exception types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise OpenVinoModelError(f"OpenVINO cannot read {name} ({first})") from None
    return model, model.get_rt_info(heads_path).astype(str) if model.has_rt_info(heads_path) else None


class OpenVinoNetwork:
    """A YOLO network in OpenVINO Runtime, followed by its decoding and NMS (:meth:`pipeline`).

    Args:
        source: a Keras YOLO model (exported to ONNX on the spot, seconds), a ``.onnx`` file from
            :func:`yolo3.backends.onnx_export.export_onnx`, or an OpenVINO IR ``.xml`` from
            :func:`save_ir` (its ``.bin`` beside it).
        input_size: (height, width) to fix the input to when exporting a Keras model.
        threads: inference threads (default: OpenVINO's choice, the physical cores).
    """

    def __init__(self, source, input_size: Sequence[int] | None = None, threads: int | None = None):
        ov = import_optional("openvino", "the openvino backend")
        self._ov, self.core, self.threads = ov, ov.Core(), threads
        self.precision = "fp32"  # of the model held: int8 once quantized (yolo3.backends.openvino_quantize)
        self.source_path = os.fspath(source) if isinstance(source, (str, os.PathLike)) else None
        self._fingerprint: str | None = None  # sha256 of the model's bytes (the int8 cache key), when asked
        self._fingerprint_files: tuple[str, ...] = ()
        if isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            if path.lower().endswith(".xml"):
                self.model, heads = _read_model(self.core, path, path, IR_HEADS_PATH)
                bin_path = os.path.splitext(path)[0] + ".bin"
                self._fingerprint_files = (path, bin_path) if os.path.isfile(bin_path) else (path,)
                self.precision = "int8" if "FakeQuantize" in {op.get_type_name() for op in self.model.get_ops()} \
                    else "fp32"
            else:
                self.model, heads = _read_model(self.core, path, path, ONNX_HEADS_PATH)
                self._fingerprint_files = (path,)
        else:  # a Keras model
            path = "the Keras model"
            data = export_onnx(source, input_size=input_size).SerializeToString()
            self.model, heads = _read_model(self.core, data, path, ONNX_HEADS_PATH)
            self._fingerprint = hashlib.sha256(data).hexdigest()
        if heads is None:
            raise OpenVinoModelError(f"{path} has no yolo3 head metadata (anchors, classes); export it with "
                                     "export.py --format onnx or --format openvino")
        try:
            self.head_specs = head_specs_from_json(heads)
        except (ValueError, KeyError, TypeError) as exc:
            raise OpenVinoModelError(f"{path} has damaged yolo3 head metadata ({exc})") from None
        shape = self.model.inputs[0].get_partial_shape()
        self.input_shape = [d.get_length() if d.is_static else None for d in shape]  # e.g. [None, 416, 416, 3]

    def weight_bytes(self) -> int:
        """Bytes of the model's constants (its weights): 35 MB for yolov3-tiny in fp32, 248 MB for YOLOv3."""
        return sum(op.get_byte_size() for op in self.model.get_ops() if op.get_type_name() == "Constant")

    @property
    def fingerprint(self) -> str:
        """Hex sha256 of the model's bytes (the ONNX export, or the IR's .xml + .bin): the int8 cache's key."""
        if self._fingerprint is None:
            self._fingerprint = file_digest(*self._fingerprint_files)
        return self._fingerprint

    def grids(self, input_size: Sequence[int]) -> list[tuple[int, int]]:
        """(h, w) of each head for a (height, width) input: the cfg's strides, read off the outputs."""
        shape = self.model.inputs[0].get_partial_shape()
        if shape[1].is_static and shape[2].is_static:
            out = [o.get_partial_shape() for o in self.model.outputs]
            return [(int(s[1].get_length()), int(s[2].get_length())) for s in out]
        self.model.reshape({self.model.inputs[0].any_name: [-1, int(input_size[0]), int(input_size[1]), 3]})
        return self.grids(input_size)

    def pipeline(self, post: Postprocessor, precision: str = "fp32") -> OpenVinoPipeline:
        """Compile the network at ``precision`` (``fp32`` or ``bf16``; an int8 model comes from
        :mod:`yolo3.backends.openvino_quantize`, compiled with ``fp32``) and follow it with the decoding +
        NMS of :class:`yolo3.ops.postprocess_numpy.NumpyPostprocess`: see :class:`OpenVinoPipeline`. At
        fp32 (not int8) the pipeline can also compile the network with Darknet's letterbox in front
        (:mod:`yolo3.backends.openvino_letterbox`) for a picture size that repeats.

        Args:
            post: the settings (heads, input size, thresholds, max detections).
            precision: the network's precision.
        """
        self.grids(post.input_size)  # the spatial size fixed (a model exported without one)
        letterboxed = None
        if precision == "fp32" and self.precision == "fp32" and self.weight_bytes() <= LETTERBOXED_MAX_WEIGHT_BYTES:
            def letterboxed(batch: int, picture_hw: tuple[int, int]):
                return self.core.compile_model(with_letterbox(self.model, batch, picture_hw), "CPU",
                                               compile_config(self.core, precision, self.threads))
        return OpenVinoPipeline(lambda batch: self._compile(precision, batch), NumpyPostprocess(post), letterboxed)

    def _compile(self, precision: str, batch: int | None = None):
        """The network compiled at ``precision``, for ``batch`` pictures (-1: any number; None: the
        model's own batch dimension)."""
        model = self.model
        if batch is not None:
            model = model.clone()
            rest = [d.get_length() if d.is_static else -1 for d in list(model.inputs[0].get_partial_shape())[1:]]
            model.reshape([int(batch), *rest])
        return self.core.compile_model(model, "CPU", compile_config(self.core, precision, self.threads))


@dataclass
class _Request:
    """An inference request, and for a static batch size the float32 arrays bound as its outputs
    (None: dynamic batch, outputs read back after each run) and the array bound as its input."""

    request: object
    heads: list[np.ndarray] | None
    bound: np.ndarray | None = None


class OpenVinoPipeline:
    """``run(images, sizes)``: float32 (B, H, W, 3) letterboxed pictures (0..1) and their int (B, 2)
    original (height, width) -> the network (:meth:`infer`), then
    :class:`yolo3.ops.postprocess_numpy.NumpyPostprocess` on its raw heads: padded boxes (B, K, 4) xyxy in
    picture pixels, scores (B, K), class ids (B, K), counts (B,).

    The network is compiled for one batch size at a time: with the batch left dynamic OpenVINO's CPU
    plugin runs slower kernels (yolov3-tiny bf16, batch 1: 3.5 ms fixed, 3.95 dynamic; YOLOv3-416
    bf16: 30.3 and 31.9). Batch 1 is compiled at once; another batch size is compiled the second time
    it comes (0.1-0.5 s), up to :data:`STATIC_BATCHES` sizes, and runs the dynamic-batch network before.

    With ``compile_letterboxed`` (fp32), :meth:`infer_pictures` runs uint8 pictures of one size through
    the network compiled with Darknet's letterbox in front, for the last (batch, height, width) that came
    twice in a row (one such network at a time: each holds its own copy of the weights).

    ``compiled`` is the batch-1 network's ``ov.CompiledModel`` (``get_property("INFERENCE_PRECISION_HINT")``...),
    ``post`` the decoding + NMS.
    """

    def __init__(self, compile_network: Callable, post: NumpyPostprocess,
                 compile_letterboxed: Callable | None = None):
        self._tensor = import_optional("openvino", "the openvino backend").Tensor
        self._compile_network, self.post = compile_network, post
        self._compile_letterboxed = compile_letterboxed
        self.compiled = compile_network(1)
        self._requests = {1: self._static(self.compiled)}
        self._dynamic = None  # the dynamic-batch network's request, compiled when first needed
        self._seen: dict[int, int] = {}
        self._heads = range(len(self.compiled.outputs))
        self.letterboxed_key: tuple[int, int, int] | None = None  # (batch, h, w) of the letterboxed network
        self._letterboxed: _Request | None = None
        self._last_key: tuple[int, int, int] | None = None  # the pictures' (batch, h, w) last time

    def _static(self, compiled) -> _Request:
        """A request of a static-batch network, writing into arrays of its own (bound once)."""
        request = compiled.create_infer_request()
        heads = [np.empty(tuple(output.get_shape()), np.float32) for output in compiled.outputs]
        for k, head in enumerate(heads):
            request.set_output_tensor(k, self._tensor(head, shared_memory=True))
        return _Request(request, heads)

    def request(self, batch: int) -> _Request:
        """The inference request for a batch of ``batch`` pictures (see the class docstring)."""
        found = self._requests.get(batch)
        if found is not None:
            return found
        self._seen[batch] = self._seen.get(batch, 0) + 1
        if self._seen[batch] >= 2 and len(self._requests) < STATIC_BATCHES:
            found = self._requests[batch] = self._static(self._compile_network(batch))
            return found
        if self._dynamic is None:
            self._dynamic = _Request(self._compile_network(-1).create_infer_request(), None)
        return self._dynamic

    def infer(self, images: np.ndarray) -> list[np.ndarray]:
        """The network alone: float32 (B, H, W, 3) letterboxed pictures -> its raw heads, float32
        (B, h_i, w_i, A*(5+C)), in memory the next call overwrites.

        The pictures' memory is read in place (not copied); a static-batch request keeps it bound
        while the same array comes (the openvino backend's reused letterbox canvas) and writes into
        its own arrays, bound once: 0.05-0.1 ms a call less than ``infer`` with the arrays on
        yolov3-tiny."""
        images = np.ascontiguousarray(images, np.float32)
        slot = self.request(len(images))
        if slot.heads is None:  # dynamic batch: the outputs' shapes follow the input's
            slot.request.infer([images], share_inputs=True, share_outputs=True)
            return [slot.request.get_output_tensor(k).data for k in self._heads]
        if slot.bound is not images:
            slot.request.set_input_tensor(self._tensor(images, shared_memory=True))
            slot.bound = images
        slot.request.start_async()
        slot.request.wait()
        return slot.heads

    def infer_pictures(self, pictures: Sequence[np.ndarray]) -> list[np.ndarray] | None:
        """The network with Darknet's letterbox in front: uint8 (H, W, 3) RGB pictures, all of one size
        -> the raw heads (as :meth:`infer`), or None where no such network runs them: the pipeline
        has none (bf16, int8), the sizes differ, the (batch, height, width) did not come twice in a row
        (the caller letterboxes), or the picture letterboxes to nothing."""
        if self._compile_letterboxed is None or not pictures:
            return None
        h, w = pictures[0].shape[:2]
        key = (len(pictures), int(h), int(w))
        if any(p.shape[:2] != (h, w) for p in pictures):
            self._last_key = None
            return None
        if key != self.letterboxed_key:
            again, self._last_key = key == self._last_key, key
            if not again or 0 in letterbox_size_np(h, w, *self.post.input_size):
                return None
            self._letterboxed = self.letterboxed_key = None  # the previous size's network goes first: its weights
            try:
                slot = self._static(self._compile_letterboxed(key[0], (key[1], key[2])))
            except RuntimeError as exc:  # OpenVINO's compile errors: keep letterboxing outside
                warnings.warn(f"the letterbox could not be compiled into the network, it stays outside ({exc})",
                              RuntimeWarning, stacklevel=2)
                self._compile_letterboxed = None
                return None
            slot.bound = np.empty((*key, 3), np.uint8)
            slot.request.set_input_tensor(self._tensor(slot.bound, shared_memory=True))
            self._letterboxed, self.letterboxed_key = slot, key
        slot = self._letterboxed
        for b, picture in enumerate(pictures):
            slot.bound[b] = picture
        slot.request.start_async()
        slot.request.wait()
        return slot.heads

    def __call__(self, images: np.ndarray, sizes: np.ndarray):
        return self.post(self.infer(images), sizes)


def save_ir(model, path: str, head_specs) -> None:
    """Write ``model`` (an ``ov.Model``) as OpenVINO IR ``path`` (``.xml``) + its ``.bin``, weights
    in float32, the head metadata in its rt_info; both files replaced only once both are written.

    Args:
        model: the ``ov.Model``.
        path: the ``.xml`` file; the ``.bin`` goes beside it.
        head_specs: the heads, stored for the Detector.
    """
    import openvino as ov

    model = model.clone()
    model.set_rt_info(head_specs_to_json(head_specs), IR_HEADS_PATH)
    bin_path = os.path.splitext(path)[0] + ".bin"
    with atomic_path(path, suffix=".xml") as tmp_xml:
        tmp_bin = os.path.splitext(tmp_xml)[0] + ".bin"
        try:
            ov.save_model(model, tmp_xml, compress_to_fp16=False)
            os.replace(tmp_bin, bin_path)  # the .xml names its .bin by stem: rename the .bin first
        finally:
            if os.path.exists(tmp_bin):
                os.remove(tmp_bin)
