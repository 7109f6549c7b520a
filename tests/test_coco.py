"""yolo3.datasets.coco: COCO instances JSON <-> annotation file, category-id mapping, crowd boxes."""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import RESOURCES, ROOT, require_shared
from PIL import Image

from yolo3.cli.coco import main
from yolo3.datasets.annotations import read_annotations, read_class_names
from yolo3.datasets.coco import (
    coco_results,
    default_category_ids,
    default_image_ids,
    read_sidecar,
    sidecar_path,
)

CATEGORIES = [{"id": 7, "name": "kite", "supercategory": "sports"},
              {"id": 1, "name": "person", "supercategory": "person"},
              {"id": 3, "name": "car", "supercategory": "vehicle"}]


def make_coco(tmp_path) -> tuple[str, str, dict]:
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    images = []
    for i, (w, h) in enumerate([(64, 48), (80, 60), (32, 32)]):
        name = f"{1000 + i:012d}.jpg"
        Image.new("RGB", (w, h)).save(images_dir / name)
        images.append({"id": 1000 + i, "file_name": name, "width": w, "height": h})
    anns = [
        {"id": 1, "image_id": 1000, "category_id": 1, "bbox": [1.5, 2.25, 10, 20], "area": 200, "iscrowd": 0},
        {"id": 2, "image_id": 1000, "category_id": 7, "bbox": [5, 5, 30.5, 10], "area": 305, "iscrowd": 0},
        {"id": 3, "image_id": 1001, "category_id": 3, "bbox": [0, 0, 79, 59], "area": 4661, "iscrowd": 0},
        {"id": 4, "image_id": 1001, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 1},
        {"id": 5, "image_id": 1001, "category_id": 1, "bbox": [10, 10, -4, 40], "area": 0, "iscrowd": 0},
        {"id": 6, "image_id": 1001, "category_id": 99, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0},
    ]
    data = {"images": images, "annotations": anns, "categories": CATEGORIES}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return str(path), str(images_dir), data


def test_to_annotation_maps_categories_and_reports_what_it_leaves_out(tmp_path, capsys):
    instances, images_dir, data = make_coco(tmp_path)
    out = tmp_path / "train.txt"
    assert main(["to-annotation", instances, "--images-dir", images_dir, "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    # Contiguous class ids in order of COCO id: person (1) -> 0, car (3) -> 1, kite (7) -> 2.
    assert read_class_names(str(tmp_path / "train.names")) == ["person", "car", "kite"]
    anns = read_annotations(str(out), num_classes=3)
    assert [os.path.basename(a.path) for a in anns] == [im["file_name"] for im in data["images"]]
    np.testing.assert_allclose(anns[0].boxes, [[1.5, 2.25, 11.5, 22.25, 0], [5, 5, 35.5, 15, 2]])
    np.testing.assert_allclose(anns[1].boxes, [[0, 0, 79, 59, 1]])
    assert anns[2].boxes.shape == (0, 5)  # an image without boxes stays, as a negative
    side = read_sidecar(sidecar_path(str(out)))
    assert [(c["class_id"], c["id"], c["name"]) for c in side["categories"]] == [
        (0, 1, "person"), (1, 3, "car"), (2, 7, "kite")]
    assert side["images"][anns[1].raw_path] == {"id": 1001, "file_name": data["images"][1]["file_name"],
                                                "width": 80, "height": 60}
    assert "left out 1 crowd (iscrowd=1) box(es)" in stdout
    assert "left out 1 malformed box(es): annotations[4] (id 5): bbox has a negative width" in stdout
    assert "category ids not in 'categories': {99: 1}" in stdout

    # --include-crowd keeps the crowd box as an ordinary box.
    out2 = tmp_path / "crowd.txt"
    assert main(["to-annotation", instances, "--images-dir", images_dir, "--out", str(out2), "--include-crowd",
                 "--relative"]) == 0
    anns2 = read_annotations(str(out2), num_classes=3)
    np.testing.assert_allclose(anns2[1].boxes, [[0, 0, 79, 59, 1], [10, 10, 50, 50, 0]])
    assert not os.path.isabs(anns2[0].raw_path) and os.path.isfile(anns2[0].path)


def test_round_trip_keeps_ids_and_boxes_and_loads_in_pycocotools(tmp_path):
    from pycocotools.coco import COCO

    instances, images_dir, data = make_coco(tmp_path)
    out = tmp_path / "train.txt"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["to-annotation", instances, "--images-dir", images_dir, "--out", str(out)]) == 0
        back = tmp_path / "back.json"
        assert main(["from-annotation", str(out), "--classes", str(tmp_path / "train.names"),
                     "--out", str(back)]) == 0
    got = json.loads(back.read_text())
    assert sorted((c["id"], c["name"]) for c in got["categories"]) == sorted(
        (c["id"], c["name"]) for c in CATEGORIES)
    assert [(im["id"], im["file_name"], im["width"], im["height"]) for im in got["images"]] == [
        (im["id"], im["file_name"], im["width"], im["height"]) for im in data["images"]]
    kept = [a for a in data["annotations"] if a["id"] in (1, 2, 3)]  # not crowd, not malformed, known category
    assert sorted((a["image_id"], a["category_id"], a["bbox"]) for a in got["annotations"]) == sorted(
        (a["image_id"], a["category_id"], a["bbox"]) for a in kept)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(back))
    assert len(coco.getAnnIds()) == 3 and coco.getCatIds() == [1, 3, 7]


def test_from_annotation_without_sidecar_reads_image_sizes(tmp_path, capsys):
    img = tmp_path / "a.png"
    Image.new("RGB", (50, 40)).save(img)
    ann = tmp_path / "val.txt"
    ann.write_text("a.png 1,2,30,20,1\n")
    classes = tmp_path / "c.names"
    classes.write_text("x\ny\n")
    out = tmp_path / "val.json"
    assert main(["from-annotation", str(ann), "--classes", str(classes), "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert got["images"] == [{"id": 1, "file_name": "a.png", "width": 50, "height": 40}]
    assert got["annotations"][0]["category_id"] == 2 and got["annotations"][0]["bbox"] == [1, 2, 29, 18]
    # A missing image is named; exit code 2 with one line.
    ann.write_text("a.png 1,2,30,20,1\ngone.jpg 1,1,2,2,0\n")
    assert main(["from-annotation", str(ann), "--classes", str(classes), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "gone.jpg" in err[0]
    # A class id out of range names file and line.
    ann.write_text("a.png 1,2,30,20,5\n")
    assert main(["from-annotation", str(ann), "--classes", str(classes), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{ann}:1:" in err and "class id 5 out of range" in err


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"images": [], "categories": []}', "'annotations' list missing"),
    ('{"images": [{"id": 1}], "annotations": [], "categories": []}', "images[0] needs an 'id' and a 'file_name'"),
])
def test_to_annotation_rejects_bad_json(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["to-annotation", str(bad), "--images-dir", str(tmp_path), "--out", str(tmp_path / "o.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "bad.json" in err[0]


def test_cli_module_user_error_exit_2_one_line(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "yolo3.cli.coco", "to-annotation", str(tmp_path / "missing.json"),
                        "--images-dir", str(tmp_path), "--out", str(tmp_path / "o.txt")],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "COCO JSON not found" in lines[0] and "Traceback" not in r.stderr


def test_from_annotation_default_ids_for_coco_names(tmp_path):
    """Without a sidecar: COCO's category ids for the 80 COCO classes, image ids from COCO-style names."""
    names = read_class_names(str(RESOURCES / "coco_classes.txt"))
    for stem, size in (("000000000139", (40, 30)), ("000000000285", (20, 10))):
        Image.new("RGB", size).save(tmp_path / f"{stem}.jpg")
    ann = tmp_path / "val.txt"
    ann.write_text("000000000139.jpg 1,1,5,5,11\n000000000285.jpg 1,1,5,5,79\n")
    out = tmp_path / "val.json"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["from-annotation", str(ann), "--classes", str(RESOURCES / "coco_classes.txt"),
                     "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert [im["id"] for im in got["images"]] == [139, 285]
    assert names[11] == "stop sign" and names[79] == "toothbrush"
    assert [a["category_id"] for a in got["annotations"]] == [13, 90]


def test_coco_dataset_evaluates_with_original_ids(tmp_path, monkeypatch):
    """COCO JSON -> annotation file -> eval.py --detections -> detections_coco.json that pycocotools scores
    against the ORIGINAL instances JSON (original image and category ids, via the sidecar)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    import eval as eval_script

    instances, images_dir, data = make_coco(tmp_path)
    # Drop what to-annotation leaves out, so perfect detections of the rest score 1.0 on the original.
    data["annotations"] = [a for a in data["annotations"] if a["id"] in (1, 2, 3)]
    (tmp_path / "instances.json").write_text(json.dumps(data))
    monkeypatch.chdir(tmp_path)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["to-annotation", instances, "--images-dir", images_dir, "--out", "val.txt"]) == 0
    anns = read_annotations("val.txt")
    names = read_class_names("val.names")
    entries = [{"image": a.path, "width": 0, "height": 0,
                "detections": [{"class_id": int(b[4]), "class": names[int(b[4])], "score": 0.9,
                                "box": [float(v) for v in b[:4]]} for b in a.boxes]} for a in anns]
    (tmp_path / "dets.json").write_text(json.dumps(entries))
    with contextlib.redirect_stdout(io.StringIO()) as buf:
        assert eval_script.main(["--detections", "dets.json", "--annotation", "val.txt", "--classes", "val.names",
                                 "--out", "rep", "--no-progress"]) == 0
    assert "VOC mAP: 1.0000" in buf.getvalue()
    results = json.loads((tmp_path / "rep" / "detections_coco.json").read_text())
    assert {r["image_id"] for r in results} == {1000, 1001} and {r["category_id"] for r in results} == {1, 3, 7}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(instances)
        ev = COCOeval(gt, gt.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)


def test_coco_results_and_category_ids():
    names = [ln.strip() for ln in open(require_shared("darknet", "coco.names")) if ln.strip()]
    ids = default_category_ids(names)
    assert ids[0] == 1 and ids[names.index("dog")] == 18 and ids[-1] == 90
    assert default_category_ids(["a", "b"]) == [1, 2]
    records = [{"image": 0, "width": 9, "height": 9,
                "detections": [{"class_id": 1, "class": "b", "score": 0.5, "box": [10.0, 20.0, 40.0, 60.0]}]}]
    assert coco_results(records, ["a", "b"]) == [{"image_id": 1, "category_id": 2, "bbox": [10.0, 20.0, 30.0, 40.0],
                                                 "score": 0.5}]
    assert default_image_ids(["a/000000000139.jpg", "b/000000000285.jpg"]) == [139, 285]
    assert default_image_ids(["a/139.jpg", "b/x.jpg"]) == [1, 2]
    assert default_image_ids([0, 1, 2]) == [1, 2, 3]  # video frames
