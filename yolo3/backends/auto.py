"""Backend ``auto`` (the default of yolo_video.py, eval.py and ``Detector``): the fastest EXACT (fp32)
backend installed for the device, and one line saying which and why.

- TensorFlow sees a GPU: ``tf`` (the other backends run on the CPU here).
- On a CPU: the first of :func:`cpu_preference` whose packages are installed, else ``tf``. On x86-64
  that is OpenVINO, then ONNX Runtime: each timed in a process of its own on a Xeon with AMX
  (``bench_detect.py --separate``, issue 16), the openvino backend's fp32 end to end takes 0.85-1.0 of
  the onnxruntime backend's time (both models, batch 1 and 8: docs/benchmarks.md), and it starts as
  fast (it reads the ONNX export by its path); on an AVX2 AMD EPYC the two were within the noise.
  Elsewhere (ARM) ONNX Runtime first: OpenVINO was not measured there. Both run the same ONNX export
  as TF within the documented fp32 tolerance (boxes within 0.05 px, scores 1e-4: docs/detection.md).
- Reduced precision is never chosen silently: ``precision`` bf16 or int8 with ``auto`` means the one
  backend that runs it, ``openvino``, and the line says so.
- A model file only one runtime reads decides: an OpenVINO IR ``.xml`` is ``openvino``; an ``.onnx``
  file is never ``tf`` (TensorFlow cannot run it).
- TF-only settings (``xla=False``, ``fold_batchnorm=False`` in Python) keep ``tf``: they exist nowhere else.
"""
from __future__ import annotations

import importlib.util
import platform
from dataclasses import dataclass

import tensorflow as tf

__all__ = ["X86_PREFERENCE", "OTHER_CPU_PREFERENCE", "cpu_preference", "BACKEND_PACKAGES", "BackendChoice",
           "backend_installed", "gpu_visible", "choose_backend"]

#: the exact CPU backends, fastest first, on x86-64 (measured: see the module docstring)
X86_PREFERENCE = ("openvino", "onnxruntime")
#: the same on other CPUs (ARM), where OpenVINO was not measured
OTHER_CPU_PREFERENCE = ("onnxruntime", "openvino")
#: the optional packages each backend needs (also what the scripts' --backend check asks for)
BACKEND_PACKAGES = {"onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "onnx"), "tf": ()}


@dataclass(frozen=True)
class BackendChoice:
    """What ``auto`` resolved to (``backend``: tf, onnxruntime or openvino) and why (``reason``)."""

    backend: str
    reason: str

    def line(self) -> str:
        """``backend auto: <backend> (<reason>)``: the one line the tools print on stderr."""
        return f"backend auto: {self.backend} ({self.reason})"


def backend_installed(backend: str) -> bool:
    """Whether the optional packages ``backend`` needs are importable (found, not imported)."""
    return all(importlib.util.find_spec(package) is not None for package in BACKEND_PACKAGES[backend])


def cpu_preference(machine: str | None = None) -> tuple[str, ...]:
    """The exact CPU backends, fastest first, for ``machine`` (``platform.machine()`` by default)."""
    machine = (machine if machine is not None else platform.machine()).lower()
    return X86_PREFERENCE if machine in ("x86_64", "amd64", "x64") else OTHER_CPU_PREFERENCE


def gpu_visible() -> bool:
    """Whether TensorFlow sees a GPU."""
    return bool(tf.config.list_physical_devices("GPU"))


def choose_backend(precision: str = "fp32", model_path: str | None = None, tf_settings: bool = False) -> BackendChoice:
    """Resolve ``auto`` (rules in the module docstring).

    Args:
        precision: ``fp32``, ``bf16`` or ``int8`` as asked for.
        model_path: the model file, when there is one (``.xml`` and ``.onnx`` decide by themselves).
        tf_settings: TF-only settings were asked for (``xla=False`` or ``fold_batchnorm=False``).
    """
    path = (model_path or "").lower()
    if precision != "fp32":
        return BackendChoice("openvino", f"precision {precision} runs in OpenVINO only")
    if path.endswith(".xml"):
        return BackendChoice("openvino", "an OpenVINO IR runs in OpenVINO")
    onnx_file = path.endswith(".onnx")
    if tf_settings and not onnx_file:
        return BackendChoice("tf", "xla/fold_batchnorm are TensorFlow settings")
    if not onnx_file and gpu_visible():
        return BackendChoice("tf", "TensorFlow sees a GPU")
    for backend in cpu_preference():
        if backend_installed(backend):
            return BackendChoice(backend, "the fastest exact (fp32) backend installed for this CPU; "
                                          "--backend tf|onnxruntime|openvino to choose")
    if onnx_file:  # TensorFlow cannot run it: the onnxruntime backend says what to install
        return BackendChoice("onnxruntime", "an .onnx file needs ONNX Runtime or OpenVINO")
    return BackendChoice("tf", "onnxruntime and openvino are not installed (pip install 'yolo3[onnx]' is faster "
                               "on a CPU)")
