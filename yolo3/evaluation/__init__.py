"""Layer 6, evaluation: VOC and COCO metrics (``metrics``), detection files (``detections_io``),
reports and PR curves (``reports``) and the evaluation run (``run``). See docs/architecture.md.
"""
