"""Measure a detector: Pascal VOC mAP per class and COCO metrics (pycocotools) on an annotated set.

    python eval.py --model model_data/yolo.keras --annotation val.txt --classes model_data/coco_classes.txt \
        --out eval_out
    python eval.py --detections dets.json --annotation val.txt --classes model_data/voc_classes.txt

The tool lives in yolo3/cli/evaluate.py (also ``yolo3-eval``, ``python -m yolo3.cli.evaluate``).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # importing yolo3 imports Keras; keep stderr clean

try:
    from yolo3.cli.evaluate import build_parser, main  # noqa: E402
except KeyboardInterrupt:  # Ctrl-C while TensorFlow loads: no traceback
    print(f"\n{os.path.basename(sys.argv[0])}: interrupted", file=sys.stderr)
    sys.exit(130)

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
