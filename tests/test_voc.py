"""voc_annotation.py / yolo3.datasets.voc: VOC XML -> annotation files, on VOC folders written by the tests."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import run_script
from PIL import Image

import voc_annotation
from yolo3.datasets.annotations import read_annotations
from yolo3.datasets.voc import (
    VOC_CLASSES,
    VocError,
    VocXmlError,
    find_image_sets,
    parse_voc_xml,
)

CLASSES = ["cat", "dog", "person"]


def write_xml(path: Path, filename: str, size: tuple[int, int], objects: list[tuple], extra: str = "") -> None:
    """objects: (name, xmin, ymin, xmax, ymax, difficult)."""
    objs = "".join(
        f"<object><name>{n}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>{d}</difficult>"
        f"<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for n, x1, y1, x2, y2, d in objects)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><folder>VOC</folder><filename>{filename}</filename>"
                    f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
                    f"{extra}{objs}</annotation>", encoding="utf-8")


def write_image(path: Path, size: tuple[int, int] = (64, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 30, 200)).save(path)


def random_objects(rng: np.random.Generator, n: int, names=CLASSES, decimals: int = 0) -> list[tuple]:
    out = []
    for _ in range(n):
        x1, y1 = rng.uniform(1, 200, 2).round(decimals)
        w, h = rng.uniform(1, 150, 2).round(decimals)
        out.append((str(rng.choice(names)), x1, y1, round(x1 + w, 2), round(y1 + h, 2), int(rng.random() < 0.2)))
    return out


def fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def make_devkit(root: Path, rng: np.random.Generator) -> dict[str, dict[str, list[tuple]]]:
    """VOCdevkit/VOC2007 with train (6 images) and val (4 images); returns set -> id -> objects."""
    voc = root / "VOCdevkit" / "VOC2007"
    truth: dict[str, dict[str, list[tuple]]] = {"train": {}, "val": {}}
    for i in range(10):
        image_id = f"{i:06d}"
        split = "train" if i < 6 else "val"
        objects = random_objects(rng, int(rng.integers(0, 5)))
        if i == 2:
            objects = []  # an image without objects stays in the file as a negative
        truth[split][image_id] = objects
        write_xml(voc / "Annotations" / f"{image_id}.xml", f"{image_id}.jpg", (640, 480),
                  [(n, fmt(a), fmt(b), fmt(c), fmt(d), k) for n, a, b, c, d, k in objects])
        write_image(voc / "JPEGImages" / f"{image_id}.jpg")
    main = voc / "ImageSets" / "Main"
    main.mkdir(parents=True)
    for split, items in truth.items():
        (main / f"{split}.txt").write_text("".join(f"{k}\n" for k in items))
    return truth


def boxes_of(objects: list[tuple], skip_difficult: bool = False) -> np.ndarray:
    rows = [(a, b, c, d, CLASSES.index(n)) for n, a, b, c, d, k in objects if not (skip_difficult and k)]
    return np.asarray(rows, np.float32).reshape(-1, 5)


def test_parse_voc_xml_reads_objects_and_lists_bad_ones(tmp_path):
    p = tmp_path / "a.xml"
    write_xml(p, "a.jpg", (320, 200), [("dog", 1, 2, 30, 40, 0), ("cat", 5.5, 6, 7.25, 8, 1),
                                       ("person", 50, 2, 10, 40, 0)],
              extra="<object><name>bird</name></object>")
    voc = parse_voc_xml(str(p))
    assert voc.filename == "a.jpg" and voc.size == (320, 200)
    assert [(o.name, o.box, o.difficult) for o in voc.objects] == [
        ("dog", (1, 2, 30, 40), False), ("cat", (5.5, 6, 7.25, 8), True)]
    # Objects are numbered in file order: the bird (no bndbox) comes first, then the three above.
    reasons = dict(voc.bad_objects)
    assert set(reasons) == {1, 4}
    assert "without <bndbox>" in reasons[1] and "xmax < xmin" in reasons[4]

    bad = tmp_path / "bad.xml"
    bad.write_text("<annotation><object>", encoding="utf-8")
    with pytest.raises(VocXmlError, match="bad.xml: not well-formed XML"):
        parse_voc_xml(str(bad))


def test_voc_annotation_round_trips_every_box_devkit(tmp_path):
    """The real script on a generated VOCdevkit: every box comes back, problems are reported by name."""
    rng = np.random.default_rng(3)
    truth = make_devkit(tmp_path, rng)
    voc = tmp_path / "VOCdevkit" / "VOC2007"
    # Problems the report must name: an unknown class, a malformed XML file, a missing image.
    write_xml(voc / "Annotations" / "000100.xml", "000100.jpg", (64, 48),
              [("dog", 1, 1, 10, 10, 0), ("unicorn", 2, 2, 5, 5, 0), ("unicorn", 3, 3, 6, 6, 0)])
    write_image(voc / "JPEGImages" / "000100.jpg")
    (voc / "Annotations" / "000101.xml").write_text("<annotation><object><name>dog", encoding="utf-8")
    write_image(voc / "JPEGImages" / "000101.jpg")
    write_xml(voc / "Annotations" / "000102.xml", "000102.jpg", (64, 48), [("cat", 1, 1, 10, 10, 0)])
    with open(voc / "ImageSets" / "Main" / "train.txt", "a") as f:
        f.write("000100\n000101\n000102\n")
    truth["train"]["000100"] = [("dog", 1, 1, 10, 10, 0)]
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(CLASSES) + "\n")
    out = tmp_path / "out"

    r = run_script("voc_annotation.py", "--voc-root", str(tmp_path / "VOCdevkit"), "--sets", "2007_train",
                   "2007_val", "--classes", str(classes), "--out-dir", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    for split in ("train", "val"):
        got = read_annotations(str(out / f"2007_{split}.txt"), num_classes=len(CLASSES))
        assert [Path(a.path).stem for a in got] == list(truth[split])
        for ann in got:
            assert os.path.isabs(ann.raw_path) and os.path.isfile(ann.path)
            np.testing.assert_array_equal(ann.boxes, boxes_of(truth[split][Path(ann.path).stem]))
    # Per-class counts in the report equal the boxes written.
    n_dog_train = sum(o[0] == "dog" for objs in truth["train"].values() for o in objs)
    assert any(line.split()[1:] == ["dog", str(n_dog_train)] for line in r.stdout.splitlines()), r.stdout
    assert "unicorn (2)" in r.stdout
    assert "000101.xml: not well-formed XML" in r.stdout
    assert "000102.jpg" in r.stdout and "not found" in r.stdout


def test_vott_layout_relative_paths_and_skip_difficult(tmp_path, capsys):
    """A VoTT export: no train.txt, <tag>_train.txt lists with extensions, PNG images, float boxes."""
    rng = np.random.default_rng(5)
    root = tmp_path / "vott-export"
    truth = {}
    for i in range(5):
        name = f"frame {i}.png"  # a space in the name: written with a TAB after the path
        objects = random_objects(rng, 3, decimals=2)
        truth[name] = objects
        write_xml(root / "Annotations" / f"frame {i}.xml", name, (64, 48), objects)
        write_image(root / "JPEGImages" / name)
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True)
    names = list(truth)
    for tag in CLASSES:
        (main / f"{tag}_train.txt").write_text("\n".join(f"{n} 1" for n in names[:3]))
        (main / f"{tag}_val.txt").write_text("\n".join(f"{n} -1" for n in names[3:]))
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(CLASSES) + "\n")
    out = root  # annotation files beside the export, paths relative to it

    assert voc_annotation.main(["--voc-root", str(root), "--sets", "train", "val", "--classes", str(classes),
                                "--out-dir", str(out), "--relative", "--skip-difficult", "--no-progress"]) == 0
    stdout = capsys.readouterr().out
    n_difficult = sum(o[5] for objs in truth.values() for o in objs)
    assert n_difficult > 0 and f"left out {n_difficult} difficult" in stdout
    for split, expect in (("train", names[:3]), ("val", names[3:])):
        got = read_annotations(str(out / f"{split}.txt"), num_classes=3)
        assert [a.raw_path for a in got] == [os.path.join("JPEGImages", n) for n in expect]
        for ann, n in zip(got, expect):
            assert os.path.isfile(ann.path)
            np.testing.assert_allclose(ann.boxes, boxes_of(truth[n], skip_difficult=True), atol=1e-4)


def test_find_image_sets_errors_and_defaults(tmp_path):
    rng = np.random.default_rng(0)
    make_devkit(tmp_path, rng)
    sets = find_image_sets(str(tmp_path))  # the folder holding VOCdevkit/ works too
    assert [s.label for s in sets] == ["2007_train", "2007_val"]
    assert [s.label for s in find_image_sets(str(tmp_path / "VOCdevkit"), ["train"])] == ["2007_train"]
    (tmp_path / "VOCdevkit" / "VOC2012" / "Annotations").mkdir(parents=True)
    with pytest.raises(VocError, match="ambiguous.*2007_train"):
        find_image_sets(str(tmp_path / "VOCdevkit"), ["train"])
    with pytest.raises(VocError, match="no VOC2010 folder"):
        find_image_sets(str(tmp_path / "VOCdevkit"), ["2010_train"])
    with pytest.raises(VocError, match="image set '2007_test' not found"):
        find_image_sets(str(tmp_path / "VOCdevkit"), ["2007_test"])
    with pytest.raises(VocError, match="neither a VOC-layout folder"):
        find_image_sets(str(tmp_path / "VOCdevkit" / "VOC2007" / "JPEGImages"))


def test_default_classes_and_strict(tmp_path, capsys):
    voc = tmp_path / "single"
    write_xml(voc / "Annotations" / "a.xml", "a.jpg", (64, 48), [("dog", 1, 1, 9, 9, 0), ("gnu", 1, 1, 5, 5, 0)])
    write_image(voc / "JPEGImages" / "a.jpg")
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "ImageSets" / "Main" / "train.txt").write_text("a\n")
    assert voc_annotation.main(["--voc-root", str(voc), "--out-dir", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "gnu (1)" in out
    got = read_annotations(str(tmp_path / "train.txt"))
    np.testing.assert_array_equal(got[0].boxes, [[1, 1, 9, 9, VOC_CLASSES.index("dog")]])
    assert voc_annotation.main(["--voc-root", str(voc), "--out-dir", str(tmp_path), "--strict",
                                "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--strict" in err[0]


def test_voc_annotation_user_errors_exit_2_one_line(tmp_path):
    r = run_script("voc_annotation.py", "--voc-root", str(tmp_path / "nowhere"), "--out-dir", str(tmp_path))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "VOC root not found" in lines[0] and "Traceback" not in r.stderr


@pytest.mark.parametrize("argv_extra, message", [
    (["--classes", "missing_classes.txt"], "classes file not found"),
    (["--sets", "2007_test"], "image set '2007_test' not found"),
])
def test_voc_annotation_user_errors_in_process(tmp_path, capsys, argv_extra, message):
    make_devkit(tmp_path, np.random.default_rng(1))
    argv = ["--voc-root", str(tmp_path / "VOCdevkit"), "--out-dir", str(tmp_path), "--no-progress"]
    argv += [str(tmp_path / a) if a.endswith(".txt") else a for a in argv_extra]
    assert voc_annotation.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
