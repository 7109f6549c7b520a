"""Darknet's letterbox as OpenVINO operations in front of the network, for pictures of one size.

The openvino backend letterboxes exactly at fp32 (Darknet's float arithmetic, as
:func:`yolo3.ops.letterbox.letterbox`); called from NumPy the TF letterbox costs 1.5-2.5 ms a picture,
10-15% of yolov3-tiny's fp32 network on a 2-core CPU. Written into the network's own graph for one
picture size (:func:`with_letterbox`), the same gathers and products run in OpenVINO's threads in
about 1.3 ms, with the network, in one call: the pictures go in as uint8 (B, H, W, 3).

The operations are the TF letterbox's, value for value: the two source rows of each output row are
gathered first, Darknet's horizontal pass (its last column copying the last source pixel) runs on each,
then the vertical pass (its last row without a second row), and the grey border (0.5) is padded on.
OpenVINO may fuse a product and a sum into one rounding: the heads then differ from those of the TF
letterbox by float32 rounding (2e-5 on yolov3-tiny's logits).

A compiled network holds its own copy of the weights, so :class:`yolo3.backends.openvino_runtime.
OpenVinoPipeline` keeps one such network, for the last picture size that came twice in a row.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..ops.letterbox_remap import GREY, darknet_sampling, letterbox_size_np

__all__ = ["letterbox_graph", "with_letterbox"]


def letterbox_graph(pictures, picture_hw: Sequence[int], net_size: Sequence[int]):
    """OpenVINO operations letterboxing ``pictures`` (an ``ov`` output: uint8 (B, H, W, 3), every picture
    (H, W) = ``picture_hw``) into float32 (B, net_h, net_w, 3) in 0..1, grey 0.5 around: the TF
    letterbox's operations (module docstring). Returns the output."""
    import openvino as ov
    import openvino.opset13 as ops

    h, w = int(picture_hw[0]), int(picture_hw[1])
    net_h, net_w = int(net_size[0]), int(net_size[1])
    new_h, new_w = (int(v) for v in letterbox_size_np(h, w, net_h, net_w))
    if new_h == 0 or new_w == 0:
        raise ValueError(f"a {h}x{w} picture letterboxes to nothing at {net_h}x{net_w}")
    iy0, iy1, wy0, wy1 = darknet_sampling(new_h, h, last_copies=False)
    ix0, ix1, wx0, wx1 = darknet_sampling(new_w, w, last_copies=True)

    def const(value):
        return ops.constant(np.asarray(value))

    def column(weights):
        return const(weights.reshape(1, 1, -1, 1))

    def horizontal(rows):  # uint8 (B, new_h, W, 3) -> float32 (B, new_h, new_w, 3), Darknet's 0..1 values
        left, right = (ops.divide(ops.convert(ops.gather(rows, const(index), const(np.int64(2))), ov.Type.f32),
                                  const(np.float32(255))) for index in (ix0, ix1))
        return ops.add(ops.multiply(column(wx0), left), ops.multiply(column(wx1), right))

    part0, part1 = (horizontal(ops.gather(pictures, const(index), const(np.int64(1)))) for index in (iy0, iy1))
    resized = ops.add(ops.multiply(const(wy0.reshape(1, -1, 1, 1)), part0),
                      ops.multiply(const(wy1.reshape(1, -1, 1, 1)), part1))
    top, left = (net_h - new_h) // 2, (net_w - new_w) // 2
    return ops.pad(resized, const(np.array([0, top, left, 0], np.int64)),
                   const(np.array([0, net_h - new_h - top, net_w - new_w - left, 0], np.int64)), "constant",
                   const(np.float32(GREY))).output(0)


def with_letterbox(model, batch: int, picture_hw: Sequence[int]):
    """``model`` (an ``ov.Model`` taking float32 (batch, net_h, net_w, 3), its spatial size fixed) with
    :func:`letterbox_graph` in front: the new model takes uint8 (batch, H, W, 3) pictures of size
    ``picture_hw``. ``model`` itself is left as it is.

    Raises:
        ValueError: a picture that letterboxes to nothing (no pixel row or column survives).
    """
    import openvino as ov

    shape = model.inputs[0].get_partial_shape()
    net_size = (shape[1].get_length(), shape[2].get_length())
    model = model.clone()
    model.reshape([int(batch), *net_size, 3])
    ppp = ov.preprocess.PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_shape([int(batch), *(int(v) for v in picture_hw), 3])
    ppp.input().preprocess().custom(lambda node: letterbox_graph(node, picture_hw, net_size))
    return ppp.build()
