"""Layer 7, training: the ``tf.data`` pipeline and augmentation (``pipeline``, ``augment``), target
assignment (``targets``), the loss (``loss``), the trainer (``trainer``), freezing, callbacks,
validation mAP, distribution, the grouped config (``config``), data preparation
(``preparation``), the two-stage run (``run``) and bottleneck training (``bottleneck``). See
docs/architecture.md.
"""
