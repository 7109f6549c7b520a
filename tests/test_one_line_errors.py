"""Category 3 of issue 14: a one-line ``prog: error: ...`` and exit code 2 where a traceback was.

Every numeric flag of the tools is range-checked (argparse ``type=`` helpers of ``yolo3.cli.common``);
bad model files, cfgs, annotation and detection files are reported by name; ``608x416`` means height x
width in every tool.
"""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import RESOURCES, ROOT
from PIL import Image

import convert as convert_script
import eval as eval_script
import export as export_script
import kmeans as kmeans_script
import train as train_script
import train_bottleneck as bottleneck_script
import yolo_video
from yolo3.cli import coco as coco_cli
from yolo3.cli import onnx as onnx_cli
from yolo3.cli import shapes as shapes_cli
from yolo3.cli import track as track_cli
from yolo3.cli import weights as weights_cli
from yolo3.cli.common import parse_size


def error_line(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


#: (tool, argv, text the one line must hold): each numeric flag, out of range
RANGES = [
    (yolo_video.main, ["--gpu_num", "0", "--image"], "--gpu_num"),
    (yolo_video.main, ["--max-frames", "0", "--input", "0"], "--max-frames"),
    (yolo_video.main, ["--max-boxes", "0", "--image"], "--max-boxes"),
    (yolo_video.main, ["--batch-size", "-1", "--image"], "--batch-size"),
    (yolo_video.main, ["--score", "1.5", "--image"], "--score"),
    (yolo_video.main, ["--iou", "-3", "--image"], "--iou"),
    (yolo_video.main, ["--size", "300", "--image"], "multiple of 32"),
    (eval_script.main, ["--detections", "d.json", "--annotation", "a.txt", "--score", "nan"], "--score"),
    (eval_script.main, ["--detections", "d.json", "--annotation", "a.txt", "--iou", "2"], "--iou"),
    (eval_script.main, ["--detections", "d.json", "--annotation", "a.txt", "--batch-size", "0"], "--batch-size"),
    (eval_script.main, ["--detections", "d.json", "--annotation", "a.txt", "--max-boxes", "0"], "--max-boxes"),
    (eval_script.main, ["--detections", "d.json", "--annotation", "a.txt", "--match-iou", "1"], "--match-iou"),
    (eval_script.main, ["--detections", "d.json", "--annotation", "a.txt", "--size", "0"], "--size"),
    (kmeans_script.main, ["--num_clusters", "0"], "--num_clusters"),
    (kmeans_script.main, ["--restarts", "0"], "--restarts"),
    (kmeans_script.main, ["--max-iter", "0"], "--max-iter"),
    (kmeans_script.main, ["--sample", "-5"], "--sample"),
    (kmeans_script.main, ["--input-size", "-416"], "--input-size"),
    (export_script.main, ["--size", "0"], "--size"),
    (export_script.main, ["--score", "-1"], "--score"),
    (export_script.main, ["--iou", "inf"], "--iou"),
    (export_script.main, ["--max-detections", "0"], "--max-detections"),
    (export_script.main, ["--calibration-count", "0"], "--calibration-count"),
    (onnx_cli.main, ["m.keras", "o.onnx", "--size", "-32"], "--size"),
    (onnx_cli.main, ["m.keras", "o.onnx", "--opset", "3"], "--opset"),
    (shapes_cli.main, ["out", "--num", "0"], "--num"),
    (shapes_cli.main, ["out", "--size", "8"], "--size"),
    (shapes_cli.main, ["out", "--radius", "0", "0.1"], "--radius"),
    (shapes_cli.main, ["out", "--val-fraction", "1"], "--val-fraction"),
    (shapes_cli.main, ["out", "--min-objects", "-1"], "--min-objects"),
    (weights_cli.main, ["--timeout", "0"], "--timeout"),
    (coco_cli.main, ["to-annotation", "x.json"], "--images-dir"),  # a sub-command's parser: one line too
    (track_cli.main, ["--det", "d.txt", "--out", "o.txt", "--track-high-thresh", "1.5"], "--track-high-thresh"),
    (track_cli.main, ["--det", "d.txt", "--out", "o.txt", "--track-buffer", "-1"], "--track-buffer"),
    (track_cli.main, ["--det", "d.txt", "--out", "o.txt", "--match-thresh", "nan"], "--match-thresh"),
    (track_cli.main, ["--det", "d.txt", "--out", "o.txt", "--fps", "0"], "--fps"),
    (yolo_video.main, ["--trails", "-2", "--image"], "--trails"),
    (train_script.main, ["--lr", "-1"], "--lr"),
    (train_script.main, ["--lr", "inf"], "--lr"),
    (train_script.main, ["--batch-size", "0"], "--batch-size"),
    (train_script.main, ["--label-smoothing", "5"], "--label-smoothing"),
    (train_script.main, ["--ignore-thresh", "-3"], "--ignore-thresh"),
    (train_script.main, ["--max-boxes", "0"], "--max-boxes"),
    (train_script.main, ["--steps-per-epoch", "0"], "--steps-per-epoch"),
    (train_script.main, ["--map-every", "-1"], "--map-every"),
    (train_script.main, ["--gpu_num", "0"], "--gpu_num"),
    (train_script.main, ["--epochs", "-1"], "--epochs"),
    (train_script.main, ["--val-split", "1"], "--val-split"),
    (train_script.main, ["--mosaic", "2"], "--mosaic"),
    (train_script.main, ["--warmup-epochs", "-1"], "--warmup-epochs"),
    (train_script.main, ["--final-lr-fraction", "0"], "--final-lr-fraction"),
    (train_script.main, ["--early-stopping-patience", "-1"], "--early-stopping-patience"),
    (train_script.main, ["--precise-bn", "-1"], "--precise-bn"),
    (bottleneck_script.main, ["--batch-size", "0"], "--batch-size"),
    (bottleneck_script.main, ["--epochs", "0"], "--epochs"),
    (bottleneck_script.main, ["--lr", "nan"], "--lr"),
    (bottleneck_script.main, ["--val-split", "-0.1"], "--val-split"),
]


@pytest.mark.parametrize("main, argv, needle", RANGES, ids=[f"{m.__module__}:{a[-2] if len(a) > 1 else a[0]}"
                                                          for m, a, _ in RANGES])
def test_every_numeric_flag_is_range_checked(tmp_path, capsys, monkeypatch, main, argv, needle):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    line = error_line(capsys)
    assert needle in line and "wrote" not in line, line


def test_one_size_convention_height_by_width(monkeypatch):
    """608x416 is 608 high and 416 wide in every tool (train.py and train_bottleneck.py use parse_size)."""
    assert parse_size("608x416") == (608, 416)
    assert eval_script.build_parser().parse_args(["--annotation", "a", "--size", "608x416"]).size == (608, 416)
    assert kmeans_script.build_parser().parse_args(["--input-size", "608x416"]).input_size == (608, 416)
    from yolo3.cli.detect import _check_mode

    args = yolo_video.build_parser().parse_args(["--image", "--size", "608x416"])
    _check_mode(args)
    assert args.size == (608, 416)
    for tool in (eval_script, kmeans_script, yolo_video):
        assert "HxW" in tool.build_parser().format_help() and "WxH" not in tool.build_parser().format_help()


def _cfg(tmp_path, old: str, new: str, count: int = 1) -> tuple[str, int]:
    text = (RESOURCES / "yolov3-tiny.cfg").read_text()
    assert old in text
    path = tmp_path / "bad.cfg"
    path.write_text(text.replace(old, new, count))
    line = text[: text.index(old)].count("\n") + 1 + old[: old.index(old.strip())].count("\n")
    return str(path), line


@pytest.mark.parametrize("old, new, needle", [
    ("filters=16", "filters=0", "'filters=0' must be a positive integer"),
    ("size=3\nstride=1", "size=-3\nstride=1", "'size=-3' must be a positive integer"),
    ("stride=2", "stride=0", "'stride=0' must be a positive integer"),
    ("width=416", "width=400", "multiple of 32"),
    ("height=416", "height=0", "'height=0' must be positive"),
])
def test_convert_names_the_cfg_line(tmp_path, capsys, old, new, needle):
    cfg, line = _cfg(tmp_path, old, new)
    weights = tmp_path / "w.weights"
    weights.write_bytes(np.zeros(5, np.int32).tobytes())
    assert convert_script.main([cfg, str(weights), str(tmp_path / "o.keras"), "-q"]) == 2
    msg = error_line(capsys)
    assert f"bad.cfg:{line}:" in msg and needle in msg, (line, msg)


@pytest.mark.parametrize("content, needle", [
    (b"\x89HDF\r\n\x1a\n" + b"\0" * 200, "damaged HDF5"),
    (b"PK\x03\x04" + b"\0" * 200, "damaged or incomplete .keras"),
    (np.array([0, 2, 0, 0, 0, 0], np.int32).tobytes(), "Darknet .weights"),
    (b"\x00\x01 random", "not a model file"),
])
def test_bad_model_files_are_one_line_in_every_loader(tmp_path, capsys, content, needle):
    model = tmp_path / "model.keras"
    model.write_bytes(content)
    (tmp_path / "a.txt").write_text(f"{tmp_path / 'x.jpg'} 1,1,5,5,0\n")
    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "x.jpg")
    runs = [(yolo_video.main, ["--model", str(model), "--image", str(tmp_path / "x.jpg")]),
            (eval_script.main, ["--model", str(model), "--annotation", str(tmp_path / "a.txt"), "--no-progress"]),
            (export_script.main, ["--model", str(model), "--format", "tflite", "--output", str(tmp_path / "m.tflite")])]
    for main, argv in runs:
        assert main(argv) == 2
        assert needle in error_line(capsys)
    assert eval_script.main(["--model", str(tmp_path), "--annotation", str(tmp_path / "a.txt")]) == 2
    assert "folder" in error_line(capsys)


def test_non_utf8_and_folder_data_files_are_named(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.txt").write_bytes(b"a.jpg 1,1,5,5,0\nb\xe9.jpg 1,1,5,5,0\n")
    assert kmeans_script.main(["--annot_file", "train.txt", "--no-progress"]) == 2
    line = error_line(capsys)
    assert "train.txt:2:" in line and "not UTF-8" in line
    (tmp_path / "c.txt").write_bytes(b"caf\xe9\n")
    (tmp_path / "d.json").write_text("[]")
    assert eval_script.main(["--detections", "d.json", "--annotation", "train.txt", "--classes", "c.txt"]) == 2
    line = error_line(capsys)
    assert "c.txt" in line and "not UTF-8" in line
    (tmp_path / "folder").mkdir()
    assert kmeans_script.main(["--annot_file", "folder", "--no-progress"]) == 2
    assert "is a folder" in error_line(capsys)


@pytest.mark.parametrize("detection, needle", [
    ({"class_id": 0, "score": float("nan"), "box": [1, 1, 5, 5]}, "score nan"),
    ({"class_id": 0, "score": 0.5, "box": [1, 1, float("inf"), 5]}, "non-finite"),
    ({"class_id": 0, "score": 0.5, "box": [9, 1, 5, 5]}, "reversed box"),
    ({"class_id": 0, "score": 7, "box": [1, 1, 5, 5]}, "score 7"),
    ({"class_id": True, "score": 0.5, "box": [1, 1, 5, 5]}, "class_id True"),
])
def test_eval_detections_reject_bad_numbers_with_file_and_record(tmp_path, capsys, monkeypatch, detection, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("x.jpg 1,1,5,5,0\n")
    (tmp_path / "c.txt").write_text("thing\n")
    (tmp_path / "d.json").write_text(json.dumps([{"image": "x.jpg", "detections": [detection]}]))
    assert eval_script.main(["--detections", "d.json", "--annotation", "a.txt", "--classes", "c.txt"]) == 2
    line = error_line(capsys)
    assert "d.json: entry 0: detection 0" in line and needle in line, line


def _wait_for_tensorflow_to_load(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Block until ``proc`` has mapped TensorFlow's shared library, i.e. is inside ``import tensorflow``
    (a fixed sleep raced: on a fast machine the script had already failed its checks and exited)."""
    maps = Path(f"/proc/{proc.pid}/maps")
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"exited ({proc.returncode}) before loading TensorFlow: {proc.stderr.read()}"
        try:
            if "tensorflow" in maps.read_text():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("TensorFlow did not start loading within a minute")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc to see TensorFlow loading")
def test_ctrl_c_while_tensorflow_loads_is_no_traceback(tmp_path):
    shutil.copy(RESOURCES / "coco_classes.txt", tmp_path / "c.txt")
    (tmp_path / "model_data").mkdir()
    with zipfile.ZipFile(tmp_path / "model_data" / "yolov3-tiny.keras", "w") as model:  # passes the format sniff
        model.writestr("config.json", "{}")  # never loaded: Ctrl-C comes first
    Image.new("RGB", (32, 32)).save(tmp_path / "x.jpg")  # every up-front check passes: the script goes on to TF
    proc = subprocess.Popen([sys.executable, str(ROOT / "yolo_video.py"), "--image", "x.jpg", "--json",
                             str(tmp_path / "d.json")], cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    _wait_for_tensorflow_to_load(proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert not (tmp_path / "d.json").exists()


def test_a_keras_file_whose_config_raises_typeerror(tmp_path, capsys):
    """keras.models.load_model raises TypeError for a layer config with an unknown argument."""
    import zipfile

    from test_detector import mini_yolo_model

    from yolo3.modeling.saving import save_model

    good = tmp_path / "good.keras"
    save_model(mini_yolo_model(80), str(good))
    config = json.loads(zipfile.ZipFile(good).read("config.json"))
    config["config"]["layers"][1]["config"]["bogus_argument"] = 3
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, json.dumps(config) if name == "config.json" else src.read(name))
    assert yolo_video.main(["--model", str(bad), "--image", str(tmp_path / "x.jpg")]) == 2
    line = error_line(capsys)
    assert "TypeError" in line and line.count("bad.keras") == 1, line


@pytest.mark.parametrize("content", ["garbage", "no metadata"])
def test_bad_onnx_files_with_the_onnxruntime_backend(tmp_path, capsys, content):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    path = tmp_path / "m.onnx"
    if content == "garbage":
        path.write_bytes(b"not a protobuf at all")
    else:
        from onnx import TensorProto, helper

        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
        onnx.save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])),
                  str(path))
    assert yolo_video.main(["--model", str(path), "--backend", "onnxruntime", "--image", "x.jpg"]) == 2
    line = error_line(capsys)
    assert ("cannot load" in line if content == "garbage" else "no yolo3 head metadata" in line), line


def test_weights_sources_for_training_raise_one_line_package_errors(tmp_path):
    """What train.py --weights gets for a corrupt model, Darknet weights, a plain Keras weights file and a
    Lambda model: a ModelFileError (a Yolo3Error), one line naming the file."""
    import keras

    from yolo3.errors import Yolo3Error
    from yolo3.modeling.cfg import ModelFileError
    from yolo3.modeling.factory import create_model
    from yolo3.modeling.saving import load_weights_into

    inputs = keras.Input((8,))
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    plain.save_weights(str(tmp_path / "plain.weights.h5"))
    lam = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    lam.save(str(tmp_path / "lambda.keras"))
    (tmp_path / "corrupt.keras").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    (tmp_path / "yolov3.weights").write_bytes(np.array([0, 2, 0, 0, 0], np.int32).tobytes() + bytes(400))
    target = create_model("tiny", 3)
    expected = {"corrupt.keras": "damaged or incomplete", "yolov3.weights": "Darknet .weights",
                "plain.weights.h5": "weights only", "lambda.keras": "Lambda layer"}
    for name, needle in expected.items():
        with pytest.raises(ModelFileError) as info:
            load_weights_into(target, str(tmp_path / name))
        assert isinstance(info.value, Yolo3Error) and type(info.value).__module__.startswith("yolo3")
        assert needle in str(info.value) and name in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("main", [train_script.main, bottleneck_script.main], ids=["train", "train_bottleneck"])
def test_training_log_dir_that_cannot_be_written_is_refused_up_front(tmp_path, capsys, monkeypatch, main):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.txt").write_text("")
    (tmp_path / "file").write_text("x")
    assert main(["--annotation", "train.txt", "--model", "tiny", "--log-dir", "file/logs"]) == 2
    assert "--log-dir" in error_line(capsys)
    assert (tmp_path / "file").read_text() == "x"
