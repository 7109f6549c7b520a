#!/usr/bin/env python3
"""Track detections that already exist (MOTChallenge files) with ByteTrack or SORT; no TensorFlow.

    python track.py --det det.txt --out tracks.txt --tracker bytetrack [--fps 30] [tracker flags]
    python track.py --det MOT17/train --out tracks/ --tracker sort

Exit codes: 0 done, 2 a user error. The tool lives in yolo3/cli/track.py (also ``yolo3-track``,
``python -m yolo3.cli.track``); tracks are scored with ``python -m yolo3.tracking.evaluate``.
"""
import sys

from yolo3.cli.track import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
