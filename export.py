#!/usr/bin/env python3
"""Export a converted or trained YOLO model for deployment (see docs/export.md).

    python export.py --model model_data/yolov3-tiny.keras --format saved_model --output tiny_saved_model
    python export.py --format tflite --quantize int8 --calibration train.txt --output tiny_int8.tflite
    python export.py --format onnx --output model_data/yolov3-tiny.onnx

The tool lives in yolo3/cli/export.py (also ``yolo3-export``, ``python -m yolo3.cli.export``).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:
    from yolo3.cli.export import build_parser, main  # noqa: E402
except KeyboardInterrupt:  # Ctrl-C while TensorFlow loads: no traceback
    print(f"\n{os.path.basename(sys.argv[0])}: interrupted", file=sys.stderr)
    sys.exit(130)

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
