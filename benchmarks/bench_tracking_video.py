"""Tracking end to end with a trained detector: rendered synthetic video -> yolo_video.py (a YOLOv3-tiny
trained by train.py on rendered frames) -> ByteTrack -> MOTChallenge file -> HOTA against the ground truth.

    python benchmarks/bench_tracking_video.py --out /tmp/bench_track_video [--epochs 3 12] [--input-size 512]

Steps, each through the project's own scripts (what a user would run):

1. training data: frames of rendered synthetic sequences (``yolo3.tracking.synthetic.render``; presets
   basic, crossing and occlusion, seeds 201 and 202 for training, 203 for validation, every 10th frame)
   written as JPEGs with an annotation file of their ground-truth boxes (classes ``person``: tall boxes,
   ``car``: wide boxes; boxes less than a quarter visible are left out, boxes are clipped to the frame);
2. ``kmeans.py`` (6 anchors at the input size), then ``train.py --model tiny`` from Darknet's COCO
   yolov3-tiny with the README's defaults (only paths, ``--input-size``, ``--epochs`` given), then
   ``eval.py`` on the validation frames (mAP@0.5);
3. for each preset, a sequence of another seed (1, the tracking benchmark's first) rendered to an MJPG
   video, tracked by ``yolo_video.py --track bytetrack --mot-out`` (``--score 0.1``: ByteTrack's second
   matching wants the low scores) and scored by ``yolo3.tracking.evaluate``;
4. for comparison, on the same sequences: ByteTrack on the synthetic noisy detector's detections
   (``det/det.txt``, what bench_tracking.py measures) and on the ground-truth boxes themselves (score 1:
   the tracker's ceiling on perfect detections).

Prints a markdown table (HOTA, DetA, AssA, MOTA, IDF1, IDSW in percent / counts) and writes
``<out>/result.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_convergence import coco_tiny, run  # noqa: E402  (the same steps: run a script, log it, stop on failure)

TRAIN_PRESETS = ("basic", "crossing", "occlusion")
CLASSES = ("person", "car")


def write_frames(folder: str, annotation: str, seeds: list[int], frames: int, every: int) -> int:
    """Render every ``every``-th frame of each (preset, seed) as a JPEG under ``folder`` and write the
    annotation file (``path x1,y1,x2,y2,class ...``, ground truth at least a quarter visible, clipped)."""
    import cv2

    from yolo3.tracking.synthetic import PRESETS, generate, render

    os.makedirs(folder, exist_ok=True)
    lines = []
    for preset in TRAIN_PRESETS:
        for seed in seeds:
            seq = generate(preset, seed, frames)
            p = PRESETS[preset]
            for frame in range(1, frames + 1, every):
                rows = np.flatnonzero((seq.gt.frames == frame) & (seq.visibility >= 0.25))
                boxes = np.clip(seq.gt.boxes[rows], 0, [p.width - 1, p.height - 1, p.width - 1, p.height - 1])
                keep = (boxes[:, 2] - boxes[:, 0] >= 2) & (boxes[:, 3] - boxes[:, 1] >= 2)
                path = os.path.join(folder, f"{preset}-{seed}-{frame:04d}.jpg")
                cv2.imwrite(path, cv2.cvtColor(render(seq, frame), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
                objs = [f"{int(x1)},{int(y1)},{int(np.ceil(x2))},{int(np.ceil(y2))},{int(c)}"
                        for (x1, y1, x2, y2), c in zip(boxes[keep], seq.gt.classes[rows][keep])]
                lines.append(" ".join([path, *objs]) + "\n")
    with open(annotation, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return len(lines)


def track_rows(det, tracker) -> list[str]:
    """MOTChallenge lines of ``tracker`` run over the detection rows ``det`` (a MotRows)."""
    from yolo3.tracking.mot import iter_frames

    lines = []
    for frame, index in iter_frames(det):
        out = tracker.update(det.boxes[index], det.scores[index], det.classes[index])
        for (x1, y1, x2, y2), ident, score in zip(out.boxes.tolist(), out.ids.tolist(), out.scores.tolist()):
            lines.append(f"{frame},{ident},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4f},-1,-1,-1\n")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="/tmp/bench_tracking_video", help="work folder")
    ap.add_argument("--input-size", type=int, default=512, help="network input (boxes are 24-56 px wide at 1280)")
    ap.add_argument("--epochs", type=int, nargs=2, default=[3, 12], help="train.py --epochs")
    ap.add_argument("--frames", type=int, default=300, help="frames of each tracked sequence")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more train.py flags")
    args = ap.parse_args()

    from yolo3.tracking import make_tracker
    from yolo3.tracking.evaluate import evaluate_paths
    from yolo3.tracking.mot import MotRows, read_mot, write_mot
    from yolo3.tracking.synthetic import generate, render, write_sequence

    out = os.path.abspath(args.out)
    data, logs = os.path.join(out, "data"), os.path.join(out, "logs")
    os.makedirs(logs, exist_ok=True)
    classes = os.path.join(data, "classes.txt")
    train_ann, val_ann = os.path.join(data, "train.txt"), os.path.join(data, "val.txt")
    model = os.path.join(logs, "trained_final.keras")
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = re.search(r"Model name:\s*(.*)", cpu)
    flags = sorted(set(re.findall(r"\b(avx512\w*|amx\w*|avx2)\b", cpu)))
    machine = f"{name.group(1) if name else '?'}, {os.cpu_count()} cores, flags {' '.join(flags)}"
    print("CPU:", machine, flush=True)
    train_s = 0.0
    if not os.path.isfile(model):
        n_train = write_frames(os.path.join(data, "train"), train_ann, [201, 202], 450, 10)
        n_val = write_frames(os.path.join(data, "val"), val_ann, [203], 450, 10)
        with open(classes, "w", encoding="utf-8") as f:
            f.write("\n".join(CLASSES) + "\n")
        print(f"{n_train} training and {n_val} validation frames", flush=True)
        anchors = os.path.join(out, "anchors.txt")
        run([sys.executable, "kmeans.py", "--annotation", train_ann, "--num_clusters", "6", "--input-size",
             str(args.input_size), "--out_file", anchors, "--no-progress"], os.path.join(out, "kmeans.log"))
        weights = coco_tiny(out)
        train_s = run([sys.executable, "train.py", "--model", "tiny", "--annotation", train_ann, "--val-annotation",
                       val_ann, "--classes", classes, "--anchors", anchors, "--weights", weights, "--input-size",
                       str(args.input_size), "--epochs", *map(str, args.epochs), "--log-dir", logs, "--verbose", "2",
                       *args.extra], os.path.join(out, "train.log"))
    eval_json = os.path.join(out, "eval.json")
    run([sys.executable, "eval.py", "--model", model, "--annotation", val_ann, "--classes", classes, "--size",
         str(args.input_size), "--no-coco", "--no-progress", "--json", eval_json, "--out", os.path.join(out, "eval")],
        os.path.join(out, "eval.log"))
    val_map = float(json.load(open(eval_json, encoding="utf-8"))["mAP"])

    import cv2

    results = {}
    for preset in TRAIN_PRESETS:
        mot_root = os.path.join(out, "mot", preset)  # one sequence a folder: evaluate_paths reads all of them
        seq = generate(preset, 1, args.frames)
        name = f"{preset}-1"
        write_sequence(mot_root, name, seq)
        video = os.path.join(out, f"{name}.avi")
        writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (seq.preset.width, seq.preset.height))
        for frame in range(1, args.frames + 1):
            writer.write(cv2.cvtColor(render(seq, frame), cv2.COLOR_RGB2BGR))
        writer.release()
        per = {}
        tracks = os.path.join(out, "tracks", "trained detector", preset)
        os.makedirs(tracks, exist_ok=True)
        run([sys.executable, "yolo_video.py", "--model", model, "--classes", classes, "--input", video,
             "--size", str(args.input_size), "--score", "0.1", "--track", "bytetrack", "--mot-out",
             os.path.join(tracks, f"{name}.txt"), "-q"], os.path.join(out, f"video-{preset}.log"))
        per["trained detector + bytetrack"] = evaluate_paths(os.path.join(mot_root), tracks)[name]
        gt = read_mot(os.path.join(mot_root, name, "gt", "gt.txt"), "gt")
        perfect = MotRows(gt.frames, np.full(len(gt.frames), -1), gt.boxes, np.ones(len(gt.frames)), gt.classes)
        for label, det in (("synthetic noisy detections + bytetrack", read_mot(os.path.join(mot_root, name, "det",
                                                                                             "det.txt"))),
                           ("ground-truth boxes + bytetrack", perfect)):
            folder = os.path.join(out, "tracks", label, preset)
            os.makedirs(folder, exist_ok=True)
            write_mot(os.path.join(folder, f"{name}.txt"), track_rows(det, make_tracker("bytetrack")))
            per[label] = evaluate_paths(os.path.join(mot_root), folder)[name]
        results[preset] = per

    lines = [f"Machine: {machine}. Detector: YOLOv3-tiny from COCO weights, trained by train.py on "
             f"rendered frames (input {args.input_size}, --epochs {' '.join(map(str, args.epochs))}"
             f"{', ' + ' '.join(args.extra) if args.extra else ''}; {train_s / 60:.1f} min of training), "
             f"validation mAP@0.5 {val_map:.3f} (eval.py); tracked sequences seed 1, {args.frames} frames.", "",
             "| preset | detections + tracker | HOTA | DetA | AssA | MOTA | IDF1 | IDSW |",
             "|---|---|---|---|---|---|---|---|"]
    for preset, per in results.items():
        for label, m in per.items():
            lines.append(f"| {preset} | {label} | " + " | ".join(f"{100 * m[k]:.2f}" for k in
                                                                ("HOTA", "DetA", "AssA", "MOTA", "IDF1"))
                         + f" | {m['IDSW']} |")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(out, "result.json"), "w", encoding="utf-8") as f:
        json.dump({"machine": machine, "val_map50": val_map, "train_seconds": train_s, "settings": vars(args),
                   "results": {p: {k: {m: float(v) for m, v in d.items()} for k, d in per.items()}
                               for p, per in results.items()}, "markdown": text}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
