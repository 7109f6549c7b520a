"""The openvino backend (issue 16): Darknet's boxes at fp32 with the real yolov3-tiny weights, the bf16
fallback, int8 (NNCF) and its cache, the IR export, and one-line user errors.

Tolerances are the docs' (docs/detection.md): every one of Darknet's detections at 0.25 on dog.jpg and
person.jpg matched (same class, every corner within 1 px, score within 0.02), nothing extra, as for
the TF backend; against the TF backend itself, boxes within 0.05 px.
"""
from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest
from conftest import require_shared
from PIL import Image
from test_detector import mini_yolo_model
from test_yolo_video import match_oracle, yolo_video

pytest.importorskip("openvino", reason="optional dependency openvino not installed (pip install 'yolo3[openvino]')")
pytest.importorskip("onnx", reason="optional dependency onnx not installed (the openvino backend's graphs)")

from yolo3.backends.openvino_runtime import PrecisionFallbackWarning, compile_config  # noqa: E402
from yolo3.inference.detector import Detector, DetectorError  # noqa: E402

HAS_NNCF = importlib.util.find_spec("nncf") is not None
needs_nncf = pytest.mark.skipif(not HAS_NNCF, reason="optional dependency nncf not installed (int8)")


# -- fixtures (module-scoped: a model build or an OpenVINO compile costs a second or more) -----------
@pytest.fixture(scope="module")
def oracle():
    return json.loads(require_shared("oracle", "darknet_yolov3_tiny.json").read_text())


@pytest.fixture(scope="module")
def oracle_pictures(oracle) -> dict:
    from yolo3.datasets.imageio import read_image_rgb

    return {name: read_image_rgb(require_shared("darknet", "images", name)) for name in oracle["images"]}


@pytest.fixture(scope="module")
def tiny(tiny_model_path):
    from yolo3.modeling.saving import load_model

    return load_model(tiny_model_path)


@pytest.fixture(scope="module")
def mini():
    return mini_yolo_model(3)


@pytest.fixture(scope="module")
def mini_openvino(mini):
    return Detector(mini, backend="openvino", score_threshold=0.01)


@pytest.fixture(scope="module")
def calibration_dir(tmp_path_factory):
    """Four smooth random pictures of different sizes (a folder, as --calibration takes)."""
    folder = tmp_path_factory.mktemp("calibration")
    rng = np.random.default_rng(3)
    for k, size in enumerate([(90, 70), (64, 64), (50, 120), (77, 33)]):
        base = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
        Image.fromarray(base).resize(size, Image.BILINEAR).save(folder / f"p{k}.png")
    return folder


def _records(detections, class_names) -> list[dict]:
    return [{"class_id": int(c), "score": float(s), "box": b.tolist()}
            for b, s, c in zip(detections.boxes, detections.scores, detections.class_ids)]


# -- fp32: exact --------------------------------------------------------------------------------
def test_fp32_gives_darknets_boxes_on_the_real_weights(tiny, oracle, oracle_pictures):
    detector = Detector(tiny, backend="openvino", score_threshold=oracle["thresh"], iou_threshold=oracle["nms"])
    assert detector.precision == "fp32"
    results = detector.detect(list(oracle_pictures.values()))  # one batch of two sizes
    total = 0
    for (name, ref), ours in zip(oracle["images"].items(), results):
        matched, missed, extra = match_oracle(_records(ours, detector.class_names), ref, px=1.0, score=0.02)
        assert not missed and not extra, f"{name}: missed {missed}, extra {extra}"
        total += matched
    assert total == 11  # docs/detection.md: all 11 of Darknet's detections


@pytest.mark.slow
def test_fp32_equals_the_tf_backend(tiny, oracle_pictures):
    pictures = list(oracle_pictures.values())
    ours = Detector(tiny, backend="openvino", score_threshold=0.05).detect(pictures)
    theirs = Detector(tiny, backend="tf", score_threshold=0.05).detect(pictures)
    for a, b in zip(ours, theirs):
        assert len(a) == len(b) > 5
        np.testing.assert_array_equal(a.class_ids, b.class_ids)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


def test_the_network_compiles_with_static_shapes_and_the_nms_runs_after_it_in_float32(mini):
    """NMS's data-dependent shapes compiled into the network's model made OpenVINO run the whole
    network as a dynamic model (YOLOv3 int8: 22.4 ms instead of 19.6): the compiled model ends at the
    raw heads, float32 even at bf16, and the decoding + NMS run in NumPy after it."""
    import warnings

    from yolo3.ops.postprocess_numpy import NumpyPostprocess

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionFallbackWarning)  # bf16 where the CPU has no bf16 units
        run = Detector(mini, backend="openvino", precision="bf16")._openvino_run
    assert len(run.compiled.outputs) == 1  # mini's one head, (1, h, w, A*(5+C)), every dimension known
    for output in run.compiled.outputs:
        shape = output.get_partial_shape()
        assert len(shape) == 4 and shape.is_static and shape[0].get_length() == 1, shape
        assert output.get_element_type().get_type_name() == "f32"
    assert isinstance(run.post, NumpyPostprocess)


@pytest.fixture(scope="module")
def smooth_pictures():
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, size=(8, 12, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(base).resize((333, 250), Image.BILINEAR))
    return [big, big[:217, :301].copy(), np.ascontiguousarray(big.transpose(1, 0, 2)[:300, :140]),
            big[:90, :200].copy()]


def _same(a, b, atol):
    assert len(a) == len(b) > 0
    np.testing.assert_array_equal(a.class_ids, b.class_ids)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=atol)
    np.testing.assert_allclose(a.scores, b.scores, atol=atol)


def test_each_batch_size_runs_a_network_compiled_for_that_batch(mini, smooth_pictures):
    """A network whose batch is left dynamic runs slower kernels (yolov3-tiny bf16, batch 1: 3.95 ms
    against 3.5): batch 1 is compiled fixed at once, another batch size the second time it comes, up
    to STATIC_BATCHES sizes; which network ran does not change the results."""
    from yolo3.backends.openvino_runtime import STATIC_BATCHES

    detector = Detector(mini, backend="openvino", score_threshold=0.01)
    run = detector._openvino_run
    batch_of = {b: r.request.model_inputs[0].get_partial_shape()[0] for b, r in run._requests.items()}
    assert STATIC_BATCHES == 4 and list(batch_of) == [1] and batch_of[1].get_length() == 1
    three = smooth_pictures[:3]
    first = detector.detect(three)  # the dynamic-batch network
    assert 3 not in run._requests and run._dynamic is not None
    again = detector.detect(three)
    assert run._requests[3].request.model_inputs[0].get_partial_shape()[0].get_length() == 3
    for a, b in zip(first, again):
        _same(a, b, atol=1e-3)
    for size in (2, 4, 2, 4, 1):
        detector.detect(smooth_pictures[:size])
    assert sorted(run._requests) == [1, 2, 3, 4]
    five = smooth_pictures + smooth_pictures[:1]
    detector.detect(five)
    dynamic = detector.detect(five)
    assert 5 not in run._requests  # STATIC_BATCHES sizes compiled: the dynamic one runs the rest
    for a, b in zip(dynamic, detector.detect(smooth_pictures[:4]) + detector.detect(smooth_pictures[:1])):
        _same(a, b, atol=1e-3)


def test_the_bound_input_is_read_afresh_and_a_new_array_is_bound(mini):
    """A static-batch request keeps the caller's array bound while the same array comes back (the
    reused letterbox canvas) and reads it in place: a change to its content counts, and another
    array is bound in its stead; the raw heads equal those of OpenVINO's own infer call."""
    run = Detector(mini, backend="openvino")._openvino_run
    rng = np.random.default_rng(2)
    a, b = (rng.uniform(0, 1, (1, *run.post.input_size, 3)).astype(np.float32) for _ in range(2))

    def reference(x):
        request = run.compiled.create_infer_request()
        request.infer([x])
        return [request.get_output_tensor(k).data.copy() for k in range(len(run.compiled.outputs))]

    def ours(x):
        return [head.copy() for head in run.infer(x)]

    want_a, want_b = reference(a), reference(b)
    assert not np.allclose(want_a[0], want_b[0])
    canvas = a.copy()
    for x, want in [(canvas, want_a), (b, want_b), (canvas, want_a)]:
        for got, ref in zip(ours(x), want):
            np.testing.assert_array_equal(got, ref)
    canvas[...] = b  # the same array, new content
    for got, ref in zip(ours(canvas), want_b):
        np.testing.assert_array_equal(got, ref)


# -- bf16 -------------------------------------------------------------------------------------
class _FakeCore:
    def __init__(self, capabilities):
        self.capabilities = capabilities

    def get_property(self, device, name):
        assert (device, name) == ("CPU", "OPTIMIZATION_CAPABILITIES")
        return self.capabilities


def test_bf16_uses_bfloat16_units_where_the_cpu_has_them():
    assert compile_config(_FakeCore(["FP32", "BF16", "INT8"]), "bf16")["INFERENCE_PRECISION_HINT"] == "bf16"
    # fp32 stays f32 even where OpenVINO would lower it to bf16 by itself (AMX CPUs)
    assert compile_config(_FakeCore(["FP32", "BF16"]), "fp32")["INFERENCE_PRECISION_HINT"] == "f32"


def test_bf16_falls_back_to_fp32_with_a_warning_on_cpus_without_bf16():
    with pytest.warns(PrecisionFallbackWarning, match="no bfloat16 units.*running fp32"):
        config = compile_config(_FakeCore(["FP32", "INT8"]), "bf16")
    assert config["INFERENCE_PRECISION_HINT"] == "f32"


def test_bf16_cli_prints_one_warning_line_here(mini, tmp_path, capsys):
    import openvino as ov

    from yolo3.modeling.saving import save_model

    if "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        pytest.skip("this CPU has bfloat16 units: no fallback to see")
    model = tmp_path / "mini.keras"
    save_model(mini, str(model))
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(tmp_path / "x.png")
    classes = tmp_path / "c.txt"
    classes.write_text("a\nb\nc\n")
    code = yolo_video.main(["--model", str(model), "--classes", str(classes), "--backend", "openvino",
                            "--precision", "bf16", "--image", str(tmp_path / "x.png"), "-q"])
    assert code == 0
    warnings_printed = [line for line in capsys.readouterr().err.splitlines() if "bf16" in line]
    assert warnings_printed == ["warning: bf16 asked for, but this CPU has no bfloat16 units (no AVX-512 BF16 or "
                                "AMX): running fp32"]


def _cpu_has_bf16() -> bool:
    import openvino as ov

    from yolo3.backends.openvino_runtime import cpu_has_bf16

    return cpu_has_bf16(ov.Core())


def test_bf16_keeps_darknets_detections_on_the_real_weights(tiny, oracle, oracle_pictures):
    """Issue 16's bound: bf16 keeps >= 95% of Darknet's detections at 0.25 on the sample pictures (same
    class, every corner within 3 px, score within 0.06). Measured on a Xeon with AMX, with OpenCV's
    letterbox: all 11 kept, nothing extra, worst corner 1.04 px, worst score 0.036 (docs/detection.md).
    On a CPU without bfloat16 units the network runs fp32 and this checks OpenCV's letterbox alone."""
    import warnings

    pictures = list(oracle_pictures.values())
    settings = dict(score_threshold=oracle["thresh"], iou_threshold=oracle["nms"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionFallbackWarning)
        bf16 = Detector(tiny, backend="openvino", precision="bf16", **settings)
    assert bf16.precision == "bf16" and bf16._remap_letterbox is not None
    results = bf16.detect(pictures)
    kept = total = 0
    for ref, ours in zip(oracle["images"].values(), results):
        kept += match_oracle(_records(ours, bf16.class_names), ref, px=3.0, score=0.06)[0]
        total += len(ref)
    assert total == 11 and kept >= 0.95 * total, f"bf16 kept {kept} of Darknet's {total} detections"
    # compiled for the bfloat16 units where there are some (fp32 pins f32: see
    # test_bf16_uses_bfloat16_units_where_the_cpu_has_them)
    hint = bf16._openvino_run.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    assert hint == ("bf16" if _cpu_has_bf16() else "f32")


def test_reduced_precisions_letterbox_with_opencv_and_run_batch_crops_the_padded_pictures(mini, smooth_pictures):
    """bf16 and int8 letterbox with yolo3.ops.letterbox_remap (fp32 keeps the exact one); run_batch's
    zero-padded batch gives each picture's own results, as detect does."""
    import warnings

    from yolo3.core.detections import stack_images

    assert Detector(mini, backend="openvino")._remap_letterbox is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrecisionFallbackWarning)
        bf16 = Detector(mini, backend="openvino", precision="bf16", score_threshold=0.01)
    assert bf16._remap_letterbox is not None
    batch, sizes = stack_images(smooth_pictures, multiple=128)
    assert batch.shape[1:3] == (384, 384)
    boxes, scores, class_ids, count = bf16.run_batch(batch, sizes)
    for k, alone in enumerate(bf16.detect(smooth_pictures)):
        n = int(count[k])
        assert n == len(alone) > 0
        np.testing.assert_array_equal(class_ids[k, :n], alone.class_ids)
        np.testing.assert_allclose(boxes[k, :n], alone.boxes, atol=1e-4)


# -- int8 ---------------------------------------------------------------------------------------
def _copy_folder(src, dst):
    dst.mkdir()
    for name in os.listdir(src):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


@pytest.fixture
def counted_quantizer(monkeypatch):
    """NNCF replaced by a stand-in that returns the fp32 model and counts its calls (the cache logic
    is what is under test; the real quantizer runs in the slow test below)."""
    import nncf  # noqa: F401 - the cache key names NNCF's version

    from yolo3.backends import openvino_quantize

    calls = []
    monkeypatch.setattr(openvino_quantize, "quantize_model",
                        lambda net, pictures, letterbox: calls.append(list(pictures)) or net.model.clone())
    return calls


@needs_nncf
def test_int8_cache_is_reused_and_redone_when_the_calibration_set_changes(mini, calibration_dir, tmp_path,
                                                                           counted_quantizer):
    cache = tmp_path / "cache"

    def detector(calibration):
        return Detector(mini, backend="openvino", precision="int8", calibration=calibration, cache_dir=cache)

    first = detector(calibration_dir)
    assert first.precision == "int8" and not first.int8_cache_reused and len(counted_quantizer) == 1
    assert len(counted_quantizer[0]) == 4 and os.path.basename(first.int8_cache).startswith("mini.int8-")
    again = detector(calibration_dir)
    assert again.int8_cache_reused and again.int8_cache == first.int8_cache and len(counted_quantizer) == 1
    changed = _copy_folder(calibration_dir, tmp_path / "changed")  # same pictures elsewhere: same key
    assert detector(changed).int8_cache_reused
    picture = np.asarray(Image.open(changed / "p0.png"))
    Image.fromarray(255 - picture).save(changed / "p0.png")  # one picture changed: another key
    third = detector(changed)
    assert not third.int8_cache_reused and third.int8_cache != first.int8_cache and len(counted_quantizer) == 2
    (changed / "p3.png").unlink()  # one picture fewer: another key again
    assert not detector(changed).int8_cache_reused and len(counted_quantizer) == 3
    assert sorted(p.suffix for p in cache.iterdir()) == [".bin"] * 3 + [".xml"] * 3


@needs_nncf
@pytest.mark.slow
def test_int8_with_nncf_is_cached(mini, calibration_dir, tmp_path):
    cache = tmp_path / "cache"
    first = Detector(mini, backend="openvino", precision="int8", calibration=calibration_dir, cache_dir=cache,
                     score_threshold=0.01)
    assert first.precision == "int8" and not first.int8_cache_reused and os.path.isfile(first.int8_cache)
    assert first._openvino.precision == "int8"  # FakeQuantize nodes in the model
    again = Detector(mini, backend="openvino", precision="int8", calibration=calibration_dir, cache_dir=cache,
                     score_threshold=0.01)
    assert again.int8_cache_reused and again.int8_cache == first.int8_cache
    picture = np.asarray(Image.open(calibration_dir / "p0.png"))
    np.testing.assert_array_equal(first.detect_one(picture).boxes, again.detect_one(picture).boxes)


@needs_nncf
@pytest.mark.slow
def test_int8_agrees_with_fp32_on_the_sample_pictures(tiny, oracle_pictures, tmp_path):
    """Reported, not promised: int8 keeps the classes of most fp32 detections (printed with -s)."""
    calibration = require_shared("darknet", "images")
    pictures = list(oracle_pictures.values())
    fp32 = Detector(tiny, backend="openvino").detect(pictures)
    int8 = Detector(tiny, backend="openvino", precision="int8", calibration=calibration, cache_dir=tmp_path)
    for a, b in zip(fp32, int8.detect(pictures)):
        kept = match_oracle(_records(b, None), _records(a, None), px=8.0, score=0.15)[0]
        print(f"int8 keeps {kept} of {len(a)} fp32 detections (corner within 8 px, score within 0.15)")
        assert kept >= len(a) // 2


# -- IR export ------------------------------------------------------------------------------------
def test_ir_export_loads_in_the_detector_with_the_same_boxes(mini, mini_openvino, tmp_path):
    from yolo3.export.api import export_model

    path = export_model(mini, "openvino", str(tmp_path / "mini.xml"))
    assert (tmp_path / "mini.bin").is_file() and sorted(os.listdir(tmp_path)) == ["mini.bin", "mini.xml"]
    loaded = Detector(path, score_threshold=0.01)  # an .xml runs in OpenVINO whatever backend is asked
    assert loaded.backend == "openvino" and loaded.precision == "fp32" and loaded.input_size == (64, 64)
    picture = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    a = loaded.detect_one(picture)
    b = mini_openvino.detect_one(picture)
    assert len(a) > 0
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)


@needs_nncf
@pytest.mark.slow
def test_int8_ir_export_runs_as_int8_without_calibration(mini, calibration_dir, tmp_path):
    from yolo3.export.api import export_model

    path = export_model(mini, "openvino", str(tmp_path / "m_int8.xml"), precision="int8",
                        calibration=str(calibration_dir))
    detector = Detector(path)
    assert detector.precision == "int8"
    assert detector.detect_one(np.zeros((30, 40, 3), np.uint8)).boxes.shape[1] == 4


# -- user errors: one line, exit 2 -----------------------------------------------------------------
def _error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def _refused(main, capsys, *argv: str) -> str:
    """The one error line of a tool's ``main(argv)``, which must exit 2."""
    assert main(list(argv)) == 2
    return _error_line(capsys)


@pytest.mark.parametrize("flags,words", [
    (["--backend", "tf", "--precision", "bf16"], ["--precision bf16 needs --backend openvino"]),
    (["--backend", "openvino", "--precision", "int8"], ["--precision int8 needs --calibration"]),
    (["--backend", "openvino", "--precision", "int8", "--calibration", "/no/such"], ["/no/such not found"]),
    (["--backend", "openvino", "--calibration", "x"], ["--calibration is for --precision int8 only"]),
    (["--backend", "openvino", "--precision", "fp16"], ["invalid choice"]),
])
def test_detect_flag_errors_are_one_line(tmp_path, capsys, flags, words):
    model = tmp_path / "m.keras"
    model.write_bytes(b"never read: the flags are checked first")
    assert yolo_video.main(["--model", str(model), "--image", "x.jpg", *flags]) == 2
    line = _error_line(capsys)
    assert all(w in line for w in words), line


def test_missing_nncf_says_what_to_install(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nncf" else real(name, *a))
    model = tmp_path / "m.keras"
    model.write_bytes(b"never read")
    assert yolo_video.main(["--model", str(model), "--image", "x.jpg", "--backend", "openvino",
                            "--precision", "int8", "--calibration", str(tmp_path)]) == 2
    assert "--precision int8 needs the optional package 'nncf': pip install nncf" in _error_line(capsys)


def test_bad_model_files_are_one_line_errors(tmp_path, capsys):
    garbage = tmp_path / "m.onnx"
    garbage.write_bytes(b"not a protobuf at all")
    assert "OpenVINO cannot read" in _refused(yolo_video.main, capsys, "--model", str(garbage), "--backend",
                                              "openvino", "--image", "x.jpg")
    xml = tmp_path / "m.xml"
    xml.write_text("<net>broken")
    assert "OpenVINO cannot read" in _refused(yolo_video.main, capsys, "--model", str(xml), "--image", "x.jpg")


def test_export_refuses_bf16_and_int8_without_calibration(tmp_path, capsys):
    from yolo3.cli import export

    model = tmp_path / "m.keras"
    model.write_bytes(b"never read")
    for fmt, precision, words in [("openvino", "bf16", "bf16 is chosen when the IR is compiled"),
                                  ("openvino", "int8", "--precision int8 needs --calibration"),
                                  ("onnx", "int8", "applies to --format openvino only")]:
        line = _refused(export.main, capsys, "--model", str(model), "--format", fmt, "--precision", precision)
        assert words in line, line


def test_precision_needs_the_openvino_backend_in_python(mini):
    with pytest.raises(DetectorError, match="needs backend 'openvino'"):
        Detector(mini, precision="bf16", backend="tf")
    assert Detector(mini, precision="bf16").backend == "openvino"  # backend auto: the one that runs bf16
    with pytest.raises(DetectorError, match="precision must be one of"):
        Detector(mini, backend="openvino", precision="fp16")
    with pytest.raises(DetectorError, match="needs calibration pictures"):
        Detector(mini, backend="openvino", precision="int8")
