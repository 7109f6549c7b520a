"""BatchNorm folding (yolo3.modeling.batchnorm) against numpy, on random weights: no download needed.

The detector runs the folded network by default, so a fold that loses the BN shift (beta - mean * scale)
moves every activation; the tests that use real weights would catch it only where the weights can be
fetched. Tolerance: float32 rounding of a 3x3x8 convolution (1e-5 relative)."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from yolo3.modeling.batchnorm import fold_batchnorm, fold_into_conv  # noqa: E402


def _np_conv_bn(x, kernel, bias, gamma, beta, mean, var, eps):
    """'same' 3x3 convolution then inference BatchNorm, both straight from their definitions."""
    k = kernel.shape[0] // 2
    xp = np.pad(x, ((0, 0), (k, k), (k, k), (0, 0)))
    h, w = x.shape[1:3]
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
    for dy in range(kernel.shape[0]):
        for dx in range(kernel.shape[1]):
            out += np.einsum("bhwc,co->bhwo", xp[:, dy:dy + h, dx:dx + w], kernel[dy, dx])
    out += bias
    return (out - mean) / np.sqrt(var + eps) * gamma + beta


@pytest.fixture(scope="module")
def conv_bn_model():
    rng = np.random.default_rng(3)
    inputs = keras.Input((6, 7, 8))
    conv = keras.layers.Conv2D(5, 3, padding="same", use_bias=False, name="conv_0")
    bn = keras.layers.BatchNormalization(epsilon=1e-3, name="bn_0")
    model = keras.Model(inputs, keras.layers.LeakyReLU(0.1, name="act_0")(bn(conv(inputs))))
    conv.set_weights([rng.normal(0, 0.3, (3, 3, 8, 5)).astype(np.float32)])
    bn.set_weights([rng.uniform(0.5, 1.5, 5), rng.normal(0, 1, 5), rng.normal(0, 1, 5), rng.uniform(0.2, 2, 5)])
    return model, rng.normal(0, 1, (2, 6, 7, 8)).astype(np.float32)


def test_fold_into_conv_keeps_scale_and_shift():
    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(0, 1, (3, 3, 4, 6)), rng.normal(0, 1, 6)
    bn = keras.layers.BatchNormalization(epsilon=1e-3)
    bn.build((None, 6))
    gamma, beta, mean, var = rng.uniform(0.5, 1.5, 6), rng.normal(0, 1, 6), rng.normal(0, 1, 6), rng.uniform(0.2, 2, 6)
    bn.set_weights([gamma, beta, mean, var])
    k, b = fold_into_conv(kernel.astype(np.float32), bias.astype(np.float32), bn)
    scale = gamma / np.sqrt(var + 1e-3)
    np.testing.assert_allclose(k, kernel * scale, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, (bias - mean) * scale + beta, rtol=1e-5, atol=1e-6)


def test_folded_model_equals_numpy_conv_and_batchnorm(conv_bn_model):
    model, x = conv_bn_model
    folded = fold_batchnorm(model)
    assert not any(type(layer).__name__ == "BatchNormalization" for layer in folded.layers)
    conv, bn = model.get_layer("conv_0"), model.get_layer("bn_0")
    gamma, beta, mean, var = bn.get_weights()
    pre = _np_conv_bn(x.astype(np.float64), conv.get_weights()[0], 0.0, gamma, beta, mean, var, 1e-3)
    expected = np.where(pre > 0, pre, 0.1 * pre)
    np.testing.assert_allclose(np.asarray(folded(x)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, rtol=1e-5, atol=1e-5)
