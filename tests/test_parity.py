"""The converted models compute what Darknet computes.

Against Darknet's own outputs (../shared/oracle, random weights at 320x320) for yolov3-tiny,
yolov3 and yolov4-tiny; against OpenCV's Darknet importer (an independent implementation that
agrees with Darknet to 1e-5) for the other cfgs we support: yolov3-spp, yolov4 and darknet53.
"""
from __future__ import annotations

import importlib.util
import json
import re

import numpy as np
import pytest
from conftest import require_shared

from yolo3.modeling.builder import build_model_from_cfg
from yolo3.modeling.cfg import parse_cfg
from yolo3.modeling.darknet_weights import load_darknet_weights

TOLERANCE = 1e-3


def _cfg_at_320(name: str, tmp_path) -> str:
    text = require_shared("darknet", "cfg", f"{name}.cfg").read_text()
    text = re.sub(r"^width=\d+", "width=320", text, flags=re.M)
    text = re.sub(r"^height=\d+", "height=320", text, flags=re.M)
    path = tmp_path / f"{name}-320.cfg"
    path.write_text(text)
    return str(path)


def _random_weights(cfg_path: str, tmp_path) -> str:
    script = require_shared("oracle", "make_random_weights.py")
    spec = importlib.util.spec_from_file_location("make_random_weights", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "random.weights"
    out.write_bytes(mod.make_weights(cfg_path, seed=0))
    return str(out)


def _convert(name: str, tmp_path):
    cfg_path = _cfg_at_320(name, tmp_path)
    weights = _random_weights(cfg_path, tmp_path)
    cfg = parse_cfg(cfg_path)
    model = build_model_from_cfg(cfg)
    load_darknet_weights(model, cfg, weights, progress=False)
    return cfg_path, weights, model


@pytest.mark.parametrize("name", ["yolov3-tiny", "yolov4-tiny", "yolov3"])
def test_raw_heads_match_darknet_oracle(name, tmp_path):
    oracle = np.load(require_shared("oracle", f"parity_{name}.npz"))
    meta = json.loads(str(oracle["meta_json"]))
    _, _, model = _convert(name, tmp_path)
    outputs = model(oracle["input"].transpose(0, 2, 3, 1))
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    assert len(outputs) == len(meta["heads"])
    for out, head in zip(outputs, meta["heads"]):
        ref = oracle[f"conv_{head['conv_layer']}"].transpose(0, 2, 3, 1)
        assert out.shape == ref.shape
        err = float(np.abs(np.asarray(out) - ref).max())
        assert err < TOLERANCE, f"{name} head {head['conv_layer']}: max abs error {err}"
        assert float(np.abs(ref).max()) > 0.1  # the comparison is not between near-zero tensors


def _opencv_darknet():
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2.dnn, "readNetFromDarknet"):
        pytest.skip("this OpenCV has no Darknet importer (OpenCV 5 removed it; install opencv-python-headless<5)")
    return cv2


@pytest.mark.parametrize("name", ["yolov3-spp", "yolov4", "darknet53"])
def test_raw_outputs_match_opencv_darknet_importer(name, tmp_path):
    cv2 = _opencv_darknet()
    cfg_path, weights, model = _convert(name, tmp_path)
    cfg = parse_cfg(cfg_path)
    if cfg.yolo_sections:
        targets = [i - 1 for i, s in enumerate(cfg.layers) if s.type == "yolo"]
    else:
        targets = [i for i, s in enumerate(cfg.layers) if s.type == "convolutional"][-1:]
    net = cv2.dnn.readNetFromDarknet(cfg_path, weights)
    x = np.random.RandomState(1234).uniform(0, 1, (1, 3, 320, 320)).astype(np.float32)
    net.setInput(x)
    refs = net.forward([f"conv_{i}" for i in targets])
    import keras

    probe = keras.Model(model.inputs[0], [model.get_layer(f"conv_{i}").output for i in targets])
    outs = probe(x.transpose(0, 2, 3, 1))
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    for i, out, ref in zip(targets, outs, refs):
        ref = ref.reshape(1, -1, *out.shape[1:3]).transpose(0, 2, 3, 1)
        err = float(np.abs(np.asarray(out) - ref).max())
        assert err < TOLERANCE, f"{name} conv_{i}: max abs error {err}"
        assert float(np.abs(ref).max()) > 0.1


_LAYERS_CFG = """[net]
width=32
height=32
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky

[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
groups=4
activation=relu

[dropout]
probability=0.3

[convolutional]
batch_normalize=1
filters=12
size=3
stride=2
pad=1
groups=2
activation=swish

[convolutional]
filters=6
size=1
stride=1
pad=1
activation=logistic

[route]
layers=-1,-2

[convolutional]
filters=5
size=1
stride=1
pad=1
activation=linear
"""


def test_grouped_convolutions_activations_and_dropout_match_opencv_darknet_importer(tmp_path):
    """The layers the README lists as supported that the full cfgs do not use: grouped convolutions
    (groups=4 and 2), relu, swish and logistic activations and [dropout] (identity at inference; it still
    counts as a layer for the route after it), each layer compared with OpenCV's Darknet importer."""
    cv2 = _opencv_darknet()
    cfg_path = tmp_path / "layers.cfg"
    cfg_path.write_text(_LAYERS_CFG)
    weights = _random_weights(str(cfg_path), tmp_path)
    cfg = parse_cfg(str(cfg_path))
    model = build_model_from_cfg(cfg)
    load_darknet_weights(model, cfg, weights, progress=False)
    net = cv2.dnn.readNetFromDarknet(str(cfg_path), weights)
    x = np.random.RandomState(5).uniform(0, 1, (1, 3, 32, 32)).astype(np.float32)
    net.setInput(x)
    import keras

    # Keras layer -> OpenCV layer holding the same tensor (OpenCV numbers an activation after its conv)
    pairs = [("act_0", "leaky_1"), ("act_1", "relu_2"), ("dropout_2", "identity_2"), ("act_3", "swish_4"),
             ("act_4", "logistic_5"), ("route_5", "concat_5"), ("act_6", "conv_6")]
    probe = keras.Model(model.inputs[0], [model.get_layer(k).output for k, _ in pairs])
    outs = [np.asarray(o) for o in probe(x.transpose(0, 2, 3, 1))]
    refs = net.forward([cv for _, cv in pairs])
    for (name, _), out, ref in zip(pairs, outs, refs):
        ref = ref.reshape(1, -1, *out.shape[1:3]).transpose(0, 2, 3, 1)
        assert out.shape == ref.shape, (name, out.shape, ref.shape)
        np.testing.assert_allclose(out, ref, atol=1e-4, err_msg=name)
        assert float(np.abs(ref).max()) > 0.1
