#!/usr/bin/env python3
"""Convert a Darknet cfg + weights to a Keras model (keras-yolo3's convert.py command line).

    python convert.py yolov3-tiny.cfg yolov3-tiny.weights model_data/yolov3-tiny.keras
    python convert.py -w yolov3.cfg yolov3.weights model_data/yolo_weights.h5

The model's outputs are the raw head convolutions (NHWC), one per [yolo] section in cfg order;
anchors, masks, classes and scale_x_y travel inside the saved model.
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ INFO/WARNING lines are noise here


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description="Convert a Darknet cfg + weights file to a Keras 3 model.",
        epilog="Full models (.keras or .h5) load with keras.models.load_model(path) after `import yolo3`.")
    ap.add_argument("config_path", help="Darknet .cfg file")
    ap.add_argument("weights_path", help="Darknet .weights file")
    ap.add_argument("output_path", help="output: a .keras or .h5 full model; with -w, a weights file")
    ap.add_argument("-p", "--plot", "--plot_model", dest="plot", action="store_true",
                    help="also write a picture of the model next to the output (needs pydot + graphviz)")
    ap.add_argument("-w", "--weights_only", "--weights-only", dest="weights_only", action="store_true",
                    help="write weights only (with the cfg embedded), for train.py --weights")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return ap


def fail(msg: str) -> int:
    print(f"convert.py: error: {msg}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for label, path in (("cfg", args.config_path), ("weights", args.weights_path)):
        if not os.path.isfile(path):
            return fail(f"{label} file not found: {path}")
        if not os.access(path, os.R_OK):
            return fail(f"{label} file is not readable: {path}")
    out_dir = os.path.dirname(os.path.abspath(args.output_path))
    if not os.path.isdir(out_dir):
        return fail(f"output directory does not exist: {out_dir}")
    if not os.access(out_dir, os.W_OK):
        return fail(f"output directory is not writable: {out_dir}")
    if not args.weights_only and not args.output_path.endswith((".keras", ".h5")):
        return fail(f"output must end in .keras or .h5 (or use -w for weights only): {args.output_path}")
    if args.plot:
        try:
            import pydot  # noqa: F401
        except ImportError:
            return fail("--plot needs pydot and graphviz: pip install pydot; apt-get install graphviz")

    from yolo3.modeling.cfg import DarknetError, parse_cfg
    from yolo3.modeling.builder import build_model_from_cfg
    from yolo3.modeling.darknet_weights import load_darknet_weights
    from yolo3.modeling.saving import save_model, save_weights_file

    progress = not args.quiet
    try:
        cfg = parse_cfg(args.config_path)
        model = build_model_from_cfg(cfg, progress=progress)
        header = load_darknet_weights(model, cfg, args.weights_path, progress=progress)
    except DarknetError as exc:
        return fail(str(exc))

    major, minor, revision = header["version"]
    print(f"read {args.weights_path}: version {major}.{minor}.{revision}, seen {header['seen']}, "
          f"{header['values']:,} values, nothing left over")
    print(f"model {model.name}: {model.count_params():,} parameters, {len(model.outputs)} output(s)")
    from yolo3.core.heads import get_head_specs

    try:
        specs = get_head_specs(model)
    except ValueError:
        specs = []
    for spec in specs:
        anchors = " ".join(f"{int(w)}x{int(h)}" if float(w).is_integer() and float(h).is_integer() else f"{w:g}x{h:g}"
                           for w, h in spec.anchors)
        print(f"  {spec.name}: {spec.num_classes} classes, anchors {anchors}, scale_x_y {spec.scale_x_y:g}")
    try:
        if args.weights_only:
            save_weights_file(model, args.output_path, cfg.text, {"source_cfg": os.path.basename(args.config_path)})
            print(f"saved weights to {args.output_path}")
        else:
            save_model(model, args.output_path)
            print(f"saved model to {args.output_path}")
    except OSError as exc:
        return fail(f"cannot write {args.output_path}: {exc}")
    if args.plot:
        import keras

        png = os.path.splitext(args.output_path)[0] + ".png"
        try:
            keras.utils.plot_model(model, to_file=png, show_shapes=True)
            print(f"saved model plot to {png}")
        except (ImportError, OSError) as exc:
            return fail(f"could not plot the model: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
