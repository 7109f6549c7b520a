"""yolo3.datasets.annotations: malformed lines name file, line and reason; paths and round trips."""
from __future__ import annotations

import os

import numpy as np
import pytest

from yolo3.datasets.annotations import (
    AnnotationError,
    format_annotation_line,
    parse_annotation_line,
    read_anchors,
    read_annotations,
    read_class_names,
    write_anchors,
    write_annotations,
)


@pytest.mark.parametrize("line, reason", [
    ("a.jpg 1,2,3,4", "box 1 '1,2,3,4' has 4 fields, expected 5"),
    ("a.jpg 1,2,3,4,0 1,2,3,4,0,7", "box 2 '1,2,3,4,0,7' has 6 fields, expected 5"),
    ("a.jpg 1,2,x,4,0", "has a coordinate that is not a number"),
    ("a.jpg 1,2,3,4,cat", "has a class id that is not a number"),
    ("a.jpg 1,2,3,4,1.5", "has a class id that is not an integer"),
    ("a.jpg 1,2,nan,4,0", "non-finite coordinate"),
    ("a.jpg 5,2,3,4,0", "has x_max < x_min"),
    ("a.jpg 1,5,3,4,0", "has y_max < y_min"),
    ("a.jpg 1,2,3,4,3", "has class id 3 out of range (0..2)"),
    ("a.jpg 1,2,3,4,-1", "has class id -1 out of range"),
])
def test_malformed_lines_give_file_line_and_reason(tmp_path, line, reason):
    path = tmp_path / "train.txt"
    path.write_text(f"# header comment\n\nok.jpg 1,2,3,4,0\n{line}\n")
    with pytest.raises(AnnotationError) as info:
        read_annotations(str(path), num_classes=3)
    err = info.value
    assert err.source == str(path) and err.lineno == 4  # comment and blank lines count
    assert str(err).startswith(f"{path}:4: ") and reason in str(err)


def test_class_range_only_checked_when_num_classes_given(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("a.jpg 1,2,3,4,7\n")
    assert read_annotations(str(path))[0].class_ids.tolist() == [7]
    with pytest.raises(AnnotationError, match=r"train.txt:1: .*class id 7 out of range \(0..4\)"):
        read_annotations(str(path), num_classes=5)


def test_round_trip_and_relative_paths(tmp_path):
    boxes = np.array([[1, 2, 30.5, 40.25, 0], [0, 0, 0, 0, 2]], np.float32)  # zero-area boxes are kept
    items = [("imgs/a.jpg", boxes), ("imgs/with space.jpg", boxes[:1]), ("imgs/empty.jpg", np.zeros((0, 5)))]
    path = tmp_path / "train.txt"
    assert write_annotations(str(path), items) == 3
    (tmp_path / "imgs").mkdir()
    got = read_annotations(str(path), num_classes=3)
    assert [a.raw_path for a in got] == [p for p, _ in items]
    # Relative paths resolve against the annotation file's folder.
    assert got[0].path == os.path.join(str(tmp_path), "imgs/a.jpg")
    np.testing.assert_array_equal(got[0].boxes, boxes)
    np.testing.assert_array_equal(got[1].boxes, boxes[:1])
    assert got[2].boxes.shape == (0, 5) and got[1].lineno == 2
    assert "\t" in format_annotation_line("a b.jpg", boxes[:1])
    assert parse_annotation_line("x.jpg 1,2,3,4,0", root="/data").path == os.path.join("/data", "x.jpg")


def test_missing_files_and_anchor_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="annotation file not found"):
        read_annotations(str(tmp_path / "nope.txt"))
    with pytest.raises(FileNotFoundError, match="classes file not found"):
        read_class_names(str(tmp_path / "nope.names"))
    anchors = np.array([[10, 13], [16.5, 30.25]], np.float32)
    write_anchors(str(tmp_path / "a.txt"), anchors)
    assert (tmp_path / "a.txt").read_text() == "10,13,  16.5,30.25\n"
    np.testing.assert_array_equal(read_anchors(str(tmp_path / "a.txt")), anchors)
