"""``kmeans.py`` / ``yolo3-kmeans`` / ``python -m yolo3.cli.kmeans``: anchor boxes for a data set by
k-means with distance 1 - IoU (:mod:`yolo3.datasets.anchors`).

Without --input-size the anchors are in original-image pixels (as the original keras-yolo3
computed them); with it, each box is scaled the way letterboxing scales its image to the network
input, which is the unit model_data anchor files use.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from ..datasets.anchors import collect_box_sizes, kmeans_anchors, plot_anchors
from ..datasets.annotations import write_anchors
from .common import (
    HelpFormatter,
    UsageError,
    check_output_file,
    first_names,
    non_negative_int,
    positive_int,
    prog_name,
    run_tool,
    size_type,
)

SCRIPT, MODULE = "kmeans.py", "yolo3.cli.kmeans"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of the anchor k-means tool (keras-yolo3's kmeans.py flags included).

    Args:
        prog: program name shown in usage and messages (default: as the tool was started).
    """
    p = argparse.ArgumentParser(
        prog=prog or prog_name(SCRIPT, MODULE),
        description="Compute YOLO anchors from an annotation file with k-means (distance 1 - IoU).",
        formatter_class=HelpFormatter)
    p.add_argument("--annot_file", "--annotation", "--annotation_path", "-a", dest="annot_file", default="train.txt",
                   help="annotation file: 'path x1,y1,x2,y2,class ...' per line")
    p.add_argument("--out_file", "--out", "--output", "-o", dest="out_file", default="custom_anchors.txt",
                   help="anchors file to write ('w,h,  w,h, ...', sorted by area)")
    p.add_argument("--num_clusters", "--clusters", "-k", dest="num_clusters", type=positive_int, default=9,
                   help="number of anchors (9 for YOLOv3, 6 for tiny)")
    p.add_argument("--input-size", "--input_size", dest="input_size", default=None, metavar="N|HxW",
                   type=size_type("--input-size", multiple=1),
                   help="network input size, height x width as everywhere in yolo3: scale boxes as letterboxing "
                        "does (reads image sizes from the image headers); default: original-image pixels")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (same seed, same anchors)")
    p.add_argument("--restarts", type=positive_int, default=5, help="k-means++ restarts; the best average IoU wins")
    p.add_argument("--max-iter", "--max_iter", dest="max_iter", type=positive_int, default=100,
                   help="Lloyd iterations per restart at most")
    p.add_argument("--sample", type=non_negative_int, default=200_000,
                   help="restarts run on a random sample of this many boxes, the winner is refined on all "
                        "boxes (0: use all boxes in every restart)")
    p.add_argument("--root", default=None,
                   help="folder relative image paths are resolved against (default: the annotation file's "
                        "folder, else the working directory)")
    p.add_argument("--plot", metavar="FILE", default=None, help="write box sizes and anchors as a picture (PNG)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return p


def _collect(args: argparse.Namespace, net_wh: tuple[int, int] | None):
    """The annotation file's box sizes; :class:`UsageError` when there is nothing to cluster."""
    try:
        boxes = collect_box_sizes(args.annot_file, net_wh, root=args.root, progress=args.progress)
    except (FileNotFoundError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {args.annot_file}: {e}") from None
    if boxes.missing_images:
        raise UsageError(f"{len(boxes.missing_images)} image(s) missing or unreadable (--input-size needs their "
                         f"sizes): {first_names(boxes.missing_images)}")
    if boxes.zero_size:
        print(f"left out {boxes.zero_size} zero-width or zero-height box(es): their IoU is undefined")
    if len(boxes.sizes) == 0:
        raise UsageError(f"no boxes with a non-zero size in {args.annot_file} ({boxes.images} image line(s))")
    return boxes


def _report(args, boxes, result, net_wh, elapsed: float) -> None:
    units = f"network pixels ({net_wh[0]}x{net_wh[1]} letterboxed)" if net_wh else "original-image pixels"
    print(f"{len(boxes.sizes)} boxes from {boxes.images} images, {args.num_clusters} clusters, "
          f"{args.restarts} restarts, {elapsed:.1f} s")
    print(f"anchors (w,h in {units}, sorted by area):")
    counts = np.bincount(result.assignments, minlength=len(result.anchors))
    for (w, h), n in zip(result.anchors, counts):
        print(f"  {w:8.2f} x {h:8.2f}   {n} boxes")
    print(f"restart average IoUs: {', '.join(f'{v:.4f}' for v in result.restart_ious)}")
    print(f"Average IoU: {result.avg_iou:.4f}")
    print(f"wrote {args.out_file}")


def _run(args: argparse.Namespace) -> int:
    check_output_file(args.out_file, "--out_file", [args.annot_file], create_folder=True)
    if args.plot:
        check_output_file(args.plot, "--plot", [args.annot_file, args.out_file], create_folder=True)
    net_wh = None if args.input_size is None else (args.input_size[1], args.input_size[0])  # (w, h)
    boxes = _collect(args, net_wh)
    start = time.perf_counter()
    result = kmeans_anchors(boxes.sizes, args.num_clusters, restarts=args.restarts, max_iter=args.max_iter,
                            seed=args.seed, sample=args.sample or None, progress=args.progress)
    elapsed = time.perf_counter() - start
    try:
        os.makedirs(os.path.dirname(os.path.abspath(args.out_file)), exist_ok=True)
        write_anchors(args.out_file, result.anchors)
    except OSError as e:
        raise UsageError(f"cannot write {args.out_file}: {e}") from None
    _report(args, boxes, result, net_wh, elapsed)
    if args.plot:
        try:
            plot_anchors(args.plot, boxes.sizes, result,
                         units="network pixels" if net_wh else "image pixels", seed=args.seed)
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot write plot {args.plot}: {e}") from None
        print(f"wrote {args.plot}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the anchor k-means tool; 0 on success, 2 with ``prog: error: message`` on a user error.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).
    """
    return run_tool(argv, prog_name(SCRIPT, MODULE), build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
