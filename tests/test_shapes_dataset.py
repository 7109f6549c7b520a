"""The synthetic shapes data set: files, formats, determinism, CLI."""
import hashlib
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from yolo3.datasets.annotations import read_annotations
from yolo3.datasets.shapes import generate_shapes_dataset

ROOT = Path(__file__).resolve().parents[1]


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_files_and_formats_agree(tmp_path):
    paths = generate_shapes_dataset(str(tmp_path / "d"), 10, size=128, seed=3, classes=("circle", "star", "ring"),
                                    val_fraction=0.3, progress=False)
    items = read_annotations(paths["annotation"], num_classes=3)
    assert len(items) == 10
    assert (tmp_path / "d" / "classes.txt").read_text().split() == ["circle", "star", "ring"]
    assert len(read_annotations(paths["train"])) == 7 and len(read_annotations(paths["val"])) == 3
    ids = (tmp_path / "d" / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    assert ids == [f"{i:06d}" for i in range(10)]
    sizes = []
    for item, image_id in zip(items, ids):
        w, h = Image.open(item.path).size
        assert max(w, h) == 128 and 96 <= min(w, h) <= 128
        b = item.boxes
        assert len(b) >= 1
        assert np.all(b[:, 0] >= 0) and np.all(b[:, 1] >= 0) and np.all(b[:, 2] <= w) and np.all(b[:, 3] <= h)
        assert np.all(b[:, 2] - b[:, 0] >= 4) and np.all(b[:, 3] - b[:, 1] >= 4)
        sizes += list(b[:, 2] - b[:, 0])
        root = ET.parse(tmp_path / "d" / "Annotations" / f"{image_id}.xml").getroot()
        assert root.findtext("filename") == f"{image_id}.jpg"
        assert (int(root.findtext("size/width")), int(root.findtext("size/height"))) == (w, h)
        objs = root.findall("object")
        assert [o.findtext("name") for o in objs] == [["circle", "star", "ring"][int(c)] for c in b[:, 4]]
        xml_boxes = [[float(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")] for o in objs]
        np.testing.assert_allclose(xml_boxes, b[:, :4], atol=0.051)
    assert min(sizes) < 20 and max(sizes) > 40  # small and large objects


def test_deterministic_with_seed(tmp_path):
    a = generate_shapes_dataset(str(tmp_path / "a"), 4, size=96, seed=7, progress=False)
    b = generate_shapes_dataset(str(tmp_path / "b"), 4, size=96, seed=7, progress=False)
    c = generate_shapes_dataset(str(tmp_path / "c"), 4, size=96, seed=8, progress=False)
    assert _digest(Path(a["root"])) == _digest(Path(b["root"]))
    assert _digest(Path(a["root"])) != _digest(Path(c["root"]))


@pytest.mark.slow  # minutes on 2 cores (training graphs / fresh processes); CI runs it with `make test-slow`
def test_cli(tmp_path):
    out = tmp_path / "cli"
    proc = subprocess.run([sys.executable, "-m", "yolo3.cli.shapes", str(out), "--num", "3", "--size", "64",
                           "--seed", "1", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list((out / "JPEGImages").glob("*.jpg"))) == 3
    assert len((out / "annotations.txt").read_text().splitlines()) == 3
    proc = subprocess.run([sys.executable, "-m", "yolo3.cli.shapes", str(out), "--classes", "circle,blob"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "unknown shape class(es) blob" in proc.stderr
    assert "Traceback" not in proc.stderr
