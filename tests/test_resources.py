"""The bundled cfgs, anchors and class lists, and keras-yolo3's ``model_data/<name>`` paths falling back to them."""
from __future__ import annotations

import os

import pytest
from conftest import run_script

from yolo3.resources import RESOURCE_NAMES, resolve_data_path, resource_path


def test_every_bundled_file_is_there_and_readable():
    for name in RESOURCE_NAMES:
        with open(resource_path(name), encoding="utf-8") as f:
            assert f.read().strip(), name
    with pytest.raises(KeyError, match="no bundled file"):
        resource_path("nope.txt")


def test_model_data_paths_fall_back_to_the_bundle_only_where_the_users_file_is_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_data_path("model_data/coco_classes.txt") == resource_path("coco_classes.txt")
    assert resolve_data_path("coco_classes.txt") == resource_path("coco_classes.txt")
    assert resolve_data_path("elsewhere/coco_classes.txt") == "elsewhere/coco_classes.txt"  # not keras-yolo3's
    assert resolve_data_path("model_data/mine.txt") == "model_data/mine.txt"  # not a bundled name
    (tmp_path / "model_data").mkdir()
    (tmp_path / "model_data" / "coco_classes.txt").write_text("only\n")
    assert resolve_data_path("model_data/coco_classes.txt") == "model_data/coco_classes.txt"  # the user's wins


def test_the_detector_reads_model_data_class_lists_from_the_bundle(tmp_path, monkeypatch):
    from yolo3 import Detector, create_model

    monkeypatch.chdir(tmp_path)
    detector = Detector(create_model("tiny", num_classes=80, size=64), classes_path="model_data/coco_classes.txt",
                        anchors_path="model_data/tiny_yolo_anchors.txt", xla=False)
    assert detector.class_names[:3] == ["person", "bicycle", "car"]


def test_scripts_accept_keras_yolo3s_model_data_paths(tmp_path):
    """eval.py with --classes model_data/voc_classes.txt from a folder that has no model_data/."""
    (tmp_path / "val.txt").write_text(f"{tmp_path / 'a.jpg'} 1,1,5,5,14\n")
    (tmp_path / "dets.json").write_text("[]")
    result = run_script("eval.py", "--detections", "dets.json", "--annotation", "val.txt", "--classes",
                        "model_data/voc_classes.txt", "--no-coco", cwd=tmp_path)
    assert "classes file not found" not in result.stderr
    assert not os.path.exists(tmp_path / "model_data")
