"""Small generated data sets for tests, demos and benchmarks (nothing is downloaded).

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
