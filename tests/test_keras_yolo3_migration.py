"""Category 4 of issue 14: keras-yolo3's users keep their commands and their models.

The fixture writes keras-yolo3's Keras 2 ``.h5`` layout byte for byte as Keras 2.1.5's
``save_weights_to_hdf5_group`` / ``save_model`` did (root or ``model_weights`` attributes
``layer_names``, ``backend``, ``keras_version``; per layer a group with ``weight_names`` and one dataset
per weight named ``conv2d_5/kernel:0`` ...; ``model_config`` JSON for a full model), with the layer
names keras-yolo3's ``yolo_body`` / ``tiny_yolo_body`` / ``convert.py`` give (``conv2d_N``,
``batch_normalization_N``, ``leaky_re_lu_N``, ``zero_padding2d_N``, ``add_N``, ``max_pooling2d_N``,
``up_sampling2d_N``, ``concatenate_N``, numbered from 1 in creation order = cfg order; a weights file
as train.py saved it also lists the training model's ``input_2``... and its ``yolo_loss`` Lambda). The weights
come from a model converted from Darknet weights by convert.py; loading the keras-yolo3 file must give
that model's outputs exactly.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import h5py
import keras
import numpy as np
import pytest
from conftest import DARKNET_IMAGES, RESOURCES, require_shared, run_script

from yolo3.core.heads import get_head_specs
from yolo3.modeling.cfg import ModelFileError
from yolo3.modeling.factory import create_model
from yolo3.modeling.saving import load_model, load_weights_into

WEIGHTLESS = {"pad": "zero_padding2d", "act": "leaky_re_lu", "pool": "max_pooling2d", "shortcut": "add",
              "upsample": "up_sampling2d", "route": "concatenate"}


def keras2_layers_of(model) -> list[tuple[str, str, list[tuple[str, np.ndarray]]]]:
    """(keras-yolo3 name, Keras 2 class name, [(weight name, value)]) of each layer of a yolo3 model, in
    creation (= cfg) order, named as Keras 2 numbers them: one counter per layer class, from 1."""
    counters: dict[str, int] = {}

    def name_of(base: str) -> str:
        counters[base] = counters.get(base, 0) + 1
        return f"{base}_{counters[base]}"

    out = [("input_1", "InputLayer", [])]
    layers = [layer for layer in model.layers if "_" in layer.name and layer.name.split("_")[-1].isdigit()]
    layers.sort(key=lambda layer: (int(layer.name.split("_")[-1]), ["pad", "conv", "bn", "act", "pool", "shortcut",
                                                                   "upsample", "route"].index(layer.name.split("_")[0])
                                   if layer.name.split("_")[0] != "yolo" else 99))
    for layer in layers:
        kind = layer.name.split("_")[0]
        if kind == "conv":
            name = name_of("conv2d")
            kernel, *bias = layer.get_weights()
            out.append((name, "Conv2D", [(f"{name}/kernel:0", kernel)] + [(f"{name}/bias:0", b) for b in bias]))
        elif kind == "bn":
            name = name_of("batch_normalization")
            out.append((name, "BatchNormalization", [(f"{name}/{w}:0", v) for w, v in zip(
                ("gamma", "beta", "moving_mean", "moving_variance"), layer.get_weights())]))
        elif kind in WEIGHTLESS and not (kind == "act" and layer.__class__.__name__ != "LeakyReLU"):
            out.append((name_of(WEIGHTLESS[kind]), layer.__class__.__name__, []))
    return out


def write_keras2_h5(path: Path, model, full: bool, reorder: bool = False) -> None:
    """keras-yolo3's file: Keras 2.1.5's save_model (full) or save_weights layout."""
    layers = keras2_layers_of(model)
    if not full:  # train.py saved its training model: y_true inputs and the yolo_loss Lambda layer too
        heads = sum(1 for _, c, w in layers if c == "Conv2D" and len(w) == 2)
        layers += [(f"input_{i + 2}", "InputLayer", []) for i in range(heads)] + [("yolo_loss", "Lambda", [])]
    if reorder:  # Keras 2 lists a functional model's layers by depth, not always in creation order
        layers = layers[:1] + layers[1:][::-1]
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.1.5"
        f.attrs["backend"] = b"tensorflow"
        group = f
        if full:
            config = {"class_name": "Model", "config": {
                "name": "model_1",
                "layers": [{"name": n, "class_name": c, "config": {"name": n, "trainable": True},
                            "inbound_nodes": []} for n, c, _ in layers],
                "input_layers": [["input_1", 0, 0]],
                "output_layers": [[n, 0, 0] for n, c, w in layers if c == "Conv2D" and len(w) == 2]}}
            f.attrs["model_config"] = json.dumps(config).encode("utf8")
            group = f.create_group("model_weights")
        group.attrs["layer_names"] = np.asarray([n.encode("utf8") for n, _, _ in layers])  # fixed-length bytes
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = b"2.1.5"
        for name, _, weights in layers:
            g = group.create_group(name)
            g.attrs["weight_names"] = np.asarray([w.encode("utf8") for w, _ in weights])  # empty: float64 (0,)
            for w, value in weights:
                g.create_dataset(w, value.shape, dtype=value.dtype)[:] = value


def raw_outputs(model, size: int = 416, seed: int = 0) -> list[np.ndarray]:
    x = np.random.default_rng(seed).random((1, size, size, 3), dtype=np.float32)
    out = model(x, training=False)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


@pytest.fixture(scope="module")
def converted_tiny(tiny_model_path):
    return keras.models.load_model(tiny_model_path)


@pytest.mark.parametrize("full", [True, False], ids=["model.save", "save_weights"])
def test_keras_yolo3_tiny_file_gives_the_converted_models_outputs(converted_tiny, tmp_path, full):
    path = tmp_path / ("tiny_yolo.h5" if full else "tiny_yolo_weights.h5")
    write_keras2_h5(path, converted_tiny, full=full, reorder=not full)
    with h5py.File(path) as f:  # the fixture's layout, as keras-yolo3 wrote it
        group = f["model_weights"] if full else f
        assert [n.decode() for n in group.attrs["layer_names"]][:2] == ["input_1", "conv2d_1" if full else
                                                                        "yolo_loss"]
        assert list(group["conv2d_1"].attrs["weight_names"]) == [b"conv2d_1/kernel:0"]
        assert "conv2d_1/kernel:0" in group["conv2d_1"] and len(group["batch_normalization_11"].attrs[
            "weight_names"]) == 4
    model = load_model(str(path))
    for ours, theirs in zip(raw_outputs(model), raw_outputs(converted_tiny)):
        np.testing.assert_array_equal(ours, theirs)
    specs = get_head_specs(model)
    assert [list(s.mask) for s in specs] == [[3, 4, 5], [1, 2, 3]]  # keras-yolo3's tiny masks
    assert specs[0].num_classes == 80
    np.testing.assert_allclose(np.concatenate([s.anchors for s in specs[:1]]),
                               [[81, 82], [135, 169], [344, 319]])


@pytest.mark.slow  # minutes on 2 cores (training graphs / fresh processes); CI runs it with `make test-slow`
def test_keras_yolo3_yolov3_layout_maps_all_75_convolutions(tmp_path):
    """Full YOLOv3 (zero padding, residual adds, three heads), random weights, 3 classes."""
    keras.utils.set_random_seed(3)
    reference = create_model("yolov3", 3)
    for layer in reference.layers:  # non-trivial batch-norm statistics, so a swapped layer shows
        if layer.name.startswith("bn_"):
            g, b, m, v = layer.get_weights()
            rng = np.random.default_rng(len(layer.name))
            layer.set_weights([g * rng.uniform(0.5, 1.5, g.shape), b + rng.normal(0, 0.1, b.shape),
                               rng.normal(0, 0.1, m.shape), rng.uniform(0.5, 2, v.shape)])
    path = tmp_path / "trained_weights_final.h5"
    write_keras2_h5(path, reference, full=False, reorder=True)
    anchors = np.loadtxt(RESOURCES / "yolo_anchors.txt", delimiter=",").reshape(-1, 2)
    model = load_model(str(path), anchors=anchors, num_classes=3)
    for ours, theirs in zip(raw_outputs(model, 64), raw_outputs(reference, 64)):
        np.testing.assert_array_equal(ours, theirs)
    assert len([n for n in model.layers if n.name.startswith("conv_")]) == 75
    with pytest.raises(ModelFileError, match="predicts 3 classes but the class list has 80"):
        load_model(str(path), num_classes=80)
    with pytest.raises(ModelFileError, match="give 9 anchors, not 6"):
        load_model(str(path), anchors=anchors[:6])
    fresh = create_model("yolov3", 3)  # train.py --weights: copied by layer name into a new model
    loaded, skipped = load_weights_into(fresh, str(path))
    assert len(loaded) == 75 + 72 and not skipped


@pytest.fixture(scope="module")
def keras_yolo3_tiny_file(converted_tiny, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("k2") / "tiny_yolo.h5"
    write_keras2_h5(path, converted_tiny, full=True)
    return str(path)


@pytest.mark.slow  # minutes on 2 cores (training graphs / fresh processes); CI runs it with `make test-slow`
def test_yolo_video_and_eval_with_anchors_and_classes(keras_yolo3_tiny_file, tmp_path):
    """keras-yolo3's command, as its README wrote it, on its model file."""
    classes = str(RESOURCES / "coco_classes.txt")
    anchors = str(RESOURCES / "tiny_yolo_anchors.txt")
    dog = require_shared("darknet", "images", "dog.jpg")
    r = run_script("yolo_video.py", "--model", keras_yolo3_tiny_file, "--anchors", anchors, "--classes", classes,
                   "--image", str(dog), "--json", str(tmp_path / "d.json"), "-q")
    assert r.returncode == 0, r.stderr
    found = {d["class"] for d in json.loads((tmp_path / "d.json").read_text())[0]["detections"]}
    assert {"dog", "bicycle"} <= found, found
    (tmp_path / "val.txt").write_text(f"{dog} 128,224,314,537,16\n")
    r = run_script("eval.py", "--model", keras_yolo3_tiny_file, "--anchors", anchors, "--classes", classes,
                   "--annotation", str(tmp_path / "val.txt"), "--no-coco", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "dog" in r.stdout


@pytest.mark.slow
def test_export_takes_a_keras_yolo3_model(tmp_path):
    pytest.importorskip("onnx")
    keras.utils.set_random_seed(1)
    write_keras2_h5(tmp_path / "k.h5", create_model("tiny", 3), full=False)
    (tmp_path / "c.txt").write_text("a\nb\nc\n")
    r = run_script("export.py", "--model", str(tmp_path / "k.h5"), "--anchors", "model_data/tiny_yolo_anchors.txt",
                   "--classes", str(tmp_path / "c.txt"), "--format", "onnx", "--output", str(tmp_path / "k.onnx"), "-q")
    assert r.returncode == 0, r.stderr
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "k.onnx")).metadata_props}
    heads = json.loads(next(v for k, v in meta.items() if "head" in k))
    assert [h["mask"] for h in heads] == [[3, 4, 5], [1, 2, 3]] and heads[0]["num_classes"] == 3
    r = run_script("export.py", "--model", str(tmp_path / "k.h5"), "--classes", str(RESOURCES / "coco_classes.txt"),
                   "--format", "onnx", "--output", str(tmp_path / "k2.onnx"), "-q")
    assert r.returncode == 2 and "predicts 3 classes but the class list has 80" in r.stderr, r.stderr


def test_keras_yolo3_python_api(keras_yolo3_tiny_file, tmp_path):
    """``YOLO(**vars(FLAGS))`` with keras-yolo3's flag names and extra keys, ``detect_image``,
    ``detect_video(yolo, video_path, output_path)`` and ``close_session()``."""
    import argparse

    from PIL import Image

    from yolo import YOLO, detect_video

    flags = argparse.Namespace(model_path=keras_yolo3_tiny_file, anchors_path="model_data/tiny_yolo_anchors.txt",
                               classes_path="model_data/coco_classes.txt", gpu_num=1, image=True,
                               input="./path2your_video", output="")
    yolo = YOLO(**vars(flags))
    assert yolo.input == "./path2your_video"
    drawn = yolo.detect_image(Image.open(DARKNET_IMAGES / "dog.jpg"))
    assert drawn.size == Image.open(DARKNET_IMAGES / "dog.jpg").size
    assert "dog" in {yolo.class_names[int(c)] for c in yolo.last_detections.class_ids}
    video = tmp_path / "in.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (160, 120))
    for _ in range(3):
        writer.write(cv2.resize(cv2.imread(str(DARKNET_IMAGES / "dog.jpg")), (160, 120)))
    writer.release()
    detect_video(yolo, str(video), str(tmp_path / "out.avi"))
    capture = cv2.VideoCapture(str(tmp_path / "out.avi"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    capture.release()
    yolo.close_session()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.avi", "out.avi"]  # no temporary file left


@pytest.mark.parametrize("content, needle", [
    (b"\x89HDF\r\n\x1a\n" + b"\0" * 100, "damaged HDF5"),
    (np.array([0, 2, 0, 0, 0], np.int32).tobytes() + b"\0" * 64, "Darknet .weights file"),
    (b"PK\x03\x04 truncated", "damaged or incomplete .keras"),
    (b"random bytes " * 10, "not a model file"),
])
def test_load_model_says_what_a_bad_file_is(tmp_path, content, needle):
    path = tmp_path / "m.keras"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=needle) as info:
        load_model(str(path))
    assert "\n" not in str(info.value)
    with pytest.raises(ModelFileError, match="is a folder"):
        load_model(str(tmp_path))


def test_readme_cfg_paths_work_as_written(tmp_path, capsys, monkeypatch):
    """``python convert.py yolov3.cfg ...`` from a folder without the cfg uses the bundled copy."""
    import convert as convert_script

    monkeypatch.chdir(tmp_path)
    for cfg in ("yolov3.cfg", "yolov3-tiny.cfg", "model_data/yolov3-tiny.cfg"):
        assert convert_script.main([cfg, "yolov3.weights", "model_data/yolo.h5"]) == 2
        err = capsys.readouterr().err
        assert "weights file not found: yolov3.weights" in err and "cfg" not in err, err


def test_keras_yolo3_default_files_in_model_data(keras_yolo3_tiny_file, tmp_path, capsys, monkeypatch):
    """keras-yolo3's working folder: model_data/yolo.h5 and its own anchors file are the defaults."""
    import shutil

    import yolo_video

    (tmp_path / "model_data").mkdir()
    shutil.copy(keras_yolo3_tiny_file, tmp_path / "model_data" / "yolo.h5")
    (tmp_path / "model_data" / "tiny_yolo_anchors.txt").write_text("10,14, 23,27, 37,58, 81,82, 135,169, 300,300\n")
    monkeypatch.chdir(tmp_path)
    dog = require_shared("darknet", "images", "dog.jpg")
    assert yolo_video.main(["--image", str(dog), "--json", "d.json", "-q"]) == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "d.json").read_text())[0]["detections"]
    model = load_model("model_data/yolo.h5")
    np.testing.assert_array_equal(get_head_specs(model)[0].anchors, [[81, 82], [135, 169], [300, 300]])
