"""Bottleneck training (keras-yolo3's train_bottleneck.py): compute the frozen body's outputs once,
cache them on disk (sharded TFRecords, streamed), train the output convolutions on the cache, and
save a full model (``<log-dir>/trained_bottleneck.keras``) that yolo_video.py / eval.py load, or
that ``train.py --weights`` continues from.

    python train_bottleneck.py --annotation train.txt --classes voc_classes.txt \\
        --weights model_data/yolo.weights.h5 --log-dir logs/bottleneck
"""
from __future__ import annotations

import argparse
import os
import sys

from ..core.files import check_output_dir
from ..resources import resolve_data_path, resource_path
from ..training.bottleneck import run_bottleneck_training
from ..training.config import (
    PRECISIONS,
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    RuntimeConfig,
    StageConfig,
    TrainConfig,
)
from .common import (
    HelpFormatter,
    UsageError,
    check_files,
    fail,
    non_negative_int,
    number_type,
    parse_size,
    positive_float,
    positive_int,
    prog_name,
    run_tool,
)
from .train import ANCHORS_HELP, BOX_GRAD_HELP, BOX_GRADS, MODEL_HELP, WEIGHTS_HELP, model_kind, read_model_files

__all__ = ["build_parser", "main"]


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of train_bottleneck.py.

    Args:
        prog: program name in usage and error lines (default: from ``sys.argv[0]``).
    """
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    p.add_argument("--annotation", default="train.txt", help="training annotation file")
    p.add_argument("--val-annotation", default=None, help="validation annotation file (else --val-split)")
    p.add_argument("--val-split", type=number_type(float, 0, 1, high_open=True), default=0.1,
                   help="fraction of --annotation held out")
    p.add_argument("--classes", default=resource_path("voc_classes.txt"), type=resolve_data_path,
                   help="class names file")
    p.add_argument("--anchors", default=None, type=resolve_data_path, help=ANCHORS_HELP)
    p.add_argument("--model", type=model_kind, default=None, metavar="KIND|CFG", help=MODEL_HELP)
    p.add_argument("--weights", default=None, help="pretrained weights; " + WEIGHTS_HELP.split(": ", 1)[1])
    p.add_argument("--input-size", default="416", help="network input, multiple of 32: N or HxW")
    p.add_argument("--epochs", type=positive_int, default=30, help="epochs on the cached features")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="mixed_bfloat16 / mixed_float16: compute in 16 bits (heads and loss in float32, the saved "
                        "model float32)")
    p.add_argument("--box-grad", choices=BOX_GRADS, default="darknet", help=BOX_GRAD_HELP)
    p.add_argument("--log-dir", default=os.path.join("logs", "bottleneck"), help="logs and the saved model")
    p.add_argument("--cache-dir", default=None, help="feature cache (default <log-dir>/bottleneck_cache)")
    p.add_argument("--reuse-cache", action="store_true", help="use an existing cache of the same input size")
    p.add_argument("--seed", type=non_negative_int, default=10101)
    p.add_argument("--skip-missing", action="store_true", help="leave out missing/unreadable images (listed)")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None)
    return p


def _config(args: argparse.Namespace) -> TrainConfig:
    """The configuration of the parsed flags (stage 1 only); :class:`UsageError` for a bad value."""
    input_size = parse_size(args.input_size, "--input-size")
    check_files([(args.annotation, "--annotation"), (args.val_annotation, "--val-annotation"),
                 (args.classes, "--classes"), (args.anchors, "--anchors"), (args.weights, "--weights")])
    check_output_dir(args.log_dir, "--log-dir")
    if args.cache_dir:
        check_output_dir(args.cache_dir, "--cache-dir")
    if not 0.0 <= args.val_split < 1.0:
        raise UsageError("--val-split must be in [0, 1)")
    classes, anchors, kind = read_model_files(args.classes, args.anchors, args.model,
                                              count_message="--model {model} needs {need} anchors, got {count}")
    return TrainConfig(
        data=DataConfig(annotation=args.annotation, classes=classes, val_annotation=args.val_annotation,
                        val_split=args.val_split, skip_missing=args.skip_missing),
        model=ModelConfig(anchors=anchors, kind=kind, weights=args.weights, input_size=input_size),
        stages=(StageConfig(args.epochs, args.batch_size, args.lr, freeze_body=2), StageConfig(0)),
        optim=OptimConfig(precision=args.precision), loss=LossConfig(box_grad=args.box_grad),
        runtime=RuntimeConfig(log_dir=args.log_dir, seed=args.seed, final_name="trained_bottleneck.keras",
                              verbose="auto" if args.verbose is None else args.verbose))


def _train(args: argparse.Namespace, prog: str) -> int:
    config = _config(args)
    try:
        result = run_bottleneck_training(config, cache_dir=args.cache_dir, reuse_cache=args.reuse_cache)
    except FileNotFoundError as exc:
        return fail(prog, str(exc))
    out = result["final_model"]
    print(f"trained the output layers on {result['train_meta']['images']} cached images in {result['seconds']:.0f} s; "
          f"saved {out}\ncontinue with: python train.py --weights {out} --freeze-body 1 ...")
    return 0


def main(argv=None, prog: str | None = None) -> int:
    """Run train_bottleneck.py; returns the exit code (0, or 2 for a user error).

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
        prog: program name in messages (default: as started, see :func:`yolo3.cli.common.prog_name`).
    """
    prog = prog or prog_name("train_bottleneck.py", "yolo3.cli.train_bottleneck")
    return run_tool(argv, prog, build_parser, lambda args: _train(args, prog))


if __name__ == "__main__":
    sys.exit(main())
