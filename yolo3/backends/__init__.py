"""Layer 4, runtimes other than Keras: the ONNX writer (``onnx_export``), ONNX Runtime
(``onnx_runtime``), OpenVINO Runtime (``openvino_runtime``, int8 by NNCF in
``openvino_quantize``) and TFLite (``tflite``). The optional packages (onnx, onnxruntime, tf2onnx,
openvino, nncf, LiteRT) are imported here and only here. See docs/architecture.md.
"""
