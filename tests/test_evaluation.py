"""yolo3.evaluation.metrics and eval.py: VOC AP worked out by hand, agreement with pycocotools, the eval.py pipeline."""
from __future__ import annotations

import contextlib
import io
import json
import re

import numpy as np
import pytest
from conftest import run_script
from PIL import Image

import eval as eval_script
from yolo3.core.boxes import box_iou_xyxy
from yolo3.datasets.annotations import AnnotatedImage
from yolo3.evaluation.detections_io import load_detections_json
from yolo3.evaluation.metrics import (
    EvaluationError,
    ImageDetections,
    average_precision,
    evaluate_coco,
    evaluate_voc,
    mean_average_precision,
)


def gt_image(path: str, rows) -> AnnotatedImage:
    return AnnotatedImage(path=path, boxes=np.asarray(rows, np.float32).reshape(-1, 5))


def dets(rows) -> ImageDetections:
    """rows: (x1, y1, x2, y2, score, class_id)."""
    a = np.asarray(rows, np.float64).reshape(-1, 6)
    return ImageDetections(a[:, :4].astype(np.float32), a[:, 4].astype(np.float32), a[:, 5].astype(np.int64))


def random_scene(rng: np.random.Generator, n_images: int, num_classes: int, p_detect: float = 0.8,
                 fp_per_image: float = 1.0, jitter: float = 0.08):
    """Ground truth on a 4x4 grid of 100-pixel cells (boxes never overlap), detections = jittered copies
    of most ground-truth boxes (IoU > ~0.6) plus false positives in empty cells, random scores."""
    gts, ds = [], []
    for i in range(n_images):
        cells = rng.permutation(16)
        n_gt = int(rng.integers(0, 6))
        gt_rows, det_rows = [], []
        for cell in cells[:n_gt]:
            x0, y0 = (cell % 4) * 100, (cell // 4) * 100
            w, h = rng.uniform(30, 90, 2)
            x1, y1 = x0 + rng.uniform(0, 100 - w), y0 + rng.uniform(0, 100 - h)
            c = int(rng.integers(num_classes))
            gt_rows.append((x1, y1, x1 + w, y1 + h, c))
            if rng.random() < p_detect:
                dx, dy = rng.uniform(-jitter, jitter, 2) * (w, h)
                det_rows.append((x1 + dx, y1 + dy, x1 + w + dx, y1 + h + dy, rng.random(), c))
        for cell in cells[n_gt:n_gt + rng.poisson(fp_per_image)]:
            x0, y0 = (cell % 4) * 100 + 10, (cell // 4) * 100 + 10
            det_rows.append((x0, y0, x0 + 50, y0 + 50, rng.random(), int(rng.integers(num_classes))))
        gts.append(gt_image(f"img{i}.jpg", gt_rows))
        ds.append(dets(det_rows))
    return gts, ds


def test_box_iou_xyxy_and_average_precision_basics():
    np.testing.assert_allclose(box_iou_xyxy([[0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]),
                               [[1.0, 50 / 150, 0.0]])
    assert box_iou_xyxy([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0.0  # empty union: 0, not nan
    # One detection, one GT, TP: the envelope is 1 from recall 0 to 1.
    assert average_precision([1.0], [1.0]) == 1.0
    assert average_precision([1.0], [1.0], use_07_metric=True) == pytest.approx(1.0)


def test_perfect_detections_give_map_1(tmp_path):
    rng = np.random.default_rng(0)
    gts, _ = random_scene(rng, 30, 4, p_detect=0.0, fp_per_image=0)
    perfect = [dets([(*b[:4], 0.5 + 0.5 * rng.random(), b[4]) for b in g.boxes]) for g in gts]
    for use_07 in (False, True):
        r = evaluate_voc(gts, perfect, 4, use_07_metric=use_07)
        assert r.mean_ap == pytest.approx(1.0)
        np.testing.assert_allclose(r.per_class_ap, 1.0)
    coco = evaluate_coco(gts, perfect, 4, image_sizes=[(400, 400)] * len(gts))
    assert coco.stats["AP"] == pytest.approx(1.0) and coco.stats["AP50"] == pytest.approx(1.0)
    assert coco.stats["AR100"] == pytest.approx(1.0)
    np.testing.assert_allclose(coco.per_class_ap, 1.0)
    assert mean_average_precision(gts, perfect, 4) == pytest.approx(1.0)


def test_voc_ap_worked_out_by_hand():
    """Class 0 ("cat"): 3 non-difficult GT boxes (G1, G2 in image A; G3 in image B) + 1 difficult (G4, B).

    Detections of class 0 by score:
      d1 0.90 A on G1 (IoU 1)              -> TP
      d2 0.80 A on G1 again (IoU 0.952)    -> FP (G1 already matched: a duplicate)
      d3 0.70 B on G3 (IoU 1)              -> TP
      d4 0.65 B on the difficult G4        -> ignored (neither TP nor FP)
      d5 0.60 A near G2, IoU 36/100 = 0.36 -> FP (below 0.5);  G2 is never found.
    Ranked TP/FP: TP FP TP FP; precision 1/1, 1/2, 2/3, 2/4; recall 1/3, 1/3, 2/3, 2/3.
      all-point: envelope 1 on (0, 1/3], max(2/3, 2/4) = 2/3 on (1/3, 2/3], 0 beyond:
                 AP = 1/3 * 1 + 1/3 * 2/3 = 5/9 = 0.5556
      11-point:  t = 0, .1, .2, .3 -> 1 (4 points); t = .4, .5, .6 -> 2/3 (3 points); t >= .7 -> 0:
                 AP = (4 * 1 + 3 * 2/3) / 11 = 6/11 = 0.5455
    Class 1 ("dog"): 1 GT in B. d 0.95 in A on G1's place (a cat, wrong class) -> FP; d 0.50 on the dog -> TP.
      precision 0, 1/2; recall 0, 1: envelope 1/2 everywhere up to recall 1: AP = 0.5 (11-point too).
    Class 2: no ground truth, one detection: AP nan, not part of the mean.
    mAP = (5/9 + 1/2) / 2 = 19/36; VOC07 mAP = (6/11 + 1/2) / 2 = 23/44.
    """
    gts = [gt_image("A.jpg", [(0, 0, 10, 10, 0), (20, 20, 30, 30, 0)]),
           gt_image("B.jpg", [(0, 0, 10, 10, 0), (50, 50, 60, 60, 0), (30, 30, 40, 40, 1)])]
    difficult = [np.array([False, False]), np.array([False, True, False])]
    detections = [dets([(0, 0, 10, 10, 0.90, 0), (0, 0, 10, 10.5, 0.80, 0), (20, 20, 26, 26, 0.60, 0),
                        (0, 0, 10, 10, 0.95, 1), (70, 70, 80, 80, 0.3, 2)]),
                  dets([(0, 0, 10, 10, 0.70, 0), (50, 50, 60, 60, 0.65, 0), (30, 30, 40, 40, 0.50, 1)])]
    r = evaluate_voc(gts, detections, 3, difficult=difficult)
    assert r.per_class_ap[0] == pytest.approx(5 / 9)
    assert r.per_class_ap[1] == pytest.approx(0.5)
    assert np.isnan(r.per_class_ap[2])
    assert r.mean_ap == pytest.approx(19 / 36)
    np.testing.assert_allclose(r.precision[0], [1, 1 / 2, 2 / 3, 2 / 4])
    np.testing.assert_allclose(r.recall[0], [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert list(r.num_ground_truth) == [3, 1, 0]
    assert list(r.num_detections) == [4, 2, 1]  # the detection on the difficult box is not counted
    assert list(r.num_true_positives) == [2, 1, 0]
    r07 = evaluate_voc(gts, detections, 3, use_07_metric=True, difficult=difficult)
    assert r07.per_class_ap[0] == pytest.approx(6 / 11)
    assert r07.mean_ap == pytest.approx(23 / 44)
    # Without difficult flags G4 is an ordinary box: d4 becomes a TP and class 0 has 4 GT boxes.
    # Ranked TP FP TP TP FP: precision 1, 1/2, 2/3, 3/4, 3/5; recall 1/4, 1/4, 2/4, 3/4, 3/4:
    # AP = 1/4 * 1 + 1/4 * 3/4 + 1/4 * 3/4 = 5/8.
    assert evaluate_voc(gts, detections, 3).per_class_ap[0] == pytest.approx(5 / 8)
    # Raising the match threshold above d2's 0.952 IoU changes nothing (d2 is a duplicate either way);
    # at 0.3, d5 (IoU 0.36) finds G2: TP FP TP TP -> precision 1, 1/2, 2/3, 3/4; recall 1/3, 1/3, 2/3, 1:
    # AP = 1/3 + 1/3 * 3/4 + 1/3 * 3/4 = 5/6.
    assert evaluate_voc(gts, detections, 3, iou_threshold=0.3, difficult=difficult).per_class_ap[0] == \
        pytest.approx(5 / 6)


def test_ap50_agrees_with_pycocotools():
    """Our VOC all-point AP@0.5 vs pycocotools' AP at IoU 0.5 on the same data, within 0.01.

    The definitions coincide when (a) no ground-truth boxes of a class overlap, so VOC's "best
    IoU, else FP" and COCO's "best still-unmatched box" pick the same box, (b) no IoU sits exactly
    at 0.5 (VOC needs > 0.5, COCO >= 0.5), (c) no image has more than 100 detections (COCO's
    maxDets), and (d) no difficult/crowd boxes. What remains is the interpolation: COCO averages the
    precision envelope at 101 recall points, VOC integrates it exactly; the 101-point sum is a
    Riemann sum of the same step function, off by at most about one 1/101 step. The scene below
    satisfies (a)-(d) (grid cells keep boxes apart; jitter keeps matched IoUs well above 0.5).
    """
    rng = np.random.default_rng(7)
    gts, ds = random_scene(rng, 120, 3)
    voc = evaluate_voc(gts, ds, 3)
    coco = evaluate_coco(gts, ds, 3)
    assert 0.3 < voc.mean_ap < 0.95  # a non-trivial case: misses and false positives
    np.testing.assert_allclose(voc.per_class_ap, coco.per_class_ap50, atol=0.01)
    assert voc.mean_ap == pytest.approx(coco.stats["AP50"], abs=0.01)

    # The in-memory COCO objects must give what pycocotools' own file-based path gives.
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_json = {"images": [{"id": i + 1, "width": 400, "height": 400} for i in range(len(gts))],
               "categories": [{"id": c + 1, "name": f"c{c}"} for c in range(3)],
               "annotations": [{"id": k, "image_id": i + 1, "category_id": int(b[4]) + 1, "iscrowd": 0,
                                "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                                "area": float((b[2] - b[0]) * (b[3] - b[1]))}
                               for k, (i, b) in enumerate(((i, b) for i, g in enumerate(gts) for b in g.boxes), 1)]}
    results = [{"image_id": i + 1, "category_id": int(c) + 1, "score": float(s),
                "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
               for i, d in enumerate(ds) for b, s, c in zip(d.boxes, d.scores, d.class_ids)]
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = gt_json
        cg.createIndex()
        ev = COCOeval(cg, cg.loadRes(results), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    np.testing.assert_allclose([coco.stats[k] for k in ("AP", "AP50", "AP75", "AR100")],
                               ev.stats[[0, 1, 2, 8]], atol=1e-3)  # float32 boxes vs float64: tiny differences


def test_classes_without_ground_truth_and_input_errors():
    gts = [gt_image("a.jpg", [(0, 0, 10, 10, 1)])]
    r = evaluate_voc(gts, [dets([(0, 0, 10, 10, 0.9, 1), (0, 0, 5, 5, 0.8, 0)])], 3)
    assert np.isnan(r.per_class_ap[0]) and np.isnan(r.per_class_ap[2]) and r.mean_ap == 1.0
    # A class with ground truth but no detections has AP 0 and pulls the mean down.
    r = evaluate_voc([gt_image("a.jpg", [(0, 0, 10, 10, 1), (20, 20, 30, 30, 2)])],
                     [dets([(0, 0, 10, 10, 0.9, 1)])], 3)
    assert r.per_class_ap[2] == 0.0 and r.mean_ap == 0.5
    assert np.isnan(evaluate_voc([gt_image("a.jpg", [])], [dets([])], 2).mean_ap)
    with pytest.raises(EvaluationError, match="1 detection entries for 2"):
        evaluate_voc(gts * 2, [dets([])], 3)
    with pytest.raises(EvaluationError, match="class id 5 is not in 0..2"):
        evaluate_voc(gts, [dets([(0, 0, 1, 1, 0.5, 5)])], 3)
    with pytest.raises(EvaluationError, match="class id out of range"):
        evaluate_voc(gts, [dets([])], 1)


def test_load_detections_json_matches_paths(tmp_path, monkeypatch):
    (tmp_path / "imgs").mkdir()
    gts = [gt_image(str(tmp_path / "imgs" / n), [(0, 0, 10, 10, 0)]) for n in ("a.jpg", "b.jpg", "c.jpg", "d.jpg")]
    entry = lambda image, score: {"image": image, "width": 64, "height": 48,  # noqa: E731
                                  "detections": [{"class_id": 0, "class": "cat", "score": score,
                                                  "box": [0, 0, 10, 10]}]}
    monkeypatch.chdir(tmp_path)
    data = [entry(str(tmp_path / "imgs" / "a.jpg"), 0.9),  # absolute
            entry("imgs/./b.jpg", 0.8),                    # relative to the working directory
            entry("elsewhere/c.jpg", 0.7),                 # by unique file name
            entry(7, 0.1),                                 # a video frame index: cannot match
            entry("zzz.jpg", 0.2)]                         # names no annotated image
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(data))
    got = load_detections_json(str(path), gts, 1, ["cat"])
    assert [len(d) for d in got.detections] == [1, 1, 1, 0]
    assert [float(d.scores[0]) for d in got.detections[:3]] == pytest.approx([0.9, 0.8, 0.7])
    assert got.image_sizes[:3] == [(64, 48)] * 3 and got.image_sizes[3] is None
    assert got.images_without_entry == [gts[3].path]
    assert got.unmatched_entries == ["frame 7", "zzz.jpg"] and got.matched_by_name == 1

    path.write_text(json.dumps([entry("imgs/a.jpg", 0.5)] * 2))
    with pytest.raises(EvaluationError, match="more than one entry"):
        load_detections_json(str(path), gts, 1)
    path.write_text(json.dumps([entry("imgs/a.jpg", 0.5)]))
    with pytest.raises(EvaluationError, match="'cat' in the detections but 'dog' in the class names"):
        load_detections_json(str(path), gts, 1, ["dog"])
    with pytest.raises(EvaluationError, match="class_id 0 out of range"):
        load_detections_json(str(path), gts, 0)


def write_eval_set(tmp_path, rng, n_images=12):
    """An annotation file, class names and a yolo_video.py-style detections JSON (images need not exist)."""
    gts, ds = random_scene(rng, n_images, 2)
    ann = tmp_path / "val.txt"
    ann.write_text("".join(f"{g.path} " + " ".join(",".join(f"{v:.2f}" for v in b[:4]) + f",{int(b[4])}"
                                                  for b in g.boxes) + "\n" for g in gts))
    names = ["cat", "dog"]
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    entries = [{"image": g.path, "width": 400, "height": 400,
                "detections": [{"class_id": int(c), "class": names[int(c)], "score": float(s),
                                "box": [float(v) for v in b]} for b, s, c in zip(d.boxes, d.scores, d.class_ids)]}
               for g, d in zip(gts, ds)]
    (tmp_path / "dets.json").write_text(json.dumps(entries))
    return gts, ds


def test_eval_script_on_detections_json_writes_reports(tmp_path):
    rng = np.random.default_rng(11)
    gts, ds = write_eval_set(tmp_path, rng)
    # Read back through the annotation file (2-decimal coordinates), as eval.py does.
    from yolo3.datasets.annotations import read_annotations

    expected = evaluate_voc(read_annotations(str(tmp_path / "val.txt")), ds, 2).mean_ap
    out = tmp_path / "report"
    r = run_script("eval.py", "--detections", "dets.json", "--annotation", "val.txt", "--classes", "classes.txt",
                   "--out", str(out), "--json", "m.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "m.json").read_text())["mAP"] == pytest.approx(expected, abs=1e-6)
    m = re.search(r"^VOC mAP: ([0-9.]+)  \(all-point interpolation, match IoU 0.5;", r.stdout, re.M)
    assert m and float(m.group(1)) == pytest.approx(expected, abs=1e-4), r.stdout
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in r.stdout
    for name in ("per_class.csv", "per_class.md", "pr_curves.png", "detections_coco.json", "metrics.json"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mAP"] == metrics["voc"]["mAP"] == pytest.approx(expected, abs=1e-6)
    assert set(metrics["coco"]) >= {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100"}
    csv_lines = (out / "per_class.csv").read_text().splitlines()
    assert csv_lines[0].startswith("class_id,class,ground_truth,detections,true_positives,voc_ap")
    assert len(csv_lines) == 3
    results = json.loads((out / "detections_coco.json").read_text())
    assert len(results) == sum(len(d) for d in ds)
    assert {r["category_id"] for r in results} <= {1, 2}
    with Image.open(out / "pr_curves.png") as im:
        assert im.size[0] > 100


def test_eval_script_no_coco_in_process(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, ds = write_eval_set(tmp_path, np.random.default_rng(5), n_images=4)
    assert eval_script.main(["--detections", "dets.json", "--annotation", "val.txt", "--classes", "classes.txt",
                             "--no-coco", "--voc07", "--json", "m.json"]) == 0
    out = capsys.readouterr().out
    assert "COCO metrics skipped (--no-coco)" in out and "VOC2007 11-point interpolation" in out
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["coco"] is None and metrics["voc"]["interpolation"] == "VOC2007 11-point"
    assert "coco_ap" not in metrics["per_class"][0]


def test_eval_script_user_errors_exit_2_one_line(tmp_path):
    """A malformed annotation line: file, line number and reason on one stderr line; no traceback."""
    (tmp_path / "classes.txt").write_text("cat\n")
    (tmp_path / "dets.json").write_text("[]")
    (tmp_path / "val.txt").write_text("# comment\na.jpg 1,2,3,4,0\nb.jpg 1,2,3,0\n")
    r = run_script("eval.py", "--detections", "dets.json", "--annotation", "val.txt", "--classes", "classes.txt",
                   cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "val.txt:3:" in lines[0] and "has 4 fields, expected 5" in lines[0]


@pytest.mark.parametrize("case", ["missing_images", "no_source", "both_sources", "class_out_of_range",
                                  "no_entry_matches", "bad_json", "classes_mismatch", "missing_classes"])
def test_eval_script_user_errors_in_process(tmp_path, capsys, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(2)
    write_eval_set(tmp_path, rng, n_images=3)
    base = ["--annotation", "val.txt", "--classes", "classes.txt", "--no-progress"]
    argv, message = {
        "missing_images": (["--model", "m.keras", *base], "3 annotated image(s) not found: "),
        "no_source": (base, "give exactly one of --model"),
        "both_sources": (["--model", "m.keras", "--detections", "dets.json", *base], "give exactly one"),
        "class_out_of_range": (["--detections", "dets.json", "--annotation", "val.txt", "--classes", "one.txt"],
                               "out of range (0..0)"),
        "no_entry_matches": (["--detections", "other.json", *base], "no entry of other.json names an image"),
        "bad_json": (["--detections", "bad.json", *base], "bad.json: not valid JSON"),
        "classes_mismatch": (["--detections", "dets.json", "--annotation", "val.txt", "--classes", "swapped.txt"],
                             "wrong --classes?"),
        "missing_classes": (["--detections", "dets.json", "--annotation", "val.txt", "--classes", "nope.txt"],
                            "classes file not found: nope.txt"),
    }[case]
    (tmp_path / "one.txt").write_text("cat\n")
    (tmp_path / "swapped.txt").write_text("dog\ncat\n")
    (tmp_path / "other.json").write_text(json.dumps([{"image": "x.jpg", "detections": []}]))
    (tmp_path / "bad.json").write_text("[{")
    if case == "class_out_of_range":
        (tmp_path / "val.txt").write_text("img0.jpg 1,1,5,5,1\n")
    assert eval_script.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def _detector_available() -> str | None:
    try:
        from yolo3.datasets.imageio import read_image_rgb  # noqa: F401
        from yolo3.inference.detector import Detector  # noqa: F401
        from yolo3.modeling.factory import create_model  # noqa: F401
    except ImportError as e:
        return f"the detection part is not there yet ({e})"
    return None


def test_eval_script_runs_a_tiny_random_model(tmp_path):
    """The model path end to end: a random-weight tiny YOLOv3 on 3 generated pictures writes every output.

    Random weights detect nothing meaningful; this only shows the pipeline (reading, batching,
    detection, evaluation, reports) runs on a real model file.
    """
    reason = _detector_available()
    if reason:
        pytest.skip(reason)
    import keras
    from conftest import RESOURCES

    from yolo3.datasets.annotations import read_anchors
    from yolo3.modeling.factory import create_model

    keras.utils.set_random_seed(0)
    model = create_model("tiny", 2, read_anchors(str(RESOURCES / "tiny_yolo_anchors.txt")))
    model_path = tmp_path / "tiny.keras"
    model.save(model_path)
    rng = np.random.default_rng(0)
    lines = []
    for i, (w, h) in enumerate([(160, 120), (96, 128), (200, 100)]):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(tmp_path / f"p{i}.jpg")
        lines.append(f"p{i}.jpg 10,10,{w // 2},{h // 2},{i % 2}\n")
    (tmp_path / "val.txt").write_text("".join(lines))
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    out = tmp_path / "report"
    r = run_script("eval.py", "--model", str(model_path), "--annotation", "val.txt", "--classes", "classes.txt",
                   "--size", "128", "--batch-size", "2", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.search(r"^VOC mAP: [0-9.]+ ", r.stdout, re.M), r.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["images"] == 3 and 0.0 <= metrics["voc"]["mAP"] <= 1.0
    for name in ("per_class.csv", "per_class.md", "pr_curves.png", "detections_coco.json"):
        assert (out / name).stat().st_size > 0, name


@pytest.mark.slow
def test_real_tiny_model_finds_darknets_own_boxes(tiny_model_path, tmp_path):
    """Ground truth = Darknet's own yolov3-tiny detections (score > 0.25) on dog.jpg and person.jpg.

    Our detector reproduces Darknet's boxes, so every ground-truth box is found by the top-scored
    detection of its class (IoU ~1) and mAP is ~1. The same through yolo_video.py --json + eval.py
    --detections gives the same number (the two paths agree on the format and on image matching).
    """
    from conftest import RESOURCES, require_shared

    oracle = json.loads(require_shared("oracle", "darknet_yolov3_tiny.json").read_text())
    images = require_shared("darknet", "images")
    lines, paths = [], []
    for name, found in oracle["images"].items():
        w, h = oracle["image_size"][name]
        boxes = [(*np.clip(d["box"], 0, [w, h, w, h]), d["class_id"]) for d in found]
        paths.append(str(images / name))
        lines.append(paths[-1] + " " + " ".join(",".join(f"{v:.2f}" for v in b[:4]) + f",{b[4]}" for b in boxes))
    (tmp_path / "val.txt").write_text("\n".join(lines) + "\n")
    classes = str(RESOURCES / "coco_classes.txt")
    r = run_script("eval.py", "--model", tiny_model_path, "--annotation", "val.txt", "--classes", classes,
                   "--json", "model.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    by_model = json.loads((tmp_path / "model.json").read_text())
    assert by_model["mAP"] > 0.95, r.stdout

    r = run_script("yolo_video.py", "--model", tiny_model_path, "--classes", classes, "--image", *paths,
                   "--score", "0.001", "--json", "dets.json", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_script("eval.py", "--detections", "dets.json", "--annotation", "val.txt", "--classes", classes,
                   "--json", "file.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    by_file = json.loads((tmp_path / "file.json").read_text())
    assert by_file["mAP"] == pytest.approx(by_model["mAP"], abs=1e-4)
    assert by_file["coco"]["AP50"] == pytest.approx(by_model["coco"]["AP50"], abs=1e-4)
