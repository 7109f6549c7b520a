"""Detector.from_pretrained: fetch (sha256 checked), convert with the bundled cfg, cache the .keras, COCO names.

The weights come from a local file:// source with random values of the right size for yolov3-tiny.cfg,
so nothing is downloaded.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from yolo3.modeling.pretrained import FetchError, WeightsSource


@pytest.fixture(scope="module")
def fake_source(tmp_path_factory) -> WeightsSource:
    """Random Darknet weights for the bundled yolov3-tiny.cfg (header 0.2.0, 64-bit ``seen``)."""
    from yolo3.modeling.builder import build_model_from_cfg
    from yolo3.modeling.cfg import parse_cfg
    from yolo3.modeling.darknet_weights import conv_weight_count
    from yolo3.resources import resource_path

    cfg = parse_cfg(resource_path("yolov3-tiny.cfg"))
    count = conv_weight_count(build_model_from_cfg(cfg), cfg)
    values = np.random.default_rng(0).uniform(0.01, 0.1, count).astype("<f4")
    path = tmp_path_factory.mktemp("source") / "yolov3-tiny.weights"
    path.write_bytes(np.array([0, 2, 0], "<i4").tobytes() + np.array([0], "<u8").tobytes() + values.tobytes())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return WeightsSource(filename="yolov3-tiny.weights", sha256=digest, url=path.as_uri())


def test_from_pretrained_converts_once_caches_and_names_coco_classes(fake_source, tmp_path, monkeypatch):
    import yolo3.modeling.pretrained as pretrained
    from yolo3.inference.detector import Detector

    cache = tmp_path / "cache"
    detector = Detector.from_pretrained("yolov3-tiny", cache_dir=str(cache), source=fake_source,
                                        score_threshold=0.5)
    keras_file = cache / f"yolov3-tiny-{fake_source.sha256[:12]}.keras"
    assert keras_file.is_file() and (cache / "yolov3-tiny.weights").is_file()
    names = os.listdir(cache)
    # besides the two files only the default backend's ONNX export of that model (yolo3.backends.onnx_cache)
    exported = [n for n in names if n.startswith(keras_file.stem + ".") and n.endswith(".onnx")]
    assert sorted(set(names) - set(exported)) == sorted([keras_file.name, "yolov3-tiny.weights"])  # no temporary
    assert len(detector.class_names) == 80 and detector.class_names[:3] == ["person", "bicycle", "car"]
    assert detector.input_size == (416, 416) and detector.score_threshold == 0.5
    result = detector.detect_one(np.zeros((120, 160, 3), np.uint8))
    assert result.boxes.shape[1:] == (4,)

    stamp = keras_file.stat().st_mtime_ns

    def no_conversion(*args, **kwargs):
        raise AssertionError("the cached .keras file should have been reused")

    monkeypatch.setattr(pretrained, "convert", no_conversion)
    again = Detector.from_pretrained("yolov3-tiny", cache_dir=str(cache), source=fake_source,
                                     class_names=["c"] * 80)
    assert keras_file.stat().st_mtime_ns == stamp
    assert again.class_names == ["c"] * 80  # given names win over COCO's


def test_from_pretrained_rejects_a_wrong_hash_and_caches_nothing(fake_source, tmp_path):
    from yolo3.inference.detector import Detector

    wrong = WeightsSource(fake_source.filename, "0" * 64, fake_source.url)
    with pytest.raises(FetchError, match="sha256"):
        Detector.from_pretrained("yolov3-tiny", cache_dir=str(tmp_path), source=wrong)
    assert os.listdir(tmp_path) == []
    with pytest.raises(FetchError, match="unknown pretrained model"):
        Detector.from_pretrained("yolov9", cache_dir=str(tmp_path))
