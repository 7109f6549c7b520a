#!/usr/bin/env python3
"""Detect objects on pictures, folders, videos, streams and webcams (keras-yolo3's yolo_video.py).

    python yolo_video.py --image dog.jpg photos/ "shots/*.png" --output out/ --json out/detections.json
    python yolo_video.py --image                      # asks for file names in a loop
    python yolo_video.py --input video.mp4 --output out.mp4
    python yolo_video.py --input 0                     # webcam 0 (add --show for a window)

Exit codes: 0 done, 1 some pictures could not be read, 2 a user error. The tool lives in
yolo3/cli/detect.py (also ``yolo3-detect``, ``python -m yolo3.cli.detect``).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # importing yolo3 imports Keras; keep stderr clean

try:
    from yolo3.cli.detect import build_parser, main  # noqa: E402
except KeyboardInterrupt:  # Ctrl-C while TensorFlow loads: no traceback
    print(f"\n{os.path.basename(sys.argv[0])}: interrupted", file=sys.stderr)
    sys.exit(130)

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
