"""Layer 2, models: Darknet cfg parsing (``cfg``) and building (``builder``), the built-in
architectures (``architectures``, ``factory``), saving/loading and weight transfer (``saving``),
Darknet ``.weights`` (``darknet_weights``), BatchNorm folding (``batchnorm``) and pretrained
weights (``pretrained``). See docs/architecture.md.
"""
