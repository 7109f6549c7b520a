"""yolo3.ops.decode: head decoding against OpenCV's Darknet region layer (../shared/oracle parity files),
and batched NMS against a transcription of Darknet's do_nms_sort."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import require_shared

from yolo3.core.heads import HeadSpec
from yolo3.ops.decode import batched_nms, class_scores, decode_head, decode_heads


def _specs_from_meta(meta: dict) -> list[HeadSpec]:
    specs = []
    for head in meta["heads"]:
        anchors = np.asarray(head["anchors"], np.float32).reshape(-1, 2)
        specs.append(HeadSpec(anchors=anchors[head["mask"]], mask=tuple(head["mask"]),
                              num_classes=head["classes"], scale_x_y=head["scale_x_y"],
                              net_size=(meta["height"], meta["width"]), ignore_thresh=0.7,
                              name=f"yolo_{head['yolo_layer']}"))
    return specs


@pytest.mark.parametrize("name", ["yolov3-tiny", "yolov3", "yolov4-tiny"])
def test_decode_matches_opencv_region_layer(name):
    """OpenCV's yolo rows (cx, cy, w, h relative to the input, objectness, obj*prob zeroed <= 0.2)
    from the raw convolutions of random-weight networks: 2 or 3 heads, scale_x_y 1 and 1.05."""
    oracle = np.load(require_shared("oracle", f"parity_{name}.npz"))
    meta = json.loads(str(oracle["meta_json"]))
    specs = _specs_from_meta(meta)
    raw = [oracle[f"conv_{h['conv_layer']}"].transpose(0, 2, 3, 1) for h in meta["heads"]]
    decoded = decode_heads([tf.constant(r) for r in raw], specs, (meta["height"], meta["width"]))
    ref = np.concatenate([oracle[f"yolo_{h['yolo_layer']}"] for h in meta["heads"]])
    boxes = decoded.boxes.numpy()[0]
    assert boxes.shape == (ref.shape[0], 4)
    np.testing.assert_allclose(boxes, ref[:, :4], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(decoded.objectness.numpy()[0], ref[:, 4], atol=1e-5)
    scores = class_scores(decoded.objectness, decoded.class_probs, 0.2).numpy()[0]
    near = np.abs(ref[:, 5:] - 0.2) < 1e-4  # OpenCV's own threshold: rounding could go either way
    np.testing.assert_allclose(np.where(near, 0, scores), np.where(near, 0, ref[:, 5:]), atol=1e-5)


def test_decode_formula_with_scale_x_y_and_other_net_size():
    """One cell by hand: x = (col + sigmoid(tx)*s - (s-1)/2)/W, w = exp(tw)*anchor_w/net_w."""
    spec = HeadSpec(anchors=np.array([[10, 20], [30, 40]], np.float32), mask=(0, 1), num_classes=2,
                    scale_x_y=1.2, net_size=(416, 416), ignore_thresh=0.7, name="yolo_0")
    raw = np.zeros((1, 2, 3, 2 * 7), np.float32)  # grid 2 rows x 3 cols
    raw[0, 1, 2, 7:14] = [0.3, -0.4, 0.5, -0.2, 1.0, 2.0, -1.0]  # row 1, col 2, anchor 1
    decoded = decode_heads(raw, [spec], input_size=(64, 96))  # a single array works too
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    index = (1 * 3 + 2) * 2 + 1
    x, y, w, h = decoded.boxes.numpy()[0, index]
    assert x == pytest.approx((2 + sig(0.3) * 1.2 - 0.1) / 3, rel=1e-6)
    assert y == pytest.approx((1 + sig(-0.4) * 1.2 - 0.1) / 2, rel=1e-6)
    assert w == pytest.approx(np.exp(0.5) * 30 / 96, rel=1e-6)
    assert h == pytest.approx(np.exp(-0.2) * 40 / 64, rel=1e-6)
    assert decoded.objectness.numpy()[0, index] == pytest.approx(sig(1.0), rel=1e-6)
    np.testing.assert_allclose(decoded.class_probs.numpy()[0, index], sig(np.array([2.0, -1.0])), rtol=1e-6)


def test_one_decoder_for_loss_and_inference_clips_only_when_asked():
    """decode_head gives the loss its reshaped logits and boxes; max_log_wh (the loss's 10) clips tw, th
    before exp, None (inference) keeps Darknet's unclipped exp."""
    anchors = np.array([[10, 20], [30, 40]], np.float32)
    raw = np.zeros((1, 2, 3, 2 * 7), np.float32)
    raw[0, 1, 2, 7:11] = [0.3, -0.4, 20.0, -0.2]  # row 1, col 2, anchor 1: a wild tw
    logits, boxes = decode_head(tf.constant(raw), anchors, 2, (64, 96), 1.2)
    assert logits.shape == (1, 2, 3, 2, 7) and boxes.shape == (1, 2, 3, 2, 4)
    np.testing.assert_array_equal(logits.numpy()[0, 1, 2, 1], raw[0, 1, 2, 7:14])
    assert boxes.numpy()[0, 1, 2, 1, 2] == pytest.approx(np.exp(20.0) * 30 / 96, rel=1e-6)
    _, clipped = decode_head(tf.constant(raw), anchors, 2, tf.constant([64, 96]), 1.2, max_log_wh=10.0)
    assert clipped.numpy()[0, 1, 2, 1, 2] == pytest.approx(np.exp(10.0) * 30 / 96, rel=1e-6)
    np.testing.assert_array_equal(clipped.numpy()[..., [0, 1, 3]], boxes.numpy()[..., [0, 1, 3]])
    spec = HeadSpec(anchors=anchors, mask=(0, 1), num_classes=2, scale_x_y=1.2, net_size=(64, 96),
                    ignore_thresh=0.7, name="yolo_0")
    np.testing.assert_array_equal(decode_heads(raw, [spec]).boxes.numpy(), boxes.numpy().reshape(1, -1, 4))


def test_decode_rejects_mismatched_heads():
    spec = HeadSpec(anchors=np.ones((3, 2), np.float32), mask=(0, 1, 2), num_classes=80, scale_x_y=1.0,
                    net_size=(416, 416), ignore_thresh=0.7, name="yolo_0")
    with pytest.raises(ValueError):
        decode_heads([np.zeros((1, 13, 13, 255), np.float32)] * 2, [spec])


def test_class_scores_threshold_is_strict():
    obj = tf.constant([[0.5, 0.5]])
    probs = tf.constant([[[0.5, 0.6], [0.49, 1.0]]])
    scores = class_scores(obj, probs, 0.25).numpy()[0]
    np.testing.assert_allclose(scores, [[0.0, 0.3], [0.0, 0.5]], atol=1e-7)  # 0.25 itself is dropped


# ---- Darknet's do_nms_sort, transcribed -----------------------------------------------------------
def _overlap(x1, w1, x2, w2):
    left = max(x1 - w1 / 2, x2 - w2 / 2)
    right = min(x1 + w1 / 2, x2 + w2 / 2)
    return right - left


def _box_iou(a, b):
    w, h = _overlap(a[0], a[2], b[0], b[2]), _overlap(a[1], a[3], b[1], b[3])
    inter = 0.0 if w < 0 or h < 0 else w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def darknet_do_nms_sort(boxes_cxcywh, objectness, probs, nms):
    """box.c do_nms_sort on Darknet detections; returns the surviving (index, class, prob) entries."""
    dets = [{"i": i, "bbox": boxes_cxcywh[i], "objectness": objectness[i], "prob": list(probs[i])}
            for i in range(len(objectness))]
    dets = [d for d in dets if d["objectness"] != 0]
    for k in range(probs.shape[1]):
        dets.sort(key=lambda d: -d["prob"][k])
        for i in range(len(dets)):
            if dets[i]["prob"][k] == 0:
                continue
            for j in range(i + 1, len(dets)):
                if _box_iou(dets[i]["bbox"], dets[j]["bbox"]) > nms:
                    dets[j]["prob"][k] = 0
    return {(d["i"], k, float(d["prob"][k])) for d in dets for k in range(probs.shape[1]) if d["prob"][k] > 0}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_nms_equals_darknet_do_nms_sort(seed):
    rng = np.random.default_rng(seed)
    n, c, thresh, nms = 160, 4, 0.1, 0.45
    centres = rng.uniform(50, 350, size=(8, 2))[rng.integers(0, 8, n)] + rng.normal(0, 12, (n, 2))
    sizes = rng.uniform(20, 90, size=(n, 2))
    boxes_cxcywh = np.concatenate([centres, sizes], 1).astype(np.float32)
    objectness = rng.uniform(0, 1, n).astype(np.float32)
    probs_raw = rng.uniform(0, 1, (n, c)).astype(np.float32)
    # Darknet: anchors with objectness <= thresh are not detections at all; probs zeroed unless > thresh
    scores = class_scores(tf.constant(objectness[None]), tf.constant(probs_raw[None]), thresh).numpy()[0]
    objectness_kept = np.where(objectness > thresh, objectness, 0)
    ref = darknet_do_nms_sort(boxes_cxcywh, objectness_kept, np.where(objectness_kept[:, None] > 0, scores, 0), nms)

    corners = np.concatenate([boxes_cxcywh[:, :2] - boxes_cxcywh[:, 2:] / 2,
                              boxes_cxcywh[:, :2] + boxes_cxcywh[:, 2:] / 2], 1)
    result = batched_nms(tf.constant(corners[None]), tf.constant(scores[None]), nms, thresh, max_boxes=n * c)
    count = int(result.count[0])
    got = set()
    for b, s, k in zip(result.boxes.numpy()[0, :count], result.scores.numpy()[0, :count],
                       result.class_ids.numpy()[0, :count]):
        i = int(np.argmin(np.abs(corners - b).sum(1)))
        assert np.allclose(corners[i], b)
        got.add((i, int(k), float(s)))
    assert len(ref) > 20 and any(len({k for (j, k, _) in ref if j == i}) > 1 for i in range(n))  # non-trivial
    assert got == ref
    assert np.all(np.diff(result.scores.numpy()[0, :count]) <= 0)  # best first


def test_batched_nms_suppresses_only_above_threshold_and_caps():
    # nested boxes with IoU exactly 0.45 (180/400): Darknet keeps both (suppresses on IoU > 0.45)
    corners = np.array([[[0, 0, 20, 20], [0, 0, 20, 9], [100, 100, 120, 120], [0, 0, 20, 10]]], np.float32)
    scores = np.array([[[0.9, 0.0], [0.8, 0.0], [0.7, 0.7], [0.6, 0.0]]], np.float32)
    result = batched_nms(tf.constant(corners), tf.constant(scores), 0.45, 0.25, max_boxes=10)
    kept = sorted(zip([round(float(v), 3) for v in result.scores.numpy()[0, :int(result.count[0])]],
                      result.class_ids.numpy()[0, :int(result.count[0])].tolist()))
    assert kept == [(0.7, 0), (0.7, 1), (0.8, 0), (0.9, 0)]  # the IoU-0.5 box is gone, one box under 2 classes
    capped = batched_nms(tf.constant(corners), tf.constant(scores), 0.45, 0.25, max_boxes=2)
    assert int(capped.count[0]) == 2 and capped.scores.numpy()[0].tolist() == pytest.approx([0.9, 0.8])
