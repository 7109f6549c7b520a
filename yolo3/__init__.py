"""YOLOv3 object detection for Keras 3 on TensorFlow 2.

Importing the package registers its custom layers, so that ``keras.models.load_model`` loads
converted and trained models with the default ``safe_mode=True``.
"""
import os as _os
import sys as _sys

from .tf_logging import import_tensorflow as _import_tensorflow

if _sys.argv[:1] == ["-m"]:
    # Imported while Python locates a ``python -m yolo3.<tool>`` command (sys.argv[0] is "-m"
    # then): a command-line tool, so TensorFlow's INFO/WARNING lines are noise, as in the scripts.
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_import_tensorflow()  # before Keras: holds back the import-time lines TF_CPP_MIN_LOG_LEVEL hides

from .core import layers  # noqa: E402,F401  (registers custom layers)
from .core.layers import ChannelGroup, YoloHead  # noqa: E402,F401

__version__ = "0.1.0"
