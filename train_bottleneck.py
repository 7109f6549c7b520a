"""Bottleneck training (keras-yolo3's train_bottleneck.py): cache the frozen body's outputs once,
train the output convolutions on the cache and save ``<log-dir>/trained_bottleneck.keras``, which
``train.py --weights`` continues from. The tool lives in :mod:`yolo3.cli.train_bottleneck` (also
``python -m yolo3.cli.train_bottleneck`` and the ``yolo3-train-bottleneck`` command).

    python train_bottleneck.py --annotation train.txt --weights model_data/yolo.weights.h5 --log-dir logs/bottleneck
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ INFO/WARNING lines are noise here

try:
    from yolo3.cli.train_bottleneck import main as _main  # noqa: E402
except KeyboardInterrupt:  # Ctrl-C while TensorFlow loads: no traceback
    print(f"\n{os.path.basename(sys.argv[0])}: interrupted", file=sys.stderr)
    sys.exit(130)


def main(argv=None) -> int:
    """train_bottleneck.py with ``argv`` (default: the command line); messages name ``train_bottleneck.py``."""
    return _main(argv, prog="train_bottleneck.py")


if __name__ == "__main__":
    sys.exit(main())
