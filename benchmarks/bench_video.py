#!/usr/bin/env python3
"""Video loop speed: frames per second of yolo_video.py's whole loop (read, detect, draw, encode)
against the detector's own rate on the same, already decoded frames.

    python benchmarks/bench_video.py --out docs/benchmarks.md

A test video is generated (sample pictures panning, MJPG .avi). Three measurements, interleaved
over the repetitions: ``model`` = Detector.detect on pre-decoded RGB frames in the same batches;
``loop`` = yolo3.inference.video.process_video writing an .mp4 with the detections drawn (reader and writer
threads overlap inference); ``sequential`` = the same work in one thread, for comparison.
The goal is loop >= 90% of model.

Each measurement also counts the process's CPU time (all threads). Where the cores are few the loop
is bound by the CPU time of inference and frame I/O together, so the table also gives the frame I/O
alone (``io``: decode, BGR->RGB, draw the model's detections, RGB->BGR, encode, one thread) and the
CPU-bound ceiling ``cores / (model CPU + io CPU)`` a frame (at most the model's own rate): loop /
ceiling near 1 means the threads overlap as well as the machine allows.
"""
from __future__ import annotations

import argparse
import datetime
import os
import resource
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


def cpu_seconds() -> float:
    """CPU time of this process so far, all threads, user + system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(run, *args) -> tuple[float, float]:
    """(frames/s, CPU seconds a frame) of ``run(*args)``, which returns the frames it handled."""
    start, cpu = time.perf_counter(), cpu_seconds()
    frames = run(*args)
    return frames / (time.perf_counter() - start), (cpu_seconds() - cpu) / frames


def model_rate(detector, frames, batch_size) -> int:
    """Detector.detect on decoded frames; returns the frame count (see :func:`timed`)."""
    for i in range(0, len(frames), batch_size):
        detector.detect(frames[i:i + batch_size], pad_multiple=1)
    return len(frames)


def loop_rate(detector, src, dst, batch_size) -> int:
    """yolo3.inference.video.process_video writing ``dst``; returns the frame count."""
    from yolo3.inference.video import process_video

    return process_video(detector, src, output=dst, batch_size=batch_size, progress=False).frames


def io_rate(detector, src, dst, detections) -> int:
    """The loop's frame I/O alone, in one thread: decode, BGR->RGB, draw ``detections`` (one a frame),
    RGB->BGR, encode; returns the frame count."""
    from yolo3.inference.video import open_writer, source_fps

    capture = cv2.VideoCapture(src)
    writer, count = None, 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        image = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        if writer is None:
            writer = open_writer(dst, source_fps(capture), (image.shape[1], image.shape[0]))
        drawn = detector.draw(image, detections[count % len(detections)])
        writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR, dst=drawn))
        count += 1
    capture.release()
    writer.release()
    return count


def sequential_rate(detector, src, dst, batch_size) -> int:
    """The loop without threads: read a batch, detect, draw, write; returns the frame count."""
    from yolo3.inference.video import open_writer, source_fps

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
            drawn = detector.draw(image, det)
            writer.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR, dst=drawn))
            count += 1
    capture.release()
    writer.release()
    return count


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
        detections = [detector.detect([frame])[0] for frame in frames[:8]]
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        for batch in args.batch_sizes:
            detector.detect(frames[:batch], pad_multiple=1)  # compile for this batch size
            runs = {"model": [], "loop": [], "sequential": [], "io": []}
            for _ in range(args.reps):
                runs["model"].append(timed(model_rate, detector, frames, batch))
                runs["loop"].append(timed(loop_rate, detector, src, dst, batch))
                runs["sequential"].append(timed(sequential_rate, detector, src, dst, batch))
                runs["io"].append(timed(io_rate, detector, src, dst, detections))
            best = {k: max(v)[0] for k, v in runs.items()}
            cpu = {k: float(np.median([c for _, c in v])) for k, v in runs.items()}  # CPU seconds a frame
            best["ceiling"] = min(best["model"], cores / (cpu["model"] + cpu["io"]))
            log(f"batch {batch}: " + ", ".join(f"{k} {v:.1f} frames/s" for k, v in best.items())
                + f"; loop/model {best['loop'] / best['model']:.2f}, "
                + f"loop/ceiling {best['loop'] / best['ceiling']:.2f}; "
                + "CPU ms a frame " + ", ".join(f"{k} {v * 1e3:.2f}" for k, v in cpu.items()))
            rows.append((batch, best, cpu))
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
        "| sequential / model | model CPU ms a frame | frame I/O CPU ms | CPU-bound ceiling / model | loop / ceiling |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for batch, best, cpu in rows:
        table.append(f"| {batch} | {best['model']:.1f} | {best['loop']:.1f} | {best['loop'] / best['model']:.2f} | "
                     f"{best['sequential']:.1f} | {best['sequential'] / best['model']:.2f} | "
                     f"{cpu['model'] * 1e3:.1f} | {cpu['io'] * 1e3:.1f} | "
                     f"{best['ceiling'] / best['model']:.2f} | {best['loop'] / best['ceiling']:.2f} |")
    table += ["", "model = `Detector.detect` on frames decoded beforehand (the model's own rate); whole loop = "
              "`yolo3.inference.video.process_video` (decode, BGR->RGB, detect, draw, encode, with reader and writer "
              "threads); sequential = the same steps in one thread; frame I/O = those steps without the model, "
              f"one thread; CPU-bound ceiling = {cores} cores / (model + frame I/O CPU time a frame), at most the "
              "model's rate. Goal: loop / model >= 0.90."]
    if args.out:
        update_section(args.out, "bench_video", "\n".join(table))
        log(f"wrote {args.out}")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
