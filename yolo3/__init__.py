"""YOLOv3 object detection for Keras 3 on TensorFlow 2.

The public API, importable from ``yolo3`` itself::

    import yolo3

    detector = yolo3.Detector.from_pretrained("yolov3-tiny")        # or Detector.from_file(path)
    model = yolo3.create_model("tiny", num_classes=3)               # a fresh Keras model
    yolo3.run_training(yolo3.TrainConfig(...))                      # two-stage training
    yolo3.export_model(model, "saved_model", "out/tiny_saved_model")

Importing the package registers its custom layers (``yolo3.core.layers``), so that
``keras.models.load_model`` loads converted and trained models with the default
``safe_mode=True``. Everything else is imported on first use of its name, so ``import yolo3``
costs TensorFlow's import and no more. The layers of the package and what each owns:
docs/architecture.md.
"""
import importlib as _importlib
import os as _os
import sys as _sys

from .tf_logging import import_tensorflow as _import_tensorflow

if _sys.argv[:1] == ["-m"] or _os.path.basename(_sys.argv[0] if _sys.argv else "").startswith("yolo3-"):
    # Imported by a command-line tool: while Python locates a ``python -m yolo3.cli.<tool>`` command
    # (sys.argv[0] is "-m" then) or by a ``yolo3-*`` console command. TensorFlow's INFO/WARNING
    # lines are noise there, as in the root scripts.
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_import_tensorflow()  # before Keras: holds back the import-time lines TF_CPP_MIN_LOG_LEVEL hides

from .core import layers  # noqa: E402,F401  (registers custom layers)
from .core.layers import ChannelGroup, DarknetMaxPool, YoloHead  # noqa: E402
from .errors import Yolo3Error  # noqa: E402

__version__ = "0.1.0"

#: public name -> module that defines it (imported on first access)
_PUBLIC = {
    # detection
    "Detector": "yolo3.inference.detector",
    "DetectorError": "yolo3.inference.detector",
    "Detections": "yolo3.core.detections",
    "YOLO": "yolo3.inference.yolo",
    "TFLiteDetector": "yolo3.backends.tflite",
    "Postprocessor": "yolo3.ops.postprocess",
    # models
    "create_model": "yolo3.modeling.factory",
    "yolo_body": "yolo3.modeling.factory",
    "tiny_yolo_body": "yolo3.modeling.factory",
    "load_model": "yolo3.modeling.saving",
    "save_model": "yolo3.modeling.saving",
    "load_weights_into": "yolo3.modeling.saving",
    "convert": "yolo3.modeling.darknet_weights",
    "fetch_weights": "yolo3.modeling.pretrained",
    "pretrained_model_path": "yolo3.modeling.pretrained",
    "HeadSpec": "yolo3.core.heads",
    "get_head_specs": "yolo3.core.heads",
    # data
    "read_annotations": "yolo3.datasets.annotations",
    "read_class_names": "yolo3.datasets.annotations",
    "read_anchors": "yolo3.datasets.annotations",
    "read_image_rgb": "yolo3.datasets.imageio",
    "kmeans_anchors": "yolo3.datasets.anchors",
    # training
    "TrainConfig": "yolo3.training.config",
    "DataConfig": "yolo3.training.config",
    "ModelConfig": "yolo3.training.config",
    "StageConfig": "yolo3.training.config",
    "LossConfig": "yolo3.training.config",
    "EvalConfig": "yolo3.training.config",
    "RuntimeConfig": "yolo3.training.config",
    "TrainError": "yolo3.training.config",
    "prepare_training_data": "yolo3.training.preparation",
    "run_training": "yolo3.training.run",
    # evaluation
    "evaluate_voc": "yolo3.evaluation.metrics",
    "evaluate_coco": "yolo3.evaluation.metrics",
    "evaluate_model": "yolo3.evaluation.run",
    "evaluate_detections_file": "yolo3.evaluation.run",
    "EvaluationResult": "yolo3.evaluation.run",
    # export
    "export_model": "yolo3.export.api",
}

__all__ = ["ChannelGroup", "DarknetMaxPool", "YoloHead", "Yolo3Error", "__version__", *_PUBLIC]


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'yolo3' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
