"""Anchor boxes for a dataset by k-means with distance 1 - IoU (keras-yolo3's kmeans.py).

    python kmeans.py --annot_file train.txt --out_file model_data/custom_anchors.txt --num_clusters 9 \
        --input-size 416 --plot anchors.png

The tool lives in yolo3/cli/kmeans.py (also ``yolo3-kmeans``, ``python -m yolo3.cli.kmeans``).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # importing yolo3 imports Keras; keep stderr clean

try:
    from yolo3.cli.kmeans import build_parser, main  # noqa: E402
except KeyboardInterrupt:  # Ctrl-C while TensorFlow loads: no traceback
    print(f"\n{os.path.basename(sys.argv[0])}: interrupted", file=sys.stderr)
    sys.exit(130)

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
