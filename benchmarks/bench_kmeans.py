"""Anchor k-means on a million boxes: yolo3.datasets.anchors.kmeans_anchors against keras-yolo3's kmeans.py
algorithm (random initial centres, 1 - IoU assignment over all boxes, per-cluster medians, until
the assignments stop changing), in one process on the same boxes.

    python benchmarks/bench_kmeans.py [--boxes 1000000] [--k 9] [--out docs/benchmarks.md]

The boxes are drawn around the 9 YOLOv3 COCO anchors (log-normal jitter, sigma 0.08), so both
methods should recover those anchors; the table gives time, average IoU and the worst relative
error of a recovered anchor.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

COCO_ANCHORS = np.array([[10, 13], [16, 30], [33, 23], [30, 61], [62, 45], [59, 119], [116, 90], [156, 198],
                         [373, 326]], np.float64)


def make_boxes(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centre = COCO_ANCHORS[rng.integers(0, len(COCO_ANCHORS), n)]
    return centre * np.exp(rng.normal(0.0, 0.08, (n, 2)))


def keras_yolo3_kmeans(boxes: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """keras-yolo3's YOLO_Kmeans.kmeans, vectorised as it was (N x K IoU matrix per iteration)."""
    rng = np.random.default_rng(seed)
    n = boxes.shape[0]
    last = np.zeros((n,))
    clusters = boxes[rng.choice(n, k, replace=False)]
    box_area = boxes[:, 0] * boxes[:, 1]
    while True:
        inter = (np.minimum(boxes[:, None, 0], clusters[None, :, 0])
                 * np.minimum(boxes[:, None, 1], clusters[None, :, 1]))
        iou = inter / (box_area[:, None] + (clusters[:, 0] * clusters[:, 1])[None, :] - inter)
        nearest = np.argmin(1 - iou, axis=1)
        if (last == nearest).all():
            break
        for c in range(k):
            if np.any(nearest == c):
                clusters[c] = np.median(boxes[nearest == c], axis=0)
        last = nearest
    return clusters[np.argsort(clusters[:, 0] * clusters[:, 1])]


def worst_error(anchors: np.ndarray) -> float:
    """Largest relative error of a recovered anchor against the true one (both sorted by area)."""
    truth = COCO_ANCHORS[np.argsort(COCO_ANCHORS.prod(1))]
    return float(np.max(np.abs(anchors - truth) / truth))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boxes", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=9)
    ap.add_argument("--out", default=None, help="markdown file whose bench_kmeans section is replaced")
    args = ap.parse_args()

    from yolo3.datasets.anchors import avg_iou, kmeans_anchors

    boxes = make_boxes(args.boxes)
    rows = []
    t0 = time.perf_counter()
    ours = kmeans_anchors(boxes, args.k, progress=False)
    t_ours = time.perf_counter() - t0
    rows.append(("yolo3 kmeans_anchors (5 restarts on a 200k sample, refined on all)", t_ours,
                 ours.avg_iou, worst_error(ours.anchors)))
    t0 = time.perf_counter()
    ref = keras_yolo3_kmeans(boxes, args.k)
    t_ref = time.perf_counter() - t0
    rows.append(("keras-yolo3 algorithm (1 run on all boxes)", t_ref, avg_iou(boxes, ref), worst_error(ref)))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"`python benchmarks/bench_kmeans.py --boxes {args.boxes} --k {args.k}` on {time.strftime('%Y-%m-%d')}: "
        f"{args.boxes:,} boxes around the 9 YOLOv3 COCO anchors (log-normal jitter 0.08), one process; "
        f"Python {platform.python_version()}, NumPy {np.__version__}, load average {load:.1f}.",
        "",
        "| method | seconds | average IoU | worst anchor error | time / yolo3 |",
        "|---|---|---|---|---|",
    ]
    for name, sec, iou, err in rows:
        lines.append(f"| {name} | {sec:.2f} | {iou:.4f} | {100 * err:.1f} % | {sec / t_ours:.2f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
        from bench_detect import update_section

        update_section(args.out, "bench_kmeans", text)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
