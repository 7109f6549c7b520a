"""The one detection post-processing pipeline: raw heads -> boxes in image pixels after per-class NMS.

:class:`Postprocessor` composes, with Darknet's semantics (see :mod:`yolo3.ops.decode` and
:mod:`yolo3.ops.letterbox`):

1. :meth:`Postprocessor.decode`: raw head outputs -> boxes (centre x, centre y, width, height as
   fractions of the network input) and scores ``objectness x class probability`` (what a TFLite
   export holds);
2. :meth:`Postprocessor.to_image`: scores zeroed unless ``> score_threshold``, boxes mapped through
   the inverse letterbox to x1, y1, x2, y2 in each picture's pixels;
3. :meth:`Postprocessor.nms`: per-class greedy NMS, the ``max_detections`` best (box, class) pairs
   per image.

:meth:`Postprocessor.select` is 2 + 3 (what runs after a TFLite interpreter), ``__call__`` is 1 + 2 + 3
and :meth:`Postprocessor.detection_function` puts the letterbox and a network in front, compiled
the way the Detector and the SavedModel run it. Every runtime uses this class: the Detector, the
SavedModel export, the TFLite export and runtime and the training mAP callback; the ONNX Runtime
backend builds an ONNX graph of the same steps from a Postprocessor's settings.
"""
from __future__ import annotations

from typing import Callable, Sequence

import tensorflow as tf

from ..core.heads import HeadSpec
from ..errors import Yolo3Error
from .decode import NmsResult, batched_nms, decode_heads
from .letterbox import boxes_to_image, letterbox

__all__ = ["PostprocessError", "Postprocessor", "LEGACY_SETTING_NAMES", "rename_legacy_settings"]


#: the earlier keyword names of the detectors' settings -> today's
LEGACY_SETTING_NAMES = {"score": "score_threshold", "iou": "iou_threshold", "size": "input_size",
                        "max_boxes": "max_detections"}


class PostprocessError(Yolo3Error):
    """A bad post-processing setting (threshold, detections kept, input size); one line for the user."""


def rename_legacy_settings(settings: dict, legacy: dict, who: str) -> dict:
    """``settings`` updated with the values given under earlier keyword names (``score=``, ``iou=``,
    ``size=``, ``max_boxes=``), which the detectors still accept.

    Args:
        settings: keyword -> value under today's names.
        legacy: the remaining keyword arguments of the caller.
        who: the caller's name, for the ``TypeError`` on an unknown keyword.
    """
    unknown = set(legacy) - set(LEGACY_SETTING_NAMES)
    if unknown:
        raise TypeError(f"{who}() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    return {**settings, **{LEGACY_SETTING_NAMES[k]: v for k, v in legacy.items()}}


def _check_settings(input_size, score_threshold: float, iou_threshold: float, max_detections: int) -> None:
    if len(input_size) != 2 or min(input_size) <= 0 or input_size[0] % 32 or input_size[1] % 32:
        raise PostprocessError(f"network size must be a positive multiple of 32, got "
                               f"{'x'.join(str(v) for v in input_size)}")
    if not 0.0 <= score_threshold < 1.0:
        raise PostprocessError(f"score threshold must be in [0, 1), got {score_threshold}")
    if not 0.0 <= iou_threshold <= 1.0:
        raise PostprocessError(f"IoU threshold must be in [0, 1], got {iou_threshold}")
    if max_detections < 1:
        raise PostprocessError(f"max_detections must be at least 1, got {max_detections}")


class Postprocessor:
    """Raw YOLO head outputs -> per-image detections in picture pixels, Darknet's way.

    Args:
        head_specs: the :class:`yolo3.core.heads.HeadSpec` of each model output, in output order; may be
            empty for a Postprocessor that only runs :meth:`select` (after a network that decodes).
        input_size: (height, width) of the network input in pixels, multiples of 32; default the
            specs' ``net_size`` (the cfg's).
        score_threshold: keep a (box, class) pair when objectness x class probability is ``>`` this.
        iou_threshold: per-class NMS drops a box whose IoU with a better one of its class is ``>`` this.
        max_detections: (box, class) pairs kept per image (the padded result size).

    Raises:
        PostprocessError: a setting out of range.
    """

    def __init__(self, head_specs: Sequence[HeadSpec], input_size: Sequence[int] | None = None, *,
                 score_threshold: float = 0.25, iou_threshold: float = 0.45, max_detections: int = 100):
        self.head_specs = tuple(head_specs)
        if input_size is None and not self.head_specs:
            raise PostprocessError("a Postprocessor without head specs needs an input_size")
        size = input_size if input_size is not None else self.head_specs[0].net_size
        self.input_size = tuple(int(v) for v in size)
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_detections = int(max_detections)
        _check_settings(self.input_size, self.score_threshold, self.iou_threshold, self.max_detections)

    def __repr__(self) -> str:
        return (f"Postprocessor({len(self.head_specs)} heads, input_size={self.input_size}, "
                f"score_threshold={self.score_threshold:g}, iou_threshold={self.iou_threshold:g}, "
                f"max_detections={self.max_detections})")

    # -- the steps ------------------------------------------------------------------------
    def decode(self, raw_heads) -> tuple[tf.Tensor, tf.Tensor]:
        """Raw heads -> ``(boxes, scores)``: float32 (B, N, 4) centre x, centre y, width, height as
        fractions of the network input, and (B, N, C) objectness x class probability, not thresholded
        (the outputs of a TFLite export).

        Args:
            raw_heads: one (B, h, w, A*(5+C)) tensor per head spec (or one tensor for one head).
        """
        raw = list(raw_heads) if isinstance(raw_heads, (list, tuple)) else [raw_heads]
        decoded = decode_heads(raw, self.head_specs, self.input_size)
        return decoded.boxes, decoded.objectness[..., None] * decoded.class_probs

    def to_image(self, boxes_cxcywh: tf.Tensor, scores: tf.Tensor, sizes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Boxes float32 (B, N, 4) x1, y1, x2, y2 in picture pixels (not clipped; pictures of the network
        size give network-input pixels) and scores zeroed unless ``> score_threshold``.

        Args:
            boxes_cxcywh: (B, N, 4) from :meth:`decode`.
            scores: (B, N, C) from :meth:`decode`.
            sizes: int (B, 2) each picture's (height, width).
        """
        scores = tf.where(scores > self.score_threshold, scores, tf.zeros_like(scores))
        return boxes_to_image(boxes_cxcywh, sizes, self.input_size), scores

    def nms(self, boxes: tf.Tensor, scores: tf.Tensor) -> NmsResult:
        """Per-class NMS -> padded :class:`yolo3.ops.decode.NmsResult` (``max_detections`` rows per image,
        best first).

        Args:
            boxes: (B, N, 4) corners from :meth:`to_image`.
            scores: (B, N, C) thresholded scores from :meth:`to_image`.
        """
        return batched_nms(boxes, scores, self.iou_threshold, self.score_threshold, self.max_detections)

    def select(self, boxes_cxcywh: tf.Tensor, scores: tf.Tensor, sizes: tf.Tensor) -> NmsResult:
        """:meth:`to_image` then :meth:`nms`: what runs after a network that already decodes (TFLite).

        Args:
            boxes_cxcywh: (B, N, 4) centre x, centre y, width, height as fractions of the network input.
            scores: (B, N, C) objectness x class probability.
            sizes: int (B, 2) each picture's (height, width).
        """
        return self.nms(*self.to_image(boxes_cxcywh, scores, sizes))

    def __call__(self, raw_heads, sizes: tf.Tensor) -> NmsResult:
        """:meth:`decode` then :meth:`select` -> padded :class:`yolo3.ops.decode.NmsResult`, boxes x1, y1,
        x2, y2 in picture pixels.

        Args:
            raw_heads: the network's raw outputs on the letterboxed pictures, one per head spec.
            sizes: int (B, 2) each picture's (height, width).
        """
        return self.select(*self.decode(raw_heads), sizes)

    # -- compiled pipelines ---------------------------------------------------------------
    def letterbox_function(self, xla: bool = True, input_signature=None) -> Callable:
        """A ``tf.function``: zero-padded uint8 (B, H, W, 3) pictures and int32 (B, 2) sizes -> float32
        (B, net_h, net_w, 3) Darknet letterbox.

        Args:
            xla: compile it with XLA: the gathers fuse into one pass (~15x faster on CPU), compiled once
                per input shape.
            input_signature: passed to ``tf.function``.
        """
        input_size = self.input_size
        return tf.function(lambda images, sizes: letterbox(images, sizes, input_size), jit_compile=bool(xla),
                           autograph=False, input_signature=input_signature)

    def detection_function(self, network: Callable, xla: bool = True) -> Callable:
        """The whole pipeline around ``network`` (float32 (B, net_h, net_w, 3) -> raw heads) as a Python
        callable ``(images uint8 (B, H, W, 3), sizes int32 (B, 2)) -> NmsResult``, to be traced by a
        ``tf.function``. Two XLA clusters when ``xla``: the letterbox, and the network + decoding +
        boxes to image (compiled once per batch size, ~1.3x faster than TF's kernels on CPU);
        CombinedNonMaxSuppression has no XLA kernel and runs in TF.

        Args:
            network: float32 (B, net_h, net_w, 3) letterboxed pictures -> raw head outputs.
            xla: compile the two clusters with XLA.
        """
        letterbox_fn = self.letterbox_function(xla)
        network_fn = tf.function(lambda net_input, sizes: self.to_image(*self.decode(network(net_input)), sizes),
                                 jit_compile=bool(xla), autograph=False)

        def detect(images, sizes) -> NmsResult:
            return self.nms(*network_fn(letterbox_fn(images, sizes), sizes))

        return detect
