#!/usr/bin/env python3
"""End-to-end detection speed (decoded RGB picture -> final boxes): yolo3's Detector (TF backend and
ONNX Runtime backend) against OpenCV DNN 4.x (cv2.dnn.readNetFromDarknet + NMSBoxesBatched) and
against ONNX Runtime running the bare network (the same network written as ONNX by yolo3.backends.onnx_export, fed an
already letterboxed float batch: the floor for any pipeline built on it). Where openvino is installed, also
OpenVINO Runtime's bare network at fp32, bf16 (only where the CPU has bfloat16 units: elsewhere it would be
fp32 again) and int8 (NNCF, calibrated on the sample pictures) and yolo3's openvino backend at each of them.

    python benchmarks/bench_detect.py                   # yolov3-tiny and yolov3 at 416, batch 1 and 8
    python benchmarks/bench_detect.py --models yolov3-tiny --reps 5 --out docs/benchmarks.md
    python benchmarks/bench_detect.py --separate        # each runtime in its own process

All contenders run in one process with interleaved repetitions (A B C D A B C D ...), and the
best time per call is reported (the least disturbed one on a shared machine); ratios are what to read.
With ``--separate`` each runtime (tf, onnxruntime, opencv, and openvino once per precision) runs in a
child process of its own, one after the other: on a CPU of few cores the thread pools of the other
runtimes (ONNX Runtime's spinning threads above all) otherwise slow the one being timed, which is not
what a user running one backend sees. A bare network is its detector's own ONNX Runtime session, or
its detector's own OpenVINO network for that batch size, fed the letterboxed batch, so a detector and its
network are measured side by side either way.
yolov3-tiny uses the real weights (yolo3.modeling.pretrained.fetch_weights; random ones if that fails);
yolov3 uses random Darknet weights from ../shared/oracle/make_random_weights.py (the timing of a
network does not depend on its weight values).
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cfg_path(name: str) -> str:
    for candidate in (SHARED / "darknet" / "cfg" / f"{name}.cfg", ROOT / "yolo3" / "resources" / f"{name}.cfg"):
        if candidate.exists():
            return str(candidate)
    raise SystemExit(f"no cfg for {name}")


def weights_for(name: str, cfg: str, workdir: str) -> tuple[str, str]:
    """(path, description) of Darknet weights for ``name``."""
    if name == "yolov3-tiny":
        try:
            from yolo3.modeling.pretrained import fetch_weights

            return fetch_weights("yolov3-tiny", quiet=True), "real weights"
        except Exception as exc:  # noqa: BLE001 - fall back to random weights
            log(f"real yolov3-tiny weights unavailable ({exc}); using random weights")
    script = SHARED / "oracle" / "make_random_weights.py"
    if not script.exists():
        raise SystemExit(f"{script} is needed for random {name} weights")
    spec = importlib.util.spec_from_file_location("make_random_weights", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = bytearray(module.make_weights(cfg, seed=0))
    # Random heads give objectness ~0.5 everywhere: hundreds of thousands of (box, class) candidates
    # that would make NMS, not the network, the bench. Lower the objectness biases so that, as with
    # trained weights, a few dozen candidates pass 0.25.
    sections = module.parse_cfg(cfg)
    offset = 4 * 5  # header: 3 int32 + int64
    for idx, n, c, g, k, bn, _ in module.conv_shapes(cfg):
        if idx + 2 < len(sections) and sections[idx + 2][0] == "yolo":
            yolo = sections[idx + 2][1]
            per_anchor = n // len(yolo["mask"].split(","))
            biases = np.frombuffer(data, "<f4", count=n, offset=offset).copy()
            biases[4::per_anchor] = -4.0
            data[offset:offset + 4 * n] = biases.tobytes()
        offset += 4 * (n * (4 if bn else 1) + n * (c // g) * k * k)
    path = os.path.join(workdir, f"{name}-random.weights")
    with open(path, "wb") as f:
        f.write(bytes(data))
    return path, "random weights (make_random_weights.py, seed 0, objectness biases set to -4)"


def sample_images() -> list[np.ndarray]:
    from yolo3.datasets.imageio import read_image_rgb

    folder = SHARED / "darknet" / "images"
    paths = sorted(folder.glob("*.jpg")) if folder.exists() else []
    if paths:
        return [read_image_rgb(p) for p in paths]
    rng = np.random.default_rng(0)  # no reference pictures: synthetic ones of typical sizes
    return [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in [(576, 768), (424, 640), (480, 640)]]


class OpenCVDetector:
    """The usual OpenCV DNN pipeline: blobFromImages (plain resize, RGB, /255) -> forward ->
    score filter -> per-class NMS (NMSBoxesBatched), boxes scaled back to each picture."""

    def __init__(self, cfg: str, weights: str, size: int, score: float = 0.25, iou: float = 0.45):
        self.net = cv2.dnn.readNetFromDarknet(cfg, weights)
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        self.outputs = self.net.getUnconnectedOutLayersNames()
        self.size, self.score, self.iou = size, score, iou

    def detect(self, images: list[np.ndarray]):
        blob = cv2.dnn.blobFromImages(images, 1 / 255.0, (self.size, self.size), swapRB=False, crop=False)
        self.net.setInput(blob)
        outs = self.net.forward(self.outputs)
        results = []
        for b, image in enumerate(images):
            rows = np.concatenate([o.reshape(len(images), -1, o.shape[-1])[b] for o in outs])
            scores = rows[:, 5:]
            idx, cls = np.nonzero(scores > self.score)
            h, w = image.shape[:2]
            cx, cy, bw, bh = (rows[idx, k] for k in range(4))
            boxes = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h], 1)
            keep = cv2.dnn.NMSBoxesBatched(boxes.tolist(), scores[idx, cls].tolist(), cls.tolist(),
                                           self.score, self.iou) if len(idx) else []
            results.append((boxes[np.asarray(keep, int)], cls[np.asarray(keep, int)]))
        return results


#: the contender groups; --separate gives each its own process (openvino: one per precision)
RUNTIMES = ("tf", "onnxruntime", "opencv", "openvino-fp32", "openvino-bf16", "openvino-int8")


def bench_model(name: str, sizes: list[int], batches: list[int], reps: int, workdir: str, images,
                runtimes=RUNTIMES) -> list[dict]:
    from yolo3.backends.onnx_export import export_onnx, save_onnx
    from yolo3.core.detections import EXACT_AFTER, BatchDetector
    from yolo3.inference.detector import Detector
    from yolo3.modeling.darknet_weights import convert
    from yolo3.ops.letterbox import letterbox, stack_images

    cfg = cfg_path(name)
    weights, weights_note = weights_for(name, cfg, workdir)
    log(f"{name}: converting ({weights_note})")
    model = convert(cfg, weights, progress=False)
    rows = []
    for size in sizes:
        onnx_path = os.path.join(workdir, f"{name}-{size}.onnx")
        t = time.perf_counter()
        save_onnx(export_onnx(model, input_size=(size, size)), onnx_path)
        log(f"{name}@{size}: ONNX export {time.perf_counter() - t:.1f} s")
        contenders = {}  # name -> (kind, runner): a "detector" runs on pictures, a "bare" network on the batch
        for runtime in runtimes:
            if runtime == "tf":
                contenders["yolo3 tf"] = ("detector", Detector(model, size=size))
            elif runtime == "onnxruntime":
                contenders.update(onnxruntime_contenders(onnx_path, size))
            elif runtime == "opencv":
                contenders["opencv dnn"] = ("detector", OpenCVDetector(cfg, weights, size))
            elif runtime.split("-")[1] in openvino_precisions():
                contenders.update(openvino_contenders(onnx_path, size, workdir, [runtime.split("-")[1]]))
        for batch in batches:
            pics = [images[i % len(images)] for i in range(batch)]
            if batch == 1:
                pics = [images[0]]
            packed, hw = stack_images(pics)
            letterboxed = letterbox(packed, hw, (size, size)).numpy()
            calls = {key: ((lambda pics=pics, det=runner: det.detect(pics)) if kind == "detector"
                           else (lambda batch=letterboxed, net=runner: net(batch)))
                     for key, (kind, runner) in contenders.items()}
            t = time.perf_counter()
            for key, fn in calls.items():  # warm-up: tracing, XLA compilation, first allocations, and
                # for yolo3's detectors the steady state of a repeated picture size (EXACT_AFTER calls)
                for _ in range(EXACT_AFTER + 1 if isinstance(contenders[key][1], BatchDetector) else 2):
                    fn()
            log(f"{name}@{size} batch {batch}: warm-up {time.perf_counter() - t:.1f} s")
            times = {k: [] for k in calls}
            for _ in range(reps):
                for key, fn in calls.items():
                    t = time.perf_counter()
                    fn()
                    times[key].append(time.perf_counter() - t)
            med = {k: min(v) / batch for k, v in times.items()}
            log(f"{name}@{size} batch {batch}: " + ", ".join(f"{k} {v * 1000:.1f} ms/img" for k, v in med.items()))
            rows.append({"model": name, "size": size, "batch": batch, "weights": weights_note, "ms": med})
    return rows


def onnxruntime_contenders(onnx_path: str, size: int) -> dict:
    """yolo3's onnxruntime backend, and its own ONNX Runtime session timed alone as the bare network: a
    second session would bring a second thread pool, whose threads spin after each run and take the
    cores from the first (tiny at batch 1 on 2 cores: 28 ms instead of 14)."""
    from yolo3.inference.detector import Detector

    detector = Detector(onnx_path, size=size, backend="onnxruntime")
    return {"yolo3 onnxruntime": ("detector", detector), "onnxruntime bare network": ("bare", detector._onnx)}


def bench_separately(args) -> list[dict]:
    """Each runtime in a child process of its own (``--runtimes X --json F``), one after the other,
    rows merged: no thread pool of another runtime shares the cores with the one being timed."""
    import json
    import subprocess

    merged: dict[tuple, dict] = {}
    precisions = openvino_precisions()  # a child for a precision this machine lacks would only convert
    with tempfile.TemporaryDirectory() as folder:
        for runtime in [r for r in RUNTIMES if not r.startswith("openvino-") or r.split("-")[1] in precisions]:
            out = os.path.join(folder, f"{runtime}.json")
            cmd = [sys.executable, __file__, "--runtimes", runtime, "--json", out, "--reps", str(args.reps),
                   "--models", *args.models, "--sizes", *map(str, args.sizes), "--batches", *map(str, args.batches)]
            log(f"--- {runtime}: its own process")
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            with open(out, encoding="utf-8") as f:
                rows = json.load(f)
            for row in rows:
                key = (row["model"], row["size"], row["batch"])
                merged.setdefault(key, {**row, "ms": {}})["ms"].update(row["ms"])
    return list(merged.values())


def openvino_precisions() -> list[str]:
    """fp32, bf16 where OpenVINO's CPU plugin has bfloat16 units, int8 where nncf is installed."""
    if importlib.util.find_spec("openvino") is None:
        return []
    import openvino as ov

    from yolo3.backends.openvino_runtime import cpu_has_bf16

    out = ["fp32"] + (["bf16"] if cpu_has_bf16(ov.Core()) else [])
    return out + (["int8"] if importlib.util.find_spec("nncf") is not None else [])


def openvino_contenders(onnx_path: str, size: int, workdir: str, precisions: list[str]) -> dict:
    """name -> ("bare", net(letterboxed batch)) or ("detector", Detector) for each of ``precisions``.
    The bare network is the detector's own compiled network (its int8 one for int8), for each batch size,
    fed the letterboxed float32 batch (:class:`BareOpenVino`): the ratio is what the letterbox and the
    decoding + NMS add."""
    from yolo3.inference.detector import Detector

    out = {}
    calibration = str(SHARED / "darknet" / "images")
    for precision in precisions:
        t = time.perf_counter()
        detector = Detector(onnx_path, size=size, backend="openvino", precision=precision, cache_dir=workdir,
                            calibration=calibration if precision == "int8" else None)
        out[f"openvino bare {precision}"] = ("bare", BareOpenVino(detector._openvino_run))
        out[f"yolo3 openvino {precision}"] = ("detector", detector)
        log(f"openvino {precision}@{size}: set-up {time.perf_counter() - t:.1f} s")
    return out


class BareOpenVino:
    """OpenVINO's bare network at one precision: the detector's own compiled network for each batch size
    (:meth:`yolo3.backends.openvino_runtime.OpenVinoPipeline.infer`), fed the letterboxed float32 batch.
    A second compiled copy would bring its own threads: alternating two copies of yolov3-tiny bf16 made
    each call 0.2-0.5 ms slower than calling one."""

    def __init__(self, pipeline):
        self.pipeline = pipeline

    def __call__(self, images):
        return self.pipeline.infer(images)


def cpu_flags() -> str:
    """The CPU flags that decide bfloat16 and int8 speed, present (+) or absent (-), from /proc/cpuinfo."""
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next(ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")))
    except (OSError, StopIteration):
        return "CPU flags unknown"
    return " ".join(("+" if flag in flags else "-") + flag for flag in wanted)


def machine_note() -> str:
    import tensorflow as tf

    versions = [f"Python {platform.python_version()}", f"TensorFlow {tf.__version__}",
                f"OpenCV {cv2.__version__}"]
    try:
        import onnx
        import onnxruntime

        versions += [f"onnxruntime {onnxruntime.__version__}", f"onnx {onnx.__version__}"]
    except ImportError:
        pass
    try:
        import openvino as ov

        versions += [f"openvino {ov.__version__.split('-')[0]} (CPU capabilities "
                     f"{'/'.join(ov.Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES'))})"]
        import nncf

        versions += [f"nncf {nncf.__version__}"]
    except ImportError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return (f"{cpu} ({cpu_flags()}), {os.cpu_count()} logical CPUs, {', '.join(versions)}"
            + (f"; 1-minute load average at the end {load[0]:.1f} (this benchmark's own threads included)"
               if load else ""))


HEADER = ("# Detection benchmarks\n\nWritten by `benchmarks/bench_detect.py` and `benchmarks/bench_video.py`; "
          "each section is replaced when its script runs again.\n")


def update_section(path: str, name: str, text: str) -> None:
    """Replace (or add) the section between ``<!-- name -->`` markers of the markdown file ``path``."""
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else HEADER
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in old and end in old:
        new = old[:old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(new if new.endswith("\n") else new + "\n")


def markdown_table(rows: list[dict], reps: int, separate: bool = False) -> str:
    lines = [
        "### End-to-end detection (decoded picture -> final boxes)",
        "",
        f"`python benchmarks/bench_detect.py{' --separate' if separate else ''}` on {datetime.date.today()}: "
        f"{reps} interleaved repetitions, "
        "best (minimum) time per call divided by the batch size (on a shared machine the minimum is the "
        "least disturbed measurement of each contender).",
        "",
        f"Machine: {machine_note()}.",
        "",
        ("Contenders, each runtime in a process of its own (the contenders of one runtime interleaved): "
         if separate else "Contenders, all in one process: ") + "**yolo3 tf** = `Detector` with the TensorFlow backend "
        "(letterbox + network + decoding + NMS in one `tf.function`; letterbox, network and decoding "
        "XLA-compiled, BatchNormalization folded into the convolutions); **yolo3 ort** = "
        "`Detector(backend=\"onnxruntime\")` (the same network written as ONNX by yolo3.backends.onnx_export "
        "and run by ONNX Runtime after the TF letterbox, then decoding/NMS in NumPy: "
        "yolo3.ops.postprocess_numpy); **opencv** = "
        "`cv2.dnn.readNetFromDarknet` with `blobFromImages` + `NMSBoxesBatched`; **ort bare** = yolo3 "
        "ort's own ONNX Runtime session on an already letterboxed float batch (the network only: a floor, "
        "not a detector). "
        "Batch 1 uses dog.jpg (768x576); batch 8 the sample pictures of several sizes.",
        "",
        "| model | size | batch | yolo3 tf ms/img | yolo3 ort ms/img | opencv ms/img | ort bare ms/img "
        "| tf / opencv | tf / ort bare | ort / opencv | ort / ort bare |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["ms"]
        tf_, ort, cv, bare = (m["yolo3 tf"], m["yolo3 onnxruntime"], m["opencv dnn"], m["onnxruntime bare network"])
        lines.append(f"| {r['model']} | {r['size']} | {r['batch']} | {tf_ * 1000:.1f} | {ort * 1000:.1f} | "
                     f"{cv * 1000:.1f} | {bare * 1000:.1f} | {tf_ / cv:.2f} | {tf_ / bare:.2f} | {ort / cv:.2f} | "
                     f"{ort / bare:.2f} |")
    lines += ["", "Ratios below 1 mean yolo3 is faster. Weights: " +
              "; ".join(sorted({f"{r['model']}: {r['weights']}" for r in rows})) + "."]
    return "\n".join(lines + openvino_table(rows))


def openvino_table(rows: list[dict]) -> list[str]:
    """The OpenVINO columns of the same runs: bare network and yolo3's openvino backend per precision."""
    precisions = [p for p in ("fp32", "bf16", "int8") if rows and f"openvino bare {p}" in rows[0]["ms"]]
    if not precisions:
        return []
    lines = ["", "OpenVINO, same runs (**ov bare** = yolo3 ov's own compiled network for the batch size, on the "
             "letterboxed float batch: the network only; **yolo3 ov** = "
             "`Detector(backend=\"openvino\", precision=...)`: at fp32 the TF letterbox, or for a picture size "
             "that repeats the same letterbox compiled into the network, OpenCV's at bf16 and int8, "
             "the network compiled for the batch size, decoding + per-class NMS in NumPy; int8 = NNCF "
             "post-training quantization calibrated on the sample pictures, head convolutions kept fp32" +
             ("" if "bf16" in precisions else "; bf16 not run: this CPU has no bfloat16 units, bf16 would run "
              "fp32") + "):", "",
             "| model | size | batch | " + " | ".join(f"ov bare {p} | yolo3 ov {p} | yolo3 ov / ov bare {p}"
                                                     for p in precisions)
             + " | ov bare fp32 / ort bare | yolo3 ov fp32 / yolo3 ort |",
             "|---|---|---" + "|---|---|---" * len(precisions) + "|---|---|"]
    for r in rows:
        m = r["ms"]
        cells = [f"{m[f'openvino bare {p}'] * 1000:.1f} | {m[f'yolo3 openvino {p}'] * 1000:.1f} | "
                 f"{m[f'yolo3 openvino {p}'] / m[f'openvino bare {p}']:.2f}" for p in precisions]
        lines.append(f"| {r['model']} | {r['size']} | {r['batch']} | " + " | ".join(cells) +
                     f" | {m['openvino bare fp32'] / m['onnxruntime bare network']:.2f} | "
                     f"{m['yolo3 openvino fp32'] / m['yolo3 onnxruntime']:.2f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["yolov3-tiny", "yolov3"], choices=["yolov3-tiny", "yolov3"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[416])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    ap.add_argument("--reps", type=int, default=7, help="interleaved repetitions per cell (default 7)")
    ap.add_argument("--out", default=None, help="markdown file for the table (e.g. docs/benchmarks.md)")
    ap.add_argument("--separate", action="store_true",
                    help="run each runtime in a process of its own (no other runtime's threads on the cores); "
                         "the default interleaves all of them in one process")
    ap.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES, help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None, help=argparse.SUPPRESS)  # a --separate child's rows
    args = ap.parse_args(argv)
    if args.separate:
        rows = bench_separately(args)
    else:
        images = sample_images()
        rows = []
        with tempfile.TemporaryDirectory() as workdir:
            for name in args.models:
                rows += bench_model(name, args.sizes, args.batches, args.reps, workdir, images, args.runtimes)
    if args.json:
        import json

        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f)
        return 0
    if args.out:
        update_section(args.out, "bench_detect", markdown_table(rows, args.reps, args.separate))
        log(f"wrote {args.out}")
    for r in rows:
        m = r["ms"]
        if not {"yolo3 tf", "opencv dnn", "yolo3 onnxruntime", "onnxruntime bare network"} <= set(m):
            print(f"{r['model']}@{r['size']} b{r['batch']}:" + "".join(  # some runtimes only (--runtimes)
                f"  ov-{p}/ov-bare-{p} {m[f'yolo3 openvino {p}'] / m[f'openvino bare {p}']:.2f}"
                for p in ("fp32", "bf16", "int8") if f"openvino bare {p}" in m))
            continue
        print(f"{r['model']}@{r['size']} b{r['batch']}: tf/opencv {m['yolo3 tf'] / m['opencv dnn']:.2f}  "
              f"tf/ort-bare {m['yolo3 tf'] / m['onnxruntime bare network']:.2f}  "
              f"ort/opencv {m['yolo3 onnxruntime'] / m['opencv dnn']:.2f}  "
              f"ort/ort-bare {m['yolo3 onnxruntime'] / m['onnxruntime bare network']:.2f}" +
              "".join(f"  ov-{p}/ov-bare-{p} {m[f'yolo3 openvino {p}'] / m[f'openvino bare {p}']:.2f}"
                      for p in ("fp32", "bf16", "int8") if f"openvino bare {p}" in m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
