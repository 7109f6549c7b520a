"""Which ``[yolo]`` keys a cfg may set to be trained here: the loss implements some, others do not
change the loss, and the rest change it in ways not implemented, so training refuses them.

The key list is that of AlexeyAB darknet's ``parse_yolo`` (``src/parser.c``). A key is refused only
where its value differs from the one that leaves Darknet's loss as implemented here (``focal_loss=0``
is accepted, ``focal_loss=1`` refused); the error is one line, ``path:line: [yolo] ...``, naming the key.
"""
from __future__ import annotations

from ..core.layers import IOU_LOSSES
from .cfg import DarknetCfg, Section

__all__ = ["LOSS_KEYS", "NEUTRAL_KEYS", "REFUSED_KEYS", "check_training_keys"]

#: keys the loss implements, per head (read by :func:`yolo3.modeling.builder.yolo_head_config`)
LOSS_KEYS = frozenset({"iou_thresh", "iou_loss", "iou_normalizer", "obj_normalizer", "cls_normalizer", "max_delta",
                       "label_smooth_eps", "ignore_thresh", "scale_x_y"})

#: keys that do not change the loss: the head's layout, augmentation and multi-scale switches
#: (``jitter``, ``random``, ``resize``: the data pipeline's business), NMS at detection time, the
#: truth cap ``max``, tracking-only keys, and Gaussian-YOLO / region keys ``parse_yolo`` never reads
NEUTRAL_KEYS = frozenset({"mask", "anchors", "classes", "num", "jitter", "random", "resize", "nms_kind", "beta_nms",
                          "max", "show_details", "track_history_size", "sim_thresh", "dets_for_track",
                          "dets_for_show", "track_ciou_norm", "uc_normalizer", "yolo_point", "rescore"})

#: keys that change the loss in ways not implemented -> (the value that leaves the loss unchanged, what they do)
REFUSED_KEYS = {
    "truth_thresh": ("1", "below 1, every anchor whose IoU with a box exceeds it becomes a positive"),
    "focal_loss": ("0", "focal loss on the objectness"),
    "new_coords": ("0", "Scaled-YOLOv4 box coordinates"),
    "objectness_smooth": ("0", "smoothed objectness targets"),
    "iou_thresh_kind": ("iou", "another IoU kind for iou_thresh"),
    "counters_per_class": (None, "per-class loss multipliers"),
    "delta_normalizer": ("1", "scales every gradient"),
    "embedding_layer": (None, "an embedding (tracking) loss"),
    "map": (None, "a class map"),
}


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _neutral(key: str, value: str) -> bool:
    """Whether ``key=value`` (a key of :data:`REFUSED_KEYS`) leaves the loss as implemented."""
    if key == "truth_thresh":
        number = _number(value)
        return number is not None and number >= 1.0
    neutral = REFUSED_KEYS[key][0]
    if neutral is None:
        return False
    number, expected = _number(value), _number(neutral)
    return number == expected if expected is not None else value.strip().lower() == neutral


def _check_section(sec: Section) -> None:
    for key, value in sec.options.items():
        if key in LOSS_KEYS or key in NEUTRAL_KEYS or (key in REFUSED_KEYS and _neutral(key, value)):
            continue
        neutral, what = REFUSED_KEYS.get(key, (None, "a key the loss does not know"))
        fix = f"remove it or set {key}={neutral}" if neutral is not None else "remove it"
        raise sec.error(f"'{key}={value}' changes the loss ({what}) and is not implemented for training; {fix}",
                        key)
    loss = sec.options.get("iou_loss", "mse").strip().lower()
    if loss not in IOU_LOSSES:
        raise sec.error(f"'iou_loss={sec.options['iou_loss']}' is not implemented for training "
                        f"(use one of {', '.join(IOU_LOSSES)})", "iou_loss")


def check_training_keys(cfg: DarknetCfg) -> None:
    """Refuse a cfg whose ``[yolo]`` sections set keys that change the loss but are not implemented.

    Accepted: :data:`LOSS_KEYS` (``iou_loss`` one of :data:`yolo3.core.layers.IOU_LOSSES`),
    :data:`NEUTRAL_KEYS`, and the keys of :data:`REFUSED_KEYS` at their neutral value (``truth_thresh`` >= 1).

    Args:
        cfg: the parsed cfg.

    Raises:
        CfgError: ``path:line: [yolo] 'key=value' changes the loss (...) and is not implemented for
            training; ...`` at the first such key; or the cfg has no ``[yolo]`` section.
    """
    if not cfg.yolo_sections:
        raise cfg.net.error("the cfg has no [yolo] sections: it is not a YOLO detector to train")
    for sec in cfg.yolo_sections:
        _check_section(sec)
