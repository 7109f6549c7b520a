"""Layer 2, data on disk, with no TensorFlow ops: annotation files (``annotations``), pictures
(``imageio``), VOC (``voc``) and COCO (``coco``) conversion, anchor k-means (``anchors``), the check of
an annotation file before training (``cleaning``) and small generated data sets for tests, demos and
benchmarks (nothing is downloaded). See docs/architecture.md.

``yolo3.datasets.shapes``: simple shapes on textured backgrounds (``yolo3-shapes``, ``python -m yolo3.cli.shapes``).
"""
from __future__ import annotations

__all__ = ["generate_shapes_dataset", "SHAPE_CLASSES"]


def __getattr__(name: str):
    # Lazy: importing yolo3.datasets does not import OpenCV.
    if name in __all__:
        from . import shapes
        return getattr(shapes, name)
    raise AttributeError(name)
