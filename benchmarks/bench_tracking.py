#!/usr/bin/env python3
"""Tracking benchmark on the synthetic MOT presets: our ByteTrack and SORT against Roboflow's ``trackers``
(2.6.1, defaults) and a naive frame-to-frame IoU matcher, all on the same detections and scored by the
same evaluator (yolo3.tracking.metrics, equal to TrackEval's); plus tracker-only frames/s.

    python3 -m venv /tmp/trackers-venv && /tmp/trackers-venv/bin/pip install trackers==2.6.1
    python benchmarks/bench_tracking.py --trackers-python /tmp/trackers-venv/bin/python --out docs/benchmarks.md

``trackers`` installs opencv-python, which clashes with opencv-python-headless: it lives in its own
environment and runs through benchmarks/trackers_adapter.py; without --trackers-python its rows are
left out. Every preset is generated for each --seeds (the tuning seeds) and each --check-seeds (seeds the
defaults were not tuned on). Speed: the basic preset has about 10 objects a frame, the crowd preset
about 45; frames/s count the trackers' ``update`` calls alone, each contender timed in one process, and
the best of --repeat runs is kept.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import numpy as np  # noqa: E402
from bench_detect import log, update_section  # noqa: E402

from yolo3.core.detections import Detections  # noqa: E402
from yolo3.inference.tracking_video import VideoTracking, draw_tracks  # noqa: E402
from yolo3.tracking import make_tracker  # noqa: E402
from yolo3.tracking.association import assign, iou_xyxy  # noqa: E402
from yolo3.tracking.evaluate import evaluate_paths  # noqa: E402
from yolo3.tracking.mot import iter_frames, read_mot, write_mot  # noqa: E402
from yolo3.tracking.synthetic import PRESETS, generate, render, write_sequence  # noqa: E402


class NaiveIoU:
    """The baseline: each detection scoring >= 0.5 takes the id of the previous frame's box it overlaps
    most (Hungarian, IoU >= 0.3), else a new id; no motion model, no memory beyond one frame."""

    def __init__(self):
        self.boxes, self.ids, self.next_id = np.zeros((0, 4)), np.zeros(0, int), 1

    def update(self, boxes, scores, classes):
        boxes = boxes[scores >= 0.5]
        rows, cols = assign(1 - iou_xyxy(self.boxes, boxes), 0.7)
        ids = np.zeros(len(boxes), int)
        ids[cols] = self.ids[rows]
        new = ids == 0
        ids[new] = np.arange(self.next_id, self.next_id + new.sum())
        self.next_id += int(new.sum())
        self.boxes, self.ids = boxes, ids
        return boxes, ids, scores[scores >= 0.5]


def run_ours(name: str, det_file: str, out_file: str) -> tuple[int, float]:
    """Track one sequence with our tracker ``name`` ("sort", "bytetrack", "sort-detection-boxes": SORT
    reporting the matched detection's box instead of the Kalman filter's, "sort-trackers-filter": that and
    ``trackers``' SORT's Kalman noise (``motion_noise="constant"``), or "iou": :class:`NaiveIoU`);
    returns (frames, seconds in update)."""
    det = read_mot(det_file)
    if name == "iou":
        tracker = NaiveIoU()
    else:
        params = {"motion_noise": "constant"} if name.endswith("trackers-filter") else {}
        tracker = make_tracker(name.split("-")[0], **params)
    frames = [(det.boxes[i], det.scores[i], det.classes[i]) for _, i in iter_frames(det)]
    lines, seconds = [], 0.0
    for frame, (boxes, scores, classes) in enumerate(frames, 1):
        start = time.perf_counter()
        out = tracker.update(boxes, scores, classes)
        seconds += time.perf_counter() - start
        if name == "iou":
            out_boxes, ids, out_scores = out
        else:
            out_boxes, ids, out_scores = out.boxes, out.ids, out.scores
            if name.endswith(("detection-boxes", "trackers-filter")):
                out_boxes = boxes[out.detection_index]
        for (x1, y1, x2, y2), ident, score in zip(out_boxes.tolist(), ids.tolist(), out_scores.tolist()):
            lines.append(f"{frame},{ident},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4f},-1,-1,-1\n")
    write_mot(out_file, lines)
    return len(frames), seconds


def run_contender(contender: str, det_files: list[str], out_dir: str, trackers_python: str | None):
    """(frames, seconds) of one contender over ``det_files``, tracks written to ``out_dir/<seq>.txt``."""
    os.makedirs(out_dir, exist_ok=True)
    if contender.startswith("trackers "):
        result = subprocess.run([trackers_python, str(HERE / "trackers_adapter.py"), contender.split()[1], out_dir,
                                 *det_files], capture_output=True, text=True, check=True)
        timing = json.loads(result.stdout.strip().splitlines()[-1])
        return timing["frames"], timing["seconds"]
    frames, seconds = 0, 0.0
    for det in det_files:
        sequence = Path(det).parent.parent.name
        n, s = run_ours(contender.split()[-1], det, os.path.join(out_dir, f"{sequence}.txt"))
        frames, seconds = frames + n, seconds + s
    return frames, seconds


def make_data(root: str, presets: list[str], seeds: list[int], frames: int) -> dict[str, list[str]]:
    """Write every (preset, seed) sequence; preset -> its detection files."""
    files: dict[str, list[str]] = {}
    for preset in presets:
        for seed in seeds:
            folder = write_sequence(os.path.join(root, preset), f"{preset}-{seed}", generate(preset, seed, frames))
            files.setdefault(preset, []).append(os.path.join(folder, "det", "det.txt"))
    return files


def machine() -> str:
    cpu, flags = "?", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "?":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = sorted(f for f in line.split(":", 1)[1].split() if f.startswith(("avx", "fma", "sse4")))
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} logical CPUs (flags {' '.join(flags)}), Python {sys.version.split()[0]}, "
            f"NumPy {np.__version__}; 1-minute load average {load:.1f} at the end (a shared machine)")


def evaluate(root: str, contenders: list[str], files: dict[str, list[str]], trackers_python: str | None) -> dict:
    """scores[preset][contender]: the metrics of the preset's sequences combined."""
    scores: dict = {}
    for preset, dets in files.items():
        for contender in contenders:
            out = os.path.join(root, "tracks", contender.replace(" ", "_"), preset)
            run_contender(contender, dets, out, trackers_python)
            scores.setdefault(preset, {})[contender] = evaluate_paths(os.path.join(root, preset), out)["COMBINED"]
            log(f"{preset:10s} {contender:26s} HOTA {100 * scores[preset][contender]['HOTA']:.2f} "
                f"IDSW {scores[preset][contender]['IDSW']}")
    return scores


def speed(root: str, contenders: list[str], trackers_python: str | None, repeat: int, frames: int) -> str:
    """Tracker-only frames/s on one basic (about 10 objects a frame) and one crowd sequence (about 45),
    every contender once a round, ``repeat`` rounds, the fastest run of each kept."""
    lines = ["### Tracker-only speed", "",
             f"Frames/s of the trackers' `update` calls alone on one {frames}-frame sequence (seed 1) of each preset, "
             f"the contenders interleaved over {repeat} rounds, the fastest run of each kept (the least disturbed "
             "on a shared machine); ratio to `trackers bytetrack` in the same run.", "",
             "| preset | objects a frame | " + " | ".join(contenders) + " |", "|---|---|" + "---|" * len(contenders)]
    for preset in ("basic", "crowd"):
        det = make_data(os.path.join(root, "speed"), [preset], [1], frames)[preset]
        objects = len(read_mot(det[0].replace(os.path.join("det", "det.txt"), os.path.join("gt", "gt.txt")),
                               "gt")) / frames
        best = dict.fromkeys(contenders, 0.0)
        for _ in range(repeat):
            for contender in contenders:
                n, seconds = run_contender(contender, det, os.path.join(root, "speed", "out"), trackers_python)
                best[contender] = max(best[contender], n / max(seconds, 1e-9))
        base = best.get("trackers bytetrack")
        cells = [f"{v:.0f}" + (f" ({v / base:.2f}x)" if base else "") for v in best.values()]
        lines.append(f"| {preset} | {objects:.1f} | " + " | ".join(cells) + " |")
        log(lines[-1])
    return "\n".join(lines)


def markdown(title: str, scores: dict, note: str) -> str:
    cols = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "MT", "ML")
    lines = [f"### {title}", "", note, "", "| preset | tracker | " + " | ".join(cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for preset, by in scores.items():
        for contender, m in by.items():
            cells = [f"{100 * m[c]:.2f}" if isinstance(m[c], float) else str(m[c]) for c in cols]
            lines.append(f"| {preset} | {contender} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def picture(path: str, preset: str = "occlusion", seed: int = 1, frame: int = 100) -> None:
    """The README's picture: ``frame`` of a rendered synthetic sequence with our ByteTrack's tracks drawn on
    it (ids, 40-point trails, a counting line)."""
    import cv2

    seq = generate(preset, seed, frame)
    line = (0.0, 360.0, 1280.0, 360.0)
    tracking = VideoTracking(make_tracker("bytetrack"), trails=40, lines=[line])
    for _, rows in iter_frames(seq.det, frame):
        tracked = tracking.step(Detections(seq.det.boxes[rows], seq.det.scores[rows], seq.det.classes[rows]))
    drawn = draw_tracks(render(seq, frame), tracked, ["person", "car"], [line])
    small = cv2.resize(drawn, (960, 540), interpolation=cv2.INTER_AREA)
    cv2.imwrite(path, cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    log(f"wrote {path}")


def video_loop(frames: int = 90, repeat: int = 3) -> str:
    """yolo_video.py's loop with and without --track bytetrack, on a rendered synthetic video, yolov3-tiny
    at 416 with random weights (detection costs what it costs with real ones); nothing is drawn or written,
    so that both loops do the same work but the tracking (with drawing, the untracked loop would draw
    every random box, the tracked one only the confirmed tracks). Best of ``repeat`` interleaved runs.
    Returns the markdown paragraph."""
    import cv2

    import yolo3
    from yolo3.inference.tracking_video import track_video
    from yolo3.inference.video import process_video

    seq = generate("crowd", 5, frames)
    detector = yolo3.Detector(yolo3.create_model("tiny", num_classes=2), class_names=["person", "car"],
                              score_threshold=0.1, input_size=(416, 416))
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.avi")
        writer = cv2.VideoWriter(src, cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (1280, 720))
        for frame in range(1, frames + 1):
            writer.write(cv2.cvtColor(render(seq, frame), cv2.COLOR_RGB2BGR))
        writer.release()
        best = {"detect": 0.0, "detect + track": 0.0}
        for _ in range(repeat):
            for name in best:
                if name == "detect":
                    stats = process_video(detector, src, progress=False, records=[])
                else:
                    tracking = VideoTracking(make_tracker("bytetrack"), trails=30, lines=[(0, 360, 1280, 360)])
                    stats = track_video(detector, src, tracking, progress=False, records=[])
                best[name] = max(best[name], stats.fps)
                log(f"video loop {name}: {stats.fps:.2f} frames/s")
    ratio = best["detect + track"] / best["detect"]
    return ("### Video loop with tracking\n\n"
            f"`yolo3.inference.video.process_video` against `track_video` (ByteTrack, 30-point trails, a counting "
            f"line, JSON records with track ids; nothing drawn or written by either) on a rendered 1280x720 `crowd` "
            f"video of {frames} frames (about 45 objects a frame), yolov3-tiny at 416 (random weights, score "
            f"threshold 0.1: up to 100 boxes a frame for the tracker); best of {repeat} interleaved runs: "
            f"{best['detect']:.2f} frames/s without tracking, {best['detect + track']:.2f} with it, "
            f"ratio **{ratio:.3f}** (goal >= 0.95).")


def goals(scores: dict) -> str:
    """Issue 15's goals checked on one table: HOTA differences to ``trackers`` (percentage points)."""
    if not all("trackers bytetrack" in by for by in scores.values()):
        return ""
    def diff(preset, ours, theirs):
        return 100 * (scores[preset][ours]["HOTA"] - scores[preset][theirs]["HOTA"])
    bt = ", ".join(f"{p} {diff(p, 'yolo3 bytetrack', 'trackers bytetrack'):+.2f}" for p in scores)
    same = ", ".join(f"{p} {diff(p, 'yolo3 sort-trackers-filter', 'trackers sort'):+.2f}" for p in scores)
    sort = ", ".join(f"{p} {diff(p, 'yolo3 sort-detection-boxes', 'trackers sort'):+.2f}" for p in scores)
    text = (f"Our ByteTrack minus `trackers` ByteTrack, HOTA: {bt} (goal: >= -0.5 everywhere, >= +2 on crowd "
            f"and occlusion). Our SORT with `trackers`' Kalman noise, reporting detection boxes, minus `trackers` "
            f"SORT: {same} (the sanity check; goal within 1). With our default noise (scaled to the box, "
            f"ByteTrack's) instead: {sort}: the whole difference between the two SORTs is the filter's noise.")
    if "crossing" in scores:
        text += (f" Id switches on crossing: ours {scores['crossing']['yolo3 bytetrack']['IDSW']}, `trackers` "
                 f"{scores['crossing']['trackers bytetrack']['IDSW']} (goal: fewer).")
    return text


CONTENDERS = ("Contenders, all on the same synthetic detections (`yolo3.tracking.synthetic`, see "
              "[tracking.md](tracking.md#the-synthetic-benchmark)) and scored by the same evaluator "
              "(`yolo3.tracking.metrics`, equal to TrackEval's): **yolo3 bytetrack** and **yolo3 sort** with their "
              "defaults (Kalman-filtered boxes); **yolo3 sort-detection-boxes**, our SORT reporting the matched "
              "detection's box, as `trackers` does; **yolo3 sort-trackers-filter**, that and `trackers`' SORT Kalman "
              "noise (`motion_noise=\"constant\"`: process 0.01, measurement 0.1, initial covariance 1, pixels "
              "squared, against our default scaled to the box size), the like-for-like sanity check; "
              "**trackers bytetrack** and "
              "**trackers sort**, Roboflow's `trackers` 2.6.1 with its defaults, run in their own virtual environment "
              "(`python3 -m venv /tmp/trackers-venv && /tmp/trackers-venv/bin/pip install trackers==2.6.1`: it "
              "installs opencv-python) through `benchmarks/trackers_adapter.py`; **naive iou**, each detection "
              "scoring >= 0.5 takes the id of the previous frame's box it overlaps most (IoU >= 0.3), no motion "
              "model, no memory.")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[1, 2, 3], help="the seeds the defaults were tuned on")
    ap.add_argument("--check-seeds", nargs="*", type=int, default=[101, 102, 103],
                    help="seeds the defaults were not tuned on")
    ap.add_argument("--frames", type=int, default=450, help="frames a sequence (15 s at 30 fps)")
    ap.add_argument("--repeat", type=int, default=7, help="rounds of the speed measurement (0: none)")
    ap.add_argument("--trackers-python", default=None, help="Python of an environment with trackers 2.6.1")
    ap.add_argument("--out", default=None, help="markdown file whose 'tracking' section gets the results")
    ap.add_argument("--video-loop", action="store_true", help="also time yolo_video.py's loop with and without "
                    "tracking (needs TensorFlow)")
    ap.add_argument("--picture", default=None, metavar="JPG", help="only draw the README's tracking picture")
    args = ap.parse_args()
    if args.picture:
        picture(args.picture)
        return 0
    contenders = ["yolo3 bytetrack", "yolo3 sort", "yolo3 sort-detection-boxes", "yolo3 sort-trackers-filter",
                  "naive iou"]
    if args.trackers_python:
        contenders[4:4] = ["trackers bytetrack", "trackers sort"]
    sections = []
    with tempfile.TemporaryDirectory() as root:
        for label, seeds in (("tuning seeds", args.seeds), ("other seeds", args.check_seeds)):
            if not seeds:
                continue
            files = make_data(os.path.join(root, label.split()[0]), args.presets, seeds, args.frames)
            scores = evaluate(os.path.join(root, label.split()[0]), contenders, files, args.trackers_python)
            note = (f"Seeds {', '.join(map(str, seeds))}, {args.frames} frames a sequence each, the sequences of a "
                    "preset combined (TrackEval's way); HOTA, DetA, AssA, MOTA, IDF1 in percent.")
            sections.append(markdown(f"Synthetic presets, {label}", scores, note) + "\n\n" + goals(scores))
        if args.repeat:
            sections.append(speed(root, [c for c in contenders if "sort-" not in c],
                                  args.trackers_python, args.repeat, args.frames))
    if args.video_loop:
        sections.append(video_loop())
    command = ("python benchmarks/bench_tracking.py --trackers-python /tmp/trackers-venv/bin/python --video-loop "
               "--out docs/benchmarks.md")
    text = "\n\n".join([f"## Tracking\n\n`{command}` on {datetime.date.today()}. " + CONTENDERS,
                        f"Machine: {machine()}.", *sections])
    print(text)
    if args.out:
        update_section(args.out, "tracking", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
