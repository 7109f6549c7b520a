"""Model builders, metadata, saving and weight transfer by layer name."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import run_python

import yolo3  # noqa: F401
from yolo3.core.heads import get_head_specs, model_anchors
from yolo3.modeling.factory import (
    backbone_layers,
    create_model,
    darknet_body,
    model_cfg_text,
    tiny_yolo_body,
    yolo_body,
)
from yolo3.modeling.saving import (
    load_model,
    load_weights_into,
    save_model,
    save_weights_file,
)


def _trainable(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def test_yolo_body_parameter_count():
    model = yolo_body(keras.Input((None, None, 3)), 3, 80)
    assert model.count_params() == 62_001_757
    assert _trainable(model) == 61_949_149
    assert [o.shape[-1] for o in model.outputs] == [255, 255, 255]


def test_tiny_yolo_body_parameter_count():
    model = tiny_yolo_body(keras.Input((None, None, 3)), 3, 80)
    assert model.count_params() == 8_858_734


def test_darknet_body_is_stride_32_with_1024_channels():
    body = darknet_body(keras.Input((256, 256, 3)))
    assert body.output.shape == (None, 8, 8, 1024)
    assert len(body.layers) == 185  # input + 52 x (conv, bn, act) + 4 paddings... as keras-yolo3's 185


def test_heads_carry_anchors_and_strides():
    anchors = np.arange(1, 19, dtype=np.float32).reshape(9, 2)
    model = create_model("yolov3", 5, anchors, size=320)
    specs = get_head_specs(model)
    assert [s.mask for s in specs] == [(6, 7, 8), (3, 4, 5), (0, 1, 2)]
    np.testing.assert_array_equal(specs[0].anchors, anchors[6:])
    np.testing.assert_array_equal(model_anchors(model), anchors)
    assert all(s.num_classes == 5 and s.net_size == (320, 320) for s in specs)
    outs = model(np.zeros((1, 320, 320, 3), np.float32))
    assert [o.shape[1] for o in outs] == [10, 20, 40]


def test_backbone_layers_are_darknet53_for_yolov3_and_early_convs_for_tiny():
    full = create_model("yolov3", 80)
    body = backbone_layers(full)
    convs = [layer.name for layer in body if layer.name.startswith("conv_")]
    assert len(convs) == 52 and convs[-1] == "conv_73"
    tiny = create_model("tiny", 80)
    assert [layer.name for layer in backbone_layers(tiny) if layer.name.startswith("conv_")] == [
        "conv_0", "conv_2", "conv_4", "conv_6", "conv_8"]


@pytest.mark.parametrize("suffix", [".keras", pytest.param(".h5", marks=pytest.mark.slow)])
def test_saved_model_loads_in_fresh_process_with_safe_mode(tmp_path, suffix):
    model = create_model("tiny", 3)
    path = tmp_path / f"m{suffix}"
    save_model(model, str(path))
    x = np.random.RandomState(0).rand(1, 64, 96, 3).astype("float32")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "ref.npy", np.asarray(model(x)[0]))
    code = f"""
import numpy as np, keras, yolo3
m = keras.models.load_model({str(path)!r}, safe_mode=True)
out = np.asarray(m(np.load({str(tmp_path / 'x.npy')!r}))[0])
assert np.array_equal(out, np.load({str(tmp_path / 'ref.npy')!r}))
from yolo3.core.heads import get_head_specs
print(get_head_specs(m)[0].num_classes)
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("3")


def test_save_model_is_atomic_and_checks_directory(tmp_path):
    model = create_model("tiny", 1)
    with pytest.raises(FileNotFoundError, match="output directory does not exist"):
        save_model(model, str(tmp_path / "missing" / "m.keras"))
    with pytest.raises(ValueError, match="must end in .keras or .h5"):
        save_model(model, str(tmp_path / "m.bin"))
    assert list(tmp_path.iterdir()) == []


def test_weights_file_loads_by_name_and_skips_heads_of_other_class_count(tmp_path):
    src = create_model("tiny", 80)
    path = tmp_path / "tiny_weights.h5"  # keras-yolo3's naming, not .weights.h5
    save_weights_file(src, str(path), model_cfg_text("tiny", 80))
    assert np.array_equal(load_model(str(path)).get_layer("conv_12").get_weights()[0],
                          src.get_layer("conv_12").get_weights()[0])
    dst = create_model("tiny", 3)
    loaded, skipped = load_weights_into(dst, str(path))
    assert sorted(skipped) == ["conv_15", "conv_22"]
    assert "conv_0" in loaded and "bn_21" in loaded
    np.testing.assert_array_equal(dst.get_layer("conv_21").get_weights()[0], src.get_layer("conv_21").get_weights()[0])


@pytest.mark.slow  # minutes on 2 cores (training graphs / fresh processes); CI runs it with `make test-slow`
def test_full_model_weights_transfer_into_bigger_class_count(tmp_path):
    src = create_model("yolov3", 80)
    path = tmp_path / "full.keras"
    save_model(src, str(path))
    dst = yolo_body(keras.Input((None, None, 3)), 3, 20)
    loaded, skipped = load_weights_into(dst, str(path))
    assert sorted(skipped) == ["conv_105", "conv_81", "conv_93"]
    assert len(loaded) == 72 + 72
