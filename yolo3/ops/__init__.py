"""Layer 3, the pipeline pieces shared by every runtime, in TensorFlow: Darknet's letterbox (``letterbox``),
the one head decoder (``decode``) and the one post-processing pipeline (``postprocess``); and their
NumPy/OpenCV twins for the ONNX backends: the post-processing (``postprocess_numpy``) and the
reduced-precision letterbox (``letterbox_remap``). Nothing here reads files. See docs/architecture.md.
"""
