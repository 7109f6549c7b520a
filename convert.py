#!/usr/bin/env python3
"""Convert a Darknet cfg + weights to a Keras model (keras-yolo3's convert.py command line).

    python convert.py yolov3-tiny.cfg yolov3-tiny.weights model_data/yolov3-tiny.keras
    python convert.py -w yolov3.cfg yolov3.weights model_data/yolo_weights.h5

The tool lives in yolo3/cli/convert.py (also ``yolo3-convert``, ``python -m yolo3.cli.convert``).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ INFO/WARNING lines are noise here

try:
    from yolo3.cli.convert import build_parser, main  # noqa: E402
except KeyboardInterrupt:  # Ctrl-C while TensorFlow loads: no traceback
    print(f"\n{os.path.basename(sys.argv[0])}: interrupted", file=sys.stderr)
    sys.exit(130)

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
