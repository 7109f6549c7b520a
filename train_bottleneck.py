"""Bottleneck training (keras-yolo3's train_bottleneck.py): compute the frozen body's outputs once,
cache them on disk (sharded TFRecords, streamed), train the output convolutions on the cache, and
save a full model (``<log-dir>/trained_bottleneck.keras``) that yolo_video.py / eval.py load, or
that ``train.py --weights`` continues from.

    python train_bottleneck.py --annotation train.txt --classes model_data/voc_classes.txt \\
        --weights model_data/yolo.weights.h5 --log-dir logs/bottleneck
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ INFO/WARNING lines are noise here

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_DATA = os.path.join(HERE, "yolo3", "resources")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--annotation", default="train.txt", help="training annotation file")
    p.add_argument("--val-annotation", default=None, help="validation annotation file (else --val-split)")
    p.add_argument("--val-split", type=float, default=0.1, help="fraction of --annotation held out")
    p.add_argument("--classes", default=os.path.join(MODEL_DATA, "voc_classes.txt"), help="class names file")
    p.add_argument("--anchors", default=None, help="anchors file (default model_data/yolo_anchors.txt or tiny)")
    p.add_argument("--model", choices=("yolov3", "tiny", "yolov3-spp"), default=None,
                   help="architecture (default: tiny for 6 anchors, else yolov3)")
    p.add_argument("--weights", default=None, help="pretrained weights (convert.py -w file or full model)")
    p.add_argument("--input-size", default="416", help="network input, multiple of 32: N or HxW")
    p.add_argument("--epochs", type=int, default=30, help="epochs on the cached features")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--log-dir", default=os.path.join("logs", "bottleneck"), help="logs and the saved model")
    p.add_argument("--cache-dir", default=None, help="feature cache (default <log-dir>/bottleneck_cache)")
    p.add_argument("--reuse-cache", action="store_true", help="use an existing cache of the same input size")
    p.add_argument("--seed", type=int, default=10101)
    p.add_argument("--skip-missing", action="store_true", help="leave out missing/unreadable images (listed)")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None)
    return p


def fail(message: str) -> int:
    print(f"train_bottleneck.py: error: {message}", file=sys.stderr, flush=True)
    return 2


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    sys.path.insert(0, HERE)
    from train import _input_size

    try:
        input_size = _input_size(args.input_size)
    except ValueError as exc:
        return fail(str(exc))
    for path, flag in ((args.annotation, "--annotation"), (args.val_annotation, "--val-annotation"),
                       (args.classes, "--classes"), (args.anchors, "--anchors"), (args.weights, "--weights")):
        if path is not None and not os.path.isfile(path):
            return fail(f"{flag} file not found: {path}")
    if not 0.0 <= args.val_split < 1.0:
        return fail("--val-split must be in [0, 1)")

    import keras
    import numpy as np

    from yolo3.datasets.annotations import AnnotationError, read_anchors, read_class_names
    from yolo3.modeling.architectures import TINY_ANCHORS, YOLOV3_ANCHORS
    from yolo3.training.bottleneck import train_bottleneck
    from yolo3.datasets.cleaning import DataError
    from yolo3.modeling.factory import create_model
    from yolo3.modeling.saving import load_weights_into, save_model
    from yolo3.training.config import TrainConfig, TrainError
    from yolo3.training.run import _prepare_data

    try:
        classes = read_class_names(args.classes)
        anchors_path = args.anchors
        if anchors_path is None:
            candidate = os.path.join(MODEL_DATA, "tiny_yolo_anchors.txt" if args.model == "tiny" else "yolo_anchors.txt")
            anchors_path = candidate if os.path.isfile(candidate) else None
        anchors = read_anchors(anchors_path) if anchors_path else (
            TINY_ANCHORS if args.model == "tiny" else YOLOV3_ANCHORS).copy()
        model_kind = args.model or ("tiny" if len(anchors) == 6 else "yolov3")
        if len(anchors) != (6 if model_kind == "tiny" else 9):
            return fail(f"--model {model_kind} needs {6 if model_kind == 'tiny' else 9} anchors, got {len(anchors)}")
        os.makedirs(args.log_dir, exist_ok=True)
        cfg = TrainConfig(annotation=args.annotation, classes=classes, anchors=np.asarray(anchors, np.float32),
                          model=model_kind, val_annotation=args.val_annotation, val_split=args.val_split,
                          input_size=input_size, log_dir=args.log_dir, seed=args.seed, skip_missing=args.skip_missing)
        train_clean, n_train, val_clean, n_val = _prepare_data(cfg, os.path.join(args.log_dir, "data"))
        model = create_model(model_kind, len(classes), anchors, size=max(input_size))
        if args.weights:
            loaded, skipped = load_weights_into(model, args.weights)
            print(f"loaded weights of {len(loaded)} layers from {args.weights}")
            if skipped:
                print(f"skipped {len(skipped)} layers (shape differs or absent): {', '.join(skipped)}")
        else:
            print("no --weights: the cached body is untrained (bottleneck training is meant for pretrained bodies)")
        t0 = time.time()
        result = train_bottleneck(
            model, train_clean, val_clean if n_val else None, input_size,
            args.cache_dir or os.path.join(args.log_dir, "bottleneck_cache"), epochs=args.epochs,
            batch_size=args.batch_size, lr=args.lr, seed=args.seed, reuse_cache=args.reuse_cache,
            verbose="auto" if args.verbose is None else args.verbose,
            callbacks=[keras.callbacks.CSVLogger(os.path.join(args.log_dir, "bottleneck.csv")),
                       keras.callbacks.TerminateOnNaN()])
        out = os.path.join(args.log_dir, "trained_bottleneck.keras")
        save_model(model, out)
    except (AnnotationError, DataError, TrainError, FileNotFoundError) as exc:
        return fail(str(exc))
    except ValueError as exc:
        if type(exc).__module__.startswith("yolo3"):
            return fail(str(exc))
        raise
    print(f"trained the output layers on {result['train_meta']['images']} cached images in {time.time() - t0:.0f} s; "
          f"saved {out}\ncontinue with: python train.py --weights {out} --freeze-body 1 ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
