"""Train YOLOv3 / YOLOv3-tiny on your own annotation file (keras-yolo3's train.py, with flags).

Stage 1 trains with the body frozen (--freeze-body), stage 2 unfreezes everything with a fresh
optimizer. The final inference model (``<log-dir>/trained_final.keras``) loads in yolo_video.py
and eval.py as it is. See docs/training.md.

    python train.py --annotation train.txt --classes model_data/voc_classes.txt \\
        --weights model_data/yolo.weights.h5 --log-dir logs/000
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ INFO/WARNING lines are noise here

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_DATA = os.path.join(HERE, "yolo3", "resources")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Train YOLOv3 on an annotation file (one image a line: path x1,y1,x2,y2,class ...).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = p.add_argument_group("data")
    d.add_argument("--annotation", default="train.txt", help="training annotation file")
    d.add_argument("--val-annotation", default=None, help="validation annotation file (else --val-split)")
    d.add_argument("--val-split", type=float, default=0.1, help="fraction of --annotation held out for validation")
    d.add_argument("--classes", default=os.path.join(MODEL_DATA, "voc_classes.txt"), help="class names, one a line")
    d.add_argument("--skip-missing", action="store_true",
                   help="train without images that are missing or unreadable (listed) instead of stopping")
    d.add_argument("--mosaic", type=float, nargs="?", const=0.5, default=0.0,
                   help="probability of a 4-image mosaic per sample (--mosaic alone: 0.5)")
    d.add_argument("--no-augment", action="store_true", help="letterbox only, no random augmentation")
    d.add_argument("--max-boxes", type=int, default=100, help="boxes an image used for the ignore mask")
    m = p.add_argument_group("model")
    m.add_argument("--model", choices=("yolov3", "tiny", "yolov3-spp"), default=None,
                   help="architecture (default: tiny for 6 anchors, else yolov3)")
    m.add_argument("--anchors", default=None,
                   help="anchors file (default model_data/yolo_anchors.txt, tiny_yolo_anchors.txt for tiny)")
    m.add_argument("--weights", default=None,
                   help="start from these weights: a convert.py -w weights file or a full model (.keras/.h5); "
                        "layers whose shapes differ (e.g. the heads for another class count) are skipped")
    m.add_argument("--input-size", default="416", help="network input, a multiple of 32: N or HxW")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, nargs="+", default=[50, 50], metavar="N",
                   help="epochs of stage 1 (frozen) and stage 2 (unfrozen); one value for both")
    t.add_argument("--batch-size", type=int, nargs="+", default=[32, 32], metavar="N",
                   help="global batch size of stage 1 and stage 2; one value for both")
    t.add_argument("--lr", type=float, nargs="+", default=[1e-3, 1e-4], metavar="LR",
                   help="Adam learning rate of stage 1 and stage 2")
    t.add_argument("--freeze-body", type=int, choices=(0, 1, 2), default=2,
                   help="stage 1 freezes: 0 nothing, 1 the Darknet body, 2 all but the output convolutions")
    t.add_argument("--box-loss", choices=("mse", "ciou"), default="mse", help="box loss (mse = keras-yolo3's)")
    t.add_argument("--label-smoothing", type=float, default=0.0, help="class label smoothing eps")
    t.add_argument("--ignore-thresh", type=float, default=None, help="override the heads' ignore_thresh (0.5)")
    t.add_argument("--steps-per-epoch", type=int, default=None, help="default: training images // batch size")
    t.add_argument("--reduce-lr-patience", type=int, default=3, help="stage 2 ReduceLROnPlateau patience")
    t.add_argument("--early-stopping-patience", type=int, default=10, help="stage 2 EarlyStopping patience")
    t.add_argument("--map-every", type=int, default=5, help="validation mAP@0.5 every N epochs (0: never)")
    t.add_argument("--precise-bn", type=int, default=10,
                   help="before each validation, recompute BatchNorm statistics of the trainable BN layers "
                        "over N letterboxed training batches (0: off; single-replica runs only)")
    t.add_argument("--seed", type=int, default=10101, help="seed of the split, shuffling and augmentation")
    t.add_argument("--log-dir", default=os.path.join("logs", "000"), help="checkpoints, logs and the final model")
    t.add_argument("--resume", action="store_true",
                   help="continue from <log-dir>/checkpoints/last.* (epoch and optimizer state); same flags")
    t.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None, help="Keras fit verbosity")
    s = p.add_argument_group("distribution")
    s.add_argument("--gpu_num", "--gpu-num", dest="gpu_num", type=int, default=1,
                   help="GPUs for MirroredStrategy (batch sizes are global)")
    s.add_argument("--strategy", choices=("auto", "default", "mirrored", "multiworker"), default="auto",
                   help="auto: multiworker when TF_CONFIG lists several workers, mirrored when --gpu_num > 1")
    s.add_argument("--cpu-devices", type=int, default=0,
                   help="split the CPU into N logical devices first (to try --gpu_num N without GPUs)")
    return p


def _pair(values, name: str, cast):
    if len(values) == 1:
        return (cast(values[0]), cast(values[0]))
    if len(values) == 2:
        return (cast(values[0]), cast(values[1]))
    raise ValueError(f"--{name} takes one or two values")


def _input_size(text: str) -> tuple[int, int]:
    parts = text.lower().replace(",", "x").split("x")
    try:
        hw = tuple(int(v) for v in parts)
    except ValueError:
        raise ValueError(f"--input-size must be N or HxW, got {text!r}") from None
    if len(hw) == 1:
        hw = (hw[0], hw[0])
    if len(hw) != 2 or min(hw) <= 0 or hw[0] % 32 or hw[1] % 32:
        raise ValueError(f"--input-size must be a positive multiple of 32, got {text}")
    return hw  # type: ignore[return-value]


def fail(message: str) -> int:
    print(f"train.py: error: {message}", file=sys.stderr, flush=True)
    return 2


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        input_size = _input_size(args.input_size)
        epochs = _pair(args.epochs, "epochs", int)
        batch = _pair(args.batch_size, "batch-size", int)
        lr = _pair(args.lr, "lr", float)
    except ValueError as exc:
        return fail(str(exc))
    if not 0.0 <= args.val_split < 1.0:
        return fail("--val-split must be in [0, 1)")
    if not 0.0 <= args.mosaic <= 1.0:
        return fail("--mosaic must be in [0, 1]")
    for path, flag in ((args.annotation, "--annotation"), (args.val_annotation, "--val-annotation"),
                       (args.classes, "--classes"), (args.anchors, "--anchors"), (args.weights, "--weights")):
        if path is not None and not os.path.isfile(path):
            return fail(f"{flag} file not found: {path}")

    if args.cpu_devices > 1:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.cpu_devices)

    import numpy as np

    from yolo3.datasets.annotations import AnnotationError, read_anchors, read_class_names
    from yolo3.modeling.architectures import TINY_ANCHORS, YOLOV3_ANCHORS
    from yolo3.datasets.cleaning import DataError
    from yolo3.training.distribute import StrategyError
    from yolo3.training.config import TrainConfig, TrainError
    from yolo3.training.run import run_training

    try:
        classes = read_class_names(args.classes)
        anchors_path = args.anchors
        if anchors_path is None:
            name = "tiny_yolo_anchors.txt" if args.model == "tiny" else "yolo_anchors.txt"
            candidate = os.path.join(MODEL_DATA, name)
            anchors_path = candidate if os.path.isfile(candidate) else None
        if anchors_path is not None:
            anchors = read_anchors(anchors_path)
        else:
            anchors = (TINY_ANCHORS if args.model == "tiny" else YOLOV3_ANCHORS).copy()
    except (ValueError, FileNotFoundError) as exc:
        return fail(str(exc))
    model = args.model or ("tiny" if len(anchors) == 6 else "yolov3")
    need = 6 if model == "tiny" else 9
    if len(anchors) != need:
        return fail(f"--model {model} needs {need} anchors, {anchors_path} has {len(anchors)}")

    cfg = TrainConfig(
        annotation=args.annotation, classes=classes, anchors=np.asarray(anchors, np.float32), model=model,
        val_annotation=args.val_annotation, val_split=args.val_split, weights=args.weights,
        input_size=input_size, batch_size=batch, epochs=epochs, lr=lr, freeze_body=args.freeze_body,
        log_dir=args.log_dir, seed=args.seed, resume=args.resume, mosaic=args.mosaic,
        augment=not args.no_augment, box_loss=args.box_loss, label_smoothing=args.label_smoothing,
        ignore_thresh=args.ignore_thresh, map_every=args.map_every, precise_bn=args.precise_bn,
        reduce_lr_patience=args.reduce_lr_patience, early_stopping_patience=args.early_stopping_patience,
        max_boxes=args.max_boxes, steps_per_epoch=args.steps_per_epoch, strategy=args.strategy,
        gpu_num=args.gpu_num, skip_missing=args.skip_missing,
        verbose="auto" if args.verbose is None else args.verbose)
    try:
        run_training(cfg)
    except (AnnotationError, DataError, TrainError, StrategyError, FileNotFoundError) as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        print("\ninterrupted: continue with the same flags and --resume", file=sys.stderr)
        return 130
    except ValueError as exc:
        # cfg/weights mismatches from yolo3.modeling.factory / yolo3.modeling.cfg are ValueErrors with one-line messages
        if type(exc).__module__.startswith("yolo3"):
            return fail(str(exc))
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
