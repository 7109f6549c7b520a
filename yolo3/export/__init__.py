"""Layer 8, export: SavedModel with the whole pipeline inside (``saved_model``), TFLite (``tflite``)
and ONNX (``onnx``); :func:`yolo3.export.api.export_model` picks by format. See
docs/architecture.md.
"""
