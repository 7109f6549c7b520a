"""Annotation validation and the tf.data pipeline (letterbox, augmentation, mosaic, determinism)."""
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
from PIL import Image  # noqa: E402

from yolo3.datasets.annotations import AnnotationError  # noqa: E402
from yolo3.datasets.cleaning import DataError, prepare_annotations, split_annotations  # noqa: E402
from yolo3.training.augment import letterbox_with_boxes, mosaic4, random_augment  # noqa: E402
from yolo3.training.pipeline import load_image, make_dataset, make_eval_dataset  # noqa: E402
from yolo3.training.targets import TargetSpec  # noqa: E402

SPEC = TargetSpec(np.array([[6, 6], [12, 12], [24, 24], [30, 30], [40, 40], [60, 60]], np.float32),
                  ((3, 4, 5), (0, 1, 2)), (32, 16), 2)


def _rect_image(path, size=(80, 60), box=(20, 10, 50, 40), colour=(255, 255, 255), exif_orientation=None):
    w, h = size
    arr = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = box
    arr[y1:y2, x1:x2] = colour
    im = Image.fromarray(arr)
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        im.save(path, exif=exif.tobytes())
    else:
        im.save(path)


@pytest.fixture()
def dataset(tmp_path):
    lines = []
    for i in range(6):
        name = f"img{i}.png"
        _rect_image(tmp_path / name, box=(20, 10, 50, 40))
        lines.append(f"{name} 20,10,50,40,{i % 2}")
    ann = tmp_path / "ann.txt"
    ann.write_text("\n".join(lines) + "\n")
    clean = tmp_path / "clean.txt"
    prepare_annotations(str(ann), str(clean), num_classes=2, progress=False)
    return clean


def test_prepare_clips_drops_zero_area_and_counts(tmp_path):
    _rect_image(tmp_path / "a.png")
    ann = tmp_path / "ann.txt"
    ann.write_text("a.png 20,10,50,40,0 -5,-5,10,10,1 70,50,100,90,0 30,30,30,40,1 90,10,99,20,0\n")
    clean = tmp_path / "clean.txt"
    report = prepare_annotations(str(ann), str(clean), num_classes=2, progress=False)
    # clipped: (-5,-5,..), (70,50,100,90) and (90,10,99,20) (outside, then zero-area); zero-area: 30,30,30,40 and 90,...
    assert report.boxes_clipped == 3
    assert report.boxes_zero_area == 2
    assert report.boxes == 3
    path, orient, boxes = clean.read_text().rstrip("\n").split("\t")
    assert os.path.isabs(path) and orient == "1"
    assert boxes.split() == ["20.00,10.00,50.00,40.00,0", "0.00,0.00,10.00,10.00,1", "70.00,50.00,80.00,60.00,0"]
    assert "2 zero-area boxes dropped" in report.summary()


def test_prepare_reports_missing_images_by_name(tmp_path):
    _rect_image(tmp_path / "a.png")
    ann = tmp_path / "ann.txt"
    ann.write_text("a.png 1,1,5,5,0\nmissing_one.jpg 1,1,5,5,0\nsub/missing_two.jpg\n")
    with pytest.raises(DataError, match="2 images not found: missing_one.jpg, sub/missing_two.jpg"):
        prepare_annotations(str(ann), str(tmp_path / "c.txt"), num_classes=1, progress=False)
    report = prepare_annotations(str(ann), str(tmp_path / "c.txt"), num_classes=1, skip_missing=True, progress=False)
    assert report.images == 1 and report.missing == ["missing_one.jpg", "sub/missing_two.jpg"]
    assert "missing_one.jpg" in report.summary()


def test_prepare_bad_line_and_class_range(tmp_path):
    _rect_image(tmp_path / "a.png")
    ann = tmp_path / "ann.txt"
    ann.write_text("a.png 1,1,5,5,0\na.png 1,1,5,0\n")
    with pytest.raises(AnnotationError, match=r"ann.txt:2: "):
        prepare_annotations(str(ann), str(tmp_path / "c.txt"), num_classes=1, progress=False)
    ann.write_text("a.png 1,1,5,5,3\n")
    with pytest.raises(AnnotationError, match=r"ann.txt:1: .*class id 3 out of range"):
        prepare_annotations(str(ann), str(tmp_path / "c.txt"), num_classes=2, progress=False)


def test_split_is_seeded_and_complete(dataset, tmp_path):
    a = split_annotations(str(dataset), 0.34, 7, str(tmp_path / "t1"), str(tmp_path / "v1"))
    b = split_annotations(str(dataset), 0.34, 7, str(tmp_path / "t2"), str(tmp_path / "v2"))
    assert a == b == (4, 2)
    assert (tmp_path / "v1").read_text() == (tmp_path / "v2").read_text()
    lines = set((tmp_path / "t1").read_text().splitlines()) | set((tmp_path / "v1").read_text().splitlines())
    assert lines == set(dataset.read_text().splitlines())


def test_exif_orientation_applied(tmp_path):
    _rect_image(tmp_path / "r.jpg", size=(80, 60), box=(0, 0, 10, 10), exif_orientation=6)
    ann = tmp_path / "ann.txt"
    ann.write_text("r.jpg 1,1,5,5,0\n")
    report = prepare_annotations(str(ann), str(tmp_path / "c.txt"), progress=False)
    assert report.exif_rotated == 1
    img = load_image(tf.constant(str(tmp_path / "r.jpg")), 6).numpy()
    assert img.shape == (80, 60, 3)  # rotated 90 degrees clockwise: the white corner moves top-right
    assert img[:8, -8:].mean() > 0.8 and img[:8, :8].mean() < 0.2


def _bright_box(image):
    ys, xs = np.nonzero(image.max(axis=-1) > 0.75)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_letterbox_places_boxes_on_the_object():
    image = np.zeros((60, 80, 3), np.float32)
    image[10:40, 20:50] = 1.0
    out, boxes = letterbox_with_boxes(tf.constant(image), tf.constant([[20, 10, 50, 40, 1]], tf.float32), (64, 64))
    out, boxes = out.numpy(), boxes.numpy()
    assert out.shape == (64, 64, 3)
    np.testing.assert_allclose(boxes[0], [16, 8 + 8, 40, 32 + 8, 1], atol=1e-4)  # scale 0.8, 8 px top border
    assert _iou(_bright_box(out), boxes[0]) > 0.9
    assert out[2, 32].mean() == pytest.approx(128 / 255, abs=1e-3)  # grey border


def test_random_augment_keeps_boxes_on_the_object():
    image = np.full((60, 80, 3), 0.0, np.float32)
    image[10:40, 20:50] = 1.0
    checked = 0
    for s in range(12):
        out, boxes = random_augment(tf.constant(image), tf.constant([[20, 10, 50, 40, 1]], tf.float32), (96, 96),
                                    tf.constant([3, s], tf.int64), hue=0.0, sat=1.0, val=1.0)
        out, boxes = out.numpy(), boxes.numpy()
        assert out.shape == (96, 96, 3) and 0 <= out.min() and out.max() <= 1
        if len(boxes) and (boxes[0, 2] - boxes[0, 0]) > 6 and (boxes[0, 3] - boxes[0, 1]) > 6:
            assert _iou(_bright_box(out), boxes[0]) > 0.75
            checked += 1
    assert checked >= 5


def test_mosaic_boxes_stay_in_bounds():
    images = tf.random.stateless_uniform((4, 64, 64, 3), [1, 2])
    boxes = tf.constant([[[5, 5, 30, 30, 0], [0, 0, 0, 0, 0]]] * 4, tf.float32)
    out, b = mosaic4(images, boxes, (64, 64), tf.constant([4, 5], tf.int64))
    assert out.shape == (64, 64, 3)
    b = b.numpy()
    assert len(b) >= 1 and b[:, :4].min() >= 0 and b[:, :4].max() <= 64
    assert np.all(b[:, 2] > b[:, 0] + 1) and np.all(b[:, 3] > b[:, 1] + 1)


def test_mosaic_puts_each_box_on_its_object():
    """Four pictures, each black with one white rectangle (its box): wherever the random centre and crop
    offsets put them, every mosaic box must cover white pixels only, and the white pixels of its quadrant
    must fill exactly that box (a mosaic that ignores the crop offset, or shifts no box, fails)."""
    images, boxes = np.zeros((4, 64, 64, 3), np.float32), []
    for k, (x1, y1, x2, y2) in enumerate([(8, 10, 40, 36), (20, 24, 56, 60), (4, 30, 30, 58), (30, 6, 60, 30)]):
        images[k, y1:y2, x1:x2] = 1.0
        boxes.append([[x1, y1, x2, y2, k], [0, 0, 0, 0, 0]])
    checked = 0
    for s in range(8):
        out, b = mosaic4(tf.constant(images), tf.constant(boxes, tf.float32), (64, 64), tf.constant([9, s], tf.int64),
                         min_visible=0.0)
        white = out.numpy().min(axis=-1) > 0.5
        for x1, y1, x2, y2, _ in b.numpy().astype(int):
            assert white[y1:y2, x1:x2].all(), (s, x1, y1, x2, y2)
            ring = white[max(y1 - 1, 0):y2 + 1, max(x1 - 1, 0):x2 + 1]
            inside = white[y1:y2, x1:x2].sum()
            # one pixel around the box: white only where the neighbouring quadrant's own object is
            assert ring.sum() - inside <= 2 * (y2 - y1 + x2 - x1) + 4
            checked += 1
        # every white pixel belongs to some box, but for slivers <= 1 px wide (dropped, at most 2 a mosaic)
        covered = np.zeros_like(white)
        for x1, y1, x2, y2, _ in b.numpy().astype(int):
            covered[y1:y2, x1:x2] = True
        assert (white & ~covered).sum() <= 2 * 64, s
    assert checked >= 8


def test_pipeline_shapes_and_determinism(dataset):
    # mosaic 0.5: both the mosaic and the plain path run within the first batches
    def first(seed):
        ds = make_dataset(str(dataset), SPEC, (64, 64), 3, augment=True, mosaic=0.5, seed=seed)
        return next(iter(ds))

    x1, y1 = first(5)
    x2, y2 = first(5)
    x3, _ = first(6)
    assert x1.shape == (3, 64, 64, 3) and x1.dtype == tf.float32
    assert y1["head_0"].shape == (3, 2, 2, 3, 7) and y1["head_1"].shape == (3, 4, 4, 3, 7)
    assert y1["boxes"].shape == (3, 100, 4)
    np.testing.assert_array_equal(x1.numpy(), x2.numpy())
    for k in y1:
        np.testing.assert_array_equal(y1[k].numpy(), y2[k].numpy())
    assert not np.array_equal(x1.numpy(), x3.numpy())


def test_validation_pipeline_letterboxes_only(dataset):
    ds = make_dataset(str(dataset), SPEC, (64, 64), 2, augment=False, repeat=False, drop_remainder=False)
    batches = list(ds)
    assert sum(int(x.shape[0]) for x, _ in batches) == 6
    x, y = batches[0]
    # Every image is the same rectangle: identical letterboxed inputs and one object each.
    np.testing.assert_array_equal(x[0].numpy(), x[1].numpy())
    assert float(tf.reduce_sum(y["head_0"][..., 4]) + tf.reduce_sum(y["head_1"][..., 4])) == 2.0
    images, boxes = next(iter(make_eval_dataset(str(dataset), (64, 64), batch_size=4)))
    assert images.shape == (4, 64, 64, 3) and boxes.shape == (4, 1, 5)
    np.testing.assert_allclose(boxes[0, 0].numpy(), [16, 16, 40, 40, 0], atol=1e-4)
