"""Convert Pascal VOC XML annotations (a VOCdevkit, or a VoTT "Pascal VOC" export) to annotation files.

    python voc_annotation.py --voc-root VOCdevkit --sets 2007_train 2007_val 2007_test
    python voc_annotation.py --voc-root my-vott-export --sets train val --classes my_classes.txt --relative

The tool lives in yolo3/cli/voc_annotation.py (also ``yolo3-voc-annotation``).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # importing yolo3 imports Keras; keep stderr clean

try:
    from yolo3.cli.voc_annotation import build_parser, main  # noqa: E402
except KeyboardInterrupt:  # Ctrl-C while TensorFlow loads: no traceback
    print(f"\n{os.path.basename(sys.argv[0])}: interrupted", file=sys.stderr)
    sys.exit(130)

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
