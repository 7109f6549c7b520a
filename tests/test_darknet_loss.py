"""Darknet's (YOLOv4) loss against a numpy port of Darknet's C code, its keys on the heads, no NaN.

The port below is written from AlexeyAB darknet ``src/yolo_layer.c`` (``process_batch``,
``delta_yolo_box``, ``delta_yolo_class``, ``averages_yolo_deltas``, ``compare_yolo_class``) and
``src/box.c`` (``box_iou``, ``dx_box_iou``) as the fork beric7/YOLOv4_infrastructure holds them, for
one image and one ``[yolo]`` layer, in float64. Darknet's ``delta`` is minus the gradient of the loss
with respect to the raw output, so ``-d(loss)/d(raw)`` of :func:`yolo_loss` (batch 1) must equal it.
"""
import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from test_loss import np_ciou_terms  # noqa: E402  (the paper's CIoU in numpy, shared)

from yolo3.core.heads import HeadSpec, get_head_specs, head_specs_from_json, head_specs_to_json  # noqa: E402
from yolo3.core.layers import YoloHead  # noqa: E402
from yolo3.training.loss import yolo_loss  # noqa: E402
from yolo3.training.targets import TargetSpec, assign_targets, pad_boxes  # noqa: E402

C = 3
NET = 64  # network input, square
# Three similar shapes in the head's mask (a 12x12 box passes iou_thresh on all of them) and a big anchor
# belonging to another head.
ANCHORS = np.array([[10, 14], [14, 10], [12, 12], [30, 30]], np.float32)
MASK = (0, 1, 2)
GRID = 4  # stride 16
# x_min, y_min, x_max, y_max, class: distinct cells, so no two positives share a slot
BOXES = np.array([
    [2, 3, 14, 15, 0],     # 12x12, best anchor 2, anchors 0 and 1 pass iou_thresh too
    [34, 18, 45, 31, 2],   # 11x13, best anchor 0 (or 2), others pass too
    [40, 42, 60, 62, 1],   # 20x20, best anchor 3 (other head); anchors of this mask pass iou_thresh
    [17, 34, 45, 62, 1],   # 28x28, best anchor 3, nothing passes here
], np.float32)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# -- the port (C -> numpy, float64) ----------------------------------------------------------------------
def _overlap(x1, w1, x2, w2):
    left = max(x1 - w1 / 2, x2 - w2 / 2)
    right = min(x1 + w1 / 2, x2 + w2 / 2)
    return right - left


def _box_iou(a, b):
    """box.c box_iou: intersection / union, 0 when either is 0 (boxes x, y, w, h)."""
    w = _overlap(a[0], a[2], b[0], b[2])
    h = _overlap(a[1], a[3], b[1], b[3])
    inter = 0.0 if (w < 0 or h < 0) else w * h
    union = a[2] * a[3] + b[2] * b[3] - inter
    return 0.0 if (inter == 0 or union == 0) else inter / union


def _dx_box_iou(pred, truth, kind):
    """box.c dx_box_iou, line by line."""
    px, py, pw, ph = pred
    tx, ty, tw, th = truth
    top, bot, left, right = py - ph / 2, py + ph / 2, px - pw / 2, px + pw / 2
    pred_t, pred_b, pred_l, pred_r = min(top, bot), max(top, bot), min(left, right), max(left, right)
    t_top, t_bot, t_left, t_right = ty - th / 2, ty + th / 2, tx - tw / 2, tx + tw / 2
    X = (pred_b - pred_t) * (pred_r - pred_l)
    Xhat = (t_bot - t_top) * (t_right - t_left)
    Ih = min(pred_b, t_bot) - max(pred_t, t_top)
    Iw = min(pred_r, t_right) - max(pred_l, t_left)
    I = Iw * Ih  # noqa: E741
    U = X + Xhat - I
    S = (px - tx) ** 2 + (py - ty) ** 2
    giou_Cw = max(pred_r, t_right) - min(pred_l, t_left)
    giou_Ch = max(pred_b, t_bot) - min(pred_t, t_top)
    giou_C = giou_Cw * giou_Ch
    dX_t, dX_b, dX_l, dX_r = -(pred_r - pred_l), pred_r - pred_l, -(pred_b - pred_t), pred_b - pred_t
    dI_t = -Iw if pred_t > t_top else 0
    dI_b = Iw if pred_b < t_bot else 0
    dI_l = -Ih if pred_l > t_left else 0
    dI_r = Ih if pred_r < t_right else 0
    dU_t, dU_b, dU_l, dU_r = dX_t - dI_t, dX_b - dI_b, dX_l - dI_l, dX_r - dI_r
    dC_t = -giou_Cw if pred_t < t_top else 0
    dC_b = giou_Cw if pred_b > t_bot else 0
    dC_l = -giou_Ch if pred_l < t_left else 0
    dC_r = giou_Ch if pred_r > t_right else 0
    p_dt = p_db = p_dl = p_dr = 0.0
    if U > 0:
        p_dt = (U * dI_t - I * dU_t) / (U * U)
        p_db = (U * dI_b - I * dU_b) / (U * U)
        p_dl = (U * dI_l - I * dU_l) / (U * U)
        p_dr = (U * dI_r - I * dU_r) / (U * U)
    p_dt = p_dt if top < bot else p_db
    p_db = p_db if top < bot else p_dt
    p_dl = p_dl if left < right else p_dr
    p_dr = p_dr if left < right else p_dl
    if kind == "giou":
        def g(dU, dC):
            return (giou_C * dU - U * dC) / (giou_C * giou_C)
        if giou_C > 0:
            p_dt, p_db = p_dt + g(dU_t, dC_t), p_db + g(dU_b, dC_b)
            p_dl, p_dr = p_dl + g(dU_l, dC_l), p_dr + g(dU_r, dC_r)
        if Iw <= 0 or Ih <= 0:
            p_dt, p_db, p_dl, p_dr = g(dU_t, dC_t), g(dU_b, dC_b), g(dU_l, dC_l), g(dU_r, dC_r)
    Ct, Cb = min(py - ph / 2, t_top), max(py + ph / 2, t_bot)
    Cl, Cr = min(px - pw / 2, t_left), max(px + pw / 2, t_right)
    Cw, Ch = Cr - Cl, Cb - Ct
    Cc = Cw * Cw + Ch * Ch
    dCt_dy, dCt_dh = (1, -0.5) if pred_t < t_top else (0, 0)
    dCb_dy, dCb_dh = (1, 0.5) if pred_b > t_bot else (0, 0)
    dCl_dx, dCl_dw = (1, -0.5) if pred_l < t_left else (0, 0)
    dCr_dx, dCr_dw = (1, 0.5) if pred_r > t_right else (0, 0)
    dCw_dx, dCw_dw = dCr_dx - dCl_dx, dCr_dw - dCl_dw
    dCh_dy, dCh_dh = dCb_dy - dCt_dy, dCb_dh - dCt_dh
    p_dx, p_dy, p_dw, p_dh = p_dl + p_dr, p_dt + p_db, p_dr - p_dl, p_db - p_dt
    if kind in ("diou", "ciou"):
        ex = (2 * (tx - px) * Cc - (2 * Cw * dCw_dx) * S) / (Cc * Cc)
        ey = (2 * (ty - py) * Cc - (2 * Ch * dCh_dy) * S) / (Cc * Cc)
        ew = (2 * Cw * dCw_dw) * S / (Cc * Cc)
        eh = (2 * Ch * dCh_dh) * S / (Cc * Cc)
        if kind == "ciou":
            ar = math.atan(tw / th) - math.atan(pw / ph)
            ar_loss = 4 / math.pi ** 2 * ar * ar
            alpha = ar_loss / (1 - I / U + ar_loss + 0.000001)
            ew += alpha * 8 / math.pi ** 2 * ar * ph
            eh += alpha * -8 / math.pi ** 2 * ar * pw
        if Cc > 0:
            p_dx, p_dy, p_dw, p_dh = p_dx + ex, p_dy + ey, p_dw + ew, p_dh + eh
        if Iw <= 0 or Ih <= 0:
            p_dx, p_dy, p_dw, p_dh = ex, ey, ew, eh
    return p_dx, p_dy, p_dw, p_dh


def _fix(v):
    return 0.0 if (math.isnan(v) or math.isinf(v)) else v


def _delta_yolo_box(truth, out, raw, anchor, i, j, delta, head):
    """yolo_layer.c delta_yolo_box (accumulate=1) into delta[j, i, n, 0:4]; out/raw are that slot's values."""
    pred = ((i + out[0]) / GRID, (j + out[1]) / GRID, math.exp(raw[2]) * anchor[0] / NET,
            math.exp(raw[3]) * anchor[1] / NET)
    pred = (pred[0], pred[1], pred[2] or 1.0, pred[3] or 1.0)  # "avoid nan in dx_box_iou"
    norm = head.iou_normalizer
    if head.iou_loss == "mse":
        scale = 2 - truth[2] * truth[3]
        t = (truth[0] * GRID - i, truth[1] * GRID - j, math.log(truth[2] * NET / anchor[0]),
             math.log(truth[3] * NET / anchor[1]))
        x = (out[0], out[1], raw[2], raw[3])
        for c in range(4):
            delta[c] += scale * (t[c] - x[c]) * norm
        return
    dx, dy, dw, dh = _dx_box_iou(pred, truth, head.iou_loss)
    dw *= math.exp(raw[2])
    dh *= math.exp(raw[3])
    d = [_fix(v * norm) for v in (dx, dy, dw, dh)]
    if head.max_delta is not None:
        d = [min(max(v, -head.max_delta), head.max_delta) for v in d]
    for c in range(4):
        delta[c] += d[c]


def _darknet_deltas(raw, truths, head):
    """process_batch for one image: raw (GRID, GRID, A, 5+C) -> delta of the same shape, and the positives
    {(j, i, n): truth index}. truths: (x, y, w, h, class) relative to the network."""
    s = head.scale_x_y
    out = raw.astype(np.float64).copy()
    out[..., 0:2] = _sigmoid(out[..., 0:2]) * s - 0.5 * (s - 1)
    out[..., 4:] = _sigmoid(out[..., 4:])
    delta = np.zeros_like(out)
    anchors = ANCHORS.astype(np.float64)
    for j in range(GRID):
        for i in range(GRID):
            for n in range(len(MASK)):
                a = anchors[MASK[n]]
                pred = ((i + out[j, i, n, 0]) / GRID, (j + out[j, i, n, 1]) / GRID,
                        math.exp(raw[j, i, n, 2]) * a[0] / NET, math.exp(raw[j, i, n, 3]) * a[1] / NET)
                class_match = any(out[j, i, n, 5 + c] > 0.25 for c in range(C))  # compare_yolo_class
                best_match_iou = 0.0
                for t in truths:
                    iou = _box_iou(pred, t[:4])
                    if iou > best_match_iou and class_match:
                        best_match_iou = iou
                delta[j, i, n, 4] = head.obj_normalizer * (0 - out[j, i, n, 4])
                if best_match_iou > head.ignore_thresh:
                    delta[j, i, n, 4] = 0
    positives = {}

    def positive(t, truth, n, mask_n, i, j):
        positives[(j, i, mask_n)] = t
        _delta_yolo_box(truth[:4], out[j, i, mask_n], raw[j, i, mask_n], anchors[n], i, j, delta[j, i, mask_n], head)
        delta[j, i, mask_n, 4] = head.obj_normalizer * (1 - out[j, i, mask_n, 4])
        eps = head.label_smooth_eps
        for c in range(C):  # delta_yolo_class, default branch (no focal loss, no classes_multipliers)
            y = 1.0 if c == int(truth[4]) else 0.0
            if eps:
                y = y * (1 - eps) + 0.5 * eps
            delta[j, i, mask_n, 5 + c] = y - out[j, i, mask_n, 5 + c]

    for t, truth in enumerate(truths):
        best_iou, best_n = 0.0, 0
        i, j = int(truth[0] * GRID), int(truth[1] * GRID)
        shift = (0, 0, truth[2], truth[3])
        for n in range(len(anchors)):
            iou = _box_iou((0, 0, anchors[n, 0] / NET, anchors[n, 1] / NET), shift)
            if iou > best_iou:
                best_iou, best_n = iou, n
        if best_n in MASK:
            positive(t, truth, best_n, MASK.index(best_n), i, j)
        for n in range(len(anchors)):  # "iou_thresh"
            if n in MASK and n != best_n and head.iou_thresh < 1.0:
                iou = _box_iou((0, 0, anchors[n, 0] / NET, anchors[n, 1] / NET), shift)
                if iou > head.iou_thresh:
                    positive(t, truth, n, MASK.index(n), i, j)
    if head.iou_thresh < 1.0:  # averages_yolo_deltas
        for j in range(GRID):
            for i in range(GRID):
                for n in range(len(MASK)):
                    if delta[j, i, n, 4] != 0:
                        k = sum(delta[j, i, n, 5 + c] > 0 for c in range(C))
                        if k > 0:
                            delta[j, i, n, 0:4] /= k
    return delta, positives


# -- helpers -------------------------------------------------------------------------------------------
def _head(**keys) -> HeadSpec:
    base = dict(darknet_loss=True, iou_thresh=0.213, iou_loss="ciou", iou_normalizer=0.07, obj_normalizer=1.0,
                max_delta=5.0, label_smooth_eps=0.0)
    base.update(keys)
    ignore = base.pop("ignore_thresh", 0.3)
    scale = base.pop("scale_x_y", 1.2)
    return HeadSpec(ANCHORS[list(MASK)], MASK, C, scale, (NET, NET), ignore, "yolo_0", **base)


def _spec(head: HeadSpec) -> TargetSpec:
    return TargetSpec(ANCHORS, (MASK,), (NET // GRID,), C, iou_thresh=(head.iou_thresh,))


def _raw(seed=0, scale=1.0):
    """Random raw outputs; in cell (row 3, col 1) anchors 0 and 1 predict box 3 exactly (scale_x_y 1.2),
    anchor 0 with a class probability 0.5 (ignored by ignore_thresh), anchor 1 with all below 0.25 (punished)."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(0, scale, (GRID, GRID, len(MASK), 5 + C)).astype(np.float32)
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    x, y = logit((31 / 16 - 1 + 0.1) / 1.2), logit((48 / 16 - 3 + 0.1) / 1.2)
    raw[3, 1, 0, :4] = [x, y, math.log(28 / 10), math.log(28 / 14)]
    raw[3, 1, 1, :4] = [x, y, math.log(28 / 14), math.log(28 / 10)]
    raw[3, 1, 0, 5:] = [0.0, -3.0, -3.0]
    raw[3, 1, 1, 5:] = -3.0
    return raw


def _truths(boxes):
    b = np.asarray(boxes, np.float64)
    return [((x0 + x1) / 2 / NET, (y0 + y1) / 2 / NET, (x1 - x0) / NET, (y1 - y0) / NET, c) for x0, y0, x1, y1, c in b]


def _tf_grad(raw, head, boxes=BOXES, box_grad="darknet", y=None):
    """(-d loss / d raw as (GRID, GRID, A, 5+C), the loss parts, the target tensor)."""
    if y is None:
        y = assign_targets(np.asarray(boxes, np.float32).reshape(-1, 5), (NET, NET), _spec(head))[0][None]
    tb = pad_boxes(np.asarray(boxes, np.float32).reshape(-1, 5), (NET, NET), 8)[None]
    var = tf.Variable(raw.reshape(1, GRID, GRID, -1))
    with tf.GradientTape() as tape:
        parts = yolo_loss([y], [var], [head], (NET, NET), tb, box_grad=box_grad)
    grad = tape.gradient(parts["loss"], var)
    return -grad.numpy().reshape(raw.shape), parts, y


# -- golden tests --------------------------------------------------------------------------------------
def test_targets_match_darknets_iou_thresh_assignment():
    head = _head()
    _, positives = _darknet_deltas(_raw(), _truths(BOXES), head)
    y = assign_targets(BOXES, (NET, NET), _spec(head))[0].numpy()
    got = {tuple(int(v) for v in idx) for idx in np.argwhere(y[..., 4] == 1)}
    assert got == set(positives)
    # several anchors per box: the 12x12 box has all three, the 20x20 box (best anchor elsewhere) two or more
    per_box = np.bincount(list(positives.values()), minlength=len(BOXES))
    assert per_box[0] == 3 and per_box[2] >= 2 and per_box[3] == 0
    truths = _truths(BOXES)
    for slot, t in positives.items():
        np.testing.assert_allclose(y[slot][:4], truths[t][:4], atol=1e-6)
        assert y[slot][5 + int(truths[t][4])] == 1
    # iou_thresh off: one anchor per box (and none for the boxes whose best anchor is elsewhere)
    y1 = assign_targets(BOXES, (NET, NET), _spec(_head(iou_thresh=1.0)))[0].numpy()
    assert y1[..., 4].sum() == 2


def test_best_anchor_beats_an_iou_thresh_positive_in_a_shared_slot():
    # A 12x12 (best anchor 2) and, later in the same cell, B 10x14 (best anchor 0): both pass iou_thresh on
    # every anchor of the mask. Slot 2 keeps A (its best), slot 0 takes B (its best), slot 1 the later box.
    boxes = np.array([[1, 1, 13, 13, 0], [2, 0, 12, 14, 1]], np.float32)
    y = assign_targets(boxes, (NET, NET), _spec(_head()))[0].numpy()
    assert y[0, 0, :, 4].tolist() == [1, 1, 1] and y[..., 4].sum() == 3
    assert [int(np.argmax(y[0, 0, n, 5:])) for n in range(3)] == [1, 1, 0]


CASES = [  # iou_loss, iou_normalizer, max_delta, label_smooth_eps, obj_normalizer
    ("mse", 0.75, None, 0.0, 1.0),
    ("giou", 0.5, None, 0.0, 0.7),
    ("diou", 1.0, 0.05, 0.0, 1.0),
    ("ciou", 0.07, 5.0, 0.0, 1.0),
    ("ciou", 1.0, 0.03, 0.6, 1.3),  # clipping active; smoothing makes averages_yolo_deltas divide
]


@pytest.mark.parametrize("kind,norm,max_delta,eps,obj_norm", CASES)
def test_gradient_equals_darknets_delta(kind, norm, max_delta, eps, obj_norm):
    head = _head(iou_loss=kind, iou_normalizer=norm, max_delta=max_delta, label_smooth_eps=eps,
                 obj_normalizer=obj_norm)
    raw = _raw(seed=3)
    expected, positives = _darknet_deltas(raw, _truths(BOXES), head)
    got, parts, _ = _tf_grad(raw, head)
    assert set(parts) == {"loss", "box", "obj", "cls"}
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-4)
    # the case exercises what it names: an ignored negative, one punished for its classes, clipping, averaging
    assert expected[3, 1, 0, 4] == 0 and expected[3, 1, 1, 4] < 0
    box = np.stack([expected[s][:4] for s in positives])
    if max_delta is not None and max_delta < 1:
        assert np.isclose(np.abs(box), max_delta).any()
    if eps:
        assert any(sum(expected[s][5:] > 0) > 1 for s in positives)


def test_reported_box_loss_is_the_iou_kind_value():
    # darknet mode reports iou_normalizer * (1 - CIoU) summed over positives, not the straight-through term
    head = _head()
    raw = _raw(seed=5)
    _, dark, y = _tf_grad(raw, head)
    _, auto, _ = _tf_grad(raw, head, box_grad="autodiff")
    assert float(dark["box"]) == pytest.approx(float(auto["box"]), rel=1e-6)
    assert 0 < float(dark["box"]) < 2 * 0.07 * float(tf.reduce_sum(y[..., 4]))


def _np_decode(raw, head):
    s = head.scale_x_y
    col, row = np.meshgrid(np.arange(GRID), np.arange(GRID))
    xy = _sigmoid(raw[..., 0:2]) * s - 0.5 * (s - 1)
    anchors = ANCHORS[list(MASK)].astype(np.float64)
    return np.stack([(xy[..., 0] + col[..., None]) / GRID, (xy[..., 1] + row[..., None]) / GRID,
                     np.exp(raw[..., 2]) * anchors[:, 0] / NET, np.exp(raw[..., 3]) * anchors[:, 1] / NET], -1)


def test_autodiff_is_the_gradient_of_ciou_and_differs_from_darknet():
    head = _head(max_delta=None)
    raw = _raw(seed=7, scale=0.6).astype(np.float64)
    auto, _, y = _tf_grad(raw.astype(np.float32), head, box_grad="autodiff")
    dark, _, _ = _tf_grad(raw.astype(np.float32), head)
    y = y.numpy()[0]
    pos = y[..., 4] == 1
    truth = y[..., :4].astype(np.float64)
    truth[~pos] = 0.5  # no truth there (masked out below)
    base, v0, iou0 = np_ciou_terms(_np_decode(raw, head), truth)
    alpha = v0 / (1 - iou0 + v0)  # held constant, as in the paper's gradient (and ciou_cxcywh)

    def loss(r):
        d, v, _ = np_ciou_terms(_np_decode(r, head), truth)
        return np.sum((0.07 * (1 - (d - alpha * v)))[pos])

    numeric = np.zeros_like(raw)
    h = 1e-4
    for idx in zip(*np.nonzero(pos)):
        for c in range(4):
            up, down = raw.copy(), raw.copy()
            up[idx + (c,)] += h
            down[idx + (c,)] -= h
            numeric[idx + (c,)] = (loss(up) - loss(down)) / (2 * h)
    np.testing.assert_allclose(-auto[..., 0:4][pos], numeric[..., 0:4][pos], atol=2e-5)
    np.testing.assert_allclose(auto[..., 4:], dark[..., 4:], atol=1e-6)  # obj and cls are the same
    diff = np.abs(auto[..., 0:4] - dark[..., 0:4])[pos]
    scale = np.abs(dark[..., 0:4][pos]).max()
    print(f"box gradient, darknet vs autodiff: max |diff| {diff.max():.4g} (max |darknet| {scale:.4g})")
    assert diff.max() > 0.3 * scale  # Darknet's shortcuts change the box gradient measurably


# -- no NaN --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["mse", "giou", "diou", "ciou"])
@pytest.mark.parametrize("box_grad", ["darknet", "autodiff"])
def test_finite_on_empty_image_zero_size_boxes_and_huge_outputs(kind, box_grad):
    head = _head(iou_loss=kind, iou_normalizer=1.0, max_delta=None)
    raw = _raw(seed=9, scale=2.0)
    raw[0, 0, :, 2:4] = 1e4   # huge tw, th
    raw[1, 1, :, 2:4] = -1e4  # boxes of size 0 after exp
    empty, parts, _ = _tf_grad(raw, head, boxes=np.zeros((0, 5), np.float32), box_grad=box_grad)
    assert np.isfinite(empty).all() and all(np.isfinite(float(v)) for v in parts.values())
    assert float(parts["box"]) == 0.0 and float(parts["cls"]) == 0.0
    # zero-width and zero-height truths (assign_targets drops them; planted into the targets directly),
    # one of them in a slot predicting a huge box, one where the prediction has size 0
    y = np.zeros((1, GRID, GRID, len(MASK), 5 + C), np.float32)
    y[0, 0, 0, 0] = [0.1, 0.1, 0.0, 0.2, 1, 1, 0, 0]
    y[0, 1, 1, 1] = [0.3, 0.3, 0.2, 0.0, 1, 0, 1, 0]
    y[0, 2, 2, 2] = [0.6, 0.6, 0.0, 0.0, 1, 0, 0, 1]
    got, parts, _ = _tf_grad(raw, head, boxes=np.zeros((0, 5), np.float32), box_grad=box_grad, y=tf.constant(y))
    assert np.isfinite(got).all() and all(np.isfinite(float(v)) for v in parts.values())


# -- keys on the heads: cfg, YoloHead, JSON ------------------------------------------------------------
def test_yolov4_cfg_keys_reach_the_heads():
    from conftest import require_shared

    from yolo3.modeling.builder import yolo_head_config
    from yolo3.modeling.cfg import parse_cfg

    cfg = parse_cfg(str(require_shared("darknet", "cfg", "yolov4.cfg")))
    heads = [yolo_head_config(s, None, (cfg.height, cfg.width), 0) for s in cfg.layers if s.type == "yolo"]
    assert [h["scale_x_y"] for h in heads] == [1.2, 1.1, 1.05]
    for h in heads:
        assert h["darknet_loss"] is True and h["iou_loss"] == "ciou"
        assert (h["iou_thresh"], h["iou_normalizer"], h["max_delta"], h["ignore_thresh"]) == (0.213, 0.07, 5.0, 0.7)
        assert (h["obj_normalizer"], h["cls_normalizer"], h["label_smooth_eps"]) == (1.0, 1.0, 0.0)
    tiny = parse_cfg(str(require_shared("darknet", "cfg", "yolov4-tiny.cfg")))
    for s in tiny.layers:
        if s.type == "yolo":
            h = yolo_head_config(s, 2, (416, 416), 0)
            assert h["darknet_loss"] and (h["iou_thresh"], h["max_delta"], h["scale_x_y"]) == (1.0, None, 1.05)
    v3 = parse_cfg(str(require_shared("darknet", "cfg", "yolov3.cfg")))
    assert not any(yolo_head_config(s, None, (416, 416), 0)["darknet_loss"] for s in v3.layers if s.type == "yolo")


def test_cfg_defaults_and_refusal():
    from yolo3.modeling.builder import yolo_head_config
    from yolo3.modeling.cfg import CfgError, parse_cfg_text

    text = ("[net]\nwidth=64\nheight=64\n[convolutional]\nfilters=8\nsize=1\n"
            "[yolo]\nmask=0\nanchors=4,4\nclasses=3\nnum=1\n")
    sec = parse_cfg_text(text + "obj_normalizer=2\n").layers[-1]
    h = yolo_head_config(sec, None, (64, 64), 0)
    assert h["darknet_loss"] and h["iou_normalizer"] == 0.75 and h["iou_loss"] == "mse"  # parser.c's defaults
    # Darknet's plain "iou" loss is carried (a model for detection builds), the loss refuses it
    h = yolo_head_config(parse_cfg_text(text + "iou_loss=IoU\n").layers[-1], None, (64, 64), 0)
    assert h["iou_loss"] == "iou"
    with pytest.raises(ValueError, match="iou_loss=iou is not implemented"):
        _tf_grad(_raw(), _head(iou_loss="iou"))
    with pytest.raises(CfgError, match="iou_normalizer=x"):
        yolo_head_config(parse_cfg_text(text + "iou_normalizer=x\n").layers[-1], None, (64, 64), 0)


def test_yolohead_keys_survive_save_and_safe_load(tmp_path):
    keys = dict(darknet_loss=True, iou_thresh=0.213, iou_loss="diou", iou_normalizer=0.07, obj_normalizer=0.9,
                cls_normalizer=0.5, max_delta=5.0, label_smooth_eps=0.1)
    inp = keras.Input((4, 4, 3))
    out = YoloHead(ANCHORS[:3].tolist(), C, mask=[0, 1, 2], all_anchors=ANCHORS.tolist(), scale_x_y=1.1,
                   name="yolo_0", **keys)(keras.layers.Conv2D(3 * (5 + C), 1)(inp))
    path = tmp_path / "m.keras"
    keras.Model(inp, out).save(path)
    spec = get_head_specs(keras.saving.load_model(path, safe_mode=True))[0]
    assert {k: getattr(spec, k) for k in keys} == keys
    assert head_specs_from_json(head_specs_to_json([spec]))[0].iou_loss == "diou"
    # a model saved before the keys existed loads with the defaults (keras-yolo3's loss)
    config = YoloHead(ANCHORS[:3].tolist(), C).get_config()
    for k in keys:
        del config[k]
    old = YoloHead.from_config(config)
    assert old.darknet_loss is False and old.iou_thresh == 1.0 and old.max_delta is None
    legacy = '[{"name": "yolo_0", "anchors": [[1, 2]], "mask": [0], "num_classes": 2, "scale_x_y": 1.0, ' \
             '"net_size": [64, 64], "ignore_thresh": 0.5}]'
    assert head_specs_from_json(legacy)[0].darknet_loss is False


def test_yolov3_heads_keep_keras_yolo3_parts():
    # a head without darknet_loss reports xy, wh (the keras-yolo3 loss; tests/test_loss.py checks its values)
    head = HeadSpec(ANCHORS[list(MASK)], MASK, C, 1.0, (NET, NET), 0.5, "yolo_0")
    _, parts, _ = _tf_grad(_raw(), head)
    assert set(parts) == {"loss", "xy", "wh", "obj", "cls"}


def test_trainer_carries_box_grad():
    from yolo3.training.config import LossConfig
    from yolo3.training.trainer import YoloTrainer

    inp = keras.Input((None, None, 3))
    out = YoloHead(ANCHORS[:3].tolist(), C, mask=[0, 1, 2], all_anchors=ANCHORS.tolist(), name="yolo_0",
                   darknet_loss=True, iou_loss="ciou")(keras.layers.Conv2D(3 * (5 + C), 1, strides=16)(inp))
    trainer = YoloTrainer(keras.Model(inp, out), box_grad="autodiff")
    assert trainer.part_names == ("box", "obj", "cls")
    restored = YoloTrainer.from_config(trainer.get_config())
    assert restored.box_grad == "autodiff" and LossConfig().box_grad == "darknet"
    with pytest.raises(ValueError, match="box_grad"):
        _tf_grad(_raw(), _head(), box_grad="exact")


def test_train_py_box_grad_flag_reaches_the_loss_config(tmp_path):
    from yolo3.cli.train import _config, build_parser

    ann = tmp_path / "train.txt"
    ann.write_text("img.jpg 1,2,30,40,0\n")
    argv = ["--annotation", str(ann), "--log-dir", str(tmp_path / "log")]
    assert _config(build_parser().parse_args(argv)).loss.box_grad == "darknet"
    assert _config(build_parser().parse_args(argv + ["--box-grad", "autodiff"])).loss.box_grad == "autodiff"
