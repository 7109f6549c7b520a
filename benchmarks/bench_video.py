#!/usr/bin/env python3
"""Video loop speed: frames per second of yolo_video.py's whole loop (read, detect, draw, encode)
against the detector's own rate on the same, already decoded frames.

    python benchmarks/bench_video.py --out docs/benchmarks.md

A test video is generated (sample pictures panning, MJPG .avi). Three measurements, interleaved
over the repetitions: ``model`` = Detector.detect on pre-decoded RGB frames in the same batches;
``loop`` = yolo3.inference.video.process_video writing an .mp4 with the detections drawn (reader and writer
threads overlap inference); ``sequential`` = the same work in one thread, for comparison.
The goal is loop >= 90% of model.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import cv2  # noqa: E402
import numpy as np  # noqa: E402
from bench_detect import SHARED, cfg_path, log, machine_note, update_section, weights_for  # noqa: E402


def make_video(path: str, frames: int, size: tuple[int, int], fps: float) -> None:
    folder = SHARED / "darknet" / "images"
    pictures = [cv2.imread(str(p)) for p in sorted(folder.glob("*.jpg"))] if folder.exists() else []
    if not pictures:
        rng = np.random.default_rng(0)
        pictures = [rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)]
    w, h = size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    per_picture = max(frames // len(pictures), 1)
    for i in range(frames):
        base = cv2.resize(pictures[(i // per_picture) % len(pictures)], (w + 64, h + 64))
        dx = dy = (i % per_picture) * 64 // per_picture
        writer.write(np.ascontiguousarray(base[dy:dy + h, dx:dx + w]))
    writer.release()


def decoded_frames(path: str) -> list[np.ndarray]:
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames


def model_rate(detector, frames, batch_size) -> float:
    start = time.perf_counter()
    for i in range(0, len(frames), batch_size):
        detector.detect(frames[i:i + batch_size], pad_multiple=1)
    return len(frames) / (time.perf_counter() - start)


def sequential_rate(detector, src, dst, batch_size) -> float:
    """The loop without threads: read a batch, detect, draw, write."""
    from yolo3.inference.video import open_writer, source_fps

    start = time.perf_counter()
    capture = cv2.VideoCapture(src)
    writer, count = None, 0
    while True:
        batch = []
        for _ in range(batch_size):
            ok, frame = capture.read()
            if not ok:
                break
            batch.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        if not batch:
            break
        for image, det in zip(batch, detector.detect(batch, pad_multiple=1)):
            if writer is None:
                writer = open_writer(dst, source_fps(capture), (image.shape[1], image.shape[0]))
            writer.write(cv2.cvtColor(detector.draw(image, det), cv2.COLOR_RGB2BGR))
            count += 1
    capture.release()
    writer.release()
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=("yolov3-tiny", "yolov3"), default="yolov3-tiny",
                    help="yolov3 runs random weights (its timing does not depend on them)")
    ap.add_argument("--frames", type=int, default=96)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 4])
    ap.add_argument("--backend", choices=("tf", "onnxruntime", "openvino"), default="tf")
    ap.add_argument("--precision", choices=("fp32", "bf16", "int8"), default="fp32",
                    help="openvino only; int8 calibrates on the sample pictures")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=None, help="markdown file to update (e.g. docs/benchmarks.md)")
    args = ap.parse_args(argv)

    from yolo3.inference.detector import Detector
    from yolo3.inference.video import process_video
    from yolo3.modeling.darknet_weights import convert

    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        cfg = cfg_path(args.model)
        weights, note = weights_for(args.model, cfg, workdir)
        options = {} if args.precision == "fp32" else {"precision": args.precision, "cache_dir": workdir}
        if args.precision == "int8":
            options["calibration"] = str(SHARED / "darknet" / "images")
        detector = Detector(convert(cfg, weights, progress=False), backend=args.backend, input_size=416, **options)
        src = os.path.join(workdir, "in.avi")
        make_video(src, args.frames, (args.width, args.height), 25.0)
        frames = decoded_frames(src)
        dst = os.path.join(workdir, "out.mp4")
        for batch in args.batch_sizes:
            detector.detect(frames[:batch], pad_multiple=1)  # compile for this batch size
            rates = {"model": [], "loop": [], "sequential": []}
            for _ in range(args.reps):
                rates["model"].append(model_rate(detector, frames, batch))
                rates["loop"].append(process_video(detector, src, output=dst, batch_size=batch, progress=False).fps)
                rates["sequential"].append(sequential_rate(detector, src, dst, batch))
            best = {k: max(v) for k, v in rates.items()}
            log(f"batch {batch}: " + ", ".join(f"{k} {v:.1f} frames/s" for k, v in best.items())
                + f"; loop/model {best['loop'] / best['model']:.2f}")
            rows.append((batch, best))
    table = [
        "### Video loop (yolo_video.py --input)",
        "",
        f"`python benchmarks/bench_video.py` on {datetime.date.today()}: {args.model} ({note}) at 416, "
        f"backend {args.backend}"
        f"{'' if args.precision == 'fp32' else ' ' + args.precision}, a generated {args.width}x{args.height} "
        f"MJPG video of {args.frames} frames "
        f"written back as mp4v with the detections drawn; best of {args.reps} interleaved runs.",
        "",
        f"Machine: {machine_note()}.",
        "",
        "| batch | model frames/s | whole loop frames/s | loop / model | sequential loop frames/s "
        "| sequential / model |",
        "|---|---|---|---|---|---|",
    ]
    for batch, best in rows:
        table.append(f"| {batch} | {best['model']:.1f} | {best['loop']:.1f} | {best['loop'] / best['model']:.2f} | "
                     f"{best['sequential']:.1f} | {best['sequential'] / best['model']:.2f} |")
    table += ["", "model = `Detector.detect` on frames decoded beforehand (the model's own rate); whole loop = "
              "`yolo3.inference.video.process_video` (decode, BGR->RGB, detect, draw, encode, with reader and writer "
              "threads); sequential = the same steps in one thread. Goal: loop / model >= 0.90."]
    if args.out:
        update_section(args.out, "bench_video", "\n".join(table))
        log(f"wrote {args.out}")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
