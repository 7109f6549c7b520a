"""Fuzzing the three parsers that read users' text (issue 14): the annotation file reader, the Darknet cfg
parser and the detections-JSON loader get a seeded random corpus of mutated files; whatever they are
given, nothing but the package's own error (:class:`yolo3.errors.Yolo3Error`) may escape.

The corpus is reproducible (seeded); a failure prints the seed and case number, and the mutated
file is written next to the test's temporary folder for a look.
"""
from __future__ import annotations

import json
import random
import re

import pytest
from conftest import RESOURCES

from yolo3.datasets.annotations import AnnotatedImage, read_anchors, read_annotations, read_class_names
from yolo3.errors import Yolo3Error
from yolo3.evaluation.detections_io import load_detections_json
from yolo3.modeling.cfg import parse_cfg

CASES = 300

#: pieces the mutations insert: numbers at the edges, separators, encodings, structure
TOKENS = [b"nan", b"NaN", b"inf", b"-inf", b"1e999", b"-1", b"0", b"-0", b"1.5", b"99999999999999999999", b",",
          b",,", b" ", b"\t", b"\n", b"\r\n", b"\r", b"\x00", b"\xff\xfe", b"\xc3\x28", b"\xef\xbb\xbf", b"=", b"[",
          b"]", b"[net]", b"[yolo]", b"[convolutional]", b"#", b";", b"{", b"}", b'"', b"null", b"true", b"[]",
          b"{}", b":", b"\\", b"\xe9", "\u00e9\u4e2d".encode()]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """1 to 6 random edits: replace a number by a token, flip, delete, insert a token, duplicate or drop a
    line, truncate."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(9)
        pos = rng.randrange(len(data) + 1)
        numbers = list(re.finditer(rb"-?\d+(?:\.\d+)?", bytes(data)))
        if op >= 7 and numbers:
            m = rng.choice(numbers)
            data[m.start():m.end()] = rng.choice(TOKENS[:10])
        elif op == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            del data[pos:pos + rng.randint(1, 12)]
        elif op in (2, 3):
            data[pos:pos] = rng.choice(TOKENS)
        elif op == 4:
            lines = bytes(data).split(b"\n")
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i])
            data = bytearray(b"\n".join(lines))
        elif op == 5:
            lines = bytes(data).split(b"\n")
            del lines[rng.randrange(len(lines))]
            data = bytearray(b"\n".join(lines))
        else:
            data = data[:pos]
    return bytes(data)


def fuzz(tmp_path, name: str, seed_text: bytes, read, seed: int) -> int:
    """Run ``read(path)`` on CASES mutations of ``seed_text``; returns how many raised Yolo3Error."""
    rng = random.Random(seed)
    path = tmp_path / name
    refused = 0
    for case in range(CASES):
        data = mutate(seed_text, rng)
        path.write_bytes(data)
        try:
            read(str(path))
        except Yolo3Error as exc:
            assert "\n" not in str(exc).strip(), (seed, case, str(exc))
            refused += 1
        except Exception as exc:  # noqa: BLE001 - the finding this test exists for
            (tmp_path / f"failing-{case}-{name}").write_bytes(data)
            pytest.fail(f"seed {seed} case {case}: {type(exc).__name__}: {exc} on {data[:300]!r}")
    return refused


ANNOTATION = (b"img/a.jpg 10,20,110,220,0 5,5,50,60,2\n"
              b"img/b c.jpg\t1,1,5,5,1\n"
              b"# a comment\n\n"
              b"/abs/d.png 0.5,1.25,3.75,9,0\n"
              b"e.jpg\n")


@pytest.mark.parametrize("seed", [1, 2])
def test_annotation_reader_raises_only_its_own_error(tmp_path, seed):
    refused = fuzz(tmp_path, "train.txt", ANNOTATION, lambda p: read_annotations(p, num_classes=3), seed)
    assert 0 < refused < CASES  # the corpus holds both good and bad files


@pytest.mark.parametrize("seed", [3])
def test_classes_and_anchors_readers_raise_only_their_own_error(tmp_path, seed):
    refused_classes = fuzz(tmp_path, "classes.txt", b"person\nbicycle\ncar\n", read_class_names, seed)
    refused_anchors = fuzz(tmp_path, "anchors.txt", (RESOURCES / "yolo_anchors.txt").read_bytes(), read_anchors, seed)
    assert 0 < refused_classes < CASES and 0 < refused_anchors < CASES  # good and bad files in both corpora


@pytest.mark.parametrize("seed,cfg", [(4, "yolov3-tiny.cfg"), (5, "yolov3.cfg")])
def test_cfg_parser_raises_only_its_own_error(tmp_path, seed, cfg):
    refused = fuzz(tmp_path, "model.cfg", (RESOURCES / cfg).read_bytes(), parse_cfg, seed)
    assert 0 < refused < CASES


DETECTIONS = json.dumps([
    {"image": "a.jpg", "width": 640, "height": 480,
     "detections": [{"class_id": 0, "class": "cat", "score": 0.9, "box": [1.5, 2, 30, 40]},
                    {"class_id": 1, "class": "dog", "score": 0.25, "box": [10, 20, 30, 40]}]},
    {"image": "b.jpg", "width": 64, "height": 48, "detections": []},
    {"image": 3, "detections": []},
], indent=1).encode()


@pytest.mark.parametrize("seed", [6, 7])
def test_detections_json_loader_raises_only_its_own_error(tmp_path, seed):
    ground_truth = [AnnotatedImage(str(tmp_path / "a.jpg")), AnnotatedImage(str(tmp_path / "b.jpg"))]
    refused = fuzz(tmp_path, "detections.json", DETECTIONS,
                   lambda p: load_detections_json(p, ground_truth, 2, ["cat", "dog"]), seed)
    assert 0 < refused < CASES
