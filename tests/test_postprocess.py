"""The post-processing pipeline is composed in one place (yolo3.ops.postprocess.Postprocessor): the Detector,
the SavedModel (loaded with plain tf.saved_model.load), the TFLite runtime (float32 export) and the training
mAP callback's detection function give the same boxes on the same pictures.

A 3-class yolov3-tiny with random weights (heads rescaled so that a few dozen boxes pass the threshold)
keeps it fast and needs no download. Tolerances: SavedModel boxes within 4e-5 px (tighter than the 2.5e-4 px
docs/export.md allows for real weights on 1000-px pictures), TFLite float32 within 4e-4 px, docs/export.md's
(plus 1e-6 relative, see TFLITE_BOX_RTOL); the callback's boxes
in network pixels equal the Detector's on pictures of the network size.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import DARKNET_IMAGES
from PIL import Image

from yolo3.core.detections import Detections

SCORE = 0.3
SAVED_MODEL_BOX_TOL = 4e-5  # px (docs/export.md: 2.5e-4 px with real weights)
TFLITE_BOX_TOL = 4e-4       # px, docs/export.md (real weights)
# The interpreter's own float32 convolutions (XNNPACK) sum in another order: with these amplified random
# heads, boxes 700 px from the origin move by up to 8 ulps (4.9e-4 px), hence also 1e-6 relative.
TFLITE_BOX_RTOL = 1e-6
SCORE_TOL = 1e-5


@pytest.fixture(scope="module")
def pictures() -> list[np.ndarray]:
    """Three pictures of different sizes: Darknet's samples when ../shared is there, else generated."""
    from yolo3.datasets.imageio import read_image_rgb

    names = ("dog.jpg", "person.jpg", "scream.jpg")
    if all((DARKNET_IMAGES / n).is_file() for n in names):
        return [read_image_rgb(DARKNET_IMAGES / n) for n in names]
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, size=(8, 12, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(base).resize((640, 480), Image.BILINEAR))
    return [big, big[:424, :600].copy(), np.ascontiguousarray(big.transpose(1, 0, 2)[:448, :352])]


@pytest.fixture(scope="module")
def model(pictures):
    """yolov3-tiny, 3 classes, random weights; the head convolutions rescaled to spread ~1.5 over the
    pictures with a low objectness bias, so a few dozen (box, class) pairs score above SCORE."""
    import keras

    from yolo3.modeling.factory import create_model
    from yolo3.ops.letterbox import letterbox_image

    keras.utils.set_random_seed(3)
    net = create_model("tiny", 3)
    heads = [layer for layer in net.layers if layer.name.startswith("conv_") and layer.filters == 3 * 8]
    outputs = sorted(net(letterbox_image(pictures[0], (416, 416))[None]), key=lambda o: o.shape[1])
    rng = np.random.default_rng(0)
    for layer, out in zip(heads, outputs):
        kernel, _ = layer.get_weights()
        spread = np.asarray(out).reshape(-1, kernel.shape[-1]).std(0) + 1e-6
        bias = rng.normal(0, 0.5, kernel.shape[-1]).astype(np.float32)
        bias[4::8] = -3.0
        target = np.tile(np.array([1.5, 1.5, 0.5, 0.5, 1.5, 1.5, 1.5, 1.5], np.float32), 3)
        layer.set_weights([kernel * (target / spread), bias])
    return net


@pytest.fixture(scope="module")
def reference(model, pictures) -> list[Detections]:
    from yolo3.inference.detector import Detector

    # BatchNormalization not folded: the exports run the model as it is (folding moves boxes by a few
    # float32 ulps, 2e-4 px at 600 px with these random weights; tests/test_detector.py covers it)
    results = Detector(model, score_threshold=SCORE, fold_batchnorm=False).detect(pictures)
    assert sum(len(d) for d in results) >= 10, "the comparison would be vacuous"
    return results


def assert_same(ref: Detections, got: Detections, box_tol: float, score_tol: float = SCORE_TOL,
                box_rtol: float = 0.0) -> None:
    """Each row of ``ref`` has its own row in ``got`` with the same class, the score within ``score_tol``
    and the box within ``box_tol + box_rtol * |box|`` (rows of equal scores may come in another order)."""
    assert len(ref) == len(got) > 0
    unmatched = list(range(len(got)))
    for box, score, cls in zip(ref.boxes, ref.scores, ref.class_ids):
        bound = box_tol + box_rtol * np.abs(box)
        hits = [j for j in unmatched if got.class_ids[j] == cls and abs(got.scores[j] - score) <= score_tol
                and (np.abs(got.boxes[j] - box) <= bound).all()]
        assert hits, f"class {cls} score {score:.6f} box {box} not found in {got}"
        unmatched.remove(hits[0])


def _padded_to_detections(boxes, scores, classes, count) -> list[Detections]:
    return [Detections(np.asarray(boxes[b][:n], np.float32), np.asarray(scores[b][:n], np.float32),
                       np.asarray(classes[b][:n], np.int64)) for b, n in enumerate(np.asarray(count).astype(int))]


def test_saved_model_gives_the_detectors_boxes(model, pictures, reference, tmp_path):
    import tensorflow as tf

    from yolo3.export.saved_model import export_saved_model

    path = export_saved_model(model, str(tmp_path / "saved_model"), score_threshold=SCORE)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    for picture, ref in zip(pictures, reference):
        out = serve(images=tf.constant(picture[None]))
        got = _padded_to_detections(out["boxes"].numpy(), out["scores"].numpy(), out["classes"].numpy(),
                                    out["num_detections"].numpy())[0]
        assert_same(ref, got, SAVED_MODEL_BOX_TOL)


def test_tflite_runtime_gives_the_detectors_boxes(model, pictures, reference, tmp_path):
    from yolo3.backends.tflite import TFLiteDetector
    from yolo3.export.tflite import export_tflite

    path = export_tflite(model, str(tmp_path / "tiny.tflite"), progress=False)
    detector = TFLiteDetector(path, score_threshold=SCORE)
    for ref, got in zip(reference, detector.detect(pictures)):
        assert_same(ref, got, TFLITE_BOX_TOL, score_tol=1e-5, box_rtol=TFLITE_BOX_RTOL)


def test_map_callback_gives_the_detectors_boxes_in_network_pixels(model, pictures):
    """The callback sees letterboxed pictures of the network size; the Detector on the same pictures as
    uint8 (their letterbox is the identity) gives the same boxes, which are then in network pixels."""
    import tensorflow as tf

    from yolo3.inference.detector import Detector
    from yolo3.ops.letterbox import letterbox_image
    from yolo3.training.map_callback import MeanAPCallback

    size = (320, 416)  # (height, width): not the cfg's 416x416, and not square
    network_sized = [np.round(letterbox_image(p, size) * 255).astype(np.uint8) for p in pictures]
    expected = Detector(model, score_threshold=SCORE, input_size=size, fold_batchnorm=False,
                        xla=False).detect(network_sized)
    assert sum(len(d) for d in expected) >= 5
    images = tf.constant(np.stack(network_sized).astype(np.float32) / 255.0)
    dataset = tf.data.Dataset.from_tensor_slices((images, tf.zeros([len(pictures), 1, 5]))).batch(8)
    callback = MeanAPCallback(model, dataset, 3, score_threshold=SCORE, max_detections=100)
    got = _padded_to_detections(*(t.numpy() for t in callback._detect_fn()(images)))
    for ref, ours in zip(expected, got):
        # the same Postprocessor; the network's float32 convolutions in another graph differ by a few ulps
        assert_same(ref, ours, box_tol=1e-3, score_tol=1e-5)


def test_postprocessor_steps_compose_and_boxes_to_image_is_identity_at_network_size(model):
    """``__call__`` is ``select(*decode(raw))``; for pictures of the network size the boxes come back in
    network pixels exactly (the callback's old hand conversion: centre +- half size, times the size)."""
    import tensorflow as tf

    from yolo3.core.heads import get_head_specs
    from yolo3.ops.postprocess import Postprocessor

    post = Postprocessor(get_head_specs(model), (320, 416), score_threshold=SCORE)
    x = np.random.default_rng(1).uniform(0, 1, (2, 320, 416, 3)).astype(np.float32)
    raw = model(x)
    sizes = tf.constant([[320, 416], [320, 416]], tf.int32)
    boxes, scores = post.decode(raw)
    assert boxes.shape == (2, 2535 * 320 * 416 // (416 * 416), 4) and scores.shape[-1] == 3
    image_boxes, kept = post.to_image(boxes, scores, sizes)
    wh = tf.constant([416.0, 320.0])
    by_hand = tf.concat([boxes[..., :2] * wh - boxes[..., 2:] * wh / 2, boxes[..., :2] * wh + boxes[..., 2:] * wh / 2],
                        axis=-1)
    np.testing.assert_array_equal(image_boxes.numpy(), by_hand.numpy())
    assert float(tf.reduce_min(tf.where(kept > 0, kept, 1.0))) > SCORE
    for a, b in zip(post(raw, sizes), post.select(boxes, scores, sizes)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_postprocessor_rejects_bad_settings():
    from yolo3.core.heads import HeadSpec
    from yolo3.errors import Yolo3Error
    from yolo3.ops.postprocess import Postprocessor

    spec = HeadSpec(anchors=np.ones((3, 2), np.float32), mask=(0, 1, 2), num_classes=2, scale_x_y=1.0,
                    net_size=(416, 416), ignore_thresh=0.7, name="yolo_0")
    assert Postprocessor([spec]).input_size == (416, 416)
    for bad in (dict(input_size=(300, 416)), dict(score_threshold=1.0), dict(iou_threshold=1.5),
                dict(max_detections=0)):
        with pytest.raises(Yolo3Error):
            Postprocessor([spec], **bad)
    with pytest.raises(Yolo3Error, match="input_size"):
        Postprocessor([])
