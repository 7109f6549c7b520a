"""Darknet's letterbox inside the OpenVINO network (yolo3.backends.openvino_letterbox): the TF letterbox's
values, and the fp32 pipeline's use of it for a picture size that repeats."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from test_detector import mini_yolo_model

from yolo3.inference.detector import Detector
from yolo3.ops.letterbox import letterbox
from yolo3.ops.letterbox_remap import remap_plan

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None or importlib.util.find_spec("onnx") is None,
    reason="openvino and onnx are optional and not installed")


def _identity(net_size):
    """An ov.Model passing float32 (1, net_h, net_w, 3) through: the letterbox graph's output comes out."""
    import openvino as ov
    import openvino.opset13 as ops

    image = ops.parameter([1, *net_size, 3], ov.Type.f32)
    return ov.Model([ops.multiply(image, ops.constant(np.float32(1)))], [image])


@pytest.mark.parametrize("net_size,picture_hw", [
    ((416, 416), (576, 768)),
    ((416, 416), (448, 352)),  # Darknet's last row: (1-dy) * row[iy] with dy ~1, nearly black
    ((416, 416), (500, 842)),  # Darknet's last column: 415 * (841/415) rounds to 840.99994, pixel 841 copied
    ((96, 128), (50, 1)),  # a 1-column picture, and the last-row quirk again
    ((96, 128), (1, 50)),  # a 1-row picture
    ((96, 128), (1, 1)),
    ((96, 128), (17, 999)),  # a 1-pixel-high band
    ((96, 128), (333, 250)),
])
def test_the_graph_gives_the_tf_letterbox_within_float32_rounding(net_size, picture_hw):
    """Two pictures of one size through with_letterbox(identity): TF's exact letterbox within 1e-6
    (OpenVINO may fuse a product and a sum: measured 2.4e-7, two float32 steps below 1)."""
    import openvino as ov

    from yolo3.backends.openvino_letterbox import with_letterbox

    model = with_letterbox(_identity(net_size), 2, picture_hw)
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    pictures = np.random.default_rng(4).integers(0, 256, (2, *picture_hw, 3), dtype=np.uint8)
    got = compiled(pictures)[0]
    want = letterbox(pictures, np.array([picture_hw, picture_hw]), net_size).numpy()
    assert got.shape == want.shape == (2, *net_size, 3)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    plan = remap_plan(picture_hw, net_size)
    if plan.last_row_factor < 0.5:  # the quirk case really is one: the picture's last row nearly black
        last_row = (slice(None), plan.top + plan.new_h - 1, slice(plan.left, plan.left + plan.new_w))
        assert want[last_row].max() < 0.01 and got[last_row].max() < 0.01


def test_a_picture_that_letterboxes_to_nothing_is_refused():
    from yolo3.backends.openvino_letterbox import with_letterbox

    with pytest.raises(ValueError, match="letterboxes to nothing"):
        with_letterbox(_identity((96, 128)), 1, (1, 5000))


# -- the fp32 pipeline ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mini():
    return mini_yolo_model(3)


@pytest.fixture(scope="module")
def pictures():
    rng = np.random.default_rng(11)
    return {name: rng.integers(0, 256, size, dtype=np.uint8)
            for name, size in [("a", (70, 90, 3)), ("b", (64, 64, 3)), ("c", (50, 120, 3))]}


def _same(got, want):
    assert len(got) == len(want) > 0
    np.testing.assert_array_equal(got.class_ids, want.class_ids)
    np.testing.assert_allclose(got.boxes, want.boxes, atol=0.05)  # docs/detection.md's fp32 tolerance
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-4)


def test_a_size_that_comes_twice_in_a_row_is_letterboxed_in_the_network(mini, pictures):
    detector = Detector(mini, backend="openvino", score_threshold=0.01)
    exact = Detector(mini, backend="tf", score_threshold=0.01, xla=False)
    run = detector._openvino_run
    a, b, c = pictures["a"], pictures["b"], pictures["c"]
    want = {k: exact.detect_one(p) for k, p in pictures.items()}
    for picture, name in [(a, "a"), (b, "b"), (a, "a"), (b, "b")]:  # never twice in a row: the TF letterbox
        _same(detector.detect_one(picture), want[name])
        assert run.letterboxed_key is None
    _same(detector.detect_one(b), want["b"])  # b again: compiled for (1, 64, 64), and used
    assert run.letterboxed_key == (1, 64, 64)
    _same(detector.detect_one(b), want["b"])
    _same(detector.detect_one(c), want["c"])  # another size once: the letterbox outside, b's network kept
    assert run.letterboxed_key == (1, 64, 64)
    two = [c, c[::-1].copy()]
    for _ in range(2):  # a batch of two of one size, twice: its own network, in place of b's
        for got, picture in zip(detector.detect(two), two):
            _same(got, exact.detect_one(picture))
    assert run.letterboxed_key == (2, 50, 120)
    assert run.infer_pictures([a, b]) is None  # two sizes: the letterbox outside


def test_the_letterbox_stays_outside_where_it_would_not_pay(mini, pictures, monkeypatch):
    """bf16 and int8 have OpenCV's letterbox (faster); a network over LETTERBOXED_MAX_WEIGHT_BYTES would
    hold a second copy of its weights for 1% (YOLOv3)."""
    import warnings

    from yolo3.backends import openvino_runtime
    from yolo3.backends.openvino_runtime import PrecisionFallbackWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionFallbackWarning)
        bf16 = Detector(mini, backend="openvino", precision="bf16", score_threshold=0.01)
    monkeypatch.setattr(openvino_runtime, "LETTERBOXED_MAX_WEIGHT_BYTES", 1000)
    large = Detector(mini, backend="openvino", score_threshold=0.01)
    assert large._openvino.weight_bytes() > 1000
    for detector in (bf16, large):
        for _ in range(3):
            detector.detect_one(pictures["a"])
        assert detector._openvino_run.letterboxed_key is None
        assert detector._openvino_run.infer_pictures([pictures["a"]]) is None


def test_a_letterbox_openvino_cannot_compile_stays_outside_with_a_warning(mini, pictures):
    detector = Detector(mini, backend="openvino", score_threshold=0.01)
    exact = Detector(mini, backend="tf", score_threshold=0.01, xla=False)
    run = detector._openvino_run

    def fail(batch, picture_hw):
        raise RuntimeError("Exception from src/inference/src/cpp/core.cpp: unsupported")

    run._compile_letterboxed = fail
    want = exact.detect_one(pictures["a"])
    _same(detector.detect_one(pictures["a"]), want)
    with pytest.warns(RuntimeWarning, match="stays outside.*unsupported"):
        _same(detector.detect_one(pictures["a"]), want)
    _same(detector.detect_one(pictures["a"]), want)  # no second attempt, no second warning
    assert run.letterboxed_key is None and run._compile_letterboxed is None
