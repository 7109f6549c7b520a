"""Layer 3, TensorFlow graph pieces shared by every runtime: Darknet's letterbox (``letterbox``),
the one head decoder (``decode``) and the one post-processing pipeline (``postprocess``). Nothing
here reads files. See docs/architecture.md.
"""
