#!/usr/bin/env python3
"""What Darknet's letterbox costs next to a fast network, and whether another runtime does it cheaper.

Issue 16 asks the openvino backend to stay within 1.15x of OpenVINO's bare network end to end. With
bfloat16 on an AMX CPU, yolov3-tiny's bare network takes a few ms, so the fixed cost in front of it
decides. This script times, in one process, interleaved, best of ``--reps`` calls per picture:

- ``yolo3 xla``: yolo3's letterbox (:func:`yolo3.ops.letterbox.letterbox`, XLA-compiled gathers, what
  every backend runs), from the uint8 picture to the float batch in NumPy;
- ``tf resize``: TF's ResizeBilinear with align_corners + pad (Darknet's mapping, not its last-row quirk);
- ``ort resize``: the same as an ONNX Runtime graph (Cast, Resize linear align_corners, Pad);
- ``ov interpolate``: the same as an OpenVINO graph (Convert, Interpolate linear_onnx align_corners, Pad);
- ``ov gather``: yolo3's gathers written as an OpenVINO graph, index tables from NumPy;
- ``ov bare net``: yolov3-tiny's bare network in OpenVINO at ``--precision`` (bf16 where the CPU has
  bfloat16 units), fed the letterboxed batch: the time the letterbox is compared with;
- ``ov net+nms``: the same network followed by yolo3's decoding + NMS (the openvino backend's two models).

Each alternative's largest difference from yolo3's letterbox is printed (0.8 on a row means Darknet's
last-row quirk, which only yolo3's letterbox and the gathers copy).

    python benchmarks/bench_letterbox.py --reps 30
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from bench_detect import machine_note, sample_images  # noqa: E402


def letterbox_plan(image_hw, net: int) -> dict:
    """Darknet's resize size and paste offsets for one picture (the NumPy twin of letterbox_size)."""
    from yolo3.ops.letterbox_remap import letterbox_size_np

    new_h, new_w = (int(v[0]) for v in letterbox_size_np(np.array([image_hw[0]]), np.array([image_hw[1]]), net, net))
    top, left = (net - new_h) // 2, (net - new_w) // 2
    return {"new": (new_h, new_w), "begin": (top, left), "end": (net - new_h - top, net - new_w - left)}


def tf_resize(net: int):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8), tf.TensorSpec([6], tf.int32)],
                 autograph=False)
    def run(image, plan):
        resized = tf.raw_ops.ResizeBilinear(images=image[None], size=plan[:2], align_corners=True) / 255.0
        pads = [[0, 0], [plan[2], plan[4]], [plan[3], plan[5]], [0, 0]]
        return tf.ensure_shape(tf.pad(resized, pads, constant_values=0.5), [1, net, net, 3])

    return lambda image, p: run(image, np.array([*p["new"], *p["begin"], *p["end"]], np.int32)).numpy()


def ort_resize(net: int):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["f", "inv255"], ["g"]),
             helper.make_node("Resize", ["g", "", "", "sizes"], ["r"], mode="linear",
                              coordinate_transformation_mode="align_corners"),
             helper.make_node("Pad", ["r", "pads", "half"], ["out"], mode="constant")]
    graph = helper.make_graph(
        nodes, "letterbox",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, [1, None, None, 3]),
         helper.make_tensor_value_info("sizes", TensorProto.INT64, [4]),
         helper.make_tensor_value_info("pads", TensorProto.INT64, [8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, net, net, 3])],
        [helper.make_tensor("inv255", TensorProto.FLOAT, [], [1 / 255.0]),
         helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return lambda image, p: session.run(None, {
        "images": image[None], "sizes": np.array([1, *p["new"], 3], np.int64),
        "pads": np.array([0, *p["begin"], 0, 0, *p["end"], 0], np.int64)})[0]


def ov_interpolate(core, net: int):
    import openvino as ov
    import openvino.opset13 as ops

    image = ops.parameter([1, -1, -1, 3], ov.Type.u8, name="images")
    size, begin, end = (ops.parameter([n], ov.Type.i32, name=k) for k, n in (("size", 2), ("begin", 4), ("end", 4)))
    x = ops.multiply(ops.convert(image, ov.Type.f32), ops.constant(np.float32(1 / 255.0)))
    x = ops.interpolate(x, size, mode="linear_onnx", shape_calculation_mode="sizes",
                        coordinate_transformation_mode="align_corners", axes=ops.constant(np.array([1, 2], np.int64)))
    x = ops.reshape(ops.pad(x, begin, end, "constant", ops.constant(np.float32(0.5))),
                    ops.constant(np.array([1, net, net, 3], np.int64)), False)
    request = core.compile_model(ov.Model([x], [image, size, begin, end]), "CPU",
                                 {"INFERENCE_PRECISION_HINT": "f32"}).create_infer_request()
    return lambda img, p: request.infer({
        "images": img[None], "size": np.array(p["new"], np.int32), "begin": np.array([0, *p["begin"], 0], np.int32),
        "end": np.array([0, *p["end"], 0], np.int32)})[0]


def _source_tables(out_len: int, in_len: int, count: int, offset: int):
    """yolo3.ops.letterbox._source_coords in NumPy for one picture: i0, i1, weights of i0 and i1, inside."""
    pos = np.arange(count, dtype=np.int32) - offset
    inside = ((pos >= 0) & (pos < out_len)).astype(np.float32)
    pos = np.clip(pos, 0, max(out_len - 1, 0))
    scale = np.float32(in_len - 1) / np.float32(max(out_len - 1, 1)) if out_len > 1 else np.float32(0)
    src = pos.astype(np.float32) * scale
    i0 = np.clip(src.astype(np.int32), 0, in_len - 1)
    frac = (src - src.astype(np.int32).astype(np.float32)).astype(np.float32)
    last = (pos == out_len - 1) | (in_len == 1)
    return i0, np.minimum(i0 + 1, in_len - 1), frac, last, inside


def ov_gather(core, net: int):
    import openvino as ov
    import openvino.opset13 as ops

    image = ops.parameter([1, -1, -1, 3], ov.Type.u8, name="images")
    idx = {k: ops.parameter([1, net], ov.Type.i32, name=k) for k in ("iy0", "iy1", "ix0", "ix1")}
    wts = {k: ops.parameter([1, net], ov.Type.f32, name=k) for k in ("wy0", "wy1", "wx", "vy", "vx")}
    axes = lambda x, a: ops.unsqueeze(x, ops.constant(np.array(a, np.int64)))  # noqa: E731
    wx = axes(wts["wx"], [1, 3])

    def horizontal(rows):
        inv255 = ops.constant(np.float32(1 / 255))
        a, b = (ops.multiply(ops.convert(ops.gather(rows, idx[k], 2, 1), ov.Type.f32), inv255) for k in ("ix0", "ix1"))
        return ops.add(ops.multiply(ops.subtract(ops.constant(np.float32(1)), wx), a), ops.multiply(wx, b))

    top, bottom = (horizontal(ops.gather(image, idx[k], 1, 1)) for k in ("iy0", "iy1"))
    out = ops.add(ops.multiply(axes(wts["wy0"], [2, 3]), top), ops.multiply(axes(wts["wy1"], [2, 3]), bottom))
    inside = ops.convert(ops.multiply(axes(wts["vy"], [2, 3]), axes(wts["vx"], [1, 3])), ov.Type.boolean)
    out = ops.select(inside, out, ops.constant(np.float32(0.5)))
    request = core.compile_model(ov.Model([out], [image, *idx.values(), *wts.values()]), "CPU",
                                 {"INFERENCE_PRECISION_HINT": "f32"}).create_infer_request()

    def run(img, p):
        (h, w), (new_h, new_w), (top_, left) = img.shape[:2], p["new"], p["begin"]
        iy0, iy1, dy, last_row, vy = _source_tables(new_h, h, net, top_)
        ix0, ix1, dx, last_col, vx = _source_tables(new_w, w, net, left)
        ix0, dx = np.where(last_col, w - 1, ix0), np.where(last_col, np.float32(0), dx)
        feed = {"images": img[None], "iy0": iy0, "iy1": iy1, "ix0": ix0, "ix1": ix1, "wy0": 1 - dy,
                "wy1": np.where(last_row, np.float32(0), dy), "wx": dx, "vy": vy, "vx": vx}
        return request.infer({k: (v if k == "images" else np.asarray(v)[None]) for k, v in feed.items()})[0]

    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=30, help="interleaved calls per contender and picture")
    ap.add_argument("--size", type=int, default=416, help="network input")
    ap.add_argument("--precision", default="bf16", help="the bare network's OpenVINO precision (fp32, bf16)")
    args = ap.parse_args(argv)
    import openvino as ov
    import tensorflow as tf

    from yolo3.backends.openvino_runtime import OpenVinoNetwork
    from yolo3.core.detections import stack_images
    from yolo3.modeling.pretrained import pretrained_model_path
    from yolo3.ops.letterbox import letterbox
    from yolo3.ops.postprocess import Postprocessor

    net_size, core = args.size, ov.Core()
    yolo3_xla = tf.function(lambda i, s: letterbox(i, s, (net_size, net_size)), jit_compile=True, autograph=False)
    network = OpenVinoNetwork(tf.keras.models.load_model(pretrained_model_path("yolov3-tiny", quiet=True)),
                              input_size=(net_size, net_size))
    full = network.pipeline(Postprocessor(network.head_specs, (net_size, net_size)), args.precision)
    bare = full.infer  # the pipeline's own network: a second compiled copy would share the cores
    contenders = {"yolo3 xla": lambda img, p: yolo3_xla(*stack_images([img])).numpy(), "tf resize": tf_resize(net_size),
                  "ort resize": ort_resize(net_size), "ov interpolate": ov_interpolate(core, net_size),
                  "ov gather": ov_gather(core, net_size)}
    print(machine_note(), f"\nyolov3-tiny at {net_size}, OpenVINO network precision {args.precision}; ms, best of "
          f"{args.reps}; in brackets the largest difference from yolo3's letterbox")
    print("| picture | " + " | ".join(contenders) + " | ov bare net | ov net+nms | yolo3 xla / ov bare net |")
    print("|---" * (len(contenders) + 4) + "|")
    for image in sample_images() + [np.random.default_rng(0).integers(0, 256, (1080, 1920, 3), np.uint8)]:
        plan = letterbox_plan(image.shape[:2], net_size)
        reference = contenders["yolo3 xla"](image, plan)
        calls = {k: (lambda f=f, image=image, plan=plan: f(image, plan)) for k, f in contenders.items()}
        sizes = np.array([image.shape[:2]], np.int32)
        calls["ov bare net"] = lambda reference=reference: bare(reference)
        calls["ov net+nms"] = lambda reference=reference, sizes=sizes: full(reference, sizes)
        best = {k: np.inf for k in calls}
        diff = {k: float(np.abs(f(image, plan) - reference).max()) for k, f in contenders.items()}
        for _ in range(args.reps):
            for key, fn in calls.items():
                t = time.perf_counter()
                fn()
                best[key] = min(best[key], time.perf_counter() - t)
        cells = [f"{best[k] * 1e3:.2f} ({diff[k]:.1g})" for k in contenders]
        cells += [f"{best['ov bare net'] * 1e3:.2f}", f"{best['ov net+nms'] * 1e3:.2f}",
                  f"{best['yolo3 xla'] / best['ov bare net']:.2f}"]
        print(f"| {image.shape[0]}x{image.shape[1]} | " + " | ".join(cells) + " |", flush=True)
    print(machine_note().rsplit("; ", 1)[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
