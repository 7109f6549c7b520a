#!/usr/bin/env python3
"""Time every export runtime against the Keras Detector, end to end, in one run.

From a decoded uint8 RGB image to final boxes (letterbox, network, decoding, NMS), batch 1:

- ``keras``: yolo3.inference.detector.Detector (one compiled tf.function) -- the reference;
- ``saved_model``: the exported SavedModel's ``serving_default`` loaded with tf.saved_model.load;
- ``saved_model_bytes``: its ``serve_bytes`` fed the JPEG file (includes JPEG decoding, so it does
  more work than the others);
- ``tflite_float32`` / ``tflite_float16`` / ``tflite_int8``: yolo3.backends.tflite.TFLiteDetector;
- ``onnxruntime``: Detector(backend="onnxruntime") on the exported .onnx file.

Repetitions are interleaved (each round runs every runtime once, in a rotating order) so load
from other processes on a shared machine hits all of them alike. Prints a Markdown table of
median milliseconds and the ratio to the Keras Detector; ``--markdown FILE`` also writes it.

    python benchmarks/bench_export.py --model model_data/yolov3-tiny.keras --repeats 30
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def versions() -> str:
    parts = []
    for name in ("tensorflow", "keras", "onnxruntime", "tf2onnx", "onnx"):
        try:
            module = __import__(name)
            parts.append(f"{name} {module.__version__}")
        except ImportError:
            parts.append(f"{name} absent")
    return ", ".join(parts)


class Runners(dict):
    """name -> callable running one detection; ``net_size`` the network input."""

    net_size = (416, 416)


def build_runners(model_path: str, image: np.ndarray, image_file: str, work: Path,
                  calibration: str | None, formats: list[str]) -> dict:
    import tensorflow as tf

    from yolo3.backends.tflite import TFLiteDetector
    from yolo3.export.onnx import export_onnx_file
    from yolo3.export.saved_model import export_saved_model
    from yolo3.export.tflite import export_tflite
    from yolo3.inference.detector import Detector
    from yolo3.modeling.saving import load_model

    model = load_model(model_path)
    runners = Runners()
    keras_detector = Detector(model)
    runners["keras"] = lambda: keras_detector.detect([image])
    runners.net_size = keras_detector.net_size
    # the bare networks on the letterboxed input, to show where the time goes
    from yolo3.ops.letterbox import letterbox_image

    net_input = letterbox_image(image, keras_detector.net_size)[None]
    keras_network = tf.function(lambda x: model(x, training=False))
    runners["network: keras"] = lambda: [t.numpy() for t in keras_network(tf.constant(net_input))]

    if "saved_model" in formats:
        print("exporting SavedModel ...", file=sys.stderr)
        path = export_saved_model(model, str(work / "saved_model"))
        loaded = tf.saved_model.load(path)
        serve = loaded.signatures["serving_default"]
        serve_bytes = loaded.signatures["serve_bytes"]
        batch = tf.constant(image[None])
        data = tf.constant([Path(image_file).read_bytes()])
        runners["saved_model"] = lambda: {k: v.numpy() for k, v in serve(images=batch).items()}
        runners["saved_model_bytes"] = lambda: {k: v.numpy() for k, v in serve_bytes(image_bytes=data).items()}

    for quantize in ("float32", "float16", "int8"):
        if f"tflite_{quantize}" not in formats:
            continue
        if quantize == "int8" and not calibration:
            print("skipping tflite_int8: no calibration file", file=sys.stderr)
            continue
        print(f"exporting TFLite {quantize} ...", file=sys.stderr)
        path = export_tflite(model, str(work / f"model_{quantize}.tflite"), quantize=quantize,
                             calibration=calibration, progress=False)
        detector = TFLiteDetector(path)
        runners[f"tflite_{quantize}"] = (lambda d: lambda: d.detect([image]))(detector)
        runners[f"network: tflite_{quantize}"] = (lambda d: lambda: d.network(net_input))(detector)

    if "onnxruntime" in formats:
        try:
            print("exporting ONNX ...", file=sys.stderr)
            path = export_onnx_file(model, str(work / "model.onnx"))
            onnx_detector = Detector(path, backend="onnxruntime")
            runners["onnxruntime"] = lambda: onnx_detector.detect([image])
            from yolo3.backends.onnx_runtime import OnnxNetwork

            onnx_network = OnnxNetwork(path)
            runners["network: onnxruntime"] = lambda: onnx_network(net_input)
        except Exception as exc:  # optional dependency missing or broken: report, go on
            print(f"skipping onnxruntime: {exc}", file=sys.stderr)
    return runners


def main() -> int:
    all_formats = ["saved_model", "tflite_float32", "tflite_float16", "tflite_int8", "onnxruntime"]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "model_data" / "yolov3-tiny.keras"),
                    help="converted model (default model_data/yolov3-tiny.keras)")
    ap.add_argument("--image", default=str(SHARED / "darknet" / "images" / "dog.jpg"))
    ap.add_argument("--calibration", default=None,
                    help="annotation file for int8 calibration (default: the ../shared/darknet "
                         "sample pictures)")
    ap.add_argument("--formats", default=",".join(all_formats),
                    help=f"comma-separated subset of {','.join(all_formats)}")
    ap.add_argument("--repeats", type=int, default=30, help="timed rounds (default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    ap.add_argument("--markdown", default=None, help="also write the results table to this file")
    args = ap.parse_args()

    for path, what in ((args.model, "model"), (args.image, "image")):
        if not os.path.isfile(path):
            print(f"error: {what} not found: {path}", file=sys.stderr)
            return 2
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(all_formats))
    if unknown:
        print(f"error: unknown formats {unknown}; choose from {all_formats}", file=sys.stderr)
        return 2

    from yolo3.datasets.imageio import read_image_rgb

    image = read_image_rgb(args.image)
    with tempfile.TemporaryDirectory(prefix="bench_export_") as tmp:
        work = Path(tmp)
        calibration = args.calibration
        if calibration is None and (SHARED / "darknet" / "images").is_dir():
            calibration = str(work / "calibration.txt")
            pictures = sorted((SHARED / "darknet" / "images").glob("*.jpg"))
            Path(calibration).write_text("".join(f"{p}\n" for p in pictures))
        runners = build_runners(args.model, image, args.image, work, calibration, formats)
        names = list(runners)
        times = {name: [] for name in names}
        load_before = os.getloadavg()
        for round_index in range(args.warmup + args.repeats):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                start = time.perf_counter()
                runners[name]()
                elapsed = time.perf_counter() - start
                if round_index >= args.warmup:
                    times[name].append(elapsed)
        load_after = os.getloadavg()

    reference = float(np.median(times["keras"]))
    network_reference = float(np.median(times["network: keras"]))
    lines = [
        f"{Path(args.model).name} end to end (uint8 image {image.shape[1]}x{image.shape[0]} -> boxes), batch 1, "
        f"network input {runners.net_size[1]}x{runners.net_size[0]}; {args.repeats} interleaved "
        f"rounds after "
        f"{args.warmup} warm-up rounds.",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores (shared with other jobs: load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after); {platform.python_version()}; "
        f"{versions()}.",
        "",
        "| runtime | median ms | p25-p75 ms | time / Keras (same row kind) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in sorted(names, key=lambda n: n.startswith("network:")):
        t = np.asarray(times[name]) * 1000
        ref = network_reference if name.startswith("network:") else reference
        lines.append(f"| {name} | {np.median(t):.1f} | {np.percentile(t, 25):.1f}-{np.percentile(t, 75):.1f} "
                     f"| {np.median(t) / (ref * 1000):.2f} |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
