"""Command-line tools: argparse, messages and exit codes only; the work is done by the library.

Each module has ``main(argv=None) -> int`` and runs as ``python -m yolo3.cli.<tool>``; the root
scripts (``train.py``, ``yolo_video.py`` ...) and the console commands (``yolo3-train`` ...) call
these. Nothing in the library imports this package.
"""
