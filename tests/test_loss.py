"""yolo_loss: keras-yolo3's terms, finite on empty images and zero-size boxes, ignore mask, scale_x_y."""
import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from yolo3.core.heads import HeadSpec  # noqa: E402
from yolo3.training.loss import yolo_loss  # noqa: E402
from yolo3.training.targets import TargetSpec, assign_targets, pad_boxes  # noqa: E402

C = 2
ANCHORS = np.array([[8, 8], [20, 20], [40, 40], [60, 30]], np.float32)
HEADS = [HeadSpec(ANCHORS[[2, 3]], (2, 3), C, 1.0, (64, 64), 0.5, "yolo_0"),
         HeadSpec(ANCHORS[[0, 1]], (0, 1), C, 1.0, (64, 64), 0.5, "yolo_1")]
SPEC = TargetSpec(ANCHORS, ((2, 3), (0, 1)), (32, 16), C)
SIZE = (64, 64)


def _targets(boxes_per_image):
    ys, tb = [[], []], []
    for boxes in boxes_per_image:
        b = np.asarray(boxes, np.float32).reshape(-1, 5)
        for h, t in enumerate(assign_targets(b, SIZE, SPEC)):
            ys[h].append(t)
        tb.append(pad_boxes(b, SIZE, 8))
    return [tf.stack(y) for y in ys], tf.stack(tb)


def _preds(batch, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [tf.constant(rng.normal(0, scale, (batch, 2, 2, 2 * (5 + C))), tf.float32),
            tf.constant(rng.normal(0, scale, (batch, 4, 4, 2 * (5 + C))), tf.float32)]


@pytest.mark.parametrize("box_loss", ["mse", "ciou"])
def test_finite_on_empty_images(box_loss):
    y, tb = _targets([[], []])
    parts = yolo_loss(y, _preds(2), HEADS, SIZE, tb, box_loss=box_loss)
    assert all(np.isfinite(float(v)) for v in parts.values())
    assert float(parts["cls"]) == 0.0 and float(parts["obj"]) > 0
    assert (float(parts["xy"]) == 0.0) if box_loss == "mse" else (float(parts["box"]) == 0.0)


@pytest.mark.parametrize("box_loss", ["mse", "ciou"])
def test_finite_on_zero_size_boxes_with_gradients(box_loss):
    # A zero-size box that reached the targets anyway (keras-yolo3 gave log(0) = -inf -> NaN).
    y, tb = _targets([[], []])
    y = [t.numpy() for t in y]
    y[1][0, 1, 1, 0, :] = [0.3, 0.3, 0.0, 0.0, 1.0, 1.0, 0.0]
    y[0][1, 0, 0, 1, :] = [0.2, 0.7, 0.0, 0.25, 1.0, 0.0, 1.0]
    tb = tb.numpy()
    tb[0, 0] = [0.3, 0.3, 0.0, 0.0]
    preds = [tf.Variable(p) for p in _preds(2, scale=3.0)]
    with tf.GradientTape() as tape:
        parts = yolo_loss([tf.constant(t) for t in y], preds, HEADS, SIZE, tf.constant(tb), box_loss=box_loss)
    grads = tape.gradient(parts["loss"], preds)
    assert all(np.isfinite(float(v)) for v in parts.values())
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


def test_terms_match_hand_computation():
    # All logits 0: every BCE term is ln 2; wh = 0.5 * log(w * 64 / anchor_w)^2 per side.
    box = [10, 11, 21, 30, 1]  # 11x19 px -> anchor 1 (20x20) of head 1
    y, tb = _targets([[box]])
    zeros = [tf.zeros((1, 2, 2, 2 * (5 + C))), tf.zeros((1, 4, 4, 2 * (5 + C)))]
    parts = yolo_loss(y, zeros, HEADS, SIZE, tb)
    w, h = 11 / 64, 19 / 64
    scale = 2 - w * h
    ln2 = math.log(2)
    assert float(parts["xy"]) == pytest.approx(scale * 2 * ln2, rel=1e-5)
    expected_wh = scale * 0.5 * (math.log(11 / 20) ** 2 + math.log(19 / 20) ** 2)
    assert float(parts["wh"]) == pytest.approx(expected_wh, rel=1e-5)
    assert float(parts["cls"]) == pytest.approx(C * ln2, rel=1e-5)
    # Objectness: every one of the 2*2*2 + 4*4*2 = 40 slots costs ln 2 (all-zero logits decode to boxes
    # the size of their anchors at cell centres; none overlaps the truth by > 0.5 IoU).
    assert float(parts["obj"]) == pytest.approx(40 * ln2, rel=1e-5)
    assert float(parts["loss"]) == pytest.approx(sum(float(parts[k]) for k in ("xy", "wh", "obj", "cls")), rel=1e-6)


def test_divided_by_batch_size():
    y1, tb1 = _targets([[[10, 11, 21, 30, 1]]])
    y2, tb2 = _targets([[[10, 11, 21, 30, 1]], [[10, 11, 21, 30, 1]]])
    p1 = _preds(1, seed=3)
    p2 = [tf.concat([p, p], 0) for p in p1]
    a = yolo_loss(y1, p1, HEADS, SIZE, tb1)["loss"]
    b = yolo_loss(y2, p2, HEADS, SIZE, tb2)["loss"]
    assert float(a) == pytest.approx(float(b), rel=1e-5)


def test_ignore_mask_spares_good_background_predictions():
    # A non-responsible slot predicting the true box (IoU 1) with high objectness is not punished
    # at ignore_thresh 0.5, but is when the threshold is above 1.
    box = [16, 16, 48, 48, 0]  # 32x32 -> anchor 2 (40x40), head 0, cell (1, 1) slot 0
    y, tb = _targets([[box]])
    raw0 = np.zeros((1, 2, 2, 2, 5 + C), np.float32)
    raw0[..., 4] = -10.0
    # slot 1 of cell (0, 0): centre (32, 32) needs sigmoid = 1 (use a large logit), size 32x32 vs anchor 60x30
    raw0[0, 0, 0, 1, 0:2] = 30.0
    raw0[0, 0, 0, 1, 2:4] = [math.log(32 / 60), math.log(32 / 30)]
    raw0[0, 0, 0, 1, 4] = 5.0
    preds = [tf.constant(raw0.reshape(1, 2, 2, -1)), tf.fill((1, 4, 4, 2 * (5 + C)), -10.0)]
    spared = float(yolo_loss(y, preds, HEADS, SIZE, tb)["obj"])
    punished = float(yolo_loss(y, preds, HEADS, SIZE, tb, ignore_thresh=1.01)["obj"])
    assert punished - spared == pytest.approx(5.0 + math.log1p(math.exp(-5.0)), rel=1e-3)
    # keras-yolo3's variant (no true_boxes: the head's own assigned boxes) agrees here.
    assert float(yolo_loss(y, preds, HEADS, SIZE, None)["obj"]) == pytest.approx(spared, rel=1e-5)


def test_scale_x_y_moves_the_xy_optimum():
    heads = [HeadSpec(h.anchors, h.mask, C, 2.0, h.net_size, 0.5, h.name) for h in HEADS]
    box = [10, 11, 21, 30, 1]  # centre (15.5, 20.5): stride 16 -> cell (1, 0), offsets (0.96875, 0.28125)
    y, tb = _targets([[box]])

    def xy_loss(tx, ty):
        raw1 = np.zeros((1, 4, 4, 2, 5 + C), np.float32)
        raw1[0, 1, 0, 1, 0:2] = [tx, ty]
        preds = [tf.zeros((1, 2, 2, 2 * (5 + C))), tf.constant(raw1.reshape(1, 4, 4, -1))]
        return float(yolo_loss(y, preds, heads, SIZE, tb)["xy"])

    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    best = (logit((0.96875 + 0.5) / 2), logit((0.28125 + 0.5) / 2))
    at_best = xy_loss(*best)
    for dx, dy in ((0.3, 0), (-0.3, 0), (0, 0.3), (0, -0.3)):
        assert xy_loss(best[0] + dx, best[1] + dy) > at_best


def test_label_smoothing_changes_only_class_term():
    y, tb = _targets([[[10, 11, 21, 30, 1]]])
    p = _preds(1, seed=5)
    a = yolo_loss(y, p, HEADS, SIZE, tb)
    b = yolo_loss(y, p, HEADS, SIZE, tb, label_smoothing=0.1)
    assert float(a["cls"]) != pytest.approx(float(b["cls"]))
    for k in ("xy", "wh", "obj"):
        assert float(a[k]) == pytest.approx(float(b[k]))


# -- the formulas against numpy (issue 17: CIoU and label smoothing were only checked for "something changed")
def np_ciou_terms(p, t):
    """(IoU - rho^2/c^2, v, IoU) of cxcywh boxes (Zheng et al. 2020, eq. 10-11), written from the paper in
    numpy (float64); CIoU = the first - alpha * v with alpha = v / (1 - IoU + v)."""
    p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
    pa, pb = p[..., :2] - p[..., 2:] / 2, p[..., :2] + p[..., 2:] / 2
    ta, tb = t[..., :2] - t[..., 2:] / 2, t[..., :2] + t[..., 2:] / 2
    inter = np.prod(np.clip(np.minimum(pb, tb) - np.maximum(pa, ta), 0, None), -1)
    iou = inter / (np.prod(p[..., 2:], -1) + np.prod(t[..., 2:], -1) - inter)
    c2 = np.sum((np.maximum(pb, tb) - np.minimum(pa, ta)) ** 2, -1)
    rho2 = np.sum((p[..., :2] - t[..., :2]) ** 2, -1)
    v = 4 / math.pi ** 2 * (np.arctan(t[..., 2] / t[..., 3]) - np.arctan(p[..., 2] / p[..., 3])) ** 2
    return iou - rho2 / c2, v, iou


def _np_ciou(p, t):
    """CIoU of cxcywh boxes (Zheng et al. 2020, eq. 10-11), from :func:`np_ciou_terms`."""
    diou, v, iou = np_ciou_terms(p, t)
    return diou - v / (1 - iou + v) * v


def test_ciou_equals_the_papers_formula():
    from yolo3.core.boxes import ciou_cxcywh

    rng = np.random.default_rng(7)
    t = np.concatenate([rng.uniform(0.2, 0.8, (64, 2)), rng.uniform(0.05, 0.4, (64, 2))], 1)
    p = np.concatenate([t[:, :2] + rng.normal(0, 0.1, (64, 2)), t[:, 2:] * rng.uniform(0.5, 2, (64, 2))], 1)
    got = ciou_cxcywh(tf.constant(p, tf.float32), tf.constant(t, tf.float32)).numpy()
    np.testing.assert_allclose(got, _np_ciou(p, t), atol=1e-5)
    # hand-worked: same centre, 2x1 vs 1x1: IoU 0.5, no distance term, v = 4/pi^2 (atan 1 - atan 2)^2
    v = 4 / math.pi ** 2 * (math.atan(1) - math.atan(2)) ** 2
    hand = ciou_cxcywh(tf.constant([[0.5, 0.5, 0.2, 0.1]]), tf.constant([[0.5, 0.5, 0.1, 0.1]])).numpy()[0]
    assert hand == pytest.approx(0.5 - v * v / (0.5 + v), abs=1e-6)


def _np_decode(raw, anchors, input_wh):
    """(B, H, W, A, 5+C) raw head -> relative cxcywh, Darknet's formula with scale_x_y 1."""
    h, w = raw.shape[1:3]
    col, row = np.meshgrid(np.arange(w), np.arange(h))
    sig = 1 / (1 + np.exp(-raw[..., 0:2]))
    cx = (sig[..., 0] + col[None, :, :, None]) / w
    cy = (sig[..., 1] + row[None, :, :, None]) / h
    bw = np.exp(raw[..., 2]) * anchors[:, 0] / input_wh[0]
    bh = np.exp(raw[..., 3]) * anchors[:, 1] / input_wh[1]
    return np.stack([cx, cy, bw, bh], -1)


def _np_bce(labels, logits):
    return np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))


def test_ciou_box_term_and_label_smoothing_equal_numpy():
    """box = sum over responsible slots of (2 - w*h) * (1 - CIoU(decoded prediction, truth));
    cls = sum over responsible slots of BCE(y * (1 - eps) + eps / 2, logit)."""
    y, tb = _targets([[[10, 11, 21, 30, 1], [30, 20, 62, 60, 0]]])
    p = _preds(1, seed=11, scale=0.7)
    eps = 0.2
    parts = yolo_loss(y, p, HEADS, SIZE, tb, box_loss="ciou", label_smoothing=eps)
    box = cls = 0.0
    for true, raw, head in zip(y, p, HEADS):
        true = true.numpy().astype(np.float64)
        raw = raw.numpy().astype(np.float64).reshape(true.shape)
        obj = true[..., 4] > 0
        assert obj.sum() >= 1
        pred = _np_decode(raw, np.asarray(head.anchors, np.float64).reshape(-1, 2), (64, 64))
        scale = 2 - true[..., 2] * true[..., 3]
        box += np.sum((scale * (1 - _np_ciou(pred, np.where(obj[..., None], true[..., :4], 1.0))))[obj])
        cls += np.sum(_np_bce(true[..., 5:] * (1 - eps) + eps / 2, raw[..., 5:])[obj])
    assert float(parts["box"]) == pytest.approx(box, rel=1e-4)
    assert float(parts["cls"]) == pytest.approx(cls, rel=1e-4)
