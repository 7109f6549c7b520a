"""Object detection with a converted or trained YOLO model, box for box like Darknet.

:class:`Detector` runs letterbox -> network -> :class:`yolo3.ops.postprocess.Postprocessor` (decoding,
Darknet scores, boxes to image pixels, per-class NMS) as ONE compiled ``tf.function`` over a batch of
RGB images of any sizes (never ``model.predict`` per frame). With ``backend="onnxruntime"`` the network
runs in ONNX Runtime after a compiled TF letterbox, and the decoding + NMS in NumPy after it
(:mod:`yolo3.ops.postprocess_numpy`, configured by the same Postprocessor); with ``backend="openvino"``
the network runs in OpenVINO (:mod:`yolo3.backends.openvino_runtime`), at ``precision`` fp32 (default,
exact), bf16 or int8 (both letterboxed by OpenCV: :mod:`yolo3.ops.letterbox_remap`). The
default, ``backend="auto"``, is the fastest exact backend installed for the device
(:mod:`yolo3.backends.auto`); a model file's ONNX export is cached beside it
(:mod:`yolo3.backends.onnx_cache`), so the ONNX backends start without exporting again.

Build one with a loader: :meth:`Detector.from_file` (``.keras``, ``.h5``, ``convert.py -w`` weights,
``.onnx``), :meth:`Detector.from_onnx` or :meth:`Detector.from_pretrained`; ``Detector(model)`` composes
a loaded Keras model (or an :class:`yolo3.backends.onnx_runtime.OnnxNetwork`) with the post-processing.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import tensorflow as tf

from ..backends.auto import BackendChoice, choose_backend
from ..backends.onnx_cache import cached_onnx_export, model_stem
from ..backends.onnx_export import OnnxUnavailableError
from ..backends.onnx_runtime import OnnxNetwork
from ..backends.openvino_quantize import calibration_pictures, quantize_network
from ..backends.openvino_runtime import PRECISIONS, OpenVinoNetwork, OpenVinoUnavailableError
from ..core.detections import BatchDetector, Detections, padded_size, split_detections, stack_images
from ..core.files import default_cache_dir, writable_cache_folder
from ..core.heads import get_head_specs, model_anchors
from ..datasets.annotations import read_anchors, read_class_names
from ..errors import Yolo3Error
from ..modeling.batchnorm import UnsupportedLayerError, fold_batchnorm
from ..modeling.pretrained import pretrained_classes_path, pretrained_model_path
from ..modeling.saving import load_model
from ..ops.letterbox_remap import RemapLetterbox
from ..ops.postprocess import PostprocessError, Postprocessor, rename_legacy_settings
from ..ops.postprocess_numpy import NumpyPostprocess
from ..resources import resolve_data_path
from .drawing import class_colors, draw_detections

__all__ = ["DetectorError", "Detector", "BACKENDS"]


BACKENDS = ("auto", "tf", "onnxruntime", "openvino")

class DetectorError(Yolo3Error):
    """A user error setting up a detector: missing file, class list or anchors not matching the model,
    bad size or backend. ``str()`` is one line meant for the user."""


def _parse_size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        hw = (int(size), int(size))
    else:
        hw = tuple(int(v) for v in size)
        if len(hw) != 2:
            raise DetectorError(f"size must be an int or (height, width), got {size!r}")
    if min(hw) <= 0 or hw[0] % 32 or hw[1] % 32:
        raise DetectorError(f"network size must be a positive multiple of 32, got {hw[0]}x{hw[1]}")
    return hw


def _existing_file(path) -> str:
    path = os.fspath(path)
    if os.path.isdir(path):
        raise DetectorError(f"model {path} is a folder, not a model file")
    if not os.path.isfile(path):
        raise DetectorError(f"model file not found: {path}")
    return path


def _make_onnx(source, input_size) -> OnnxNetwork:
    try:
        return OnnxNetwork(source, input_size=input_size)
    except OnnxUnavailableError as exc:
        raise DetectorError(str(exc)) from None


def _make_openvino(source, input_size) -> OpenVinoNetwork:
    try:
        return OpenVinoNetwork(source, input_size=input_size)
    except OpenVinoUnavailableError as exc:
        raise DetectorError(str(exc)) from None


def _check_precision(backend: str, precision: str, calibration) -> str:
    if precision not in PRECISIONS:
        raise DetectorError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "fp32" and backend != "openvino":
        raise DetectorError(f"precision {precision} needs backend 'openvino' (backend {backend} runs fp32)")
    if precision != "int8" and calibration is not None:
        raise DetectorError("calibration pictures are for precision int8 only")
    return precision


def _resolve_auto(model, backend: str, precision: str, xla: bool, fold_batchnorm: bool) -> BackendChoice | None:
    """``auto`` resolved for a model in memory (a network object runs in its own runtime); None otherwise."""
    if backend != "auto":
        return None
    if isinstance(model, (OnnxNetwork, OpenVinoNetwork)):
        name = "onnxruntime" if isinstance(model, OnnxNetwork) else "openvino"
        return BackendChoice(name, f"an {type(model).__name__} runs in its own runtime")
    return choose_backend(precision, tf_settings=not (xla and fold_batchnorm))


def _anchors_and_class_count(anchors_path, classes_path) -> tuple[np.ndarray | None, int | None]:
    """The anchors and class count the given files hold (None where not given or unreadable: the
    detector's own checks report those files by name)."""
    anchors = num_classes = None
    try:
        if anchors_path is not None and os.path.isfile(resolve_data_path(anchors_path)):
            anchors = read_anchors(resolve_data_path(anchors_path))
        if classes_path is not None and os.path.isfile(resolve_data_path(classes_path)):
            num_classes = len(read_class_names(resolve_data_path(classes_path)))
    except ValueError:
        pass
    return anchors, num_classes


def _anchors_of_specs(head_specs) -> tuple[np.ndarray, list[int]]:
    """The anchors (K, 2) the heads use, in cfg order, and their indices in the cfg's list, from the heads'
    masks (an ONNX file has no anchor list: an anchor no mask names, like yolov3-tiny's first, is absent)."""
    by_index = {int(m): a for spec in head_specs for m, a in zip(spec.mask, spec.anchors)}
    indices = sorted(by_index)
    return np.asarray([by_index[k] for k in indices], np.float32).reshape(-1, 2), indices


def _load_model_file(path: str, anchors_path, classes_path):
    """The Keras model of a ``.keras``, ``.h5`` or ``convert.py -w`` weights file; DetectorError naming it."""
    anchors, num_classes = _anchors_and_class_count(anchors_path, classes_path)
    try:  # keras-yolo3's .h5 files hold no anchors: they come from anchors_path (else keras-yolo3's default)
        return load_model(path, anchors=anchors, num_classes=num_classes)
    except (OSError, ValueError) as exc:  # the package's messages name the file already
        message = str(exc)
        raise DetectorError(message if path in message else f"cannot load model {path}: {message}") from None


class Detector(BatchDetector):
    """Detect objects on batches of uint8 RGB images of any sizes.

    Anchors, classes and the default network size come from the model's heads.

    Args:
        model: a loaded Keras YOLO model, or an :class:`yolo3.backends.onnx_runtime.OnnxNetwork`
            (backend ``onnxruntime``). A path still works (it goes to :meth:`from_file`).
        class_names: one name per class of the model (default ``class_0``...).
        classes_path: a class-name file (one a line) instead of ``class_names``.
        anchors_path: optional anchors file; it must list the model's anchors (it cannot change them).
        score_threshold: Darknet's threshold: keep (box, class) with objectness x class probability > it.
        iou_threshold: per-class NMS IoU threshold.
        input_size: network input (int or (height, width), multiples of 32); default the model's.
        max_detections: detections kept per image.
        backend: ``"auto"`` (default: the fastest exact backend installed, see :mod:`yolo3.backends.auto`;
            ``backend_choice`` says which and why), ``"tf"``, ``"onnxruntime"`` or ``"openvino"`` (a Keras
            model in memory is exported to ONNX on the spot; :meth:`from_file` caches the export).
        precision: ``"fp32"`` (exact), ``"bf16"`` or ``"int8"``: the openvino backend only (see
            :mod:`yolo3.backends.openvino_runtime`); bf16 falls back to fp32 with a warning on CPUs
            without bfloat16 units. At bf16 and int8 the letterbox is OpenCV's
            (:mod:`yolo3.ops.letterbox_remap`: within 0.017 of the exact one, 1.5 ms less a picture).
        calibration: int8: an annotation file or a folder of pictures to calibrate on.
        cache_dir: int8: where the quantized model is cached (default: beside the model file, or
            ``~/.cache/yolo3/openvino`` for a model given in memory).
        xla: compile letterbox, network and decoding with XLA (default; False for plain TF kernels).
        fold_batchnorm: run an inference copy of the network with BatchNormalization merged into the
            convolutions (default; the model itself is not changed).
        legacy: the earlier keyword names ``score``, ``iou``, ``size``, ``max_boxes`` keep working.

    Raises:
        DetectorError: a bad setting, or files that do not match the model.
    """

    def __init__(self, model, *, class_names: Sequence[str] | None = None,
                 classes_path: str | os.PathLike | None = None, anchors_path: str | os.PathLike | None = None,
                 score_threshold: float = 0.25, iou_threshold: float = 0.45, input_size=None,
                 max_detections: int = 100, backend: str = "auto", xla: bool = True, fold_batchnorm: bool = True,
                 precision: str = "fp32", calibration: str | os.PathLike | None = None,
                 cache_dir: str | os.PathLike | None = None, **legacy):
        settings = rename_legacy_settings(dict(score_threshold=score_threshold, iou_threshold=iou_threshold,
                                               input_size=input_size, max_detections=max_detections),
                                          legacy, "Detector")
        if isinstance(model, (str, os.PathLike)):  # Detector("model.keras", ...), as before the loaders
            loaded = Detector.from_file(model, classes_path, anchors_path, class_names=class_names, backend=backend,
                                        xla=xla, fold_batchnorm=fold_batchnorm, precision=precision,
                                        calibration=calibration, cache_dir=cache_dir, **settings)
            self.__dict__.update(loaded.__dict__)
            return
        if backend not in BACKENDS:
            raise DetectorError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.backend_choice = _resolve_auto(model, backend, precision, xla, fold_batchnorm)
        backend = self.backend_choice.backend if self.backend_choice else backend
        self.backend, self.xla, self.fold_batchnorm = backend, bool(xla), bool(fold_batchnorm)
        self.onnx_export_cache = None  # from_file: (the cached .onnx, whether it was reused)
        self.precision, self._openvino = _check_precision(backend, precision, calibration), None
        self._calibration, self._cache_dir = calibration, cache_dir
        self._set_network(model)
        if anchors_path is not None:
            self._check_anchors(os.fspath(anchors_path))
        self.class_names = self._class_names(classes_path, class_names)
        self.colors = class_colors(self.num_classes)
        self.postprocessor = self._make_postprocessor(**settings)
        if backend == "onnxruntime" and self._onnx is None:
            self._onnx = _make_onnx(self.model, self.input_size)
        if backend == "openvino" and self._openvino is None:
            self._openvino = _make_openvino(self.model, self.input_size)
        self._check_onnx_size()
        if self._openvino is not None and self._openvino.precision == "int8":
            self.precision = "int8"  # an int8 IR (export.py --format openvino --precision int8) runs as it is
        self._build_functions()

    # -- loaders --------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | os.PathLike, classes_path: str | os.PathLike | None = None,
                  anchors_path: str | os.PathLike | None = None, **options) -> Detector:
        """A detector for a model file: ``.keras``, ``.h5``, a ``convert.py -w`` weights file, or an
        ``.onnx`` file (then :meth:`from_onnx`).

        Args:
            path: the model file.
            classes_path: class-name file, one a line; its length must equal the model's class count.
            anchors_path: optional anchors file, checked against the model's anchors.
            options: the keyword arguments of :class:`Detector`.
        """
        path = _existing_file(path)
        choice = None
        if options.get("backend", "auto") == "auto":
            choice = choose_backend(options.get("precision", "fp32"), path,
                                    not (options.get("xla", True) and options.get("fold_batchnorm", True)))
            options["backend"] = choice.backend
        if options["backend"] == "openvino" and options.get("cache_dir") is None:
            options["cache_dir"] = os.path.dirname(os.path.abspath(path))  # int8 is cached beside the model file
        if path.lower().endswith((".onnx", ".xml")):
            detector = cls.from_onnx(path, classes_path, anchors_path, **options)
        elif options["backend"] in ("onnxruntime", "openvino"):
            detector = cls._from_cached_export(path, classes_path, anchors_path, **options)
        else:
            detector = cls(_load_model_file(path, anchors_path, classes_path), classes_path=classes_path,
                           anchors_path=anchors_path, **options)
        detector.backend_choice = choice
        return detector

    @classmethod
    def _from_cached_export(cls, path: str, classes_path, anchors_path, **options) -> Detector:
        """The onnxruntime or openvino backend on the cached ONNX export of a model file
        (:mod:`yolo3.backends.onnx_cache`; exported and cached on the first call)."""
        anchors, num_classes = _anchors_and_class_count(anchors_path, classes_path)
        loaded_with = f"anchors {None if anchors is None else anchors.tolist()} classes {num_classes}"
        size = options.get("input_size", options.get("size"))
        try:
            onnx_path, reused = cached_onnx_export(path, lambda: _load_model_file(path, anchors_path, classes_path),
                                                   _parse_size(size), loaded_with)
        except OnnxUnavailableError as exc:
            raise DetectorError(str(exc)) from None
        except OSError:  # an unwritable cache: export on the spot
            return cls(_load_model_file(path, anchors_path, classes_path), classes_path=classes_path,
                       anchors_path=anchors_path, **options)
        detector = cls.from_onnx(onnx_path, classes_path, anchors_path, **options)
        detector.onnx_export_cache = (onnx_path, reused)
        return detector

    @classmethod
    def from_onnx(cls, path: str | os.PathLike, classes_path: str | os.PathLike | None = None,
                  anchors_path: str | os.PathLike | None = None, *, backend: str = "onnxruntime",
                  **options) -> Detector:
        """A detector running an ``.onnx`` file (from :mod:`yolo3.backends.onnx_export`, head metadata
        inside) in ONNX Runtime, or with ``backend="openvino"`` an ``.onnx`` or OpenVINO IR ``.xml`` file
        (``export.py --format openvino``) in OpenVINO Runtime.

        Args:
            path: the ONNX file.
            classes_path: class-name file, one a line.
            anchors_path: optional anchors file, checked against the model's anchors.
            backend: ``"onnxruntime"``, ``"openvino"`` or ``"auto"`` (:mod:`yolo3.backends.auto`; an ``.xml``
                file runs in OpenVINO whatever is asked).
            options: the other keyword arguments of :class:`Detector`.
        """
        path = _existing_file(path)
        if backend == "auto":
            backend = choose_backend(options.get("precision", "fp32"), path).backend
        if path.lower().endswith(".xml"):
            backend = "openvino"  # a file only OpenVINO reads
        if backend not in ("onnxruntime", "openvino"):
            raise DetectorError(f"{path} is an ONNX or OpenVINO file: use backend 'onnxruntime' or 'openvino'")
        if backend == "openvino":
            if options.get("cache_dir") is None:
                options["cache_dir"] = os.path.dirname(os.path.abspath(path))
            network = _make_openvino(path, None)
        else:
            network = _make_onnx(path, None)
        return cls(network, classes_path=classes_path, anchors_path=anchors_path, backend=backend, **options)

    @classmethod
    def from_pretrained(cls, name: str = "yolov3-tiny", cache_dir: str | None = None, *, quiet: bool = True,
                        source=None, **options) -> Detector:
        """A detector for a pretrained model with its class names (COCO's for ``yolov3-tiny``).

        The first call fetches the Darknet weights (sha256 verified), converts them with the bundled
        cfg and caches the ``.keras`` file (:func:`yolo3.modeling.pretrained.pretrained_model_path`).

        Args:
            name: a :data:`yolo3.modeling.pretrained.PRETRAINED_MODELS` key.
            cache_dir: cache folder (default ``$YOLO3_CACHE`` or ``~/.cache/yolo3``).
            quiet: no download or conversion messages.
            source: a :class:`yolo3.modeling.pretrained.WeightsSource` to fetch from instead (mirrors, tests).
            options: the keyword arguments of :class:`Detector`.
        """
        path = pretrained_model_path(name, cache_dir, quiet=quiet, source=source)
        if options.get("classes_path") is None and options.get("class_names") is None:
            options["classes_path"] = pretrained_classes_path(name)
        return cls.from_file(path, **options)

    # -- settings (earlier names kept as read-only aliases) -------------------------------------
    input_size = property(lambda self: self.postprocessor.input_size, doc="network input (height, width)")
    score_threshold = property(lambda self: self.postprocessor.score_threshold)
    iou_threshold = property(lambda self: self.postprocessor.iou_threshold)
    max_detections = property(lambda self: self.postprocessor.max_detections)
    net_size, score, iou, max_boxes = input_size, score_threshold, iou_threshold, max_detections

    # -- set-up ---------------------------------------------------------------------------
    def _set_network(self, model) -> None:
        self.model, self._onnx = (None, model) if isinstance(model, OnnxNetwork) else (model, None)
        if isinstance(model, OpenVinoNetwork):
            self.model, self._openvino = None, model
        network = self._onnx or self._openvino
        if network is not None:
            if self.backend != ("onnxruntime" if self._onnx is not None else "openvino"):
                raise DetectorError(f"an {type(network).__name__} runs with backend "
                                    f"'{'onnxruntime' if self._onnx is not None else 'openvino'}'")
            self.head_specs = network.head_specs
            self.anchors, self._anchor_indices = _anchors_of_specs(self.head_specs)
        else:
            try:
                self.head_specs = get_head_specs(model)
            except ValueError as exc:
                raise DetectorError(str(exc)) from None
            self.anchors = model_anchors(model)
            self._anchor_indices = list(range(len(self.anchors)))
        self.num_classes = self.head_specs[0].num_classes

    def _make_postprocessor(self, score_threshold, iou_threshold, input_size, max_detections) -> Postprocessor:
        size = _parse_size(input_size) or tuple(self.head_specs[0].net_size)
        try:
            return Postprocessor(self.head_specs, size, score_threshold=score_threshold,
                                 iou_threshold=iou_threshold, max_detections=max_detections)
        except PostprocessError as exc:
            raise DetectorError(str(exc)) from None

    def _check_onnx_size(self) -> None:
        if self._onnx is None and self._openvino is None:
            return
        fixed = (self._onnx or self._openvino).input_shape[1:3]
        if all(isinstance(v, int) for v in fixed) and tuple(fixed) != tuple(self.input_size):
            raise DetectorError(f"the ONNX model takes {fixed[0]}x{fixed[1]} inputs, not "
                                f"{self.input_size[0]}x{self.input_size[1]}")

    def _check_anchors(self, path: str) -> None:
        path = resolve_data_path(path)
        if not os.path.isfile(path):
            raise DetectorError(f"anchors file not found: {path}")
        try:
            given = read_anchors(path)
        except ValueError as exc:
            raise DetectorError(str(exc)) from None
        # An ONNX/IR file knows only the anchors its masks use (yolov3-tiny never uses its first): compare
        # those, by their index in the cfg's list; a Keras model knows them all.
        ours, used = self.anchors, self._anchor_indices
        if len(given) != used[-1] + 1 or not np.allclose(given[used], ours, atol=1e-3):
            fmt = lambda a: " ".join(f"{w:g},{h:g}" for w, h in a)  # noqa: E731
            raise DetectorError(
                f"anchors in {path} ({len(given)}: {fmt(given)}) differ from the model's "
                f"({len(ours)}: {fmt(ours)}); the anchors travel inside the model, leave --anchors out")

    def _class_names(self, classes_path, class_names) -> list[str]:
        if classes_path is not None:
            path = resolve_data_path(classes_path)
            if not os.path.isfile(path):
                raise DetectorError(f"classes file not found: {path}")
            try:
                names = read_class_names(path)
            except ValueError as exc:
                raise DetectorError(str(exc)) from None
            source = path
        elif class_names is not None:
            names, source = list(class_names), "the class list"
        else:
            return [f"class_{i}" for i in range(self.num_classes)]
        if len(names) != self.num_classes:
            raise DetectorError(f"{source} has {len(names)} class names but the model predicts "
                                f"{self.num_classes} classes")
        return names

    def _build_functions(self) -> None:
        image_spec = tf.TensorSpec([None, None, None, 3], tf.uint8)
        sizes_spec = tf.TensorSpec([None, 2], tf.int32)
        post = self.postprocessor
        self._letterbox_fn = None  # the ONNX backends' letterbox, apart from their network
        self._remap_letterbox = None  # openvino at bf16 and int8: OpenCV's letterbox (yolo3.ops.letterbox_remap)
        if self._onnx is not None:
            # The network in ONNX Runtime, decoding + NMS in NumPy after it: a TF call after each
            # ONNX Runtime run costs ~2 ms on a 2-core CPU (its thread pool wakes up again).
            self._letterbox_fn = post.letterbox_function(self.xla, input_signature=[image_spec, sizes_spec])
            self._postprocess = NumpyPostprocess(post)
            return
        if self._openvino is not None:  # the network in OpenVINO, decoding + NMS in NumPy
            self._letterbox_fn = post.letterbox_function(self.xla, input_signature=[image_spec, sizes_spec])
            if self.precision == "int8" and self._openvino.precision != "int8":
                self._quantize_openvino()  # (calibrated on the exact letterbox)
            if self.precision != "fp32":  # the letterbox's rounding is below the network's there
                self._remap_letterbox = RemapLetterbox(post.input_size)
            self._openvino_run = self._openvino.pipeline(post, "fp32" if self.precision == "int8" else self.precision)
            return
        model = self.model
        if self.fold_batchnorm:
            try:
                model = fold_batchnorm(model)
            except UnsupportedLayerError:  # a graph it cannot walk: run the model as it is
                pass
        detect = post.detection_function(lambda x: model(x, training=False), self.xla)
        self._detect_fn = tf.function(detect, input_signature=[image_spec, sizes_spec])

    # -- detection ------------------------------------------------------------------------
    def run_batch(self, batch: np.ndarray, sizes: np.ndarray):
        """Low level: a zero-padded uint8 batch (B, H, W, 3) and its (B, 2) sizes -> padded NMS
        results as numpy (boxes (B, K, 4), scores (B, K), class_ids (B, K), count (B,)).

        Args:
            batch: uint8 (B, H, W, 3) RGB pictures, each in the top-left corner, zero padded.
            sizes: int (B, 2) each picture's (height, width).
        """
        if self._remap_letterbox is not None:
            pictures = [batch[b, :h, :w] for b, (h, w) in enumerate(np.asarray(sizes))]
            return self._openvino_run(self._remap_letterbox(pictures), sizes)
        if self._letterbox_fn is not None:
            return self._run_letterboxed(self._letterbox_fn(batch, sizes).numpy(), sizes)
        return tuple(t.numpy() for t in self._detect_fn(batch, sizes))

    def _run_letterboxed(self, letterboxed: np.ndarray, sizes: np.ndarray):
        """The ONNX backends after the letterbox: float32 (B, net_h, net_w, 3) -> padded NMS results."""
        if self._onnx is not None:
            return self._postprocess(self._onnx(letterboxed), sizes)
        return self._openvino_run(letterboxed, sizes)

    def detect(self, images: Sequence[np.ndarray], pad_multiple: int | None = None) -> list[Detections]:
        """Detect on uint8 (H, W, 3) RGB pictures (sizes may differ), the network running once on all.

        The onnxruntime and openvino backends letterbox the pictures by groups of one padded size
        (their height and width rounded up to ``pad_multiple``) and run the network once on the whole
        batch: one letterbox over a batch of mixed sizes would work on copies as large as its largest
        picture (the 7 sample pictures at batch 8: 26 ms stacked, 16 grouped). The tf backend runs
        letterbox and network as one function over the stacked batch.

        Args:
            images: the pictures.
            pad_multiple: pad to a multiple of this many pixels; default
                :meth:`~yolo3.core.detections.BatchDetector.pad_multiple_for`.

        Returns:
            One :class:`Detections` a picture, boxes x1, y1, x2, y2 in its pixels.
        """
        images = [np.asarray(im) for im in images]
        if self._remap_letterbox is not None and images:  # no padding: each picture is remapped as it is
            letterboxed = self._remap_letterbox(images)
            sizes = np.array([im.shape[:2] for im in images], np.int32)
            return split_detections(*self._openvino_run(letterboxed, sizes))
        # fp32 in OpenVINO: pictures of a size that repeats are letterboxed inside the network
        if self._openvino is not None and images and all(
                im.ndim == 3 and im.shape[2] == 3 and im.dtype == np.uint8 for im in images):
            heads = self._openvino_run.infer_pictures(images)
            if heads is not None:
                sizes = np.array([im.shape[:2] for im in images], np.int32)
                return split_detections(*self._openvino_run.post(heads, sizes))
        if self._letterbox_fn is None or len(images) < 2 or any(im.ndim != 3 for im in images):
            return super().detect(images, pad_multiple)  # (which also says what is wrong with a picture)
        multiple = self.pad_multiple_for(images, pad_multiple)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(padded_size(im.shape, multiple), []).append(i)
        parts = []
        for members in groups.values():
            batch, sizes = stack_images([images[i] for i in members], multiple=multiple)
            parts.append(self._letterbox_fn(batch, sizes).numpy())
        if len(parts) == 1:
            letterboxed = parts[0]
        else:
            letterboxed = np.empty((len(images), *parts[0].shape[1:]), np.float32)
            for members, part in zip(groups.values(), parts):
                letterboxed[members] = part
        sizes = np.array([im.shape[:2] for im in images], np.int32)
        return split_detections(*self._run_letterboxed(letterboxed, sizes))


    def _quantize_openvino(self) -> None:
        """int8: NNCF on the calibration pictures, or the cached result (yolo3.backends.openvino_quantize)."""
        if self._calibration is None:
            raise DetectorError("precision int8 needs calibration pictures: an annotation file or a folder "
                                "(--calibration)")
        pictures = calibration_pictures(self._calibration)
        cache_dir = writable_cache_folder(self._cache_dir or os.path.join(default_cache_dir(), "openvino"),
                                          "openvino")
        source = self._openvino.source_path
        stem = model_stem(source) if source else getattr(self.model, "name", "model")

        def letterbox(image: np.ndarray) -> np.ndarray:
            batch, sizes = stack_images([image])
            return self._letterbox_fn(batch, sizes).numpy()

        self.int8_cache, self.int8_cache_reused = quantize_network(self._openvino, pictures, letterbox, cache_dir, stem)

    def draw(self, image: np.ndarray, detections: Detections) -> np.ndarray:
        """A copy of the uint8 RGB ``image`` with ``detections`` drawn (see yolo3.inference.drawing).

        Args:
            image: uint8 (H, W, 3) RGB picture (not changed).
            detections: its detections, boxes in its pixels.

        Returns:
            uint8 (H, W, 3) RGB drawn copy.
        """
        return draw_detections(image, detections.boxes, detections.scores, detections.class_ids,
                               self.class_names, self.colors)
