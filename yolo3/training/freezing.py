"""Which layers train: freezing the body for the first training stage."""
from __future__ import annotations

import keras

from ..modeling.factory import backbone_layers

__all__ = ["head_output_layers", "freeze_body"]


def head_output_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers with weights that produce the model outputs (the 1x1 convolutions feeding the
    YoloHead layers, found by walking back through weightless layers).

    Args:
        model: a functional YOLO model.

    Returns:
        One layer per model output, in output order.

    Raises:
        ValueError: a weightless layer on the way back has more than one input.
    """
    layers = []
    for out in model.outputs:
        op = out._keras_history.operation
        while not op.weights:
            inputs = op._inbound_nodes[0].input_tensors
            if len(inputs) != 1:
                raise ValueError(f"cannot find the output convolution before {op.name}")
            op = inputs[0]._keras_history.operation
        layers.append(op)
    return layers


def freeze_body(model: keras.Model, mode: int) -> int:
    """Set ``trainable`` on the layers of ``model`` and return how many layers with weights are frozen.

    BatchNormalization layers that are frozen run in inference mode (Keras 3).
    Recompile (with a fresh optimizer) afterwards.

    Args:
        model: the YOLO model, changed in place (``model.trainable`` is set to True first).
        mode: 0: nothing frozen; 1: the feature extractor (Darknet body,
            :func:`yolo3.modeling.factory.backbone_layers`); 2: everything but the output convolutions.

    Raises:
        ValueError: ``mode`` is not 0, 1 or 2.
    """
    if mode not in (0, 1, 2):
        raise ValueError(f"freeze_body must be 0, 1 or 2, got {mode}")
    model.trainable = True
    if mode == 0:
        frozen: set[int] = set()
    elif mode == 1:
        frozen = {id(layer) for layer in backbone_layers(model)}
    else:
        keep = {id(layer) for layer in head_output_layers(model)}
        frozen = {id(layer) for layer in model.layers if id(layer) not in keep}
    count = 0
    for layer in model.layers:
        layer.trainable = id(layer) not in frozen
        if id(layer) in frozen and layer.weights:
            count += 1
    return count
