"""yolo3.inference.detector: the compiled pipeline against an independent Darknet transcription, set-up errors,
backends, and the keras-yolo3 style YOLO class."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from conftest import DARKNET_IMAGES, require_shared
from PIL import Image
from test_decode import darknet_do_nms_sort
from test_letterbox import darknet_correct_box, darknet_letterbox_image

from yolo3.backends.auto import choose_backend
from yolo3.core.detections import Detections
from yolo3.core.heads import get_head_specs
from yolo3.datasets.imageio import read_image_rgb
from yolo3.inference.detector import Detector, DetectorError
from yolo3.inference.yolo import YOLO

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


MINI_CFG = """[net]
width=64
height=64
channels=3
""" + "".join("""[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky
""" for _ in range(5)) + """[convolutional]
size=1
stride=1
pad=1
filters={filters}
activation=linear
[yolo]
mask=0,1,2
anchors=10,14, 23,27, 37,58
classes={classes}
num=3
"""


def mini_yolo_model(num_classes: int = 3, seed: int = 0):
    """A 6-layer single-head YOLO (stride 32, 64x64 default size) with random weights: quick to build,
    save, load, compile and export, for tests of plumbing rather than of Darknet parity."""
    import keras

    from yolo3.modeling.builder import build_model_from_cfg
    from yolo3.modeling.cfg import parse_cfg_text

    keras.utils.set_random_seed(seed)
    text = MINI_CFG.format(filters=3 * (5 + num_classes), classes=num_classes)
    return build_model_from_cfg(parse_cfg_text(text, "<mini>"), name="mini")


# ---- an independent reference: numpy transcriptions of Darknet around any raw network -------------
def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v.astype(np.float64)))


def reference_detect(raw_outputs, specs, image_hw, net_hw, thresh, nms):
    """Darknet's get_yolo_detections + correct_yolo_boxes + do_nms_sort, in plain numpy/Python.

    Returns a list of (class_id, score, [x1, y1, x2, y2]) sorted by score."""
    boxes, objectness, probs = [], [], []
    for raw, spec in zip(raw_outputs, specs):
        _, gh, gw, _ = raw.shape
        feats = raw[0].reshape(gh, gw, spec.num_anchors, 5 + spec.num_classes).astype(np.float64)
        s = spec.scale_x_y
        for row in range(gh):
            for col in range(gw):
                for a in range(spec.num_anchors):
                    f = feats[row, col, a]
                    obj = _sigmoid(f[4])
                    if obj <= thresh:
                        continue
                    x = (col + _sigmoid(f[0]) * s - (s - 1) / 2) / gw
                    y = (row + _sigmoid(f[1]) * s - (s - 1) / 2) / gh
                    w = np.exp(f[2]) * spec.anchors[a, 0] / net_hw[1]
                    h = np.exp(f[3]) * spec.anchors[a, 1] / net_hw[0]
                    p = obj * _sigmoid(f[5:])
                    boxes.append((x, y, w, h))
                    objectness.append(obj)
                    probs.append(np.where(p > thresh, p, 0.0))
    if not boxes:
        return []
    kept = darknet_do_nms_sort(np.array(boxes), np.array(objectness), np.array(probs), nms)
    out = []
    for i, k, score in kept:
        corners = darknet_correct_box(*boxes[i], image_hw[1], image_hw[0], net_hw[1], net_hw[0])
        out.append((k, score, corners))
    return sorted(out, key=lambda t: -t[1])


def assert_same_detections(ours: Detections, ref, box_tol=0.02, score_tol=1e-4):
    assert len(ours) == len(ref), f"{len(ours)} detections, reference {len(ref)}"
    unmatched = list(range(len(ref)))
    for box, score, cls in zip(ours.boxes, ours.scores, ours.class_ids):
        hit = [j for j in unmatched if ref[j][0] == cls and abs(ref[j][1] - score) <= score_tol
               and np.abs(np.asarray(ref[j][2]) - box).max() <= box_tol]
        assert hit, f"no reference for class {cls} score {score:.4f} box {box}"
        unmatched.remove(hit[0])


@pytest.fixture(scope="module")
def random_tiny(pictures):
    """A 3-class yolov3-tiny with random weights whose head outputs are rescaled to vary by ~1.5
    across cells on the test pictures, with low objectness bias: a few hundred candidate boxes."""
    import keras

    from yolo3.modeling.factory import create_model

    keras.utils.set_random_seed(1)
    model = create_model("tiny", 3)
    heads = [layer for layer in model.layers if layer.name.startswith("conv_") and layer.filters == 3 * 8]
    x = np.stack([darknet_letterbox_image(p, 416, 416) for p in pictures[:1]])
    rng = np.random.default_rng(0)
    for layer, out in zip(heads, sorted(model(x), key=lambda o: o.shape[1])):
        kernel, _ = layer.get_weights()
        spread = np.asarray(out).reshape(-1, kernel.shape[-1]).std(0) + 1e-6
        bias = rng.normal(0, 0.5, kernel.shape[-1]).astype(np.float32)
        bias[4::8] = -3.0  # objectness > 0.3 for a few percent of the anchors
        target = np.tile(np.array([1.5, 1.5, 0.5, 0.5, 1.5, 1.5, 1.5, 1.5], np.float32), 3)  # tw, th: sane sizes
        layer.set_weights([kernel * (target / spread), bias])
    return model


@pytest.fixture(scope="module")
def pictures():
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, size=(8, 12, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(base).resize((333, 250), Image.BILINEAR))  # smooth content
    return [big, big[:217, :301].copy(), np.ascontiguousarray(big.transpose(1, 0, 2)[:300, :140])]


def test_pipeline_matches_independent_darknet_transcription(random_tiny, pictures):
    detector = Detector(random_tiny, score_threshold=0.3, iou_threshold=0.45, max_detections=1000)
    results = detector.detect(pictures)  # one batch of three sizes
    specs = get_head_specs(random_tiny)
    total = 0
    for image, ours in zip(pictures, results):
        net_input = darknet_letterbox_image(image, 416, 416)[None]
        raw = [o.numpy() for o in random_tiny(net_input)]
        ref = reference_detect(raw, specs, image.shape[:2], (416, 416), 0.3, 0.45)
        assert_same_detections(ours, ref)
        total += len(ref)
    assert total > 10  # the comparison is not vacuous


def test_batch_equals_one_by_one_and_other_sizes(random_tiny, pictures):
    detector = Detector(random_tiny, score_threshold=0.3, input_size=320, max_detections=1000)
    assert detector.input_size == (320, 320)
    batch = detector.detect(pictures)
    for image, together in zip(pictures, batch):
        alone = detector.detect_one(image)
        np.testing.assert_allclose(alone.boxes, together.boxes, atol=1e-3)
        np.testing.assert_allclose(alone.scores, together.scores, atol=1e-6)
    specs = get_head_specs(random_tiny)
    image = pictures[1]
    raw = [o.numpy() for o in random_tiny(darknet_letterbox_image(image, 320, 320)[None])]
    assert_same_detections(batch[1], reference_detect(raw, specs, image.shape[:2], (320, 320), 0.3, 0.45))
    assert detector.detect([]) == []


def test_single_head_model_and_default_size():
    detector = Detector(mini_yolo_model(2), score_threshold=0.01)
    assert detector.input_size == (64, 64) and len(detector.head_specs) == 1
    det = detector.detect_one(np.zeros((50, 70, 3), np.uint8))
    assert det.boxes.shape[1] == 4 and len(det) <= 100


def test_detections_are_not_clipped_and_sorted(random_tiny, pictures):
    det = Detector(random_tiny, score_threshold=0.05, max_detections=50).detect_one(pictures[0])
    assert len(det) == 50 and np.all(np.diff(det.scores) <= 0)
    assert det.boxes.dtype == np.float32 and det.class_ids.dtype == np.int64
    assert (det.boxes[:, :2] < 0).any() or (det.boxes[:, 2] > 333).any() or (det.boxes[:, 3] > 250).any()


def test_setup_errors_are_one_line_user_errors(random_tiny, tmp_path):
    (tmp_path / "two.txt").write_text("a\nb\n")
    with pytest.raises(DetectorError, match=r"has 2 class names but the model predicts 3"):
        Detector(random_tiny, classes_path=tmp_path / "two.txt")
    with pytest.raises(DetectorError, match="not found"):
        Detector.from_file(tmp_path / "missing.keras")
    with pytest.raises(DetectorError, match="classes file not found"):
        Detector(random_tiny, classes_path=tmp_path / "nope.txt")
    with pytest.raises(DetectorError, match="multiple of 32"):
        Detector(random_tiny, input_size=300)
    with pytest.raises(DetectorError, match="backend"):
        Detector(random_tiny, backend="torch")
    (tmp_path / "anchors.txt").write_text("10,14, 23,27, 37,58, 81,82, 135,169, 344,320\n")
    with pytest.raises(DetectorError, match="differ from the model's"):
        Detector(random_tiny, anchors_path=tmp_path / "anchors.txt")
    (tmp_path / "anchors.txt").write_text("10,14, 23,27, 37,58, 81,82, 135,169, 344,319\n")
    (tmp_path / "three.txt").write_text("a\nb\nc\n")
    detector = Detector(random_tiny, classes_path=tmp_path / "three.txt", anchors_path=tmp_path / "anchors.txt")
    assert detector.class_names == ["a", "b", "c"] and detector.anchors.shape == (6, 2)
    (tmp_path / "bad.keras").write_bytes(b"not a model")
    with pytest.raises(DetectorError, match="bad.keras"):
        Detector.from_file(tmp_path / "bad.keras")


def test_loads_saved_model_and_yolo_class(random_tiny, pictures, tmp_path):
    from yolo3.modeling.saving import save_model

    path = str(tmp_path / "tiny.keras")
    save_model(random_tiny, path)
    (tmp_path / "names.txt").write_text("cat\ndog\nbird\n")
    yolo = YOLO(model_path=path, classes_path=str(tmp_path / "names.txt"), score=0.3)
    drawn = yolo.detect_image(Image.fromarray(pictures[0]).convert("RGBA"))
    assert drawn.size == (333, 250) and drawn.mode == "RGB"
    expected = Detector(random_tiny, score_threshold=0.3, backend="tf").detect_one(pictures[0])
    # YOLO runs the default backend (auto): TF's boxes within the documented 0.05 px (docs/detection.md)
    np.testing.assert_allclose(yolo.last_detections.boxes, expected.boxes, atol=0.05)
    assert len(expected) > 0 and not np.array_equal(np.asarray(drawn), pictures[0])
    assert YOLO.get_defaults("iou") == 0.45
    yolo.close_session()


def test_loaders_and_the_earlier_call_forms_give_the_same_detector(random_tiny, pictures, tmp_path):
    """Detector.from_file(path) == Detector(path, ...) with the earlier keyword names (scripts use them)
    == Detector(model) with today's names."""
    from yolo3.modeling.saving import save_model

    path = tmp_path / "tiny.keras"
    save_model(random_tiny, str(path))
    (tmp_path / "names.txt").write_text("a\nb\nc\n")
    loaded = Detector.from_file(path, tmp_path / "names.txt", score_threshold=0.3, iou_threshold=0.5,
                                input_size=(320, 416), max_detections=7)
    earlier = Detector(str(path), classes_path=tmp_path / "names.txt", score=0.3, iou=0.5, size=(320, 416),
                       max_boxes=7)
    composed = Detector(random_tiny, class_names=["a", "b", "c"], score_threshold=0.3, iou_threshold=0.5,
                        input_size=(320, 416), max_detections=7)
    for detector in (loaded, earlier, composed):
        assert detector.class_names == ["a", "b", "c"] and detector.input_size == (320, 416)
        assert (detector.score_threshold, detector.iou_threshold, detector.max_detections) == (0.3, 0.5, 7)
        assert (detector.net_size, detector.score, detector.iou, detector.max_boxes) == ((320, 416), 0.3, 0.5, 7)
    results = [d.detect_one(pictures[0]) for d in (loaded, earlier, composed)]
    assert len(results[0]) == 7
    for other in results[1:]:
        np.testing.assert_allclose(other.boxes, results[0].boxes, atol=1e-3)
        np.testing.assert_array_equal(other.class_ids, results[0].class_ids)
    with pytest.raises(TypeError, match="max_box"):
        Detector(random_tiny, max_box=3)
    with pytest.raises(DetectorError, match="max_detections must be at least 1"):
        Detector(random_tiny, max_detections=0)
    with pytest.raises(DetectorError, match="score threshold"):
        Detector(random_tiny, score_threshold=1.0)


@pytest.mark.parametrize("backend", ["tf", pytest.param("onnxruntime", marks=pytest.mark.skipif(
    not HAS_ONNX, reason="onnxruntime and onnx are optional and not installed"))])
def test_a_size_that_keeps_coming_stops_being_padded(backend, pictures):
    """Batches are padded to PAD_MULTIPLE (one letterbox compilation per size bucket) until a picture
    size has come EXACT_AFTER times; then a batch of known sizes is not padded, with the same results."""
    from yolo3.core.detections import EXACT_AFTER, PAD_MULTIPLE

    detector = Detector(mini_yolo_model(3), score_threshold=0.01, input_size=96, backend=backend)
    shapes = []  # the padded batches reaching the letterbox
    name = "run_batch" if backend == "tf" else "_letterbox_fn"  # the ONNX backends letterbox by size group
    inner = getattr(detector, name)
    setattr(detector, name, lambda batch, sizes: shapes.append(batch.shape) or inner(batch, sizes))
    picture, other = pictures[0], pictures[2]  # 250x333, 300x140
    first = detector.detect_one(picture)
    for _ in range(EXACT_AFTER):
        last = detector.detect_one(picture)
    assert PAD_MULTIPLE == 128 and shapes == [(1, 256, 384, 3)] * EXACT_AFTER + [(1, 250, 333, 3)]
    assert len(first) > 0
    np.testing.assert_allclose(last.boxes, first.boxes, atol=1e-3)
    np.testing.assert_array_equal(last.class_ids, first.class_ids)
    detector.detect([picture, other])  # a size not seen that often: padded again
    expected = [(2, 384, 384, 3)] if backend == "tf" else [(1, 256, 384, 3), (1, 384, 256, 3)]
    assert shapes[-len(expected):] == expected
    detector.detect([picture], pad_multiple=64)  # asked for: as asked
    assert shapes[-1] == (1, 256, 384, 3)


@pytest.mark.skipif(not HAS_ONNX, reason="onnxruntime and onnx are optional and not installed")
def test_onnx_backends_letterbox_a_mixed_batch_by_size_group_in_the_pictures_order(pictures):
    """The onnxruntime backend letterboxes pictures by groups of one padded size, then runs the network
    once (Detector.detect): each picture gets its own results, those of detecting it alone."""
    ort = Detector(mini_yolo_model(3), score_threshold=0.01, input_size=96, backend="onnxruntime")
    a, b, c = pictures  # 250x333 and 217x301 pad to 256x384, 300x140 to 384x256: groups interleave
    batch = [c, a, b, np.ascontiguousarray(c[::-1]), np.ascontiguousarray(a[:, ::-1])]
    for picture, result in zip(batch, ort.detect(batch)):
        alone = ort.detect_one(picture)
        assert len(result) == len(alone) > 0
        np.testing.assert_allclose(result.boxes, alone.boxes, atol=1e-3)
        np.testing.assert_allclose(result.scores, alone.scores, atol=1e-5)


@pytest.mark.skipif(not HAS_ONNX, reason="onnxruntime and onnx are optional and not installed")
def test_onnxruntime_backend_matches_tf(pictures, tmp_path):
    from yolo3.backends.onnx_export import export_onnx, save_onnx

    model = mini_yolo_model(3)
    tf_det = Detector(model, score_threshold=0.01, input_size=96).detect(pictures)
    ort = Detector(model, score_threshold=0.01, input_size=96, backend="onnxruntime")  # exported on the spot
    onnx_path = str(tmp_path / "mini.onnx")
    save_onnx(export_onnx(model, input_size=(96, 96)), onnx_path)
    from_file = Detector.from_file(onnx_path, score_threshold=0.01, input_size=96)  # .onnx: from_onnx, auto
    assert from_file.num_classes == 3 and from_file.anchors.shape == (3, 2)
    for a, b, c in zip(tf_det, ort.detect(pictures), from_file.detect(pictures)):
        assert len(a) == len(b) == len(c) > 0
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
        np.testing.assert_allclose(a.boxes, c.boxes, atol=0.05)
    assert from_file.backend == choose_backend("fp32", onnx_path).backend != "tf"
    with pytest.raises(DetectorError, match="takes 96x96"):
        Detector.from_onnx(onnx_path)  # default size: the cfg's 64
    with pytest.raises(DetectorError, match="onnxruntime"):
        Detector.from_onnx(onnx_path, input_size=96, backend="tf")
    with pytest.raises(DetectorError, match="onnxruntime"):
        Detector(onnx_path, size=96, backend="tf")  # the earlier call form, a path, with the tf backend
    assert Detector(onnx_path, size=96).backend in ("onnxruntime", "openvino")  # auto: a runtime that reads it


@pytest.mark.skipif(not HAS_ONNX or importlib.util.find_spec("tf2onnx") is None, reason="tf2onnx is not installed")
def test_tf2onnx_export_route_still_works(pictures):
    from yolo3.backends.onnx_export import export_onnx
    from yolo3.backends.onnx_runtime import OnnxNetwork

    model = _randomised(mini_yolo_model(3))
    x = np.random.default_rng(2).uniform(0, 1, (1, 96, 64, 3)).astype(np.float32)
    ref = model(x).numpy()
    for method in ("tf2onnx", "native"):
        out = OnnxNetwork(export_onnx(model, method=method).SerializeToString())(x)
        np.testing.assert_allclose(out[0], ref, atol=1e-4)


def _randomised(model):
    """Spread the BatchNormalization statistics so that folding them into the convolutions matters."""
    import keras

    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.set_weights([rng.uniform(lo, hi, n).astype(np.float32)
                               for lo, hi in ((0.5, 1.5), (-0.2, 0.2), (-0.2, 0.2), (0.5, 1.5))])
    return model


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
                    reason="onnx and onnxruntime are optional and not installed")
@pytest.mark.parametrize("cfg", ["yolov3-tiny", "yolov4-tiny",
                                 pytest.param("yolov3-spp", marks=pytest.mark.slow),
                                 pytest.param("yolov4", marks=pytest.mark.slow)])
def test_native_onnx_export_equals_keras(cfg):
    """Every layer kind of the supported cfgs (pads, strided and grouped convs, folded BN, leaky/mish,
    'same' and Darknet max-pools, route groups, upsample, concat, shortcut) at a non-square size."""
    import keras

    from yolo3.backends.onnx_export import export_onnx
    from yolo3.backends.onnx_runtime import OnnxNetwork
    from yolo3.modeling.builder import build_model_from_cfg
    from yolo3.modeling.cfg import parse_cfg

    keras.utils.set_random_seed(0)
    model = _randomised(build_model_from_cfg(parse_cfg(str(require_shared("darknet", "cfg", f"{cfg}.cfg")))))
    net = OnnxNetwork(export_onnx(model, method="native").SerializeToString())
    x = np.random.default_rng(1).uniform(0, 1, (2, 128, 160, 3)).astype(np.float32)
    ours = net(x)
    ref = model(x)
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert a.shape == tuple(b.shape)
        np.testing.assert_allclose(a, b.numpy(), atol=2e-4 * max(1.0, float(np.abs(b).max())))


def test_real_weights_match_darknet_transcription_on_every_sample_image(tiny_model_path):
    """Beyond the two oracle pictures: on every sample picture, the detector equals Darknet's
    pipeline transcribed in numpy around OpenCV's Darknet network (which matches Darknet to 4e-4 px)."""
    import cv2
    import keras

    cfg = require_shared("darknet", "cfg", "yolov3-tiny.cfg")
    from yolo3.modeling.pretrained import fetch_weights

    net = cv2.dnn.readNetFromDarknet(str(cfg), fetch_weights("yolov3-tiny", quiet=True))
    model = keras.models.load_model(tiny_model_path)
    specs = get_head_specs(model)
    detector = Detector(model, score_threshold=0.1, iou_threshold=0.45)
    names = sorted(p.name for p in DARKNET_IMAGES.glob("*.jpg"))
    assert len(names) >= 5
    images = [read_image_rgb(DARKNET_IMAGES / n) for n in names]
    total = 0
    for image, ours in zip(images, detector.detect(images)):
        net.setInput(darknet_letterbox_image(image, 416, 416).transpose(2, 0, 1)[None].copy())
        raw = [o.transpose(0, 2, 3, 1) for o in net.forward(["conv_15", "conv_22"])]
        ref = reference_detect(raw, specs, image.shape[:2], (416, 416), 0.1, 0.45)
        assert_same_detections(ours, ref, box_tol=0.05, score_tol=2e-4)
        total += len(ref)
    assert total >= 20


def test_drawing_colours_and_labels():
    from yolo3.inference.drawing import class_colors, draw_detections, text_color_for

    colors = class_colors(80)
    assert len(set(colors)) == 80 and colors == class_colors(80)
    assert text_color_for((255, 255, 0)) == (0, 0, 0) and text_color_for((0, 0, 255)) == (255, 255, 255)
    image = np.full((100, 120, 3), 128, np.uint8)
    boxes = np.array([[10, 30, 60, 90], [-50, -20, 400, 300]], np.float32)  # the second leaves the picture
    out = draw_detections(image, boxes, np.array([0.9, 0.3]), np.array([0, 5]), [f"c{i}" for i in range(80)])
    assert out.shape == image.shape and (image == 128).all()  # drawn on a copy
    assert (out[30, 10:60] != 128).any() and (out[0:30, 10:60] != 128).any()  # box edge and label above it


@pytest.mark.skipif(not HAS_ONNX, reason="onnxruntime and onnx are optional and not installed")
def test_anchors_file_check_with_an_anchor_no_mask_uses(tmp_path):
    """keras-yolo3's tiny masks leave the first anchor unused; an ONNX network knows only the used ones, so
    the --anchors check compares those by their index in the list (it once refused the right file)."""
    from yolo3.modeling.builder import build_model_from_cfg
    from yolo3.modeling.cfg import parse_cfg_text

    text = (MINI_CFG.format(filters=3 * 8, classes=3).replace("mask=0,1,2", "mask=1,2,3")
            .replace("anchors=10,14, 23,27, 37,58", "anchors=5,6, 10,14, 23,27, 37,58").replace("num=3", "num=4"))
    model = build_model_from_cfg(parse_cfg_text(text, "<mini>"), name="mini")
    good, moved, short = (tmp_path / n for n in ("good.txt", "moved.txt", "short.txt"))
    good.write_text("5,6, 10,14, 23,27, 37,58\n")
    moved.write_text("5,6, 10,14, 23,27, 37,59\n")
    short.write_text("10,14, 23,27, 37,58\n")
    for backend in ("tf", "onnxruntime"):
        assert Detector(model, anchors_path=good, backend=backend, xla=False).anchors.shape[1] == 2
        for wrong in (moved, short):
            with pytest.raises(DetectorError, match="differ from the model's"):
                Detector(model, anchors_path=wrong, backend=backend, xla=False)
