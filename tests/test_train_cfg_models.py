"""Training any Darknet cfg (issue 13, model half): the generated YOLOv4 / YOLOv4-tiny cfgs against
Darknet's own, parameter counts, where each body ends, train.py --model with built-in kinds and cfg
paths, the [yolo] key check, Darknet partial weights as --weights, freezing and bottleneck training."""
from __future__ import annotations

import pytest
from conftest import require_shared

from yolo3.modeling.architectures import tiny_yolov3_cfg, tiny_yolov4_cfg, yolov3_cfg, yolov4_cfg
from yolo3.modeling.builder import backbone_end_of, build_model_from_cfg
from yolo3.modeling.cfg import parse_cfg, parse_cfg_text


def _values(text: str) -> tuple:
    """A cfg value compared by meaning: comma-separated items, numbers as floats (``.7`` == ``0.7``)."""
    out = []
    for item in text.split(","):
        item = item.strip()
        if item:
            try:
                out.append(float(item))
            except ValueError:
                out.append(item.lower())
    return tuple(out)


def _sections(cfg) -> list[tuple[str, dict]]:
    return [(s.type, {k: _values(v) for k, v in s.options.items()}) for s in [cfg.net, *cfg.layers]]


# Every option of every section is compared, [net] included: the generators write Darknet's [net]
# training options too (nothing reads them; width/height follow ``size``, 608 in yolov4.cfg).
@pytest.mark.parametrize("name,text", [
    ("yolov4", yolov4_cfg(size=608)),
    ("yolov4-tiny", tiny_yolov4_cfg()),
])
def test_generated_v4_cfgs_equal_darknets_section_by_section(name, text):
    ours = _sections(parse_cfg_text(text))
    theirs = _sections(parse_cfg(str(require_shared("darknet", "cfg", f"{name}.cfg"))))
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a == b, f"section {i - 1}: {a} != {b}"


def test_v4_cfgs_keep_darknets_yolo_training_keys():
    heads = parse_cfg_text(yolov4_cfg(num_classes=3)).yolo_sections
    assert [h.options["scale_x_y"] for h in heads] == ["1.2", "1.1", "1.05"]
    for h in heads:
        assert (h.options["iou_thresh"], h.options["iou_loss"], h.options["iou_normalizer"],
                h.options["ignore_thresh"], h.options["max_delta"]) == ("0.213", "ciou", "0.07", ".7", "5")
        assert h.options["classes"] == "3"
    tiny = parse_cfg_text(tiny_yolov4_cfg(num_classes=3)).yolo_sections
    assert [h.options["mask"] for h in tiny] == ["3,4,5", "1,2,3"]  # Darknet's: anchor 0 unused
    assert {h.options["scale_x_y"] for h in tiny} == {"1.05"} and "iou_thresh" not in tiny[0].options


def test_v4_generators_take_any_anchors_and_size():
    text = tiny_yolov4_cfg(num_classes=2, anchors=[[i, i] for i in range(1, 9)], size=320)
    cfg = parse_cfg_text(text)
    assert (cfg.width, cfg.height) == (320, 320)
    assert [h.get_ints("mask") for h in cfg.yolo_sections] == [[4, 5, 6, 7], [0, 1, 2, 3]]
    v4 = parse_cfg_text(yolov4_cfg(num_classes=2, anchors=[[i, i] for i in range(1, 7)]))
    assert [h.get_ints("mask") for h in v4.yolo_sections] == [[0, 1], [2, 3], [4, 5]]  # stride 8 first
    with pytest.raises(ValueError, match="multiple"):
        yolov4_cfg(anchors=[[1, 1]] * 4)


def test_yolov4_tiny_parameter_count_equals_the_converters():
    model = build_model_from_cfg(parse_cfg_text(tiny_yolov4_cfg(num_classes=80)))
    assert model.count_params() == 6_062_814  # BatchNorm statistics included


@pytest.mark.slow  # CI runs it with make test-slow
def test_yolov4_parameter_count_equals_the_converters():
    model = build_model_from_cfg(parse_cfg_text(yolov4_cfg(num_classes=80)))
    assert model.count_params() == 64_429_405
    darknet = build_model_from_cfg(parse_cfg(str(require_shared("darknet", "cfg", "yolov4.cfg"))))
    assert darknet.count_params() == 64_429_405


@pytest.mark.parametrize("name,end", [
    ("yolov3", 75),  # Darknet-53: sections 0..74 (the last residual shortcut)
    ("yolov3-spp", 75),
    ("yolov3-tiny", 10),  # through the last stride-2 max-pool (section 9)
    ("yolov4", 105),  # CSPDarknet53: 0..104, through the last stage's route and 1x1 transition
    ("yolov4-tiny", 26),  # CSPDarknet53-tiny through its last stride-2 max-pool (section 25)
])
def test_backbone_end_of_darknets_cfgs(name, end):
    assert backbone_end_of(parse_cfg(str(require_shared("darknet", "cfg", f"{name}.cfg")))) == end


def test_backbone_end_of_generated_cfgs():
    assert backbone_end_of(parse_cfg_text(yolov4_cfg())) == 105
    assert backbone_end_of(parse_cfg_text(tiny_yolov4_cfg())) == 26
    assert backbone_end_of(parse_cfg_text(yolov3_cfg())) == 75
    assert backbone_end_of(parse_cfg_text(tiny_yolov3_cfg())) == 10
