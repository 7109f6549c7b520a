#!/usr/bin/env python3
"""keras-yolo3's ``yolo.py`` module, for scripts written against it::

    from yolo import YOLO, detect_video

    yolo = YOLO(model_path="model_data/yolo.h5", anchors_path="model_data/yolo_anchors.txt",
                classes_path="model_data/coco_classes.txt")
    drawn = yolo.detect_image(Image.open("dog.jpg"))
    detect_video(yolo, "video.mp4", "out.mp4")
    yolo.close_session()

The classes live in yolo3/inference/yolo.py (also ``yolo3.YOLO``).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # importing yolo3 imports Keras; keep stderr clean

from yolo3.inference.yolo import YOLO, detect_video  # noqa: E402

__all__ = ["YOLO", "detect_video"]
