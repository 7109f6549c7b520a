"""Getting a run ready: the validated annotation files and the model to train, shared by
:func:`yolo3.training.run.run_training` and bottleneck training."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from ..datasets.cleaning import count_lines, prepare_annotations, split_annotations
from ..modeling.builder import build_model_from_cfg
from ..modeling.darknet_weights import is_darknet_weights_file, load_darknet_weights_prefix
from ..modeling.factory import model_cfg, model_name
from ..modeling.saving import load_weights_into
from ..modeling.training_keys import check_training_keys
from .config import DataConfig, ModelConfig
from .pipeline import load_image

__all__ = ["PreparedData", "prepare_training_data", "create_training_model"]


def _log(msg: str) -> None:
    print(msg, flush=True)


@dataclass(frozen=True)
class PreparedData:
    """The clean annotation files a run reads (see :func:`yolo3.datasets.cleaning.prepare_annotations`).

    Args:
        train_path: clean training annotation file.
        n_train: images in it.
        val_path: clean validation annotation file (may be empty).
        n_val: images in it.
    """

    train_path: str
    n_train: int
    val_path: str
    n_val: int


def prepare_training_data(data: DataConfig, data_dir: str, seed: int = 10101,
                          log: Callable[[str], None] = _log) -> PreparedData:
    """Validate the annotation files into clean copies under ``data_dir`` and split off the
    validation images when no validation file is given. Logs one summary line a file.

    Args:
        data: the annotation files, the class names, ``val_split`` and ``skip_missing``.
        data_dir: folder of the clean files (``annotations.clean.txt``, ``train.clean.txt``,
            ``val.clean.txt``); created if needed.
        seed: seed of the validation split.
        log: where the summary lines go.

    Raises :class:`yolo3.datasets.annotations.AnnotationError`, :class:`yolo3.datasets.cleaning.DataError`
    or ``FileNotFoundError`` as :func:`yolo3.datasets.cleaning.prepare_annotations` does.
    """
    os.makedirs(data_dir, exist_ok=True)
    num_classes = len(data.classes)
    all_clean = os.path.join(data_dir, "annotations.clean.txt")
    report = prepare_annotations(data.annotation, all_clean, num_classes, skip_missing=data.skip_missing,
                                 decode=load_image)
    log(report.summary(data.annotation))
    val_clean = os.path.join(data_dir, "val.clean.txt")
    if data.val_annotation:
        vreport = prepare_annotations(data.val_annotation, val_clean, num_classes, skip_missing=data.skip_missing,
                                      decode=load_image)
        log(vreport.summary(data.val_annotation))
        return PreparedData(all_clean, count_lines(all_clean), val_clean, count_lines(val_clean))
    train_clean = os.path.join(data_dir, "train.clean.txt")
    n_train, n_val = split_annotations(all_clean, data.val_split, seed, train_clean, val_clean)
    log(f"split: {n_train} training and {n_val} validation images (--val-split {data.val_split:g}, seed {seed})")
    return PreparedData(train_clean, n_train, val_clean, n_val)


def create_training_model(model: ModelConfig, num_classes: int, load_weights: bool = True,
                          no_weights_message: str | None = None, log: Callable[[str], None] = _log):
    """A fresh model of ``model.kind`` (a built-in kind or a cfg file) with ``model.weights`` loaded into it.

    A Darknet weights file (whole or a partial backbone such as ``yolov4.conv.137``) fills the first
    convolutions in cfg order; a converted model or ``convert.py -w`` file is copied by layer name, layers
    whose shapes differ (e.g. heads for another class count) skipped and listed.

    Args:
        model: kind, anchors (pixels), weights and input size (the heads record it: a built-in kind's
            larger side, a cfg's height and width).
        num_classes: classes the heads predict.
        load_weights: False leaves the weights as built (a resumed run loads its checkpoint instead).
        no_weights_message: logged when ``model.weights`` is None (and ``load_weights``).
        log: where the messages go.

    Raises:
        DarknetError: the cfg cannot be read or built, its ``[yolo]`` sections set a key the loss does not
            implement (:func:`yolo3.modeling.training_keys.check_training_keys`), or the weights do not fit.
    """
    cfg = model_cfg(model.kind, num_classes, model.anchors, model.input_size)
    check_training_keys(cfg)
    net = build_model_from_cfg(cfg, num_classes=num_classes, input_shape=(None, None, 3), name=model_name(model.kind))
    if load_weights and model.weights:
        if is_darknet_weights_file(model.weights):
            info = load_darknet_weights_prefix(net, cfg, model.weights)
            loaded = info["loaded"]
            log(f"loaded Darknet weights of {len(loaded)} convolutions (conv_{loaded[0]}..conv_{loaded[-1]}, "
                f"{info['values']} values) from {model.weights}")
            if info["skipped"]:
                log(f"skipped {len(info['skipped'])} head convolutions made for another class count: "
                    f"{', '.join(f'conv_{i}' for i in info['skipped'])}")
        else:
            loaded, skipped = load_weights_into(net, model.weights)
            log(f"loaded weights of {len(loaded)} layers from {model.weights}")
            if skipped:
                log(f"skipped {len(skipped)} layers (shape differs or absent): {', '.join(skipped)}")
    elif load_weights and no_weights_message:
        log(no_weights_message)
    return net
