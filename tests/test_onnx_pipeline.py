"""The ONNX backends' decoding + NMS in NumPy (yolo3.ops.postprocess_numpy) equal
yolo3.ops.postprocess.Postprocessor in TF."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnx and onnxruntime are optional and not installed")

NET = (96, 128)  # (height, width), not square on purpose


def _specs(num_classes: int, scale_x_y: float):
    from yolo3.core.heads import HeadSpec

    anchors = np.array([[10, 14], [23, 27], [37, 58], [81, 82], [135, 169], [344, 319]], np.float32)
    return [HeadSpec(anchors=anchors[3:], mask=(3, 4, 5), num_classes=num_classes, scale_x_y=scale_x_y,
                     net_size=NET, ignore_thresh=0.7, name="yolo_0"),
            HeadSpec(anchors=anchors[:3], mask=(0, 1, 2), num_classes=num_classes, scale_x_y=scale_x_y,
                     net_size=NET, ignore_thresh=0.7, name="yolo_1")]


def _postprocessor(specs, score, iou, max_boxes):
    from yolo3.ops.postprocess import Postprocessor

    return Postprocessor(specs, NET, score_threshold=score, iou_threshold=iou, max_detections=max_boxes)


@pytest.mark.parametrize("batch", [3, 1])
@pytest.mark.parametrize("one_call", [True, False], ids=["cv2-nms", "tf-nms-on-the-candidates"])
@pytest.mark.parametrize("scale_x_y,score,max_boxes", [(1.0, 0.25, 100), (1.05, 0.05, 7), (1.1, 0.0, 30)])
def test_postprocess_equals_tf_decode_and_nms(scale_x_y, score, max_boxes, one_call, batch, monkeypatch):
    """Both NMS paths (one cv2.dnn.NMSBoxes call for few pairs, TF's own NMS on the candidates for
    many) against the TF pipeline on every anchor; batch 1 takes a path of its own."""
    from yolo3.ops import postprocess_numpy
    from yolo3.ops.postprocess_numpy import NumpyPostprocess

    monkeypatch.setattr(postprocess_numpy, "ONE_CALL_MAX_PAIRS", 10**9 if one_call else 0)

    num_classes = 4
    specs = _specs(num_classes, scale_x_y)
    rng = np.random.default_rng(0)
    raw = [rng.normal(0, 1.5, (batch, NET[0] // s, NET[1] // s, 3 * (5 + num_classes))).astype(np.float32)
           for s in (32, 16)]
    for r in raw:  # a few confident anchors, and class logits high for two classes at once
        r[..., 4::5 + num_classes] -= 2.0
    sizes = np.array([[480, 640], [300, 200], [96, 128]], np.int32)[:batch]
    settings = _postprocessor(specs, score, 0.45, max_boxes)
    boxes, scores, classes, count = NumpyPostprocess(settings)(raw, sizes)
    ref_boxes, ref_scores, ref_classes, ref_count = (t.numpy() for t in settings(raw, sizes))
    np.testing.assert_array_equal(count, ref_count)
    assert count.max() > 0 and (max_boxes > 50 or count.max() == max_boxes)
    for b in range(batch):
        n = count[b]
        # same pairs; the order of equal scores may differ, so compare sorted by (score, class)
        ours = np.lexsort((classes[b, :n], -scores[b, :n]))
        theirs = np.lexsort((ref_classes[b, :n], -ref_scores[b, :n]))
        np.testing.assert_allclose(scores[b, :n][ours], ref_scores[b, :n][theirs], atol=1e-5)
        np.testing.assert_array_equal(classes[b, :n][ours], ref_classes[b, :n][theirs])
        np.testing.assert_allclose(boxes[b, :n][ours], ref_boxes[b, :n][theirs], atol=1e-3)
        assert np.all(np.diff(scores[b, :n]) <= 0), "best first"
    # the padding after each image's count is zero, like combined_non_max_suppression's
    for b in range(batch):
        assert not scores[b, count[b]:].any() and not boxes[b, count[b]:].any()


@pytest.mark.parametrize("score", [0.25, 0.5, 0.9, 1e-6])
def test_the_objectness_prefilter_keeps_every_anchor_the_exact_test_keeps(score):
    """Anchors are picked by their objectness logit before any sigmoid is taken: none whose float32
    sigmoid is > score_threshold may be lost. Logits a few float32 steps either side of the threshold's
    logit, class logits that make the class probability 1."""
    from yolo3.ops.postprocess_numpy import NumpyPostprocess, _sigmoid

    specs = _specs(2, 1.0)
    logit = np.float32(np.log(score / (1 - score)))
    steps = np.arange(-70, 70, dtype=np.float32)  # float32 steps of the logit
    values = (logit + steps * np.spacing(max(np.abs(logit), np.float32(1)))).astype(np.float32)
    raw = [np.full((1, NET[0] // s, NET[1] // s, 3 * 7), -30.0, np.float32) for s in (32, 16)]
    flat = raw[1].reshape(-1, 7)  # the 144 anchors of the second head
    flat[:len(values), 4] = values
    flat[:len(values), 5:] = 30.0
    post = NumpyPostprocess(_postprocessor(specs, score, 0.45, 5))
    image, boxes, prob = post.candidates(raw)
    expected = int(np.count_nonzero(_sigmoid(values) > np.float32(score)))
    assert 0 < expected < len(values)
    assert len(image) == expected
    assert np.all(prob.max(axis=1) > np.float32(score))


def test_no_detections_gives_empty_padded_results():
    from yolo3.ops.postprocess_numpy import NumpyPostprocess

    specs = _specs(2, 1.0)
    raw = [np.full((2, NET[0] // s, NET[1] // s, 3 * 7), -20.0, np.float32) for s in (32, 16)]
    post = NumpyPostprocess(_postprocessor(specs, 0.25, 0.45, 5))
    boxes, scores, classes, count = post(raw, np.array([[10, 10], [50, 20]]))
    assert boxes.shape == (2, 5, 4) and scores.shape == (2, 5) and classes.shape == (2, 5)
    np.testing.assert_array_equal(count, [0, 0])


def test_boxes_to_image_np_equals_tf():
    from yolo3.ops.letterbox import boxes_to_image
    from yolo3.ops.postprocess_numpy import boxes_to_image_np

    rng = np.random.default_rng(3)
    sizes = np.array([[480, 640], [640, 480], [333, 517], [50, 1000]], np.int32)
    boxes = rng.uniform(0, 1, (4, 6, 4)).astype(np.float32)
    ref = boxes_to_image(boxes, sizes, NET).numpy()
    ours = boxes_to_image_np(boxes.reshape(-1, 4), np.repeat(sizes, 6, axis=0), NET).reshape(4, 6, 4)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-4)


def test_wild_logits_give_infinite_boxes_without_warnings_or_lost_pairs():
    """exp of a huge tw/th overflows to an infinite box (in TF too); the NMS still keeps the other
    pairs, and NumPy's overflow stays quiet."""
    import warnings

    from yolo3.ops.postprocess_numpy import NumpyPostprocess

    specs = _specs(2, 1.0)
    raw = [np.full((1, NET[0] // s, NET[1] // s, 3 * 7), -20.0, np.float32) for s in (32, 16)]
    raw[0][0, 0, 0, 0:7] = [0.0, 0.0, 200.0, 0.0, 5.0, 5.0, -5.0]  # an infinite-width box of class 0
    raw[0][0, 1, 2, 0:7] = [0.0, 0.0, 0.0, 0.0, 5.0, 5.0, -5.0]  # an ordinary one, overlapping it
    raw[1][0, 3, 3, 7:14] = [0.0, 0.0, 0.0, 0.0, 5.0, -5.0, 5.0]  # class 1
    settings = _postprocessor(specs, 0.25, 0.45, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        boxes, scores, classes, count = NumpyPostprocess(settings)(raw, np.array([[96, 128]]))
    ref_boxes, ref_scores, ref_classes, ref_count = (t.numpy() for t in settings(raw, np.array([[96, 128]])))
    np.testing.assert_array_equal(count, ref_count)
    assert count[0] == 3 and sorted(classes[0, :3]) == [0, 0, 1]
    assert np.isinf(boxes[0, :3]).any() and np.isfinite(boxes[0, :3]).sum() >= 8


def test_many_pairs_go_to_tensorflows_nms_not_opencvs(monkeypatch):
    """cv2.dnn.NMSBoxes compares each pair with every pair kept so far and has no per-class cap:
    with an untrained network (12.6 million pairs for a YOLOv3-608 batch of 8 at 0.25) it ran for
    hours. Above ONE_CALL_MAX_PAIRS pairs, TF's capped NMS runs on the candidates instead."""
    from yolo3.ops import postprocess_numpy

    def refuse(*args, **kwargs):
        raise AssertionError("OpenCV's NMS got more pairs than ONE_CALL_MAX_PAIRS")

    monkeypatch.setattr(postprocess_numpy, "per_class_nms", refuse)
    specs = _specs(4, 1.0)
    raw = [np.random.default_rng(1).normal(0, 0.3, (3, NET[0] // s, NET[1] // s, 27)).astype(np.float32)
           for s in (32, 16)]
    post = postprocess_numpy.NumpyPostprocess(_postprocessor(specs, 0.0, 0.45, 20))
    assert np.count_nonzero(post.candidates(raw)[2]) > postprocess_numpy.ONE_CALL_MAX_PAIRS
    boxes, scores, classes, count = post(raw, np.array([[96, 128]] * 3))
    np.testing.assert_array_equal(count, [20, 20, 20])
