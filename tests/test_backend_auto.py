"""Backend ``auto`` (issue 16), the default of yolo_video.py, eval.py and ``Detector``: the fastest exact
(fp32) backend installed for the device, said in one line; reduced precision only when asked for, and
then in OpenVINO; and the cached ONNX export that lets the ONNX backends start without exporting."""
from __future__ import annotations

import argparse
import importlib.util
import json
import os

import numpy as np
import pytest
from PIL import Image
from test_detector import mini_yolo_model

from yolo3.backends import auto
from yolo3.cli.backend_options import announce_backend, backend_options
from yolo3.cli.common import UsageError
from yolo3.inference.detector import Detector

HAS_ORT = all(importlib.util.find_spec(p) is not None for p in ("onnxruntime", "onnx"))
needs_ort = pytest.mark.skipif(not HAS_ORT, reason="optional dependencies onnxruntime + onnx not installed")


@pytest.fixture
def installed(monkeypatch):
    """``installed(*packages)``: only these optional packages are importable; no GPU."""
    real = importlib.util.find_spec
    optional = {"onnxruntime", "onnx", "openvino", "nncf"}

    def only(*packages):
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name in optional - set(packages) else real(name, *a))
    monkeypatch.setattr(auto, "gpu_visible", lambda: False)
    return only


def test_auto_is_tf_when_onnxruntime_and_openvino_are_not_importable(installed):
    installed()
    choice = auto.choose_backend()
    assert choice.backend == "tf" and "not installed" in choice.reason
    installed("onnxruntime")  # without onnx neither ONNX backend can run
    assert auto.choose_backend().backend == "tf"


@pytest.mark.parametrize("machine,first,second", [("x86_64", "openvino", "onnxruntime"),
                                                   ("AMD64", "openvino", "onnxruntime"),
                                                   ("aarch64", "onnxruntime", "openvino")])
def test_auto_prefers_openvino_on_x86_and_onnxruntime_elsewhere(installed, monkeypatch, machine, first, second):
    """docs/benchmarks.md: on the x86 CPUs measured OpenVINO's fp32 end to end is as fast as ONNX Runtime's
    or faster; on ARM, where it was not measured, ONNX Runtime comes first."""
    monkeypatch.setattr(auto.platform, "machine", lambda: machine)
    installed("onnxruntime", "onnx", "openvino")
    assert auto.choose_backend("fp32", "m.keras").backend == first
    assert auto.choose_backend("fp32", "m.onnx").backend == first
    installed(*auto.BACKEND_PACKAGES[second])
    assert auto.choose_backend("fp32", "m.keras").backend == second
    assert auto.choose_backend("fp32", "m.keras").line().startswith(f"backend auto: {second} (the fastest exact")


def test_auto_is_tf_on_a_gpu_and_for_tf_only_settings(installed, monkeypatch):
    installed("onnxruntime", "onnx", "openvino")
    assert auto.choose_backend(tf_settings=True).backend == "tf"
    monkeypatch.setattr(auto, "gpu_visible", lambda: True)
    assert auto.choose_backend().line() == "backend auto: tf (TensorFlow sees a GPU)"
    assert auto.choose_backend("fp32", "m.onnx").backend == auto.cpu_preference()[0]  # TF cannot run an .onnx file


def test_reduced_precision_with_auto_is_openvino_said_so(installed):
    installed("onnxruntime", "onnx", "openvino")
    for precision in ("bf16", "int8"):
        choice = auto.choose_backend(precision, "m.keras")
        assert choice.backend == "openvino" and f"precision {precision}" in choice.reason
    assert auto.choose_backend("fp32", "m.xml").backend == "openvino"


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"backend": "auto", "precision": "fp32", "calibration": None, "model": "m.keras",
                                 **kw})


def test_cli_resolves_auto_before_loading(installed):
    installed("onnxruntime", "onnx", "openvino")
    args = _args(precision="bf16")
    assert backend_options(args) == dict(backend="openvino", precision="bf16", calibration=None)
    assert args.backend_choice.backend == "openvino"
    installed("onnxruntime", "onnx")  # bf16 asked for, OpenVINO missing: one line saying what to install
    with pytest.raises(UsageError, match=r"^--precision bf16 needs the optional package 'openvino': pip install "):
        backend_options(_args(precision="bf16"))
    explicit = _args(backend="tf")
    assert backend_options(explicit)["backend"] == "tf" and explicit.backend_choice is None


# -- the Detector -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mini():
    return mini_yolo_model(3)


@pytest.fixture(scope="module")
def pictures():
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, size, dtype=np.uint8) for size in [(70, 90, 3), (64, 64, 3), (50, 120, 3)]]


@needs_ort
def test_detector_default_is_auto_and_equals_tf(mini, pictures):
    chosen = Detector(mini, score_threshold=0.01)
    assert chosen.backend_choice is not None and chosen.backend == chosen.backend_choice.backend != "tf"
    exact = Detector(mini, score_threshold=0.01, backend="tf", xla=False)  # XLA: same numbers, slower to build
    for a, b in zip(chosen.detect(pictures), exact.detect(pictures)):
        assert len(a) == len(b) > 0  # docs/detection.md: the ONNX backends give TF's boxes within 0.05 px
        np.testing.assert_array_equal(a.class_ids, b.class_ids)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    assert exact.backend_choice is None and Detector(mini, xla=False).backend == "tf"  # a TF-only setting: TF


@needs_ort
def test_model_files_export_is_cached_and_redone_when_the_file_changes(mini, pictures, tmp_path, monkeypatch):
    from yolo3.backends import onnx_cache
    from yolo3.modeling.saving import save_model

    path = tmp_path / "mini.keras"
    save_model(mini, str(path))
    first = Detector.from_file(path, backend="onnxruntime", score_threshold=0.01)
    cached, reused = first.onnx_export_cache
    assert not reused and os.path.dirname(cached) == str(tmp_path) and os.path.basename(cached).startswith("mini.")

    def no_export(*a, **k):
        raise AssertionError("exported again")
    monkeypatch.setattr(onnx_cache, "export_onnx", no_export)
    again = Detector.from_file(path, score_threshold=0.01)  # auto: an ONNX backend here, from the cache
    assert again.onnx_export_cache == (cached, True) and again.backend in ("onnxruntime", "openvino")
    for a, b in zip(first.detect(pictures), again.detect(pictures)):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)
    monkeypatch.undo()
    save_model(mini_yolo_model(3, seed=1), str(path))  # another model under the same name: exported again
    third = Detector.from_file(path, backend="onnxruntime", score_threshold=0.01)
    assert third.onnx_export_cache[0] != cached and not third.onnx_export_cache[1]
    assert not os.path.exists(cached)  # the replaced export is removed
    assert Detector.from_file(path, backend="onnxruntime", input_size=96).onnx_export_cache[0] != \
        third.onnx_export_cache[0]  # another size: its own export


@needs_ort
def test_cli_says_which_backend_auto_chose_in_one_stderr_line(mini, tmp_path, capsys):
    from test_yolo_video import yolo_video

    from yolo3.modeling.saving import save_model

    model = tmp_path / "mini.keras"
    save_model(mini, str(model))
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(tmp_path / "x.png")
    classes = tmp_path / "c.txt"
    classes.write_text("a\nb\nc\n")
    out = tmp_path / "d.json"
    code = yolo_video.main(["--model", str(model), "--classes", str(classes), "--image", str(tmp_path / "x.png"),
                            "--json", str(out), "-q"])
    assert code == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("backend auto:")]
    assert len(lines) == 1 and "backend auto: " in lines[0] and "backend auto:" not in captured.out
    assert json.loads(out.read_text())[0]["image"].endswith("x.png")
    explicit = _args(backend="tf")
    backend_options(explicit)
    announce_backend(explicit)  # an explicit backend: nothing said
    assert capsys.readouterr().err == ""
