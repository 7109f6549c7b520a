"""Anchor boxes for a dataset by k-means with distance 1 - IoU.

    python kmeans.py --annot_file train.txt --out_file model_data/custom_anchors.txt --num_clusters 9 \
        --input-size 416 --plot anchors.png

Without --input-size the anchors are in original-image pixels (as the original keras-yolo3
computed them); with it, each box is scaled the way letterboxing scales its image to the network
input, which is the unit model_data anchor files use.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # importing yolo3 imports Keras; keep stderr clean


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the uninformative None / True / False of optional values and switches."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def parse_size(text: str) -> tuple[int, int]:
    """'416' -> (416, 416); '608x416' or '608,416' -> (width, height)."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or WxH, got {text!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected N or WxH with positive sizes, got {text!r}")
    return values[0], values[1]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Compute YOLO anchors from an annotation file with k-means (distance 1 - IoU).",
        formatter_class=_HelpFormatter)
    p.add_argument("--annot_file", "--annotation", "--annotation_path", "-a", dest="annot_file", default="train.txt",
                   help="annotation file: 'path x1,y1,x2,y2,class ...' per line")
    p.add_argument("--out_file", "--out", "--output", "-o", dest="out_file", default="custom_anchors.txt",
                   help="anchors file to write ('w,h,  w,h, ...', sorted by area)")
    p.add_argument("--num_clusters", "--clusters", "-k", dest="num_clusters", type=int, default=9,
                   help="number of anchors (9 for YOLOv3, 6 for tiny)")
    p.add_argument("--input-size", "--input_size", dest="input_size", type=parse_size, default=None,
                   metavar="N|WxH",
                   help="network input size: scale boxes as letterboxing does (reads image sizes from the "
                        "image headers); default: original-image pixels")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same anchors)")
    p.add_argument("--restarts", type=int, default=5, help="k-means++ restarts; the best average IoU wins")
    p.add_argument("--max-iter", "--max_iter", dest="max_iter", type=int, default=100,
                   help="Lloyd iterations per restart at most")
    p.add_argument("--sample", type=int, default=200_000,
                   help="restarts run on a random sample of this many boxes, the winner is refined on all "
                        "boxes (0: use all boxes in every restart)")
    p.add_argument("--root", default=None,
                   help="folder relative image paths are resolved against (default: the annotation file's "
                        "folder, else the working directory)")
    p.add_argument("--plot", metavar="FILE", default=None, help="write box sizes and anchors as a picture (PNG)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    import numpy as np

    from yolo3.datasets.anchors import AnchorError, collect_box_sizes, kmeans_anchors, plot_anchors
    from yolo3.datasets.annotations import AnnotationError, write_anchors

    def fail(msg: str) -> int:
        print(f"kmeans.py: error: {msg}", file=sys.stderr)
        return 2

    if args.num_clusters < 1:
        return fail(f"--num_clusters must be >= 1, got {args.num_clusters}")
    if args.restarts < 1:
        return fail(f"--restarts must be >= 1, got {args.restarts}")
    try:
        boxes = collect_box_sizes(args.annot_file, args.input_size, root=args.root, progress=args.progress)
    except AnnotationError as e:
        return fail(str(e))
    except (FileNotFoundError, UnicodeDecodeError) as e:
        return fail(f"cannot read {args.annot_file}: {e}")
    if boxes.missing_images:
        names = ", ".join(boxes.missing_images[:5])
        more = f" and {len(boxes.missing_images) - 5} more" if len(boxes.missing_images) > 5 else ""
        return fail(f"{len(boxes.missing_images)} image(s) missing or unreadable (--input-size needs their sizes): "
                    f"{names}{more}")
    if boxes.zero_size:
        print(f"left out {boxes.zero_size} zero-width or zero-height box(es): their IoU is undefined")
    if len(boxes.sizes) == 0:
        return fail(f"no boxes with a non-zero size in {args.annot_file} ({boxes.images} image line(s))")

    start = time.perf_counter()
    try:
        result = kmeans_anchors(boxes.sizes, args.num_clusters, restarts=args.restarts, max_iter=args.max_iter,
                                seed=args.seed, sample=args.sample or None, progress=args.progress)
    except AnchorError as e:
        return fail(str(e))
    elapsed = time.perf_counter() - start

    out_dir = os.path.dirname(os.path.abspath(args.out_file))
    try:
        os.makedirs(out_dir, exist_ok=True)
        write_anchors(args.out_file, result.anchors)
    except OSError as e:
        return fail(f"cannot write {args.out_file}: {e}")

    units = (f"network pixels ({args.input_size[0]}x{args.input_size[1]} letterboxed)" if args.input_size
             else "original-image pixels")
    print(f"{len(boxes.sizes)} boxes from {boxes.images} images, {args.num_clusters} clusters, "
          f"{args.restarts} restarts, {elapsed:.1f} s")
    print(f"anchors (w,h in {units}, sorted by area):")
    counts = np.bincount(result.assignments, minlength=len(result.anchors))
    for (w, h), n in zip(result.anchors, counts):
        print(f"  {w:8.2f} x {h:8.2f}   {n} boxes")
    print(f"restart average IoUs: {', '.join(f'{v:.4f}' for v in result.restart_ious)}")
    print(f"Average IoU: {result.avg_iou:.4f}")
    print(f"wrote {args.out_file}")
    if args.plot:
        try:
            plot_anchors(args.plot, boxes.sizes, result,
                         units="network pixels" if args.input_size else "image pixels", seed=args.seed)
        except (OSError, ValueError) as e:
            return fail(f"cannot write plot {args.plot}: {e}")
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
