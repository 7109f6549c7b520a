"""Object detection with a converted or trained YOLO model, box for box like Darknet.

:class:`Detector` runs letterbox -> network -> decoding -> per-class NMS as ONE compiled
``tf.function`` over a batch of RGB images of any sizes (never ``model.predict`` per frame). With
``backend="onnxruntime"`` the network and the decoding + NMS run in ONNX Runtime after a compiled
TF letterbox (:mod:`yolo3.backends.onnx_postprocess`). :class:`YOLO` keeps keras-yolo3's interface (``detect_image`` on a
PIL image returns the drawn picture).
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..core.detections import PAD_MULTIPLE, Detections, detect_images
from ..errors import Yolo3Error

__all__ = ["DetectorError", "Detector"]


BACKENDS = ("tf", "onnxruntime")


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


class Detector:
    """Detect objects on batches of uint8 RGB images of any sizes.

    ``model``: a path to a converted/trained model (``.keras``, ``.h5``, a ``convert.py -w``
    weights file, or with the onnxruntime backend an ``.onnx`` file from
    :mod:`yolo3.backends.onnx_export`) or a loaded Keras YOLO model. Anchors, classes and the default
    network size come from the model's heads. ``classes_path``: class names, one a line; its
    length must equal the model's class count. ``anchors_path``: optional; when given it must
    list the model's anchors (it cannot change them). ``score``: Darknet's threshold (keep
    objectness x class probability > score); ``iou``: NMS IoU threshold; ``size``: network input
    (int or (h, w), multiple of 32; default the model's); ``max_boxes``: per image; ``xla``:
    compile letterbox, network and decoding with XLA (default; False for plain TF kernels);
    ``fold_batchnorm``: run an inference copy of the network with BatchNormalization merged into
    the convolutions (default; the model itself is not changed).
    """

    def __init__(self, model, classes_path: str | os.PathLike | None = None, score: float = 0.25,
                 iou: float = 0.45, size=None, max_boxes: int = 100, backend: str = "tf",
                 anchors_path: str | os.PathLike | None = None,
                 class_names: Sequence[str] | None = None, xla: bool = True, fold_batchnorm: bool = True):
        if backend not in BACKENDS:
            raise DetectorError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if not 0.0 <= float(score) < 1.0:
            raise DetectorError(f"score threshold must be in [0, 1), got {score}")
        if not 0.0 <= float(iou) <= 1.0:
            raise DetectorError(f"IoU threshold must be in [0, 1], got {iou}")
        if int(max_boxes) < 1:
            raise DetectorError(f"max_boxes must be at least 1, got {max_boxes}")
        self.score = float(score)
        self.iou = float(iou)
        self.max_boxes = int(max_boxes)
        self.backend = backend
        self.xla = bool(xla)
        self.fold_batchnorm = bool(fold_batchnorm)
        self.model = None
        self._onnx = None

        model_path = None
        if isinstance(model, (str, os.PathLike)):
            model_path = os.fspath(model)
            if not os.path.isfile(model_path):
                raise DetectorError(f"model file not found: {model_path}")
        if model_path is not None and model_path.lower().endswith(".onnx"):
            if backend != "onnxruntime":
                raise DetectorError(f"{model_path} is an ONNX file: use backend 'onnxruntime'")
            self._onnx = self._make_onnx(model_path, None)
            self.head_specs = self._onnx.head_specs
        else:
            self.model = self._load_keras(model_path) if model_path is not None else model
            from ..core.heads import get_head_specs

            try:
                self.head_specs = get_head_specs(self.model)
            except ValueError as exc:
                raise DetectorError(str(exc)) from None

        self.num_classes = self.head_specs[0].num_classes
        self.anchors = self._all_anchors()
        if anchors_path is not None:
            self._check_anchors(os.fspath(anchors_path))
        self.class_names = self._class_names(classes_path, class_names)
        from .drawing import class_colors

        self.colors = class_colors(self.num_classes)
        self.net_size = _parse_size(size) or tuple(self.head_specs[0].net_size)
        if self.net_size[0] % 32 or self.net_size[1] % 32:
            raise DetectorError(f"network size must be a multiple of 32, got {self.net_size}")
        if backend == "onnxruntime" and self._onnx is None:
            self._onnx = self._make_onnx(self.model, self.net_size)
        if self._onnx is not None:
            fixed = self._onnx.input_shape[1:3]
            if all(isinstance(v, int) for v in fixed) and tuple(fixed) != tuple(self.net_size):
                raise DetectorError(f"the ONNX model takes {fixed[0]}x{fixed[1]} inputs, not "
                                    f"{self.net_size[0]}x{self.net_size[1]}")
        self._build_functions()

    # -- set-up ---------------------------------------------------------------------------
    @staticmethod
    def _load_keras(path: str):
        from ..modeling.saving import load_model

        try:
            return load_model(path)
        except (OSError, ValueError) as exc:
            raise DetectorError(f"cannot load model {path}: {exc}") from None

    def _make_onnx(self, source, input_size):
        from ..backends.onnx_export import OnnxUnavailableError
        from ..backends.onnx_runtime import OnnxNetwork

        try:
            return OnnxNetwork(source, input_size=input_size)
        except OnnxUnavailableError as exc:
            raise DetectorError(str(exc)) from None

    def _all_anchors(self) -> np.ndarray:
        """All anchors (N, 2) of the model in cfg order (from the heads' masks for ONNX files)."""
        if self.model is not None:
            from ..core.heads import model_anchors

            return model_anchors(self.model)
        by_index = {}
        for spec in self.head_specs:
            for m, a in zip(spec.mask, spec.anchors):
                by_index[int(m)] = a
        return np.asarray([by_index[k] for k in sorted(by_index)], np.float32).reshape(-1, 2)

    def _check_anchors(self, path: str) -> None:
        from ..datasets.annotations import read_anchors

        if not os.path.isfile(path):
            raise DetectorError(f"anchors file not found: {path}")
        try:
            given = read_anchors(path)
        except ValueError as exc:
            raise DetectorError(str(exc)) from None
        model_anchors = self.anchors
        if given.shape != model_anchors.shape or not np.allclose(given, model_anchors, atol=1e-3):
            fmt = lambda a: " ".join(f"{w:g},{h:g}" for w, h in a)  # noqa: E731
            raise DetectorError(
                f"anchors in {path} ({len(given)}: {fmt(given)}) differ from the model's "
                f"({len(model_anchors)}: {fmt(model_anchors)}); the anchors travel inside the model, "
                "leave --anchors out")

    def _class_names(self, classes_path, class_names) -> list[str]:
        if classes_path is not None:
            from ..datasets.annotations import read_class_names

            path = os.fspath(classes_path)
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
        import tensorflow as tf

        from ..ops.decode import batched_nms, class_scores, decode_heads
        from ..ops.letterbox import boxes_to_image, letterbox

        specs, net_size = self.head_specs, self.net_size
        score, iou, max_boxes = self.score, self.iou, self.max_boxes
        image_spec = tf.TensorSpec([None, None, None, 3], tf.uint8)
        sizes_spec = tf.TensorSpec([None, 2], tf.int32)

        # XLA fuses the letterbox's gathers and arithmetic into one pass (~15x faster on CPU than
        # plain TF ops); it compiles once per input shape (see stack_images' bucketing). The network
        # and the decoding form a second XLA cluster (compiled once per batch size, ~1.3x faster
        # than TF's own kernels on CPU); CombinedNonMaxSuppression has no XLA kernel and runs in TF.
        xla = self.xla
        letterbox_fn = tf.function(lambda images, sizes: letterbox(images, sizes, net_size),
                                   jit_compile=xla)
        if self._onnx is not None:
            # The network in ONNX Runtime, decoding + NMS as an ONNX graph after it: a TF call
            # after each ONNX Runtime run costs ~2 ms on a 2-core CPU (see yolo3.backends.onnx_postprocess).
            from ..backends.onnx_postprocess import OnnxPostprocess

            self._letterbox_fn = tf.function(letterbox_fn, input_signature=[image_spec, sizes_spec])
            self._postprocess = OnnxPostprocess(specs, net_size, score, iou, max_boxes)
            return

        def decode(raw, sizes):
            raw = list(raw) if isinstance(raw, (list, tuple)) else [raw]
            decoded = decode_heads(raw, specs, net_size)
            scores = class_scores(decoded.objectness, decoded.class_probs, score)
            return boxes_to_image(decoded.boxes, sizes, net_size), scores

        def nms(boxes, scores):
            return tuple(batched_nms(boxes, scores, iou, score, max_boxes))

        model = self.model
        if self.fold_batchnorm:
            from ..modeling.batchnorm import UnsupportedLayerError, fold_batchnorm

            try:
                model = fold_batchnorm(model)
            except UnsupportedLayerError:  # a graph it cannot walk: run the model as it is
                pass
        network_fn = tf.function(lambda x, sizes: decode(model(x, training=False), sizes), jit_compile=xla)

        @tf.function(input_signature=[image_spec, sizes_spec])
        def detect(images, sizes):
            return nms(*network_fn(letterbox_fn(images, sizes), sizes))

        self._detect_fn = detect

    # -- detection ------------------------------------------------------------------------
    def run_batch(self, batch: np.ndarray, sizes: np.ndarray):
        """Low level: a zero-padded uint8 batch (B, H, W, 3) and its (B, 2) sizes -> padded NMS
        results as numpy (boxes (B, K, 4), scores (B, K), class_ids (B, K), count (B,))."""
        if self._onnx is not None:
            return self._postprocess(self._onnx(self._letterbox_fn(batch, sizes).numpy()), sizes)
        return tuple(t.numpy() for t in self._detect_fn(batch, sizes))

    def detect(self, images: Sequence[np.ndarray], pad_multiple: int = PAD_MULTIPLE) -> list[Detections]:
        """Detect on uint8 (H, W, 3) RGB images (sizes may differ), all in one batch.

        ``pad_multiple``: see :data:`PAD_MULTIPLE`; 1 suits a stream of same-size video frames.
        """
        return detect_images(self.run_batch, images, pad_multiple)

    def detect_one(self, image: np.ndarray) -> Detections:
        return self.detect([image])[0]

    def draw(self, image: np.ndarray, detections: Detections) -> np.ndarray:
        """A copy of the uint8 RGB ``image`` with ``detections`` drawn (see yolo3.inference.drawing)."""
        from .drawing import draw_detections

        return draw_detections(image, detections.boxes, detections.scores, detections.class_ids,
                               self.class_names, self.colors)
