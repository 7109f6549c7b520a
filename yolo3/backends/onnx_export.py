"""ONNX export of a YOLO network (raw heads only), and running it in ONNX Runtime.

The exported graph is the bare network: input ``images`` float32 (N, H, W, 3) RGB 0..1 (NHWC,
like the Keras model), outputs the raw head convolutions (N, h, w, A*(5+C)) in the model's output
order. The head metadata (anchors, masks, classes, scale_x_y, net size) is stored in the ONNX
file's ``metadata_props`` under :data:`HEADS_METADATA_KEY`, so a ``.onnx`` file alone is enough
for :class:`yolo3.inference.detector.Detector`, which runs the letterbox before it and the decoding and
NMS after it (:mod:`yolo3.ops.postprocess_numpy`).

The export writes the ONNX graph directly from the Keras layers (every layer type a Darknet cfg
produces; BatchNormalization folded into the convolutions) with the ``onnx`` package. tf2onnx
1.17.0 also works with TF 2.21 / Keras 3.15 (``tf2onnx.convert.from_function``) and is the fallback
for other layers, but it needs about 60x the weights' size in memory (2.5 GB for yolov3-tiny;
yolov3 is killed for lack of memory on a 24 GB machine).

Optional dependencies, imported lazily: ``onnxruntime`` to run, ``onnx`` to export (``tf2onnx``
only for layers the native writer does not know). Checked with onnx 1.23.2, onnxruntime 1.31.1,
tf2onnx 1.17.0.

    python -m yolo3.cli.onnx model_data/yolov3-tiny.keras model_data/yolov3-tiny.onnx
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from ..core.files import atomic_open
from ..core.heads import get_head_specs, head_specs_to_json
from ..errors import Yolo3Error
from ..modeling.batchnorm import (
    UnsupportedLayerError,
    batchnorm_params,
    conv_batchnorm_pairs,
    fold_into_conv,
    keras_activation_name,
    keras_graph,
)

__all__ = ["OnnxUnavailableError", "HEADS_METADATA_KEY", "INPUT_NAME", "export_onnx", "save_onnx"]


HEADS_METADATA_KEY = "yolo3_heads"


INPUT_NAME = "images"


DEFAULT_OPSET = 17


class OnnxUnavailableError(Yolo3Error, ImportError):
    """onnx, onnxruntime or (for the fallback route) tf2onnx is not installed; the message says what to install."""


def _import(name: str, purpose: str):
    try:
        return __import__(name)
    except ImportError:
        raise OnnxUnavailableError(
            f"{purpose} needs the optional package '{name}': pip install {name}") from None


class _OnnxGraph:
    """The nodes and initializers of an ONNX graph being written, and the ONNX name of each Keras tensor."""

    def __init__(self, folded_bn: dict):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits = [], []
        self.names: dict[int, str] = {}
        self.folded_bn = folded_bn  # conv layer name -> the BatchNormalization folded into it
        self._counter = 0

    def fresh(self, base: str) -> str:
        self._counter += 1
        return f"{base}__{self._counter}"

    def const(self, name: str, array) -> str:
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def add(self, op: str, inputs, output: str, **attrs) -> str:
        self.nodes.append(self.helper.make_node(op, list(inputs), [output], name=output, **attrs))
        return output


# Writers of the Keras layer types: (graph, layer, input names, output name, input tensors) -> the name
# of the layer's output in the ONNX graph, or None when the layer writes nothing (a folded BatchNorm).
def _write_conv(g: _OnnxGraph, layer, x, out, ins):
    if tuple(layer.dilation_rate) != (1, 1) or layer.data_format != "channels_last":
        raise UnsupportedLayerError(f"{layer.name}: dilation or data format")
    weights = layer.get_weights()
    kernel = weights[0].astype(np.float32)  # (kh, kw, cin/groups, cout)
    bias = weights[1].astype(np.float32) if layer.use_bias else np.zeros(kernel.shape[-1], np.float32)
    bn = g.folded_bn.get(layer.name)
    if bn is not None:
        kernel, bias = fold_into_conv(kernel, bias, bn)
        out = bn.name
        g.names[id(bn._inbound_nodes[0].outputs[0])] = out
    attrs = dict(kernel_shape=list(kernel.shape[:2]), strides=list(layer.strides), group=int(layer.groups))
    attrs["auto_pad"] = "SAME_UPPER" if layer.padding == "same" else "VALID"
    w_name = g.const(f"{layer.name}.weight", kernel.transpose(3, 2, 0, 1))
    b_name = g.const(f"{layer.name}.bias", bias)
    return g.add("Conv", [x[0], w_name, b_name], out, **attrs)


def _write_batchnorm(g: _OnnxGraph, layer, x, out, ins):
    if any(bn is layer for bn in g.folded_bn.values()):
        return None  # folded into its convolution
    gamma, beta, mean, var = batchnorm_params(layer)
    return g.add("BatchNormalization", [x[0], g.const(f"{out}.scale", gamma), g.const(f"{out}.bias", beta),
                                        g.const(f"{out}.mean", mean), g.const(f"{out}.var", var)],
                 out, epsilon=float(layer.epsilon))


def _write_relu(g: _OnnxGraph, layer, x, out, ins):
    if layer.max_value is not None or float(layer.threshold) != 0.0 or float(layer.negative_slope) != 0.0:
        raise UnsupportedLayerError(f"{layer.name}: ReLU options")
    return g.add("Relu", x, out)


def _write_activation(g: _OnnxGraph, layer, x, out, ins):
    fn = keras_activation_name(layer)
    if fn == "sigmoid":
        return g.add("Sigmoid", x, out)
    if fn in ("silu", "swish"):
        return g.add("Mul", [x[0], g.add("Sigmoid", x, g.fresh(out))], out)
    if fn == "mish":  # x * tanh(softplus(x)), opset 17 has no Mish
        return g.add("Mul", [x[0], g.add("Tanh", [g.add("Softplus", x, g.fresh(out))], g.fresh(out))], out)
    if fn == "linear":
        return g.add("Identity", x, out)
    raise UnsupportedLayerError(f"{layer.name}: activation {fn}")


def _write_zero_padding(g: _OnnxGraph, layer, x, out, ins):
    (top, bottom), (left, right) = layer.padding
    pads = g.const(f"{out}.pads", np.array([0, 0, top, left, 0, 0, bottom, right], np.int64))
    return g.add("Pad", [x[0], pads], out, mode="constant")


def _write_max_pooling(g: _OnnxGraph, layer, x, out, ins):
    return g.add("MaxPool", x, out, kernel_shape=list(layer.pool_size), strides=list(layer.strides),
                 auto_pad="SAME_UPPER" if layer.padding == "same" else "VALID")


def _write_darknet_max_pool(g: _OnnxGraph, layer, x, out, ins):
    b, a = layer.pad_before, layer.pad_after
    return g.add("MaxPool", x, out, kernel_shape=[layer.size, layer.size], strides=[layer.stride, layer.stride],
                 pads=[b, b, a, a])


def _write_global_average_pooling(g: _OnnxGraph, layer, x, out, ins):
    if not layer.keepdims:
        raise UnsupportedLayerError(f"{layer.name}: keepdims=False")
    return g.add("GlobalAveragePool", x, out)


def _write_upsampling(g: _OnnxGraph, layer, x, out, ins):
    if layer.interpolation != "nearest":
        raise UnsupportedLayerError(f"{layer.name}: {layer.interpolation} upsampling")
    sh, sw = layer.size
    scales = g.const(f"{out}.scales", np.array([1, 1, sh, sw], np.float32))
    return g.add("Resize", [x[0], "", scales], out, mode="nearest",
                 coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def _write_rescaling(g: _OnnxGraph, layer, x, out, ins):
    scaled = g.add("Mul", [x[0], g.const(f"{out}.scale", np.array(layer.scale, np.float32))], g.fresh(out))
    return g.add("Add", [scaled, g.const(f"{out}.offset", np.array(layer.offset, np.float32))], out)


def _write_concatenate(g: _OnnxGraph, layer, x, out, ins):
    if layer.axis not in (-1, 3):
        raise UnsupportedLayerError(f"{layer.name}: concatenation on axis {layer.axis}")
    return g.add("Concat", x, out, axis=1)


def _write_channel_group(g: _OnnxGraph, layer, x, out, ins):
    size = int(ins[0].shape[-1]) // layer.groups
    start = size * layer.group_id
    return g.add("Slice", [x[0], g.const(f"{out}.starts", np.array([start], np.int64)),
                           g.const(f"{out}.ends", np.array([start + size], np.int64)),
                           g.const(f"{out}.axes", np.array([1], np.int64))], out)


def _write_softmax(g: _OnnxGraph, layer, x, out, ins):
    if layer.axis not in (-1, 3):
        raise UnsupportedLayerError(f"{layer.name}: softmax on axis {layer.axis}")
    return g.add("Softmax", x, out, axis=1)


def _write_identity(g: _OnnxGraph, layer, x, out, ins):
    return g.add("Identity", x, out)


#: Keras layer type name -> its writer (NCHW inside the ONNX graph)
_LAYER_WRITERS = {
    "Conv2D": _write_conv,
    "BatchNormalization": _write_batchnorm,
    "LeakyReLU": lambda g, layer, x, out, ins: g.add("LeakyRelu", x, out, alpha=float(layer.negative_slope)),
    "ReLU": _write_relu,
    "Activation": _write_activation,
    "Identity": _write_identity,
    "Dropout": _write_identity,
    "YoloHead": _write_identity,
    "ZeroPadding2D": _write_zero_padding,
    "MaxPooling2D": _write_max_pooling,
    "DarknetMaxPool": _write_darknet_max_pool,
    "GlobalAveragePooling2D": _write_global_average_pooling,
    "UpSampling2D": _write_upsampling,
    "Rescaling": _write_rescaling,
    "Concatenate": _write_concatenate,
    "Add": lambda g, layer, x, out, ins: g.add("Sum", x, out),
    "ChannelGroup": _write_channel_group,
    "Softmax": _write_softmax,
}


def _native_onnx(model, input_size, batch_size, opset: int):
    """Write the network as ONNX directly from the Keras layers (NCHW inside, BatchNormalization
    folded into the convolutions). Memory: about two copies of the weights, where tf2onnx needs
    ~60 (it is killed for lack of memory on yolov3 with 24 GB)."""
    import onnx
    from onnx import TensorProto, helper

    graph = keras_graph(model)
    g = _OnnxGraph(conv_batchnorm_pairs(graph))
    h, w = (None, None) if input_size is None else (int(input_size[0]), int(input_size[1]))
    dims = [batch_size if batch_size else "batch", h if h else "height", w if w else "width", 3]
    graph_input = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, dims)
    g.names[id(model.inputs[0])] = g.add("Transpose", [INPUT_NAME], "input_nchw", perm=[0, 3, 1, 2])

    for layer, ins, outs in graph:
        kind = type(layer).__name__
        writer = _LAYER_WRITERS.get(kind)
        if writer is None:
            raise UnsupportedLayerError(f"layer {layer.name} of type {kind}")
        out = writer(g, layer, [g.names[id(t)] for t in ins], layer.name, ins)
        if out is not None:
            g.names.setdefault(id(outs[0]), out)

    outputs = []
    for t in model.outputs:
        head = t._keras_history.operation.name
        g.add("Transpose", [g.names[id(t)]], head + "_nhwc", perm=[0, 2, 3, 1])
        outputs.append(helper.make_tensor_value_info(
            head + "_nhwc", TensorProto.FLOAT, [dims[0], f"{head}_height", f"{head}_width", int(t.shape[-1])]))
    graph_proto = helper.make_graph(g.nodes, model.name, [graph_input], outputs, initializer=g.inits)
    # IR version 8 (ONNX 1.13+) is what opset 17 needs and what older ONNX Runtimes read
    proto = helper.make_model(graph_proto, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="yolo3", ir_version=8)
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model, input_size: Sequence[int] | None = None, opset: int = DEFAULT_OPSET,
                batch_size: int | None = None, method: str = "auto"):
    """The Keras YOLO ``model``'s bare network as an ``onnx.ModelProto``.

    ``method``: ``"native"`` writes the graph from the Keras layers (every layer a Darknet cfg
    produces; BatchNormalization folded into the convolutions; low memory, seconds even for
    yolov3), ``"tf2onnx"`` converts a ``tf.function`` with tf2onnx (any TF graph, but it needs
    about 60x the weights' size in memory: yolov3 does not fit in 24 GB), ``"auto"`` tries
    native and falls back to tf2onnx for layers it does not know.

    Args:
        model: a Keras YOLO model.
        input_size: fixed (height, width), letting ONNX Runtime plan shapes ahead; None keeps them
            dynamic (any multiple of 32).
        opset: the ONNX opset.
        batch_size: fixed batch or None for dynamic.
        method: ``"native"``, ``"tf2onnx"`` or ``"auto"`` (above).
    """

    if method not in ("auto", "native", "tf2onnx"):
        raise ValueError(f"method must be auto, native or tf2onnx, got {method!r}")
    specs = get_head_specs(model)
    proto = None
    if method in ("auto", "native"):
        _import("onnx", "ONNX export")
        try:
            proto = _native_onnx(model, input_size, batch_size, opset)
        except UnsupportedLayerError:
            if method == "native":
                raise
    if proto is None:
        proto = _tf2onnx_export(model, input_size, batch_size, opset)
    entry = proto.metadata_props.add()
    entry.key, entry.value = HEADS_METADATA_KEY, head_specs_to_json(specs)
    proto.producer_name = "yolo3"
    return proto


def _tf2onnx_export(model, input_size, batch_size, opset: int):
    tf2onnx = _import("tf2onnx", "ONNX export of this model")
    h, w = (None, None) if input_size is None else (int(input_size[0]), int(input_size[1]))
    signature = (tf.TensorSpec((batch_size, h, w, 3), tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=signature)
    def network(images):
        outputs = model(images, training=False)
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    proto, _ = tf2onnx.convert.from_function(network, input_signature=signature, opset=opset)
    return proto


def save_onnx(proto, path: str) -> None:
    """Write an ONNX ModelProto to ``path`` atomically.

    Args:
        proto: the ``onnx.ModelProto``.
        path: the output file.
    """
    with atomic_open(path, "wb") as f:  # a failure leaves the earlier file and no temporary one
        f.write(proto.SerializeToString())
