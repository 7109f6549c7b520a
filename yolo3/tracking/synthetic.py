"""A seeded synthetic MOT benchmark: ground-truth trajectories and a noisy detector's output for them.

Objects of two classes (0: tall boxes like people, 1: wide boxes like cars) enter from the edges of a
1280x720 frame, move with smoothly varying velocity and leave; presets add crossing pairs, static
occluders (pillars) and crowds. Each object's visibility is the part of its box not hidden by the
occluders or by nearer objects (a larger bottom edge is nearer). The detector model then misses a box
with a probability that grows as its visibility falls, jitters it, gives it a score that drops with
occlusion, adds false positives, duplicates and class flips, and drops whole frames. Everything comes
from one ``numpy.random.Generator`` seeded by the caller, so a (preset, seed) pair is one sequence.

Boxes are xyxy pixels. :func:`write_sequence` writes the MOTChallenge layout
``<root>/<name>/{gt/gt.txt, det/det.txt, seqinfo.ini}``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from .base import TrackingError
from .mot import MotRows, write_mot

__all__ = ["Preset", "PRESETS", "Sequence", "generate", "write_sequence", "render"]


@dataclass(frozen=True)
class Preset:
    """What a synthetic sequence looks like (sizes in pixels, speeds in pixels a frame, rates in 0..1)."""

    frames: int = 450
    objects: int = 10                  # objects in view on average
    size: tuple[float, float] = (24.0, 56.0)   # box width range (class 0; class 1 is wider)
    speed: tuple[float, float] = (1.5, 5.0)
    crossing: float = 0.0              # share of objects spawned as crossing pairs
    pillars: int = 0                   # static occluders
    miss: float = 0.05                 # miss rate of a fully visible box
    jitter: float = 0.04               # box noise, fraction of width/height
    false_positives: float = 0.5       # per frame, on average
    duplicates: float = 0.02
    class_flips: float = 0.03
    dropped_frames: float = 0.01
    width: int = 1280
    height: int = 720


#: the benchmark's presets
PRESETS = {
    "basic": Preset(),
    "crossing": Preset(objects=10, crossing=0.8),
    "occlusion": Preset(objects=12, pillars=4),
    "crowd": Preset(objects=45, size=(16.0, 36.0), speed=(1.0, 3.5), false_positives=2.0),
}


@dataclass
class Sequence:
    """One synthetic sequence: ground truth (``scores`` holds 1, ``classes`` the class) and detections."""

    gt: MotRows
    det: MotRows
    visibility: np.ndarray  # (len(gt),) 0..1
    preset: Preset
    num_frames: int
    occluders: np.ndarray  # (K, 4) xyxy pixels of the static occluders
    seed: int = 0


class _Object:
    def __init__(self, rng: np.random.Generator, p: Preset, frame: int, side: int | None = None,
                 y: float | None = None):
        self.klass = int(rng.random() < 0.3)
        w = rng.uniform(*p.size) * (1.8 if self.klass else 1.0)
        self.wh = np.array([w, w * (0.6 if self.klass else 2.2)])
        side = int(rng.integers(4)) if side is None else side
        speed = rng.uniform(*p.speed)
        along = rng.uniform(0.1, 0.9)
        if side in (0, 1):  # enters from the left (0) or the right (1)
            cy = p.height * along if y is None else y
            self.pos = np.array([-self.wh[0] / 2 + 1 if side == 0 else p.width + self.wh[0] / 2 - 1, cy])
            self.vel = np.array([speed if side == 0 else -speed, rng.normal(0, 0.3)])
        else:  # from the top (2) or the bottom (3)
            self.pos = np.array([p.width * along, -self.wh[1] / 2 + 1 if side == 2 else p.height + self.wh[1] / 2 - 1])
            self.vel = np.array([rng.normal(0, 0.3), speed if side == 2 else -speed])
        self.base_speed = speed
        self.born = frame

    def step(self, rng: np.random.Generator) -> None:
        self.vel += rng.normal(0, 0.08, 2)
        norm = np.linalg.norm(self.vel)
        self.vel *= 1 + 0.05 * (self.base_speed / max(norm, 1e-6) - 1)  # drifts back to its own speed
        self.pos = self.pos + self.vel

    def box(self) -> np.ndarray:
        return np.concatenate([self.pos - self.wh / 2, self.pos + self.wh / 2])


def _spawn(rng: np.random.Generator, p: Preset, frame: int) -> list[_Object]:
    if rng.random() < p.crossing:  # two objects on nearly the same line, towards each other
        y = rng.uniform(0.2, 0.8) * p.height
        a = _Object(rng, p, frame, side=0, y=y)
        b = _Object(rng, p, frame, side=1, y=y + rng.normal(0, 6))
        b.klass, b.wh = a.klass, a.wh * rng.uniform(0.9, 1.1)
        return [a, b]
    return [_Object(rng, p, frame)]


def _visibility(boxes: np.ndarray, occluders: np.ndarray) -> np.ndarray:
    """(N,) share of each box not covered by occluders and nearer boxes (sum of overlaps, clipped)."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])

    def overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
        h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
        return w * h

    mutual = overlap(boxes, boxes)
    nearer = boxes[None, :, 3] > boxes[:, None, 3]
    covered = (mutual * nearer).sum(1) + (overlap(boxes, occluders).sum(1) if len(occluders) else 0)
    return np.clip(1 - covered / area, 0, 1)


def _pillars(rng: np.random.Generator, p: Preset) -> np.ndarray:
    xs = (np.arange(p.pillars) + rng.uniform(0.3, 0.7, p.pillars)) * p.width / max(p.pillars, 1)
    widths = rng.uniform(40, 90, p.pillars)
    return np.stack([xs - widths / 2, np.zeros(p.pillars), xs + widths / 2, np.full(p.pillars, p.height)], axis=1)


def _clip(boxes: np.ndarray, p: Preset) -> np.ndarray:
    return np.clip(boxes, 0, [p.width, p.height, p.width, p.height])


def _trajectories(rng: np.random.Generator, p: Preset, occluders: np.ndarray) -> list[tuple]:
    """Per frame (ids, classes, clipped gt boxes, visibility) of the objects in view."""
    objects: dict[int, _Object] = {}
    next_id, frames = 1, []
    mean_life = p.width / np.mean(p.speed)
    for frame in range(1, p.frames + 1):
        births = rng.poisson(p.objects / mean_life) if frame > 1 else p.objects
        for _ in range(births):
            for obj in _spawn(rng, p, frame):
                if frame == 1:  # start with the scene already populated
                    obj.pos = rng.uniform([0, 0], [p.width, p.height])
                objects[next_id], next_id = obj, next_id + 1
        for obj in objects.values():
            obj.step(rng)
        boxes = {i: o.box() for i, o in objects.items()}
        gone = [i for i, b in boxes.items() if b[2] <= 0 or b[0] >= p.width or b[3] <= 0 or b[1] >= p.height]
        for i in gone:
            del objects[i], boxes[i]
        ids = np.array(sorted(boxes), np.int64)
        raw = np.array([boxes[i] for i in ids]).reshape(-1, 4)
        clipped = _clip(raw, p)
        keep = ((clipped[:, 2] - clipped[:, 0]) >= 4) & ((clipped[:, 3] - clipped[:, 1]) >= 4)
        ids, clipped = ids[keep], clipped[keep]
        vis = _visibility(clipped, occluders) if len(ids) else np.zeros(0)
        frames.append((ids, np.array([objects[i].klass for i in ids], np.int64), clipped, vis))
    return frames


def _detect(rng: np.random.Generator, p: Preset, classes: np.ndarray, boxes: np.ndarray, vis: np.ndarray):
    """The noisy detector on one frame: (boxes, scores, classes)."""
    if rng.random() < p.dropped_frames:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
    seen = rng.random(len(boxes)) > p.miss + (1 - p.miss) * (1 - vis) ** 0.7
    wh = np.tile(boxes[:, 2:] - boxes[:, :2], 2)
    out = boxes[seen] + rng.normal(0, p.jitter, (int(seen.sum()), 4)) * wh[seen]
    scores = np.clip(0.35 + 0.6 * vis[seen] ** 2 + rng.normal(0, 0.1, int(seen.sum())), 0.05, 0.99)
    klass = classes[seen].copy()
    flip = rng.random(len(klass)) < p.class_flips
    klass[flip] = 1 - klass[flip]
    dup = rng.random(len(out)) < p.duplicates
    dup_boxes = out[dup] + rng.normal(0, 0.1, (int(dup.sum()), 4)) * np.tile(out[dup, 2:] - out[dup, :2], 2)
    n_fp = rng.poisson(p.false_positives)
    centre = rng.uniform([0, 0], [p.width, p.height], (n_fp, 2))
    size = rng.uniform(*p.size, (n_fp, 1)) * np.array([[1.0, 2.2]])
    fp = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    boxes_out = _clip(np.concatenate([out, dup_boxes, fp]), p)
    scores_out = np.concatenate([scores, scores[dup] * 0.6, rng.uniform(0.1, 0.6, n_fp)])
    classes_out = np.concatenate([klass, klass[dup], rng.integers(0, 2, n_fp)])
    ok = ((boxes_out[:, 2] - boxes_out[:, 0]) > 1) & ((boxes_out[:, 3] - boxes_out[:, 1]) > 1)
    return boxes_out[ok], scores_out[ok], classes_out[ok]


def _rows(frames: list[int], ids: list, boxes: list, scores: list, classes: list) -> MotRows:
    return MotRows(frames=np.asarray(frames, np.int64), ids=np.asarray(ids, np.int64),
                   boxes=np.asarray(boxes, float).reshape(-1, 4), scores=np.asarray(scores, float),
                   classes=np.asarray(classes, np.int64))


def generate(preset: str | Preset, seed: int, frames: int | None = None) -> Sequence:
    """One synthetic sequence of ``preset`` (a name of :data:`PRESETS` or a :class:`Preset`) from ``seed``.

    Raises:
        TrackingError: an unknown preset name.
    """
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise TrackingError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        preset = PRESETS[preset]
    if frames is not None:
        preset = replace(preset, frames=frames)
    rng = np.random.default_rng(seed)
    occluders = _pillars(rng, preset)
    gt_cols: tuple[list, ...] = ([], [], [], [], [])
    det_cols: tuple[list, ...] = ([], [], [], [], [])
    vis_all = []
    for frame, (ids, classes, boxes, vis) in enumerate(_trajectories(rng, preset, occluders), 1):
        for col, values in zip(gt_cols, ([frame] * len(ids), ids, boxes, np.ones(len(ids)), classes)):
            col.extend(values)
        vis_all.extend(vis)
        d_boxes, d_scores, d_classes = _detect(rng, preset, classes, boxes, vis)
        for col, values in zip(det_cols, ([frame] * len(d_boxes), [-1] * len(d_boxes), d_boxes, d_scores, d_classes)):
            col.extend(values)
    return Sequence(gt=_rows(*gt_cols), det=_rows(*det_cols), visibility=np.asarray(vis_all), preset=preset,
                    num_frames=preset.frames, occluders=occluders, seed=seed)


def _lines(rows: MotRows, extra: np.ndarray | None = None) -> list[str]:
    out = []
    for i, (frame, ident, (x1, y1, x2, y2), score, klass) in enumerate(
            zip(rows.frames.tolist(), rows.ids.tolist(), rows.boxes.tolist(), rows.scores.tolist(),
                rows.classes.tolist())):
        tail = f",{extra[i]:.3f}" if extra is not None else ""
        out.append(f"{frame},{ident},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4g},{klass}{tail}\n")
    return out


def write_sequence(root: str, name: str, sequence: Sequence) -> str:
    """Write ``<root>/<name>/gt/gt.txt`` (``frame,id,x,y,w,h,1,class,visibility``), ``det/det.txt``
    (``frame,-1,x,y,w,h,score,class``) and ``seqinfo.ini``; returns the sequence folder."""
    folder = os.path.join(root, name)
    for sub in ("gt", "det"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    write_mot(os.path.join(folder, "gt", "gt.txt"), _lines(sequence.gt, sequence.visibility))
    write_mot(os.path.join(folder, "det", "det.txt"), _lines(sequence.det))
    p = sequence.preset
    write_mot(os.path.join(folder, "seqinfo.ini"),
              [f"[Sequence]\nname={name}\nframeRate=30\nseqLength={sequence.num_frames}\n"
               f"imWidth={p.width}\nimHeight={p.height}\n"])
    return folder


#: RGB colours of the rendered classes and occluders
_CLASS_COLORS = np.array([[214, 96, 77], [67, 147, 195]], np.uint8)
_OCCLUDER_COLOR = np.array([70, 70, 80], np.uint8)


def _background(p: Preset, seed: int) -> np.ndarray:
    """A smooth greenish-grey texture (H, W, 3) uint8, the same for a seed."""
    rng = np.random.default_rng(seed + 7919)
    coarse = rng.normal(0, 1, (p.height // 16 + 1, p.width // 16 + 1))
    smooth = ndimage.zoom(ndimage.gaussian_filter(coarse, 1.0), 16, order=1)[:p.height, :p.width]
    fine = rng.normal(0, 6, (p.height, p.width))
    grey = np.clip(150 + 25 * smooth + fine, 0, 255)
    return np.stack([grey * 0.92, grey, grey * 0.85], axis=2).astype(np.uint8)


def render(sequence: Sequence, frame: int, background: np.ndarray | None = None) -> np.ndarray:
    """The 1-based ``frame`` of ``sequence`` drawn as a picture: (H, W, 3) uint8 RGB, each object a filled
    box in its class colour on a textured background (farther objects first), the occluders in front.

    Args:
        sequence: from :func:`generate`.
        frame: 1..num_frames.
        background: the texture to draw on (default: made from the sequence's seed; pass it in for speed).
    """
    p = sequence.preset
    out = (_background(p, sequence.seed) if background is None else background).copy()
    rows = np.flatnonzero(sequence.gt.frames == frame)
    rows = rows[np.argsort(sequence.gt.boxes[rows, 3])]  # larger bottom edge = nearer = drawn later
    for box, klass in zip(sequence.gt.boxes[rows], sequence.gt.classes[rows]):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        out[y1:y2, x1:x2] = _CLASS_COLORS[klass % 2]
        out[y1:y2, x1:x1 + 2] = out[y1:y2, x2 - 2:x2] = out[y1:y1 + 2, x1:x2] = out[y2 - 2:y2, x1:x2] = 40
    for x1, y1, x2, y2 in np.round(sequence.occluders).astype(int):
        out[max(y1, 0):y2, max(x1, 0):x2] = _OCCLUDER_COLOR
    return out
