"""Decoding and per-class NMS in ONNX Runtime, for ``Detector(backend="onnxruntime")``.

The onnxruntime backend runs the letterbox as a TensorFlow function (XLA fuses its gathers; the
same letterbox written as ONNX Gather ops took 12 ms a picture on one thread), the network in ONNX
Runtime, and then this module's graph: a TensorFlow call after each ONNX Runtime run cost about
2 ms on a 2-core CPU (its thread pool wakes up again each time), twice what this graph takes,
which kept yolov3-tiny at batch 1 at 1.3-1.6x the bare network's time. The steps and the arithmetic
are those of :class:`yolo3.ops.postprocess.Postprocessor`, whose settings configure
:class:`OnnxPostprocess`:

- :func:`postprocess_graph` decodes the raw heads (sigmoid/exp, grid, anchors, ``scale_x_y``),
  keeps the candidate boxes (objectness ``> score_threshold``: Darknet's score ``objectness *
  class_prob`` cannot pass otherwise), forms their scores zeroed unless ``> score_threshold``, and runs
  ONNX's ``NonMaxSuppression`` per image and class (suppress on IoU ``> iou_threshold``, keep scores
  ``> score_threshold``: the rules of ``tf.image.combined_non_max_suppression``) on the centre-format
  boxes.
- :func:`select_detections` (NumPy, on the few selected pairs) keeps the ``max_detections`` best per
  image and maps them to original-image pixels like :func:`yolo3.ops.letterbox.boxes_to_image`. IoU
  does not change under the letterbox's per-axis scaling and shift, so suppressing in network
  coordinates keeps the same pairs as suppressing in image coordinates.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..core.heads import HeadSpec
from ..ops.letterbox_remap import letterbox_size_np

if TYPE_CHECKING:  # the module itself needs no TensorFlow
    from ..ops.postprocess import Postprocessor

__all__ = ["letterbox_size_np", "postprocess_graph", "select_detections", "boxes_to_image_np", "OnnxPostprocess"]


OPSET = 17


class _GraphBuilder:
    """Collects ONNX nodes and constants for a small graph."""

    def __init__(self):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits = [], []

    def const(self, name: str, value) -> str:
        value = np.ascontiguousarray(value) if np.ndim(value) else np.asarray(value)  # 0-d stays a scalar
        self.inits.append(self.numpy_helper.from_array(value, name))
        return name

    def int64(self, name: str, value) -> str:
        """An int64 constant (indices, axes, shapes)."""
        return self.const(name, np.array(value, np.int64))

    def add(self, op: str, inputs: Sequence[str], output: str, **attrs) -> str:
        self.nodes.append(self.helper.make_node(op, list(inputs), [output], name=output, **attrs))
        return output

    def model(self, name: str, inputs, outputs):
        from onnx import checker

        graph = self.helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = self.helper.make_model(graph, opset_imports=[self.helper.make_opsetid("", OPSET)],
                                       producer_name="yolo3")
        checker.check_model(model)
        return model


def postprocess_graph(specs: Sequence[HeadSpec], grids: Sequence[Sequence[int]], input_size: Sequence[int],
                      score_threshold: float, iou_threshold: float, max_detections: int):
    """ONNX model: raw heads ``raw_0..`` float32 (B, h_i, w_i, A*(5+C)) -> the M candidate boxes (those
    whose objectness is ``> score_threshold``: no class of another box can pass Darknet's rule
    ``objectness * class_prob > score_threshold``) as ``boxes`` (M, 4) centre x, centre y, width, height
    as fractions of the network input, ``scores`` (1, B*C, M) their Darknet scores zeroed unless
    ``> score_threshold`` (row ``b*C + c`` holds class c of image b; zero for other images' boxes), and
    ``selected`` int64 (K, 3) (0, b*C + c, candidate) of the pairs per-class NMS keeps (at most
    ``max_detections`` per image and class).

    Only the candidates reach the class sigmoids and the NMS, which are otherwise the cost of a
    large head (YOLOv3-416: 10,647 boxes x 80 classes a picture).

    Args:
        specs: the head specs, in output order.
        grids: (h_i, w_i) of each raw head.
        input_size: network input (height, width) in pixels.
        score_threshold: keep scores ``>`` this.
        iou_threshold: suppress on IoU ``>`` this.
        max_detections: pairs kept per image and class by the NMS node.
    """
    from onnx import TensorProto

    g = _GraphBuilder()
    vi = g.helper.make_tensor_value_info
    inputs, boxes, objectness, logits, owners = [], [], [], [], []
    threshold = g.const("score", np.float32(score_threshold))
    for k, (spec, (gh, gw)) in enumerate(zip(specs, grids)):
        a, c = spec.num_anchors, spec.num_classes
        inputs.append(vi(f"raw_{k}", TensorProto.FLOAT, ["batch", int(gh), int(gw), a * (5 + c)]))
        box, obj, cls, image = _head_candidates(g, k, spec, (int(gh), int(gw)), input_size, threshold)
        boxes.append(box)
        objectness.append(obj)
        logits.append(cls)
        owners.append(image)
    num_classes = specs[0].num_classes
    concat = lambda parts, name: (g.add("Concat", parts, name, axis=0) if len(parts) > 1  # noqa: E731
                                  else g.add("Identity", parts, name))
    # the candidates of all heads: (M, 4) boxes, (M,) objectness, (M, C) class logits, (M,) image
    cand_boxes, cand_obj = concat(boxes, "boxes"), concat(objectness, "cand_obj")
    cand_logits, image = concat(logits, "cand_logits"), concat(owners, "cand_image")
    cand_obj = g.add("Unsqueeze", [cand_obj, g.const("last", np.array([-1]))], "cand_obj_1")
    prob = g.add("Mul", [cand_obj, g.add("Sigmoid", [cand_logits], "cand_cls")], "cand_prob")
    zero, axis0 = g.const("zero", np.float32(0.0)), g.const("axes_0", np.array([0]))
    kept = g.add("Where", [g.add("Greater", [prob, threshold], "above"), prob, zero], "kept_scores")  # (M, C)
    # Scores (1, B*C, M): row b*C + c holds class c of image b's candidates, zero for other images'
    # candidates, so the NMS (per row) never compares boxes of two images and keeps its per-class cap.
    batch = g.add("Gather", [g.add("Shape", ["raw_0"], "raw_shape"), g.int64("dim0", 0)], "batch")
    images = g.add("Range", [g.int64("start", 0), batch, g.int64("step", 1)], "images")
    own = g.add("Equal", [g.add("Unsqueeze", [images, g.const("axes_12", np.array([1, 2]))], "images_b11"),
                          g.add("Unsqueeze", [image, g.const("axes_01", np.array([0, 1]))], "image_11m")], "own")
    kept_1cm = g.add("Unsqueeze", [g.add("Transpose", [kept], "kept_cm", perm=[1, 0]), axis0], "kept_1cm")
    per_image = g.add("Where", [own, kept_1cm, zero], "scores_bcm")  # (B, C, M)
    # the shape spelled out: a -1 cannot be inferred when there is no candidate (M = 0)
    rows = g.add("Unsqueeze", [g.add("Mul", [batch, g.int64("classes", num_classes)], "rows"), axis0], "rows_1d")
    count = g.add("Shape", [image], "count_1d")
    shape = g.add("Concat", [g.const("one", np.array([1], np.int64)), rows, count], "shape_scores", axis=0)
    scores = g.add("Reshape", [per_image, shape], "scores")
    g.add("NonMaxSuppression", [g.add("Unsqueeze", [cand_boxes, axis0], "nms_boxes"),
                                scores, g.const("max_per_class", np.array([max_detections], np.int64)),
                                g.const("iou", np.array([iou_threshold], np.float32)),
                                g.const("score_threshold", np.array([score_threshold], np.float32))],
          "selected", center_point_box=1)
    outputs = [vi("boxes", TensorProto.FLOAT, ["candidates", 4]),
               vi("scores", TensorProto.FLOAT, [1, f"batch_x_{num_classes}", "candidates"]),
               vi("selected", TensorProto.INT64, ["pairs", 3])]
    return g.model("yolo3_postprocess", inputs, outputs)


def _head_candidates(g: _GraphBuilder, k: int, spec: HeadSpec, grid: tuple[int, int], input_size: Sequence[int],
                     threshold: str):
    """Nodes finding raw head ``raw_k``'s candidates (objectness ``> threshold``) and decoding only
    them like :mod:`yolo3.ops.decode`: boxes (M_k, 4) cxcywh fractions, objectness (M_k,) after the
    sigmoid, class logits (M_k, C), image index (M_k,); their names. Candidates come in (image, y, x,
    anchor) order."""
    (gh, gw), a, c = grid, spec.num_anchors, spec.num_classes
    net_h, net_w = float(input_size[0]), float(input_size[1])
    rows = g.add("Reshape", [f"raw_{k}", g.const(f"shape_rows_{k}", np.array([0, -1, 5 + c], np.int64))],
                 f"rows_{k}")  # (B, N_k, 5 + C), N_k = h * w * A in (y, x, anchor) order
    obj = g.add("Sigmoid", [g.add("Gather", [rows, g.int64(f"obj_col_{k}", 4)], f"tobj_{k}", axis=2)], f"obj_{k}")
    where = g.add("NonZero", [g.add("Greater", [obj, threshold], f"obj_above_{k}")], f"where_{k}")  # (2, M_k)
    pairs = g.add("Transpose", [where], f"pairs_{k}", perm=[1, 0])
    cand = g.add("GatherND", [rows, pairs], f"cand_{k}")  # (M_k, 5 + C)
    cand_obj = g.add("GatherND", [obj, pairs], f"obj_cand_{k}")
    image = g.add("Gather", [where, g.int64(f"row0_{k}", 0)], f"image_{k}", axis=0)
    box_index = g.add("Gather", [where, g.int64(f"row1_{k}", 1)], f"index_{k}", axis=0)
    txy, twh, tcls = (f"txy_{k}", f"twh_{k}", f"tcls_{k}")
    g.nodes.append(g.helper.make_node("Split", [cand, g.const(f"split_{k}", np.array([2, 2, 1, c], np.int64))],
                                      [txy, twh, f"tobj_cand_{k}", tcls], name=f"split_{k}", axis=1))
    xy = g.add("Sigmoid", [txy], f"sig_xy_{k}")
    if spec.scale_x_y != 1.0:
        xy = g.add("Mul", [xy, g.const(f"sxy_{k}", np.float32(spec.scale_x_y))], f"scaled_xy_{k}")
        xy = g.add("Sub", [xy, g.const(f"sxy_off_{k}", np.float32(0.5 * (spec.scale_x_y - 1.0)))], f"shift_xy_{k}")
    col, row = np.meshgrid(np.arange(gw, dtype=np.float32), np.arange(gh, dtype=np.float32))
    cells = np.repeat(np.stack([col, row], -1).reshape(-1, 2), a, axis=0)  # (N_k, 2) x, y of each box
    cell_xy = g.add("Gather", [g.const(f"grid_{k}", cells), box_index], f"cand_grid_{k}", axis=0)
    xy = g.add("Add", [cell_xy, xy], f"cell_xy_{k}")
    xy = g.add("Div", [xy, g.const(f"grid_size_{k}", np.array([gw, gh], np.float32))], f"xy_{k}")
    # exp(t) * anchor / net, in that order, as yolo3.ops.decode does
    anchors = np.tile(np.asarray(spec.anchors, np.float32).reshape(a, 2), (gh * gw, 1))  # (N_k, 2)
    anchor_wh = g.add("Gather", [g.const(f"anchors_{k}", anchors), box_index], f"cand_anchor_{k}", axis=0)
    wh = g.add("Mul", [g.add("Exp", [twh], f"exp_wh_{k}"), anchor_wh], f"anchor_wh_{k}")
    wh = g.add("Div", [wh, g.const(f"net_{k}", np.array([net_w, net_h], np.float32))], f"wh_{k}")
    box = g.add("Concat", [xy, wh], f"box_{k}", axis=-1)
    return box, cand_obj, tcls, image


def boxes_to_image_np(boxes_cxcywh: np.ndarray, sizes: np.ndarray, net_size: Sequence[int]) -> np.ndarray:
    """NumPy twin of :func:`yolo3.ops.letterbox.boxes_to_image` for (K, 4) boxes, each with its own image size.

    Args:
        boxes_cxcywh: float (K, 4) centre x, centre y, width, height as fractions (0..1) of the network input.
        sizes: int (K, 2) the (height, width) in pixels of each box's original image.
        net_size: (net_h, net_w), the network input size in pixels.

    Returns:
        float32 (K, 4) x1, y1, x2, y2 in original-image pixels, not clipped.
    """
    net_h, net_w = np.float32(net_size[0]), np.float32(net_size[1])
    sizes = np.asarray(sizes, np.int32).reshape(-1, 2)
    new_h, new_w = letterbox_size_np(sizes[:, 0], sizes[:, 1], int(net_size[0]), int(net_size[1]))
    img_h, img_w = sizes[:, 0].astype(np.float32), sizes[:, 1].astype(np.float32)
    new_h, new_w = new_h.astype(np.float32), new_w.astype(np.float32)
    two = np.float32(2.0)
    cx, cy, w, h = np.asarray(boxes_cxcywh, np.float32).T
    cx = (cx - (net_w - new_w) / two / net_w) / (new_w / net_w) * img_w
    cy = (cy - (net_h - new_h) / two / net_h) / (new_h / net_h) * img_h
    w = w * (net_w / new_w) * img_w
    h = h * (net_h / new_h) * img_h
    return np.stack([cx - w / two, cy - h / two, cx + w / two, cy + h / two], axis=-1).astype(np.float32)


def select_detections(boxes: np.ndarray, scores: np.ndarray, selected: np.ndarray, sizes: np.ndarray,
                      input_size: Sequence[int], max_detections: int):
    """Padded per-image results from :func:`postprocess_graph`'s outputs, like
    :meth:`yolo3.ops.postprocess.Postprocessor.select`: boxes (B, K, 4) x1, y1, x2, y2 in image
    pixels, scores (B, K), class_ids int32 (B, K), count int32 (B,), best first, K = ``max_detections``.

    Args:
        boxes: (M, 4) the graph's candidate ``boxes``.
        scores: (1, B*C, M) the graph's ``scores``.
        selected: (K, 3) the graph's ``selected``: (0, b*C + c, candidate).
        sizes: int (B, 2) each picture's (height, width).
        input_size: network input (height, width).
        max_detections: rows kept per image.
    """
    batch = len(sizes)
    num_classes = scores.shape[1] // batch
    out_boxes = np.zeros((batch, max_detections, 4), np.float32)
    out_scores = np.zeros((batch, max_detections), np.float32)
    out_classes = np.zeros((batch, max_detections), np.int32)
    count = np.zeros((batch,), np.int32)
    if selected.size:
        row, i = selected[:, 1], selected[:, 2]
        b, c = row // num_classes, row % num_classes
        pair_scores = scores[0, row, i]
        order = np.lexsort((-pair_scores, b))  # by image, then best score first
        b, c, i, pair_scores = b[order], c[order], i[order], pair_scores[order]
        starts = np.searchsorted(b, np.arange(batch))
        rank = np.arange(len(b)) - starts[b]
        keep = rank < max_detections
        b, c, i, rank, pair_scores = b[keep], c[keep], i[keep], rank[keep], pair_scores[keep]
        out_boxes[b, rank] = boxes_to_image_np(boxes[i], np.asarray(sizes)[b], input_size)
        out_scores[b, rank] = pair_scores
        out_classes[b, rank] = c
        count = np.bincount(b, minlength=batch).astype(np.int32)
    return out_boxes, out_scores, out_classes, count


class OnnxPostprocess:
    """Decoding + per-class NMS in ONNX Runtime: ``post(raw, sizes)`` has the output of
    :meth:`yolo3.inference.detector.Detector.run_batch` (padded boxes in image pixels, scores, class ids,
    counts). The graph is built per set of head shapes (one per network input size) on first use.

    Args:
        settings: the :class:`yolo3.ops.postprocess.Postprocessor` whose steps this runs as an ONNX
            graph (its ``head_specs``, ``input_size``, ``score_threshold``, ``iou_threshold`` and
            ``max_detections`` are read once).
    """

    def __init__(self, settings: Postprocessor):
        import onnxruntime as ort

        self.head_specs = list(settings.head_specs)
        self.input_size = (int(settings.input_size[0]), int(settings.input_size[1]))
        self.score_threshold = float(settings.score_threshold)
        self.iou_threshold = float(settings.iou_threshold)
        self.max_detections = int(settings.max_detections)
        self._ort = ort
        self._sessions: dict[tuple, object] = {}

    def _session(self, grids: tuple):
        session = self._sessions.get(grids)
        if session is None:
            options = self._ort.SessionOptions()
            options.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # a small graph: the calling thread alone, no thread pool to wake between runs
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            model = postprocess_graph(self.head_specs, grids, self.input_size, self.score_threshold,
                                      self.iou_threshold, self.max_detections)
            session = self._ort.InferenceSession(model.SerializeToString(), options,
                                                 providers=["CPUExecutionProvider"])
            self._sessions[grids] = session
        return session

    def __call__(self, raw: Sequence[np.ndarray], sizes: np.ndarray):
        grids = tuple((int(r.shape[1]), int(r.shape[2])) for r in raw)
        boxes, scores, selected = self._session(grids).run(None, {f"raw_{k}": r for k, r in enumerate(raw)})
        return select_detections(boxes, scores, selected, sizes, self.input_size, self.max_detections)
