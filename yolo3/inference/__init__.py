"""Layer 5, detection: :class:`~yolo3.inference.detector.Detector`, keras-yolo3's ``YOLO``
(``yolo``), drawing, and the picture and video loops (``pictures``, ``video``). See
docs/architecture.md.
"""
