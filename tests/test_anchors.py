"""yolo3.datasets.anchors and kmeans.py: 1 - IoU k-means recovers known clusters; letterboxed sizes; errors."""
from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import run_script
from PIL import Image

import kmeans as kmeans_script
from yolo3.core.boxes import wh_iou
from yolo3.datasets.anchors import (
    AnchorError,
    avg_iou,
    collect_box_sizes,
    kmeans_anchors,
    letterbox_scale,
)
from yolo3.datasets.annotations import read_anchors

# The 9 YOLOv3 COCO anchors: well separated in 1 - IoU.
CENTERS = np.array([[10, 13], [16, 30], [33, 23], [30, 61], [62, 45], [59, 119], [116, 90], [156, 198],
                    [373, 326]], np.float64)


def sample_clusters(rng: np.random.Generator, n: int, spread: float = 0.05) -> np.ndarray:
    """n box sizes drawn around CENTERS (uniform +-spread relative jitter)."""
    return CENTERS[rng.integers(len(CENTERS), size=n)] * rng.uniform(1 - spread, 1 + spread, (n, 2))


def test_wh_iou_values():
    got = wh_iou(np.array([[2.0, 2.0], [1.0, 4.0]]), np.array([[2.0, 2.0], [1.0, 4.0], [4.0, 4.0]]))
    # (2,2) vs (1,4): intersection 1*2 = 2, union 4 + 4 - 2 = 6.
    np.testing.assert_allclose(got, [[1, 1 / 3, 4 / 16], [1 / 3, 1, 4 / 16]], rtol=1e-6)


def test_kmeans_recovers_known_clusters_sorted_by_area():
    rng = np.random.default_rng(0)
    sizes = sample_clusters(rng, 20_000)
    r = kmeans_anchors(sizes, 9, restarts=3, seed=1, progress=False)
    np.testing.assert_allclose(r.anchors, CENTERS, rtol=0.03)
    areas = r.anchors.prod(axis=1)
    assert np.all(np.diff(areas) > 0)
    # Every box is assigned to its own cluster's anchor; the average IoU is that of +-5% jitter (> 0.9).
    assert r.avg_iou == pytest.approx(avg_iou(sizes, r.anchors), abs=1e-5)
    assert r.avg_iou > 0.9 and max(r.restart_ious) == pytest.approx(r.avg_iou, abs=1e-3)
    # Same seed, same anchors; the sampled path (restarts on 5000 boxes, refined on all) agrees.
    again = kmeans_anchors(sizes, 9, restarts=3, seed=1, progress=False)
    np.testing.assert_array_equal(again.anchors, r.anchors)
    sampled = kmeans_anchors(sizes, 9, restarts=3, seed=1, sample=5000, progress=False)
    np.testing.assert_allclose(sampled.anchors, CENTERS, rtol=0.03)


def test_kmeans_input_errors():
    with pytest.raises(AnchorError, match="2 distinct box sizes, fewer than the 3"):
        kmeans_anchors(np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 3.0]]), 3, progress=False)
    with pytest.raises(AnchorError, match="finite and > 0"):
        kmeans_anchors(np.array([[0.0, 2.0], [1.0, 1.0]]), 1, progress=False)


def test_collect_box_sizes_letterboxes_to_the_network(tmp_path):
    Image.new("RGB", (832, 416)).save(tmp_path / "wide.png")   # letterbox scale 416/832 = 0.5
    Image.new("RGB", (104, 208)).save(tmp_path / "tall.png")   # scale 416/208 = 2
    ann = tmp_path / "train.txt"
    ann.write_text("wide.png 0,0,100,50,0 10,10,10,30,0\ntall.png 5,5,15,45,1\n")
    raw = collect_box_sizes(str(ann), progress=False)
    np.testing.assert_allclose(raw.sizes, [[100, 50], [10, 40]])
    assert raw.zero_size == 1 and raw.images == 2
    net = collect_box_sizes(str(ann), (416, 416), progress=False)
    np.testing.assert_allclose(net.sizes, [[50, 25], [20, 80]])
    assert letterbox_scale((832, 416), (608, 416)) == pytest.approx(min(608 / 832, 416 / 416))
    (tmp_path / "tall.png").unlink()
    gone = collect_box_sizes(str(ann), (416, 416), progress=False)
    assert gone.missing_images == [str(tmp_path / "tall.png")]


def test_kmeans_script_recovers_clusters_and_prints_average_iou(tmp_path):
    """The real script on an annotation file of boxes drawn from known clusters."""
    rng = np.random.default_rng(4)
    sizes = sample_clusters(rng, 4000)
    lines = []
    for i in range(0, len(sizes), 8):
        boxes = []
        for w, h in sizes[i:i + 8]:
            x, y = rng.uniform(0, 200, 2).round(2)
            boxes.append(f"{x:.2f},{y:.2f},{x + w:.2f},{y + h:.2f},{rng.integers(3)}")
        lines.append(f"img{i}.jpg " + " ".join(boxes) + "\n")
    (tmp_path / "train.txt").write_text("".join(lines))
    out = tmp_path / "model_data" / "custom_anchors.txt"
    r = run_script("kmeans.py", "--annot_file", "train.txt", "--out_file", str(out), "--num_clusters", "9",
                   "--seed", "3", "--restarts", "3", "--plot", "anchors.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    anchors = read_anchors(str(out))
    np.testing.assert_allclose(anchors, CENTERS, rtol=0.03)
    m = re.search(r"^Average IoU: ([0-9.]+)$", r.stdout, re.M)
    assert m, r.stdout
    # The printed IoU is the average IoU of the boxes (as written, 2 decimals) with the written anchors.
    assert float(m.group(1)) == pytest.approx(avg_iou(sizes, anchors), abs=2e-3)
    assert float(m.group(1)) > 0.9
    with Image.open(tmp_path / "anchors.png") as im:
        assert im.format == "PNG" and im.size[0] > 200


def test_kmeans_script_bad_line_exit_2_one_line(tmp_path):
    (tmp_path / "train.txt").write_text("a.jpg 1,1,20,20,0\nb.jpg 5,5,1,9,0\n")
    r = run_script("kmeans.py", "--annotation", "train.txt", "--out", "a.txt", cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "train.txt:2:" in lines[0] and "x_max < x_min" in lines[0]
    assert not (tmp_path / "a.txt").exists()


@pytest.mark.parametrize("content, extra, message", [
    (None, [], "cannot read"),
    ("a.jpg 1,1,20,20,0\n", ["-k", "2"], "1 distinct box sizes, fewer than the 2"),
    ("a.jpg 1,1,20,20,0\n", ["--input-size", "416"], "1 image(s) missing or unreadable"),
    ("a.jpg 1,1,1,20,0\n", [], "no boxes with a non-zero size"),
    ("a.jpg 1,1,20,20,0\n", ["--restarts", "0"], "argument --restarts: expected an integer >= 1, got 0"),
])
def test_kmeans_script_user_errors_in_process(tmp_path, capsys, monkeypatch, content, extra, message):
    monkeypatch.chdir(tmp_path)
    if content is not None:
        (tmp_path / "train.txt").write_text(content)
    assert kmeans_script.main(["--annot_file", "train.txt", "--no-progress", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
