"""``yolo3-shapes`` / ``python -m yolo3.cli.shapes OUT``: write the synthetic shapes detection data set
(:mod:`yolo3.datasets.shapes`: images, annotation txt, class names, VOC XML).

    python -m yolo3.cli.shapes data/shapes --num 500 --val-fraction 0.2
"""
from __future__ import annotations

import argparse
import sys

from ..datasets.shapes import SHAPE_CLASSES, generate_shapes_dataset
from .common import UsageError, non_negative_int, number_type, positive_int, prog_name, run_tool

SCRIPT, MODULE = "yolo3-shapes", "yolo3.cli.shapes"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of the shapes data set generator.

    Args:
        prog: program name shown in usage and messages (default: as the tool was started).
    """
    parser = argparse.ArgumentParser(
        prog=prog or prog_name(SCRIPT, MODULE),
        description="Write a synthetic shapes detection data set (images, annotation txt, class names, VOC XML).")
    parser.add_argument("out", help="output folder (created)")
    parser.add_argument("--num", type=positive_int, default=100, help="number of images (default 100)")
    parser.add_argument("--size", type=number_type(int, 32), default=416,
                        help="longer image side in pixels (default 416)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="random seed (default 0); same seed, same files")
    parser.add_argument("--classes", default="circle,square,triangle",
                        help=f"comma-separated shape classes from: {','.join(SHAPE_CLASSES)} "
                             "(default circle,square,triangle)")
    parser.add_argument("--min-objects", type=non_negative_int, default=1, help="fewest objects an image (default 1)")
    parser.add_argument("--max-objects", type=positive_int, default=6, help="most objects an image (default 6)")
    parser.add_argument("--radius", type=number_type(float, 0, 0.5, low_open=True), nargs=2,
                        default=(0.02, 0.22), metavar=("MIN", "MAX"),
                        help="object radius range as fractions of --size (log-uniform; default 0.02 0.22)")
    parser.add_argument("--val-fraction", type=number_type(float, 0, 1, high_open=True), default=0.0,
                        help="also write train.txt/val.txt with this fraction of the images held out (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _run(args: argparse.Namespace) -> int:
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    if args.min_objects < 0 or args.max_objects < max(args.min_objects, 1):
        raise UsageError("need 0 <= --min-objects <= --max-objects and --max-objects >= 1")
    try:
        paths = generate_shapes_dataset(args.out, args.num, args.size, args.seed, classes,
                                        args.min_objects, args.max_objects, args.val_fraction,
                                        progress=not args.quiet, radius=tuple(args.radius))
    except (ValueError, OSError) as e:
        raise UsageError(str(e)) from None
    print(f"wrote {args.num} images to {paths['images']}; annotations {paths['annotation']}; "
          f"classes {paths['classes']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Generate the data set; 0 on success, 2 with ``prog: error: message`` on a user error.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).
    """
    return run_tool(argv, prog_name(SCRIPT, MODULE), build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
