"""Target assignment on hand-made boxes: exact centres, best anchor over all heads, clamping."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from yolo3.training.targets import TargetSpec, assign_targets, pad_boxes  # noqa: E402

# Two heads like YOLOv3-tiny: stride 32 predicts the big anchors (2, 3), stride 16 the small (0, 1).
SPEC = TargetSpec(anchors=np.array([[8, 8], [20, 20], [40, 40], [60, 30]], np.float32),
                  masks=((2, 3), (0, 1)), strides=(32, 16), num_classes=3)
SIZE = (64, 64)


def _assign(boxes):
    return [t.numpy() for t in assign_targets(np.asarray(boxes, np.float32).reshape(-1, 5), SIZE, SPEC)]


def test_shapes_and_empty_image():
    big, small = _assign(np.zeros((0, 5)))
    assert big.shape == (2, 2, 2, 8) and small.shape == (4, 4, 2, 8)
    assert not big.any() and not small.any()


def test_exact_centre_not_floor_divided():
    # Centre x = (10 + 21) / 2 = 15.5; keras-yolo3 computed (10 + 21) // 2 = 15.
    big, small = _assign([[10, 11, 21, 30, 2]])
    assert not big.any()
    j, i, k = np.argwhere(small[..., 4] == 1)[0]
    assert (j, i, k) == (1, 0, 1)  # y=20.5 -> row 1 of 4 (stride 16); 11x19 box -> anchor 1 (20x20)
    np.testing.assert_allclose(small[j, i, k, :4], [15.5 / 64, 20.5 / 64, 11 / 64, 19 / 64], rtol=0, atol=1e-7)
    np.testing.assert_array_equal(small[j, i, k, 5:], [0, 0, 1])
    assert small[..., 4].sum() == 1


def test_best_anchor_over_all_heads():
    # 58x28 matches anchor 3 (60x30) best -> the stride-32 head, slot 1 of its mask (2, 3).
    big, small = _assign([[2, 30, 60, 58, 0], [40, 40, 47, 47, 1]])
    assert big[..., 4].sum() == 1 and small[..., 4].sum() == 1
    assert tuple(np.argwhere(big[..., 4] == 1)[0]) == (1, 0, 1)   # centre (31, 44) -> cell (row 1, col 0)
    assert tuple(np.argwhere(small[..., 4] == 1)[0]) == (2, 2, 0)  # 7x7 -> anchor 0 (8x8), centre (43.5, 43.5)


def test_grid_indices_clamped():
    # Centre exactly on the right/bottom border (x = y = 64) must land in the last cell, not outside.
    big, small = _assign([[56, 56, 72, 72, 1]])
    assert tuple(np.argwhere(small[..., 4] == 1)[0]) in ((3, 3, 0), (3, 3, 1))
    assert small[3, 3, :, 4].sum() == 1


def test_zero_size_boxes_ignored():
    big, small = _assign([[10, 10, 10, 30, 0], [5, 5, 40, 5, 1]])
    assert not big.any() and not small.any()


def test_same_cell_last_box_wins_deterministically():
    boxes = [[2, 2, 9, 9, 0], [3, 3, 10, 10, 2]]
    for _ in range(3):
        _, small = _assign(boxes)
        assert small[..., 4].sum() == 1
        np.testing.assert_array_equal(small[0, 0, 0, 5:], [0, 0, 1])


def test_runs_inside_tf_function():
    fn = tf.function(lambda b: assign_targets(b, SIZE, SPEC), input_signature=[tf.TensorSpec([None, 5], tf.float32)])
    big, small = fn(tf.constant([[10, 11, 21, 30, 2]], tf.float32))
    assert float(tf.reduce_sum(small[..., 4])) == 1.0


def test_pad_boxes():
    out = pad_boxes(tf.constant([[0, 0, 32, 16, 1], [5, 5, 5, 9, 0]], tf.float32), SIZE, 4).numpy()
    assert out.shape == (4, 4)
    np.testing.assert_allclose(out[0], [0.25, 0.125, 0.5, 0.25])
    assert not out[1:].any()
