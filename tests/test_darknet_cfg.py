"""Darknet cfg parsing and model building: every cfg Darknet ships, our own cfgs, and bad input."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import require_shared

from yolo3.modeling.architectures import tiny_yolov3_cfg, yolov3_cfg
from yolo3.modeling.builder import backbone_end_of, build_model_from_cfg
from yolo3.modeling.cfg import CfgError, parse_cfg, parse_cfg_text

SHARED_CFGS = ["yolov3", "yolov3-tiny", "yolov3-spp", "yolov4", "yolov4-tiny", "darknet53"]

# Keys that decide the forward pass; training-only keys may differ between cfgs.
_STRUCTURAL = {
    "convolutional": ("filters", "size", "stride", "pad", "batch_normalize", "activation", "groups"),
    "maxpool": ("size", "stride"),
    "route": ("layers",),
    "shortcut": ("from", "activation"),
    "upsample": ("stride",),
    "yolo": ("mask", "anchors", "classes", "num"),
}


def _structure(cfg):
    rows = []
    for s in cfg.layers:
        keys = _STRUCTURAL.get(s.type, ())
        rows.append((s.type, tuple(s.options.get(k, "").replace(" ", "") for k in keys)))
    return rows


@pytest.mark.parametrize("name", SHARED_CFGS)
def test_every_darknet_cfg_parses_and_builds(name):
    cfg = parse_cfg(str(require_shared("darknet", "cfg", f"{name}.cfg")))
    model = build_model_from_cfg(cfg, input_shape=(320, 320, 3))
    if name == "darknet53":
        assert model.outputs[0].shape == (None, 1, 1, 1000)
        return
    yolo = cfg.yolo_sections
    assert len(model.outputs) == len(yolo)
    for out, sec in zip(model.outputs, yolo):
        classes = int(sec.options["classes"])
        assert out.shape[-1] == len(sec.get_ints("mask")) * (5 + classes)
    strides = sorted(320 // out.shape[1] for out in model.outputs)
    assert strides == ([16, 32] if "tiny" in name else [8, 16, 32])


@pytest.mark.parametrize("name,text", [
    ("yolov3", yolov3_cfg()),
    ("yolov3-spp", yolov3_cfg(spp=True)),
    ("yolov3-tiny", tiny_yolov3_cfg()),
])
def test_generated_cfgs_match_darknet_layer_by_layer(name, text):
    ours = parse_cfg_text(text)
    theirs = parse_cfg(str(require_shared("darknet", "cfg", f"{name}.cfg")))
    assert _structure(ours) == _structure(theirs)


def test_model_data_cfgs_are_the_generated_ones():
    from conftest import RESOURCES

    assert (RESOURCES / "yolov3.cfg").read_text() == yolov3_cfg() + "\n"
    assert (RESOURCES / "yolov3-tiny.cfg").read_text() == tiny_yolov3_cfg() + "\n"
    assert (RESOURCES / "yolov3-spp.cfg").read_text() == yolov3_cfg(spp=True) + "\n"


def test_backbone_end():
    assert backbone_end_of(parse_cfg_text(yolov3_cfg())) == 75  # Darknet-53: sections 0..74
    assert backbone_end_of(parse_cfg_text(tiny_yolov3_cfg())) == 10  # through the last stride-2 pool


def test_custom_class_count_cfg_builds_with_matching_heads():
    model = build_model_from_cfg(parse_cfg_text(yolov3_cfg(num_classes=3)))
    assert [o.shape[-1] for o in model.outputs] == [24, 24, 24]


def test_num_classes_override_resizes_heads():
    cfg = parse_cfg_text(tiny_yolov3_cfg(num_classes=80))
    model = build_model_from_cfg(cfg, num_classes=2)
    assert [o.shape[-1] for o in model.outputs] == [21, 21]


@pytest.mark.parametrize("text,line,fragment", [
    ("[net]\nwidth=416\n[conv]\nfilters=3\n", 3, "unknown section [conv]"),
    ("[net]\nwidth=416\n\n[convolutional]\nfilters=3\nsise=3\n", 6, "unknown key 'sise'"),
    ("[net]\n[convolutional]\nfilters=three\n", 3, "not an integer"),
    ("[net]\n[convolutional]\nactivation=gelu\n", 3, "activation 'gelu' is not supported"),
    ("[net]\n[convolutional]\nfilters=3\n[route]\nlayers=-5\n", 5, "outside"),
    ("[net]\n[convolutional]\nfilters\n", 3, "expected 'key=value'"),
    ("[convolutional]\nfilters=3\n", 1, "must start with a [net]"),
    ("[net]\n[convolutional]\nfilters=3\n[yolo]\nmask=0\nanchors=1,2\nclasses=1\n", 4, "6 are needed"),
])
def test_bad_cfg_reports_file_and_line(text, line, fragment):
    with pytest.raises(CfgError) as info:
        cfg = parse_cfg_text(text, "bad.cfg")
        build_model_from_cfg(cfg)
    assert info.value.path == "bad.cfg"
    assert info.value.line == line, str(info.value)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_comments_and_whitespace_are_ignored():
    cfg = parse_cfg_text("# hi\n[net]\n width = 64 # size\nheight=64\n\n[convolutional]\nfilters=4\nsize=3\npad=1\n"
                         "activation=leaky ; note\n")
    assert cfg.width == 64 and cfg.layers[0].options["activation"] == "leaky"


def test_route_groups_and_stride1_maxpool_shapes():
    text = ("[net]\nwidth=64\nheight=64\n[convolutional]\nfilters=8\nsize=3\npad=1\nactivation=leaky\n"
            "[route]\nlayers=-1\ngroups=2\ngroup_id=1\n[maxpool]\nsize=2\nstride=1\n[maxpool]\nsize=3\nstride=2\n"
            "padding=2\n")
    model = build_model_from_cfg(parse_cfg_text(text), input_shape=(64, 64, 3))
    x = np.random.RandomState(0).rand(1, 64, 64, 3).astype("float32")
    conv = model.get_layer("act_0").output
    import keras

    probe = keras.Model(model.inputs[0], [conv, model.get_layer("route_1").output, model.get_layer("pool_2").output,
                                        model.output])
    c, r, p, q = (np.asarray(t) for t in probe(x))
    np.testing.assert_array_equal(r, c[..., 4:])
    # Darknet stride-1 size-2 pool: window [i, i+1], the last row/column sees only itself.
    ref = r.copy()
    ref[:, :-1] = np.maximum(ref[:, :-1], ref[:, 1:])
    ref[:, :, :-1] = np.maximum(ref[:, :, :-1], ref[:, :, 1:])
    np.testing.assert_allclose(p, ref, rtol=0, atol=0)
    # size 3, stride 2, padding 2: one -inf cell each side, out = (64 + 2 - 3)//2 + 1 = 32
    padded = np.pad(p, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    want = np.full((1, 32, 32, 4), -np.inf, np.float32)
    for dy in range(3):
        for dx in range(3):
            want = np.maximum(want, padded[:, dy:dy + 63:2, dx:dx + 63:2][:, :32, :32])
    np.testing.assert_allclose(q, want)
