"""Train YOLOv3, YOLOv4, their tiny variants or any Darknet cfg with [yolo] sections on your own
annotation file (keras-yolo3's train.py, with flags).

Stage 1 trains with the body frozen (--freeze-body), stage 2 unfreezes everything with a fresh
optimizer. The final inference model (``<log-dir>/trained_final.keras``) loads in yolo_video.py
and eval.py as it is. See docs/training.md.

    python train.py --annotation train.txt --classes voc_classes.txt \\
        --weights model_data/yolo.weights.h5 --log-dir logs/000
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from ..core.files import check_output_dir
from ..datasets.annotations import read_anchors, read_class_names
from ..modeling.cfg import parse_cfg
from ..modeling.factory import MODEL_KINDS, default_anchors, is_cfg_path
from ..modeling.training_keys import check_training_keys
from ..resources import resolve_data_path, resource_path
from ..training.config import (
    PRECISIONS,
    DataConfig,
    EvalConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    RuntimeConfig,
    StageConfig,
    TrainConfig,
)
from ..training.distribute import split_cpu
from ..training.loss import BOX_GRADS
from ..training.run import run_training
from .common import (
    HelpFormatter,
    UsageError,
    check_files,
    fail,
    fraction,
    non_negative_float,
    non_negative_int,
    number_type,
    parse_size,
    positive_float,
    positive_int,
    prog_name,
    run_tool,
)

__all__ = ["build_parser", "main", "read_model_files", "model_kind", "apply_recipe", "RECIPES"]


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    d = p.add_argument_group("data")
    d.add_argument("--annotation", default="train.txt", help="training annotation file")
    d.add_argument("--val-annotation", default=None, help="validation annotation file (else --val-split)")
    d.add_argument("--val-split", type=number_type(float, 0, 1, high_open=True), default=0.1,
                   help="fraction of --annotation held out for validation")
    d.add_argument("--classes", default=resource_path("voc_classes.txt"), type=resolve_data_path,
                   help="class names, one a line")
    d.add_argument("--skip-missing", action="store_true",
                   help="train without images that are missing or unreadable (listed) instead of stopping")
    d.add_argument("--mosaic", type=fraction, nargs="?", const=0.5, default=0.0,
                   help="probability of a 4-image mosaic per sample (--mosaic alone: 0.5)")
    d.add_argument("--no-augment", action="store_true", help="letterbox only, no random augmentation")
    d.add_argument("--max-boxes", type=positive_int, default=100, help="boxes an image used for the ignore mask")


MODEL_HELP = (f"architecture: {', '.join(MODEL_KINDS)}, or a Darknet .cfg with [yolo] sections (its heads rebuilt "
              "for --classes; [yolo] keys the loss does not implement are refused) (default: tiny for 6 anchors, "
              "else yolov3)")
ANCHORS_HELP = ("anchors file (default: the bundled yolo_anchors.txt, tiny_yolo_anchors.txt for tiny; the cfg's own "
                "for yolov4, yolov4-tiny and a .cfg); the count must fit the model's heads")
BOX_GRAD_HELP = "box gradient of heads with Darknet's loss (yolov4 cfgs): Darknet's own or autodiff's"
WEIGHTS_HELP = ("start from these weights: a convert.py -w weights file or a full model (.keras/.h5), layers whose "
                "shapes differ (e.g. the heads for another class count) skipped; or a Darknet .weights file, whole "
                "or a partial backbone (darknet53.conv.74, yolov4.conv.137, yolov4-tiny.conv.29), loaded into the "
                "model's first convolutions in cfg order")


def model_kind(text: str) -> str:
    """argparse ``type=`` of ``--model``: a built-in kind (:data:`MODEL_KINDS`) or an existing cfg file."""
    if text in MODEL_KINDS or (is_cfg_path(text) and os.path.isfile(text)):
        return text
    if is_cfg_path(text):
        raise argparse.ArgumentTypeError(f"cfg file not found: {text}")
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(MODEL_KINDS)} or a Darknet .cfg file, got {text!r}")


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    m.add_argument("--model", type=model_kind, default=None, metavar="KIND|CFG", help=MODEL_HELP)
    m.add_argument("--anchors", default=None, type=resolve_data_path, help=ANCHORS_HELP)
    m.add_argument("--weights", default=None, help=WEIGHTS_HELP)
    m.add_argument("--input-size", default="416", help="network input, a multiple of 32: N or HxW")


def _add_training_flags(p: argparse.ArgumentParser) -> None:
    t = p.add_argument_group("training")
    t.add_argument("--recipe", choices=tuple(RECIPES), default="default",
                   help="defaults of the flags below: 'default' (warm-up + cosine over both stages, batch and lr "
                        "from the data set size, EMA, --freeze-body 1) or 'keras-yolo3' (batch 32, Adam 1e-3 then "
                        "1e-4 at constant rates, ReduceLROnPlateau, EarlyStopping, --freeze-body 2, no EMA); "
                        "flags given explicitly win. See docs/training.md")
    t.add_argument("--epochs", type=non_negative_int, nargs="+", default=[50, 50], metavar="N",
                   help="epochs of stage 1 (frozen) and stage 2 (unfrozen); one value for both")
    t.add_argument("--batch-size", type=_or_auto(positive_int), nargs="+", default=None, metavar="N",
                   help="global batch size of stage 1 and stage 2, one value for both (default: auto, the largest "
                        "of 32, 16, 8 that gives >= 50 steps an epoch; keras-yolo3: 32)")
    t.add_argument("--lr", type=_or_auto(positive_float), nargs="+", default=None, metavar="LR",
                   help="Adam peak learning rate of stage 1 and stage 2 (default: auto, 1e-3 in both stages; "
                        "keras-yolo3: 1e-3 1e-4)")
    t.add_argument("--lr-schedule", choices=("cosine", "constant"), default=None,
                   help="cosine: warm-up then one cosine decay over both stages (default); constant: each "
                        "stage's rate with ReduceLROnPlateau in stage 2 (keras-yolo3)")
    t.add_argument("--warmup-epochs", type=non_negative_float, default=None,
                   help="linear warm-up at the start of each stage, in epochs (>= 20 steps; default 2; cosine only)")
    t.add_argument("--final-lr-fraction", type=number_type(float, 0, 1, low_open=True), default=0.01,
                   help="the cosine schedule's last learning rate as a fraction of the peak")
    t.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="validate, checkpoint and save an exponential moving average of the weights "
                        "(default: on; keras-yolo3: off)")
    t.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="mixed_bfloat16 / mixed_float16 compute in 16 bits (variables, heads and loss in float32; "
                        "the saved model is float32); see docs/benchmarks.md for when it is faster")
    t.add_argument("--freeze-body", type=int, choices=(0, 1, 2), default=None,
                   help="stage 1 freezes: 0 nothing, 1 the body (Darknet-53, CSPDarknet53 ...: docs/training.md; "
                        "default), 2 all but the output convolutions (keras-yolo3)")
    t.add_argument("--box-loss", choices=("mse", "ciou"), default="mse", help="box loss (mse = keras-yolo3's)")
    t.add_argument("--box-grad", choices=BOX_GRADS, default="darknet", help=BOX_GRAD_HELP)
    t.add_argument("--label-smoothing", type=number_type(float, 0, 1, high_open=True), default=0.0,
                   help="class label smoothing eps")
    t.add_argument("--ignore-thresh", type=fraction, default=None, help="override the heads' ignore_thresh (0.5)")
    t.add_argument("--steps-per-epoch", type=positive_int, default=None, help="default: training images // batch size")
    t.add_argument("--reduce-lr-patience", type=positive_int, default=3,
                   help="stage 2 ReduceLROnPlateau patience (constant schedule only)")
    t.add_argument("--early-stopping-patience", type=non_negative_int, default=None,
                   help="stage 2 EarlyStopping patience, 0: off (default: 10 with the constant schedule, off with "
                        "cosine, whose best epochs are its last)")
    t.add_argument("--map-every", type=non_negative_int, default=5, help="validation mAP@0.5 every N epochs (0: never)")
    t.add_argument("--precise-bn", type=non_negative_int, default=10,
                   help="before each validation, recompute BatchNorm statistics of the trainable BN layers "
                        "over N letterboxed training batches (0: off; single-replica runs only)")
    t.add_argument("--seed", type=non_negative_int, default=10101, help="seed of the split, shuffling and augmentation")
    t.add_argument("--log-dir", default=os.path.join("logs", "000"), help="checkpoints, logs and the final model")
    t.add_argument("--resume", action="store_true",
                   help="continue from <log-dir>/checkpoints/last.* (epoch and optimizer state); same flags")
    t.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None, help="Keras fit verbosity")


def _add_distribution_flags(p: argparse.ArgumentParser) -> None:
    s = p.add_argument_group("distribution")
    s.add_argument("--gpu_num", "--gpu-num", dest="gpu_num", type=positive_int, default=1,
                   help="GPUs for MirroredStrategy (batch sizes are global)")
    s.add_argument("--strategy", choices=("auto", "default", "mirrored", "multiworker"), default="auto",
                   help="auto: multiworker when TF_CONFIG lists several workers, mirrored when --gpu_num > 1")
    s.add_argument("--cpu-devices", type=non_negative_int, default=0,
                   help="split the CPU into N logical devices first (to try --gpu_num N without GPUs)")


KERAS_YOLO3_WEIGHTS = os.path.join("model_data", "yolo_weights.h5")  # what keras-yolo3's convert.py -w wrote

# The flags each recipe sets when they are not given (see docs/training.md for the reasoning).
RECIPES = {
    "default": {"batch_size": [None], "lr": [None], "lr_schedule": "cosine", "warmup_epochs": 2.0, "ema": True,
                "freeze_body": 1},
    "keras-yolo3": {"batch_size": [32], "lr": [1e-3, 1e-4], "lr_schedule": "constant", "warmup_epochs": 0.0,
                    "ema": False, "freeze_body": 2},
}


def _or_auto(convert):
    """An argparse ``type=``: ``auto`` -> None (chosen later), anything else through ``convert``."""
    def parse(text: str):
        return None if text == "auto" else convert(text)

    parse.__name__ = convert.__name__
    return parse


def apply_recipe(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the flags left unset (None) with the values of ``args.recipe``."""
    for key, value in RECIPES[args.recipe].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of train.py.

    Args:
        prog: program name in usage and error lines (default: from ``sys.argv[0]``).
    """
    p = argparse.ArgumentParser(
        prog=prog, formatter_class=HelpFormatter,
        description="Train a YOLO detector (YOLOv3, YOLOv4, their tiny variants or a Darknet cfg) on an annotation "
                    "file (one image a line: path x1,y1,x2,y2,class ...).")
    _add_data_flags(p)
    _add_model_flags(p)
    _add_training_flags(p)
    _add_distribution_flags(p)
    return p


def _pair(values, name: str, cast) -> tuple:
    if len(values) == 1:
        return (cast(values[0]), cast(values[0]))
    if len(values) == 2:
        return (cast(values[0]), cast(values[1]))
    raise UsageError(f"--{name} takes one or two values")


#: kinds whose default anchors are a bundled anchors file (keras-yolo3's); the others use their cfg's own
_KIND_ANCHOR_FILES = {"yolov3": "yolo_anchors.txt", "yolov3-spp": "yolo_anchors.txt", "tiny": "tiny_yolo_anchors.txt"}


def read_model_files(classes_path: str, anchors_path: str | None, model: str | None, *,
                     count_message: str) -> tuple[list[str], np.ndarray, str]:
    """The class names, the anchors (pixels) and the model kind of the flags.

    Args:
        classes_path: the classes file.
        anchors_path: the anchors file; None: the bundled anchors of ``model`` (yolov3, yolov3-spp, tiny),
            or its cfg's own (yolov4, yolov4-tiny, a cfg path).
        model: the model kind or a cfg path; None: ``tiny`` for 6 anchors, else ``yolov3``.
        count_message: the error when the anchor count does not fit the kind, formatted with
            ``model``, ``need``, ``path`` and ``count``.

    Raises:
        UsageError: an unreadable classes or anchors file, or an anchor count that does not fit the model.
        DarknetError: a cfg path that does not parse, or whose ``[yolo]`` keys cannot be trained (``path:line``).
    """
    if model is not None and is_cfg_path(model):
        check_training_keys(parse_cfg(model))
    try:
        classes = read_class_names(classes_path)
        if anchors_path is None and model is not None and model not in _KIND_ANCHOR_FILES:
            anchors_path, anchors = f"{model}'s cfg", default_anchors(model)
        else:
            anchors_path = anchors_path or resource_path(_KIND_ANCHOR_FILES.get(model or "", "yolo_anchors.txt"))
            anchors = read_anchors(anchors_path)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    kind = model or ("tiny" if len(anchors) == 6 else "yolov3")
    need = len(default_anchors(kind))
    if len(anchors) != need:
        raise UsageError(count_message.format(model=kind, need=need, path=anchors_path, count=len(anchors)))
    return classes, np.asarray(anchors, np.float32), kind


def _config(args: argparse.Namespace) -> TrainConfig:
    """The training configuration of the parsed flags; :class:`UsageError` for a bad value."""
    apply_recipe(args)
    if args.weights is None and os.path.isfile(KERAS_YOLO3_WEIGHTS) and not args.resume:
        args.weights = KERAS_YOLO3_WEIGHTS  # keras-yolo3's train.py loaded it without a flag
        print(f"--weights: using {KERAS_YOLO3_WEIGHTS} (keras-yolo3's default; pass --weights to choose)")
    input_size = parse_size(args.input_size, "--input-size")
    epochs = _pair(args.epochs, "epochs", int)
    batch = _pair(args.batch_size, "batch-size", lambda v: v)
    lr = _pair(args.lr, "lr", lambda v: v)
    if not 0.0 <= args.val_split < 1.0:
        raise UsageError("--val-split must be in [0, 1)")
    if not 0.0 <= args.mosaic <= 1.0:
        raise UsageError("--mosaic must be in [0, 1]")
    check_files([(args.annotation, "--annotation"), (args.val_annotation, "--val-annotation"),
                 (args.classes, "--classes"), (args.anchors, "--anchors"), (args.weights, "--weights")])
    check_output_dir(args.log_dir, "--log-dir")
    classes, anchors, kind = read_model_files(args.classes, args.anchors, args.model,
                                              count_message="--model {model} needs {need} anchors, {path} has {count}")
    return TrainConfig(
        data=DataConfig(annotation=args.annotation, classes=classes, val_annotation=args.val_annotation,
                        val_split=args.val_split, skip_missing=args.skip_missing, augment=not args.no_augment,
                        mosaic=args.mosaic, max_boxes=args.max_boxes),
        model=ModelConfig(anchors=anchors, kind=kind, weights=args.weights, input_size=input_size),
        stages=(StageConfig(epochs[0], batch[0], lr[0], freeze_body=args.freeze_body),
                StageConfig(epochs[1], batch[1], lr[1], freeze_body=0)),
        loss=LossConfig(box_loss=args.box_loss, label_smoothing=args.label_smoothing,
                        ignore_thresh=args.ignore_thresh, box_grad=args.box_grad),
        evaluation=EvalConfig(map_every=args.map_every, precise_bn=args.precise_bn,
                              reduce_lr_patience=args.reduce_lr_patience,
                              early_stopping_patience=args.early_stopping_patience),
        optim=OptimConfig(schedule=args.lr_schedule, warmup_epochs=args.warmup_epochs,
                          final_fraction=args.final_lr_fraction, ema=args.ema, precision=args.precision),
        runtime=RuntimeConfig(log_dir=args.log_dir, seed=args.seed, resume=args.resume, strategy=args.strategy,
                              gpu_num=args.gpu_num, steps_per_epoch=args.steps_per_epoch,
                              verbose="auto" if args.verbose is None else args.verbose))


def _train(args: argparse.Namespace, prog: str) -> int:
    config = _config(args)
    if args.cpu_devices > 1:
        split_cpu(args.cpu_devices)
    try:
        run_training(config)
    except FileNotFoundError as exc:
        return fail(prog, str(exc))
    except KeyboardInterrupt:
        print("\ninterrupted: continue with the same flags and --resume", file=sys.stderr)
        return 130
    return 0


def main(argv=None, prog: str | None = None) -> int:
    """Run train.py; returns the exit code (0, 2 for a user error, 130 when interrupted).

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
        prog: program name in messages (default: as started, see :func:`yolo3.cli.common.prog_name`).
    """
    prog = prog or prog_name("train.py", "yolo3.cli.train")
    return run_tool(argv, prog, build_parser, lambda args: _train(args, prog))


if __name__ == "__main__":
    sys.exit(main())
