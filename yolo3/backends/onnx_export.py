"""ONNX export of a YOLO network (raw heads only), and running it in ONNX Runtime.

The exported graph is the bare network: input ``images`` float32 (N, H, W, 3) RGB 0..1 (NHWC,
like the Keras model), outputs the raw head convolutions (N, h, w, A*(5+C)) in the model's output
order. The head metadata (anchors, masks, classes, scale_x_y, net size) is stored in the ONNX
file's ``metadata_props`` under :data:`HEADS_METADATA_KEY`, so a ``.onnx`` file alone is enough
for :class:`yolo3.inference.detector.Detector`, which runs letterbox, decoding and NMS as ONNX graphs of
its own around it (:mod:`yolo3.backends.onnx_postprocess`).

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

import os
from typing import Sequence

import numpy as np

from ..core.heads import head_specs_to_json
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


def _native_onnx(model, input_size, batch_size, opset: int):
    """Write the network as ONNX directly from the Keras layers (NCHW inside, BatchNormalization
    folded into the convolutions). Memory: about two copies of the weights, where tf2onnx needs
    ~60 (it is killed for lack of memory on yolov3 with 24 GB)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    names: dict[int, str] = {}
    counter = [0]

    def fresh(base: str) -> str:
        counter[0] += 1
        return f"{base}__{counter[0]}"

    def const(name: str, array) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def add(op: str, inputs, output: str, **attrs) -> str:
        nodes.append(helper.make_node(op, list(inputs), [output], name=output, **attrs))
        return output

    graph = keras_graph(model)
    folded_bn = conv_batchnorm_pairs(graph)

    h, w = (None, None) if input_size is None else (int(input_size[0]), int(input_size[1]))
    dims = [batch_size if batch_size else "batch", h if h else "height", w if w else "width", 3]
    graph_input = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, dims)
    names[id(model.inputs[0])] = add("Transpose", [INPUT_NAME], "input_nchw", perm=[0, 3, 1, 2])

    for layer, ins, outs in graph:
        kind = type(layer).__name__
        x = [names[id(t)] for t in ins]
        out = layer.name
        if kind == "Conv2D":
            if tuple(layer.dilation_rate) != (1, 1) or layer.data_format != "channels_last":
                raise UnsupportedLayerError(f"{layer.name}: dilation or data format")
            weights = layer.get_weights()
            kernel = weights[0].astype(np.float32)  # (kh, kw, cin/groups, cout)
            bias = weights[1].astype(np.float32) if layer.use_bias else np.zeros(kernel.shape[-1], np.float32)
            bn = folded_bn.get(layer.name)
            if bn is not None:
                kernel, bias = fold_into_conv(kernel, bias, bn)
                out = bn.name
                names[id(bn._inbound_nodes[0].outputs[0])] = out
            attrs = dict(kernel_shape=list(kernel.shape[:2]), strides=list(layer.strides), group=int(layer.groups))
            attrs["auto_pad"] = "SAME_UPPER" if layer.padding == "same" else "VALID"
            w_name = const(f"{layer.name}.weight", kernel.transpose(3, 2, 0, 1))
            b_name = const(f"{layer.name}.bias", bias)
            add("Conv", [x[0], w_name, b_name], out, **attrs)
        elif kind == "BatchNormalization":
            if any(bn is layer for bn in folded_bn.values()):
                continue  # folded into its convolution
            gamma, beta, mean, var = batchnorm_params(layer)
            add("BatchNormalization", [x[0], const(f"{out}.scale", gamma), const(f"{out}.bias", beta),
                                       const(f"{out}.mean", mean), const(f"{out}.var", var)],
                out, epsilon=float(layer.epsilon))
        elif kind == "LeakyReLU":
            add("LeakyRelu", x, out, alpha=float(layer.negative_slope))
        elif kind == "ReLU":
            if layer.max_value is not None or float(layer.threshold) != 0.0 or float(layer.negative_slope) != 0.0:
                raise UnsupportedLayerError(f"{layer.name}: ReLU options")
            add("Relu", x, out)
        elif kind == "Activation":
            fn = keras_activation_name(layer)
            if fn == "sigmoid":
                add("Sigmoid", x, out)
            elif fn in ("silu", "swish"):
                add("Mul", [x[0], add("Sigmoid", x, fresh(out))], out)
            elif fn == "mish":  # x * tanh(softplus(x)), opset 17 has no Mish
                add("Mul", [x[0], add("Tanh", [add("Softplus", x, fresh(out))], fresh(out))], out)
            elif fn == "linear":
                add("Identity", x, out)
            else:
                raise UnsupportedLayerError(f"{layer.name}: activation {fn}")
        elif kind in ("Identity", "Dropout", "YoloHead"):
            add("Identity", x, out)
        elif kind == "ZeroPadding2D":
            (top, bottom), (left, right) = layer.padding
            pads = const(f"{out}.pads", np.array([0, 0, top, left, 0, 0, bottom, right], np.int64))
            add("Pad", [x[0], pads], out, mode="constant")
        elif kind == "MaxPooling2D":
            add("MaxPool", x, out, kernel_shape=list(layer.pool_size), strides=list(layer.strides),
                auto_pad="SAME_UPPER" if layer.padding == "same" else "VALID")
        elif kind == "DarknetMaxPool":
            b, a = layer.pad_before, layer.pad_after
            add("MaxPool", x, out, kernel_shape=[layer.size, layer.size], strides=[layer.stride, layer.stride],
                pads=[b, b, a, a])
        elif kind == "GlobalAveragePooling2D":
            if not layer.keepdims:
                raise UnsupportedLayerError(f"{layer.name}: keepdims=False")
            add("GlobalAveragePool", x, out)
        elif kind == "UpSampling2D":
            if layer.interpolation != "nearest":
                raise UnsupportedLayerError(f"{layer.name}: {layer.interpolation} upsampling")
            sh, sw = layer.size
            scales = const(f"{out}.scales", np.array([1, 1, sh, sw], np.float32))
            add("Resize", [x[0], "", scales], out, mode="nearest",
                coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        elif kind == "Rescaling":
            scaled = add("Mul", [x[0], const(f"{out}.scale", np.array(layer.scale, np.float32))], fresh(out))
            add("Add", [scaled, const(f"{out}.offset", np.array(layer.offset, np.float32))], out)
        elif kind == "Concatenate":
            if layer.axis not in (-1, 3):
                raise UnsupportedLayerError(f"{layer.name}: concatenation on axis {layer.axis}")
            add("Concat", x, out, axis=1)
        elif kind == "Add":
            add("Sum", x, out)
        elif kind == "ChannelGroup":
            size = int(ins[0].shape[-1]) // layer.groups
            start = size * layer.group_id
            add("Slice", [x[0], const(f"{out}.starts", np.array([start], np.int64)),
                          const(f"{out}.ends", np.array([start + size], np.int64)),
                          const(f"{out}.axes", np.array([1], np.int64))], out)
        elif kind == "Softmax":
            if layer.axis not in (-1, 3):
                raise UnsupportedLayerError(f"{layer.name}: softmax on axis {layer.axis}")
            add("Softmax", x, out, axis=1)
        else:
            raise UnsupportedLayerError(f"layer {layer.name} of type {kind}")
        if kind != "BatchNormalization":
            names.setdefault(id(outs[0]), out)

    outputs = []
    for i, t in enumerate(model.outputs):
        head = t._keras_history.operation.name
        add("Transpose", [names[id(t)]], head + "_nhwc", perm=[0, 2, 3, 1])
        channels = int(t.shape[-1])
        outputs.append(helper.make_tensor_value_info(
            head + "_nhwc", TensorProto.FLOAT, [dims[0], f"{head}_height", f"{head}_width", channels]))
    graph_proto = helper.make_graph(nodes, model.name, [graph_input], outputs, initializer=inits)
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
    ``input_size``: fixed (height, width), letting ONNX Runtime plan shapes ahead; None keeps
    them dynamic (any multiple of 32). ``batch_size``: fixed batch or None for dynamic.
    """
    from ..core.heads import get_head_specs

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
    import tensorflow as tf

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
    """Write an ONNX ModelProto to ``path`` atomically."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(proto.SerializeToString())
    os.replace(tmp, path)
