"""YOLOv3 object detection for Keras 3 on TensorFlow 2.

The public API, importable from ``yolo3`` itself::

    import yolo3

    detector = yolo3.Detector.from_pretrained("yolov3-tiny")        # or Detector.from_file(path)
    model = yolo3.create_model("tiny", num_classes=3)               # a fresh Keras model
    yolo3.run_training(yolo3.TrainConfig(...))                      # two-stage training
    yolo3.export_model(model, "saved_model", "out/tiny_saved_model")

The package registers its custom layers (``yolo3.core.layers``) as soon as Keras is imported,
before or after ``import yolo3``, so that ``keras.models.load_model`` loads converted and trained
models with the default ``safe_mode=True``. TensorFlow itself is imported only when Keras is (by
the user or by a module that needs it; then with :mod:`yolo3.tf_logging`'s quiet import first), so
``import yolo3.tracking`` stays free of it. Everything else is imported on first use of its name.
The layers of the package and what each owns: docs/architecture.md.
"""
import importlib as _importlib
import os as _os
import sys as _sys
from importlib import abc as _abc
from importlib import util as _util

from .tf_logging import import_tensorflow as _import_tensorflow

if _sys.argv[:1] == ["-m"] or _os.path.basename(_sys.argv[0] if _sys.argv else "").startswith("yolo3-"):
    # Imported by a command-line tool: while Python locates a ``python -m yolo3.cli.<tool>`` command
    # (sys.argv[0] is "-m" then) or by a ``yolo3-*`` console command. TensorFlow's INFO/WARNING
    # lines are noise there, as in the root scripts.
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from .errors import Yolo3Error  # noqa: E402


class _FirstTensorFlowImport(_abc.MetaPathFinder, _abc.Loader):
    """Runs at the first import of TensorFlow or Keras, whoever asks for it: TensorFlow's quiet import
    (which imports Keras), then the registration of the package's layers; the import asked for then
    gets the module already loaded. Removes itself from ``sys.meta_path`` on that first import.

    ``find_spec`` only claims the import: Python calls it holding its global import lock, and under
    that lock TensorFlow's import deadlocked whenever another thread imported a module meanwhile
    (7 times in 8 after ``import openvino``). The work is in ``create_module``, under the lock of the
    module being imported only.
    """

    def __init__(self):
        self.specs = {}

    def find_spec(self, name, path=None, target=None):
        if name not in ("tensorflow", "keras") or self not in _sys.meta_path:
            return None
        _sys.meta_path.remove(self)
        return _util.spec_from_loader(name, self)

    def create_module(self, spec):
        _import_tensorflow()  # holds back the import-time lines TF_CPP_MIN_LOG_LEVEL hides
        _importlib.import_module("keras")
        _importlib.import_module("yolo3.core.layers")  # registers the custom layers
        module = _sys.modules[spec.name]
        self.specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = self.specs.pop(module.__name__)  # the import machinery replaced it with ours


if "keras" in _sys.modules:
    _importlib.import_module("yolo3.core.layers")  # registers the custom layers
else:
    _sys.meta_path.insert(0, _FirstTensorFlowImport())

__version__ = "0.1.0"

#: public name -> module that defines it (imported on first access)
_PUBLIC = {
    # custom layers
    "YoloHead": "yolo3.core.layers",
    "ChannelGroup": "yolo3.core.layers",
    "DarknetMaxPool": "yolo3.core.layers",
    # detection
    "Detector": "yolo3.inference.detector",
    "DetectorError": "yolo3.inference.detector",
    "Detections": "yolo3.core.detections",
    "YOLO": "yolo3.inference.yolo",
    "detect_video": "yolo3.inference.yolo",
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
    # tracking (NumPy and SciPy only)
    "ByteTracker": "yolo3.tracking.bytetrack",
    "SortTracker": "yolo3.tracking.sort",
}

__all__ = ["Yolo3Error", "__version__", *_PUBLIC]


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'yolo3' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
