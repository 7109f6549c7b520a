"""Layer 1, the vocabulary every other layer speaks: the registered Keras layers (``layers``), head
metadata (``heads``), box geometry with every IoU variant (``boxes``) and the per-picture
:class:`~yolo3.core.detections.Detections` (``detections``). See docs/architecture.md.
"""
