"""Train YOLOv3 / YOLOv3-tiny on your own annotation file (keras-yolo3's train.py, with flags).

Stage 1 trains with the body frozen (--freeze-body), stage 2 unfreezes everything with a fresh
optimizer; the final inference model is ``<log-dir>/trained_final.keras``. The tool lives in
:mod:`yolo3.cli.train` (also ``python -m yolo3.cli.train`` and the ``yolo3-train`` command); see
docs/training.md.

    python train.py --annotation train.txt --classes voc_classes.txt --weights model_data/yolo.weights.h5
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ INFO/WARNING lines are noise here

try:
    from yolo3.cli.train import main as _main  # noqa: E402
except KeyboardInterrupt:  # Ctrl-C while TensorFlow loads: no traceback
    print(f"\n{os.path.basename(sys.argv[0])}: interrupted", file=sys.stderr)
    sys.exit(130)


def main(argv=None) -> int:
    """train.py with ``argv`` (default: the command line); messages name ``train.py``."""
    return _main(argv, prog="train.py")


if __name__ == "__main__":
    sys.exit(main())
