"""Layer 2, data on disk, with no TensorFlow ops: annotation files (``annotations``), pictures
(``imageio``), VOC (``voc``) and COCO (``coco``) conversion, anchor k-means (``anchors``), the check of
an annotation file before training (``cleaning``) and small generated data sets for tests, demos and
benchmarks (``shapes``; ``yolo3-shapes``, ``python -m yolo3.cli.shapes``; nothing is downloaded).
See docs/architecture.md.
"""
