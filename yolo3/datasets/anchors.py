"""Anchor boxes from a dataset: k-means on box sizes with distance ``1 - IoU``.

Box sizes are (w, h) pairs in pixels: original-image pixels, or network-input pixels after
letterboxing to the network size (:func:`letterbox_scale`), which is how the model sees them
and how ``model_data`` anchor files are written. IoU of two sizes is computed as if both
boxes shared one corner (the YOLOv2 anchor clustering). k-means++ seeding, several restarts,
the restart with the best average IoU wins; anchors come back sorted by area (smallest first),
the order Darknet cfgs and ``model_data/*anchors.txt`` use.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
from matplotlib.figure import Figure
from PIL import Image
from tqdm import tqdm

from ..core.boxes import wh_iou
from ..core.files import atomic_path
from ..errors import Yolo3Error
from .annotations import AnnotatedImage, iter_annotations

__all__ = ["AnchorError", "KMeansResult", "BoxSizes", "avg_iou", "kmeans_plus_plus", "kmeans_anchors",
           "letterbox_scale", "collect_box_sizes", "plot_anchors"]


class AnchorError(Yolo3Error):
    """Unusable input for anchor clustering (too few boxes, unreadable images...)."""


@dataclass
class KMeansResult:
    """Outcome of :func:`kmeans_anchors`.

    ``anchors``: float64 (K, 2) w, h in the units of the input sizes, sorted by area.
    ``avg_iou``: mean over boxes of the IoU with their best anchor (0..1).
    ``assignments``: int (N,) index into ``anchors`` of each box's best anchor.
    ``iterations``: Lloyd iterations of the winning restart; ``restart``: its index.
    ``restart_ious``: average IoU reached by every restart.
    """

    anchors: np.ndarray
    avg_iou: float
    assignments: np.ndarray
    iterations: int
    restart: int
    restart_ious: list[float]


def avg_iou(sizes: np.ndarray, anchors: np.ndarray) -> float:
    """Mean over boxes of the IoU with the best-matching anchor.

    Args:
        sizes: (N, 2) box widths and heights (pixels, or any unit shared with ``anchors``).
        anchors: (K, 2) anchor widths and heights, same units as ``sizes``.

    Returns:
        The average best IoU (0..1, boxes compared as if sharing a corner); NaN when ``sizes`` is empty.
    """
    return float(np.mean(np.max(wh_iou(sizes, anchors), axis=1))) if len(sizes) else float("nan")


def kmeans_plus_plus(sizes: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding with distance ``1 - IoU``: each next centre drawn with probability ~ d^2.

    Args:
        sizes: (N, 2) box widths and heights (N >= 1; pixels or any unit).
        k: number of centres to draw.
        rng: random generator for the draws.

    Returns:
        float64 (k, 2) initial centres (w, h), each one of ``sizes``.
    """
    n = len(sizes)
    centers = np.empty((k, 2), np.float64)
    centers[0] = sizes[rng.integers(n)]
    d2 = (1.0 - wh_iou(sizes, centers[:1])[:, 0].astype(np.float64)) ** 2
    for j in range(1, k):
        total = d2.sum()
        if total <= 0:  # every box already coincides with a centre
            centers[j] = sizes[rng.integers(n)]
        else:
            idx = int(np.searchsorted(np.cumsum(d2), rng.random() * total, side="right"))
            centers[j] = sizes[min(idx, n - 1)]
        d_new = (1.0 - wh_iou(sizes, centers[j : j + 1])[:, 0].astype(np.float64)) ** 2
        np.minimum(d2, d_new, out=d2)
    return centers


class _Points:
    """Box sizes prepared for fast assignment: contiguous float32 w, h, area and float64 (N, 2)."""

    def __init__(self, sizes: np.ndarray):
        self.sizes = np.asarray(sizes, np.float64)
        self.w = np.ascontiguousarray(self.sizes[:, 0], np.float32)
        self.h = np.ascontiguousarray(self.sizes[:, 1], np.float32)
        self.area = self.w * self.h
        self.w64 = np.ascontiguousarray(self.sizes[:, 0])
        self.h64 = np.ascontiguousarray(self.sizes[:, 1])

    def __len__(self) -> int:
        return len(self.sizes)

    def assign(self, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best anchor index (N,) and its IoU (N,) float32, one centre at a time (no (N, K) matrix)."""
        n = len(self)
        best = np.full(n, -1.0, np.float32)
        labels = np.zeros(n, np.int16)
        t1 = np.empty(n, np.float32)
        t2 = np.empty(n, np.float32)
        for j, (cw, ch) in enumerate(np.asarray(centers, np.float64)):
            np.minimum(self.w, np.float32(cw), out=t1)
            np.minimum(self.h, np.float32(ch), out=t2)
            t1 *= t2  # intersection
            np.add(self.area, np.float32(cw * ch), out=t2)
            t2 -= t1  # union
            t1 /= t2
            better = t1 > best
            np.copyto(best, t1, where=better)
            labels[better] = j
        return labels, best


def _update_centers(points: _Points, labels: np.ndarray, best: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Per-cluster median of the member sizes (one radix sort of the labels, no per-cluster masks)."""
    k = len(centers)
    new = centers.copy()
    order = np.argsort(labels, kind="stable")  # int16 labels: O(N) radix sort
    counts = np.bincount(labels, minlength=k)
    ends = np.cumsum(counts)
    ws = points.w64[order]
    hs = points.h64[order]
    taken = np.zeros(len(points), bool)
    for j in range(k):
        if counts[j]:
            lo, hi = ends[j] - counts[j], ends[j]
            new[j] = (np.median(ws[lo:hi]), np.median(hs[lo:hi]))
        else:
            # An empty cluster restarts at the box worst served by the current centres.
            i = int(np.argmin(np.where(taken, np.inf, best)))
            taken[i] = True
            new[j] = points.sizes[i]
    return new


def _lloyd(points: _Points, centers: np.ndarray, max_iter: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Lloyd iterations until the assignments stop changing; returns centres, labels, best IoU, iterations."""
    labels, best = points.assign(centers)
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the iteration count is returned
        new_centers = _update_centers(points, labels, best, centers)
        if np.array_equal(new_centers, centers):
            break
        centers = new_centers
        new_labels, best = points.assign(centers)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    return centers, labels, best, it


def _checked_sizes(sizes: np.ndarray, k: int, restarts: int) -> np.ndarray:
    """``sizes`` as float64 (N, 2), or :class:`AnchorError` for the problems :func:`kmeans_anchors` lists."""
    sizes = np.asarray(sizes, np.float64).reshape(-1, 2)
    if not 1 <= k <= 1000:
        raise AnchorError(f"number of clusters must be in 1..1000, got {k}")
    if restarts < 1:
        raise AnchorError(f"restarts must be >= 1, got {restarts}")
    if not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
        raise AnchorError("box sizes must be finite and > 0 (drop zero-size boxes first)")
    n_distinct = len(np.unique(np.ascontiguousarray(sizes).view(np.complex128))) if len(sizes) else 0
    if n_distinct < k:
        raise AnchorError(f"{n_distinct} distinct box sizes, fewer than the {k} clusters asked for")
    return sizes


def kmeans_anchors(
    sizes: np.ndarray,
    k: int = 9,
    *,
    restarts: int = 5,
    max_iter: int = 100,
    seed: int | None = 0,
    sample: int | None = 200_000,
    progress: bool = True,
) -> KMeansResult:
    """Cluster (N, 2) box sizes into ``k`` anchors with distance ``1 - IoU``.

    Each restart: k-means++ seeding, then Lloyd iterations with per-cluster medians as centres
    (robust to outliers, as the original keras-yolo3; means need not converge under 1 - IoU)
    until the assignments stop changing (at most ``max_iter``). The restart with the highest average IoU
    wins. With more than ``sample`` boxes the restarts run on a random sample of that many boxes and the winner is
    then iterated to convergence on all boxes.

    Args:
        sizes: (N, 2) box widths and heights (pixels: original-image or network-input), all finite and > 0.
        k: number of anchors, 1..1000 (default 9, as YOLOv3).
        restarts: number of k-means++ restarts (>= 1).
        max_iter: most Lloyd iterations per run.
        seed: seed of the random generator (``None``: unseeded).
        sample: most boxes the restarts run on (a random sample); ``None``: always use all boxes.
        progress: show a tqdm bar over restarts.

    Returns:
        A :class:`KMeansResult`: float64 (k, 2) anchors in the units of ``sizes``, sorted by area (smallest first).

    Raises:
        AnchorError: ``k`` outside 1..1000, ``restarts`` < 1, a size not finite or <= 0, or fewer distinct
            sizes than ``k``.
    """
    sizes = _checked_sizes(sizes, k, restarts)
    rng = np.random.default_rng(seed)
    full = _Points(sizes)
    subset = full
    if sample is not None and len(sizes) > sample:
        subset = _Points(sizes[np.sort(rng.choice(len(sizes), sample, replace=False))])

    bar = None
    if progress:
        bar = tqdm(total=restarts + (subset is not full), desc="k-means", unit="run", leave=False,
                   disable=None)  # disable=None: no bar when stderr is not a terminal (logs, pipes)
    best: tuple[float, np.ndarray, int, int] | None = None
    restart_ious: list[float] = []
    try:
        for r in range(restarts):
            init = kmeans_plus_plus(subset.sizes, k, rng)
            centers, _, ious, iters = _lloyd(subset, init, max_iter)
            score = float(np.mean(ious, dtype=np.float64))
            restart_ious.append(score)
            if best is None or score > best[0]:
                best = (score, centers, iters, r)
            if bar is not None:
                bar.set_postfix(iter=iters, avg_iou=f"{best[0]:.4f}", refresh=False)
                bar.update(1)
        assert best is not None
        _, centers, iters, r = best
        if subset is not full:
            centers, _, _, iters = _lloyd(full, centers, max_iter)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    centers = centers[np.argsort(centers[:, 0] * centers[:, 1], kind="stable")]
    labels, ious = full.assign(centers)
    return KMeansResult(centers, float(np.mean(ious, dtype=np.float64)), labels.astype(np.int64), iters, r,
                        restart_ious)


def letterbox_scale(image_size: tuple[int, int], net_size: tuple[int, int]) -> float:
    """Scale factor letterboxing maps an image of ``(width, height)`` onto a ``(width, height)`` net.

    Args:
        image_size: (width, height) of the image in pixels.
        net_size: (width, height) of the network input in pixels.

    Returns:
        ``min(net_w / image_w, net_h / image_h)``: image pixels times it give network-input pixels.
    """
    iw, ih = image_size
    nw, nh = net_size
    return min(nw / iw, nh / ih)


@dataclass
class BoxSizes:
    """Box sizes read from an annotation file.

    ``sizes``: float64 (N, 2) w, h (pixels; network pixels if a net size was given).
    ``zero_size``: boxes left out because their width or height is 0 (their IoU is undefined).
    ``images``: annotation lines read; ``missing_images``: image paths that could not be opened
    (only looked at when a net size needs the image sizes).
    """

    sizes: np.ndarray
    zero_size: int
    images: int
    missing_images: list[str]


def _image_size(path: str) -> tuple[int, int]:
    with Image.open(path) as im:  # reads the header only, no pixel decoding
        return im.size


def collect_box_sizes(
    annotation_path: str,
    net_size: tuple[int, int] | None = None,
    *,
    root: str | None = None,
    progress: bool = True,
    image_size: Callable[[str], tuple[int, int]] = _image_size,
) -> BoxSizes:
    """Box (w, h) of every box in an annotation file; letterboxed to ``net_size`` (w, h) if given.

    Images that cannot be opened (only needed with ``net_size``) are collected in ``missing_images``,
    their boxes left out. Boxes with zero width or height are left out and counted in ``zero_size``.

    Args:
        annotation_path: annotation text file (boxes xyxy in original-image pixels).
        net_size: network input (width, height) in pixels: box sizes are scaled by :func:`letterbox_scale`
            into network-input pixels (needs each image's size). ``None``: original-image pixels.
        root: folder relative image paths are resolved against (``None``: see
            :func:`~yolo3.datasets.annotations.iter_annotations`).
        progress: show a tqdm bar over images.
        image_size: returns an image's (width, height) in pixels from its path (default: the header, read
            with PIL); may raise ``OSError`` / ``ValueError`` for an image that cannot be opened.

    Returns:
        A :class:`BoxSizes` with float64 (N, 2) sizes.

    Raises:
        AnnotationError: a malformed line (:class:`~yolo3.datasets.annotations.AnnotationError`).
        FileNotFoundError: the annotation file is missing.
    """
    items: Iterable[AnnotatedImage] = iter_annotations(annotation_path, root=root)
    if progress:
        items = tqdm(items, desc="reading boxes", unit="img", leave=False, disable=None)
    chunks: list[np.ndarray] = []
    missing: list[str] = []
    images = 0
    for ann in items:
        images += 1
        if not len(ann.boxes):
            continue
        wh = (ann.boxes[:, 2:4] - ann.boxes[:, 0:2]).astype(np.float64)
        if net_size is not None:
            try:
                size = image_size(ann.path)
            except (OSError, ValueError):
                missing.append(ann.path)
                continue
            wh = wh * letterbox_scale(size, net_size)
        chunks.append(wh)
    sizes = np.concatenate(chunks) if chunks else np.zeros((0, 2), np.float64)
    keep = np.all(sizes > 0, axis=1)
    return BoxSizes(sizes[keep], int((~keep).sum()), images, missing)


def plot_anchors(
    path: str,
    sizes: np.ndarray,
    result: KMeansResult,
    *,
    units: str = "pixels",
    max_points: int = 50_000,
    seed: int = 0,
) -> None:
    """Scatter of box sizes coloured by cluster, with the anchors marked; written to ``path`` (PNG...).

    Args:
        path: output picture file, format from its extension; missing parent folders are created.
        sizes: (N, 2) box widths and heights, the ones clustered into ``result``.
        result: the clustering of ``sizes`` (its ``assignments`` colour the points).
        units: unit named in the axis labels (default ``"pixels"``).
        max_points: most points drawn; more boxes are shown as a random sample of this many.
        seed: seed of that sample.
    """
    sizes = np.asarray(sizes)
    idx = np.arange(len(sizes))
    if len(sizes) > max_points:
        idx = np.random.default_rng(seed).choice(len(sizes), max_points, replace=False)
    # a Figure of its own, no pyplot: no global backend or figure registry touched in the user's process
    fig = Figure(figsize=(7, 6), dpi=110)
    ax = fig.subplots()
    cmap = "tab10" if len(result.anchors) <= 10 else "tab20" if len(result.anchors) <= 20 else "turbo"
    ax.scatter(sizes[idx, 0], sizes[idx, 1], c=result.assignments[idx], cmap=cmap, s=3, alpha=0.4,
               linewidths=0)
    ax.scatter(result.anchors[:, 0], result.anchors[:, 1], c="black", marker="x", s=80, linewidths=2,
               label="anchors")
    for w, h in result.anchors:
        ax.annotate(f"{w:.0f}x{h:.0f}", (w, h), textcoords="offset points", xytext=(5, 5), fontsize=8)
    shown = f" ({len(idx)} of {len(sizes)} shown)" if len(idx) < len(sizes) else ""
    ax.set_title(f"{len(result.anchors)} anchors, average IoU {result.avg_iou:.4f}, {len(sizes)} boxes{shown}",
                 fontsize=9)
    ax.set_xlabel(f"box width ({units})")
    ax.set_ylabel(f"box height ({units})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend(loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
