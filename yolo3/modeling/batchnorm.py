"""Walking a Keras YOLO graph and folding BatchNormalization into the convolutions before it."""
from __future__ import annotations

import keras
import numpy as np

from ..errors import Yolo3Error

__all__ = ["UnsupportedLayerError", "keras_graph", "conv_batchnorm_pairs", "fold_batchnorm"]


class UnsupportedLayerError(Yolo3Error):
    """A layer the native ONNX writer does not know (then tf2onnx is used instead)."""


def keras_graph(model):
    """(layer, input tensors, output tensors) of every non-input layer, in topological order.

    Args:
        model: a functional Keras model in which each layer is called once.

    Returns:
        A list of ``(layer, [input KerasTensor], [output KerasTensor])``, producers before consumers.

    Raises:
        UnsupportedLayerError: a layer is called more than once (shared), or the graph has layers not
            reachable from the model inputs.
    """
    done = {id(t) for t in model.inputs}
    pending = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    ordered = []
    while pending:
        progressed = False
        for layer in list(pending):
            if len(layer._inbound_nodes) != 1:
                raise UnsupportedLayerError(f"layer {layer.name} is used {len(layer._inbound_nodes)} times")
            node = layer._inbound_nodes[0]
            inputs = list(node.arguments.keras_tensors)
            if all(id(t) in done for t in inputs):
                outputs = list(node.outputs)
                ordered.append((layer, inputs, outputs))
                done.update(id(t) for t in outputs)
                pending.remove(layer)
                progressed = True
        if not progressed:
            raise UnsupportedLayerError("the model graph has unreachable layers")
    return ordered


def conv_batchnorm_pairs(graph) -> dict:
    """{conv layer name: BatchNormalization layer} for each Conv2D whose output feeds only a BN.

    Args:
        graph: the walk of a model from :func:`keras_graph`.

    Returns:
        A dict from Conv2D layer name to the BatchNormalization layer that is its only consumer.
    """
    consumers: dict[int, int] = {}
    for _, ins, _ in graph:
        for t in ins:
            consumers[id(t)] = consumers.get(id(t), 0) + 1
    producer = {id(outs[0]): layer for layer, _, outs in graph}
    pairs = {}
    for layer, ins, _ in graph:
        if type(layer).__name__ == "BatchNormalization":
            src = producer.get(id(ins[0]))
            if src is not None and type(src).__name__ == "Conv2D" and consumers[id(ins[0])] == 1:
                pairs[src.name] = layer
    return pairs


def fold_into_conv(kernel: np.ndarray, bias: np.ndarray, bn) -> tuple[np.ndarray, np.ndarray]:
    """Kernel (..., cout) and bias (cout,) of a convolution with the inference-mode BN ``bn`` folded in."""
    gamma, beta, mean, var = batchnorm_params(bn)
    scale = gamma / np.sqrt(var + bn.epsilon)
    return (kernel * scale).astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)


def fold_batchnorm(model):
    """An inference copy of a Keras YOLO model with every Conv2D -> BatchNormalization pair merged
    into one biased Conv2D (fewer ops: ~10-25% faster on CPU).

    Args:
        model: a functional Keras YOLO model (one input); its BN layers are folded with their moving
            statistics (inference mode).

    Returns:
        A new ``keras.Model`` with the same name, input and outputs; the merged convolutions are new
        layers, other layers (YoloHead included) are shared with ``model``.

    Raises:
        UnsupportedLayerError: for graphs :func:`keras_graph` cannot walk.
    """

    graph = keras_graph(model)
    pairs = conv_batchnorm_pairs(graph)
    folded = {bn.name for bn in pairs.values()}
    inputs = keras.Input(tuple(model.inputs[0].shape[1:]), name=model.inputs[0].name)
    tensors = {id(model.inputs[0]): inputs}
    for layer, ins, outs in graph:
        x = [tensors[id(t)] for t in ins]
        if layer.name in folded:
            tensors[id(outs[0])] = x[0]
            continue
        if layer.name in pairs:
            config = dict(layer.get_config(), use_bias=True)
            conv = keras.layers.Conv2D.from_config(config)
            y = conv(x[0])
            weights = layer.get_weights()
            bias = weights[1] if layer.use_bias else np.zeros(weights[0].shape[-1], np.float32)
            conv.set_weights(list(fold_into_conv(weights[0], bias, pairs[layer.name])))
        else:
            y = layer(x if len(x) > 1 else x[0])
        tensors[id(outs[0])] = y
    outputs = [tensors[id(t)] for t in model.outputs]
    return keras.Model(inputs, outputs if len(outputs) > 1 else outputs[0], name=model.name)


def batchnorm_params(layer):
    """gamma, beta, moving mean, moving variance of a Keras BatchNormalization layer (float32)."""
    weights = {v.path.split("/")[-1]: np.asarray(v.numpy(), np.float32) for v in layer.weights}
    channels = int(layer.moving_mean.shape[0])
    gamma = weights.get("gamma", np.ones(channels, np.float32))
    beta = weights.get("beta", np.zeros(channels, np.float32))
    return gamma, beta, weights["moving_mean"], weights["moving_variance"]


def keras_activation_name(layer) -> str:
    activation = layer.get_config()["activation"]
    return activation if isinstance(activation, str) else getattr(activation, "__name__", str(activation))
