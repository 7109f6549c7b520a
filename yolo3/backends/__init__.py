"""Layer 4, runtimes other than Keras: the ONNX writer (``onnx_export``), ONNX Runtime
(``onnx_runtime``, ``onnx_postprocess``) and TFLite (``tflite``). The optional packages (onnx,
onnxruntime, tf2onnx, LiteRT) are imported here and only here. See docs/architecture.md.
"""
