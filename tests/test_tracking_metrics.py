"""MOTChallenge files and the tracking metrics (yolo3.tracking.mot, .metrics, .evaluate): round trips,
file:line errors, hand-worked metric values, and TrackEval itself as the reference where it is installed."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from yolo3.tracking import SortTracker, Tracks
from yolo3.tracking.association import iou_xyxy
from yolo3.tracking.evaluate import evaluate_paths, main
from yolo3.tracking.metrics import combine, evaluate_sequence, prepare_sequence, summary
from yolo3.tracking.mot import MotFormatError, MotRows, iter_frames, mot_lines, read_mot, sequence_files, write_mot
from yolo3.tracking.synthetic import generate, render, write_sequence


def rows(entries: list[tuple[int, int, list[float]]]) -> MotRows:
    """(frame, id, xyxy) entries -> MotRows with score 1, class 0."""
    return MotRows(frames=np.array([e[0] for e in entries], np.int64), ids=np.array([e[1] for e in entries], np.int64),
                   boxes=np.array([e[2] for e in entries], float).reshape(-1, 4), scores=np.ones(len(entries)),
                   classes=np.zeros(len(entries), np.int64))


def test_mot_files_round_trip(tmp_path):
    tracks = Tracks(boxes=np.array([[10.0, 20.0, 40.5, 80.25], [100, 100, 150, 300]]), ids=np.array([1, 7]),
                    scores=np.array([0.9, 0.4567]), class_ids=np.array([0, 2]), detection_index=np.array([1, 0]))
    path = tmp_path / "seq.txt"
    write_mot(str(path), mot_lines(3, tracks) + mot_lines(5, tracks))
    assert path.read_text().splitlines()[0] == "3,1,10.00,20.00,30.50,60.25,0.9000,-1,-1,-1"
    back = read_mot(str(path), "tracks")
    assert back.frames.tolist() == [3, 3, 5, 5] and back.ids.tolist() == [1, 7, 1, 7]
    np.testing.assert_allclose(back.boxes[:2], tracks.boxes)
    np.testing.assert_allclose(back.scores[:2], [0.9, 0.4567])
    frames = dict(iter_frames(back))
    assert sorted(frames) == [1, 2, 3, 4, 5] and len(frames[1]) == 0 and frames[5].tolist() == [2, 3]
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_detection_files_read_classes_and_ignore_extra_columns(tmp_path):
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,10,5,8,0.9\n\n2, -1, 1, 2, 3, 4, 0.5, 3, 7, 8, 9\n2,-1,1,2,3,4,0.5,-1\n")
    det = read_mot(str(path))
    assert det.frames.tolist() == [1, 2, 2] and det.classes.tolist() == [0, 3, 0]
    np.testing.assert_allclose(det.boxes[1], [1, 2, 4, 6])


@pytest.mark.parametrize("line, what", [
    ("1,-1,10,10,5,8", "6 column(s), need at least 7"),
    ("0,-1,10,10,5,8,0.9", "frame must be an integer >= 1"),
    ("1.5,-1,10,10,5,8,0.9", "frame must be an integer >= 1"),
    ("1,-1,ten,10,5,8,0.9", "not numbers"),
    ("1,-1,10,10,-5,8,0.9", "negative width"),
    ("1,-1,10,10,5,8,nan", "box or score is not finite"),
])
def test_a_malformed_line_is_reported_with_file_and_line(tmp_path, line, what):
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,10,5,8,0.9\n" + line + "\n")
    with pytest.raises(MotFormatError, match=re.escape(f"det.txt:2: {what}")):
        read_mot(str(path))


def test_sequence_files_reads_files_folders_and_the_motchallenge_layout(tmp_path):
    seq = generate("basic", seed=3, frames=20)
    write_sequence(str(tmp_path / "mot"), "A", seq)
    write_sequence(str(tmp_path / "mot"), "B", seq)
    assert sorted(sequence_files(str(tmp_path / "mot"), "gt")) == ["A", "B"]
    assert sequence_files(str(tmp_path / "mot"))["A"].endswith("A/det/det.txt")
    with pytest.raises(MotFormatError, match="no such file"):
        sequence_files(str(tmp_path / "nothing"))
    back = read_mot(sequence_files(str(tmp_path / "mot"), "gt")["A"], "gt")
    assert len(back) == len(seq.gt) and back.classes.tolist() == seq.gt.classes.tolist()


def test_hand_worked_id_switch():
    """One object seen 4 frames; the tracker gives it id 1 for two frames, then id 2.

    CLEAR: TP 4, IDSW 1 -> MOTA (4 - 0 - 1) / 4 = 0.75, MT 1. Identity: gt 1 <-> track 1 -> IDTP 2,
    IDFN 2, IDFP 2 -> IDF1 0.5. HOTA: every alpha matches (IoU 1) -> DetA 1; each match's association
    is 2 / (2 + 2 + 0) = 0.5 -> AssA 0.5, HOTA sqrt(0.5)."""
    b = [0, 0, 10, 10]
    gt = rows([(f, 1, b) for f in range(1, 5)])
    tr = rows([(1, 1, b), (2, 1, b), (3, 2, b), (4, 2, b)])
    m = summary(evaluate_sequence(gt, tr))
    assert m["MOTA"] == pytest.approx(0.75) and m["IDSW"] == 1 and m["MT"] == 1 and m["ML"] == 0
    assert m["IDF1"] == pytest.approx(0.5) and m["MOTP"] == pytest.approx(1.0)
    assert m["DetA"] == pytest.approx(1.0) and m["AssA"] == pytest.approx(0.5)
    assert m["HOTA"] == pytest.approx(math.sqrt(0.5))


def test_hand_worked_localisation():
    """The track covers half the object (IoU 0.5): a match for the 10 alphas 0.05..0.50 of 19 only.

    DetA = AssA = HOTA = 10/19; LocA = (10 x 0.5 + 9 x 1) / 19 (TrackEval counts 1 where nothing
    matched); CLEAR matches at IoU >= 0.5: MOTA 1, MOTP 0.5, IDF1 1."""
    gt = rows([(1, 1, [0, 0, 10, 10]), (2, 1, [0, 0, 10, 10])])
    tr = rows([(1, 5, [0, 0, 10, 5]), (2, 5, [0, 0, 10, 5])])
    m = summary(evaluate_sequence(gt, tr))
    assert m["DetA"] == pytest.approx(10 / 19) and m["AssA"] == pytest.approx(10 / 19)
    assert m["HOTA"] == pytest.approx(10 / 19) and m["LocA"] == pytest.approx(14 / 19)
    assert m["MOTA"] == pytest.approx(1.0) and m["MOTP"] == pytest.approx(0.5) and m["IDF1"] == pytest.approx(1.0)


def test_hand_worked_misses_false_positives_and_mostly_lost():
    """Two objects over 5 frames: A tracked throughout, B never; one false positive in frame 3.

    TP 5, FN 5, FP 1 -> MOTA (5 - 1) / 10 = 0.4; MT 1 (A), ML 1 (B); DetA 5 / 11 at every alpha."""
    gt = rows([(f, 1, [0, 0, 10, 10]) for f in range(1, 6)] + [(f, 2, [50, 50, 60, 60]) for f in range(1, 6)])
    tr = rows([(f, 9, [0, 0, 10, 10]) for f in range(1, 6)] + [(3, 4, [200, 200, 210, 210])])
    m = summary(evaluate_sequence(gt, tr))
    assert (m["FP"], m["FN"], m["MT"], m["ML"], m["IDSW"]) == (1, 5, 1, 1, 0)
    assert m["MOTA"] == pytest.approx(0.4) and m["DetA"] == pytest.approx(5 / 11)


def test_ignored_ground_truth_and_its_tracker_box_are_left_out():
    """A gt row flagged 0 is not evaluated, and the tracker box on it is neither a match nor a false positive."""
    gt = rows([(1, 1, [0, 0, 10, 10]), (1, 2, [50, 50, 60, 60])])
    gt.scores[1] = 0
    tr = rows([(1, 1, [0, 0, 10, 10]), (1, 2, [50, 50, 60, 60])])
    m = summary(evaluate_sequence(gt, tr))
    assert (m["FP"], m["FN"], m["MOTA"], m["HOTA"]) == (0, 0, 1.0, pytest.approx(1.0))


def test_empty_tracks_and_empty_ground_truth():
    gt = rows([(1, 1, [0, 0, 10, 10])])
    assert summary(evaluate_sequence(gt, rows([])))["FN"] == 1
    m = summary(evaluate_sequence(rows([]), gt))
    assert m["FP"] == 1 and m["HOTA"] == 0.0


def _trackeval_reference(data):
    metrics = pytest.importorskip("trackeval.metrics", reason="TrackEval is not installed (pip install --no-deps "
                                  "trackeval: an independent reference, optional)")
    te = {"gt_ids": data.gt_ids, "tracker_ids": data.tracker_ids, "similarity_scores": data.similarity,
          "num_gt_ids": data.num_gt_ids, "num_tracker_ids": data.num_tracker_ids, "num_gt_dets": data.num_gt_dets,
          "num_tracker_dets": data.num_tracker_dets, "num_timesteps": len(data.gt_ids)}
    cfg = {"PRINT_CONFIG": False}
    return (metrics.HOTA(cfg), metrics.CLEAR(cfg), metrics.Identity(cfg)), te


def test_metrics_equal_trackeval_on_synthetic_sequences():
    """Our HOTA, DetA, AssA, LocA, MOTA, MOTP, IDF1, IDSW, MT, ML, Frag equal TrackEval's to 1e-9, per
    sequence and combined, on noisy tracks (synthetic detections given ids by a plain SORT)."""
    ours_raw, theirs = [], {"h": {}, "c": {}, "i": {}}
    worst = 0.0
    for seed, preset in enumerate(("basic", "crossing", "occlusion")):
        seq = generate(preset, seed=seed, frames=60)
        tracker, entries = SortTracker(min_hits=1), []
        for frame, idx in iter_frames(seq.det, seq.num_frames):
            out = tracker.update(seq.det.boxes[idx], seq.det.scores[idx], seq.det.classes[idx])
            entries += [(frame, i, b) for i, b in zip(out.ids.tolist(), out.boxes.tolist())]
        tracks = rows(entries)
        data = prepare_sequence(seq.gt, tracks, seq.num_frames)
        (hota, clear, ident), te = _trackeval_reference(data)
        h, c, i = hota.eval_sequence(te), clear.eval_sequence(te), ident.eval_sequence(te)
        theirs["h"][seed], theirs["c"][seed], theirs["i"][seed] = h, c, i
        ours_raw.append(evaluate_sequence(seq.gt, tracks, seq.num_frames))
        worst = max(worst, _worst_difference(summary(ours_raw[-1]), h, c, i))
    combined = (hota.combine_sequences(theirs["h"]), clear.combine_sequences(theirs["c"]),
                ident.combine_sequences(theirs["i"]))
    worst = max(worst, _worst_difference(summary(combine(ours_raw)), *combined))
    assert worst < 1e-9


def _worst_difference(ours: dict, h: dict, c: dict, i: dict) -> float:
    ref = {"HOTA": h["HOTA"].mean(), "DetA": h["DetA"].mean(), "AssA": h["AssA"].mean(), "LocA": h["LocA"].mean(),
           "MOTA": c["MOTA"], "MOTP": c["MOTP"], "IDF1": i["IDF1"], "IDSW": c["IDSW"], "MT": c["MT"],
           "ML": c["ML"], "Frag": c["Frag"], "FP": c["CLR_FP"], "FN": c["CLR_FN"]}
    return max(abs(float(ours[k]) - float(v)) for k, v in ref.items())


def test_evaluate_command_on_folders(tmp_path, capsys):
    for name, seed in (("S1", 1), ("S2", 2)):
        seq = generate("basic", seed=seed, frames=30)
        write_sequence(str(tmp_path / "gt"), name, seq)
        (tmp_path / "tracks").mkdir(exist_ok=True)
        gt_lines = (tmp_path / "gt" / name / "gt" / "gt.txt").read_text().splitlines()
        (tmp_path / "tracks" / f"{name}.txt").write_text("".join(",".join(line.split(",")[:6]) + ",1,-1,-1,-1\n"
                                                                 for line in gt_lines))
    results = evaluate_paths(str(tmp_path / "gt"), str(tmp_path / "tracks"))
    assert set(results) == {"S1", "S2", "COMBINED"}
    assert results["COMBINED"]["HOTA"] == pytest.approx(1.0) and results["S1"]["MOTA"] == pytest.approx(1.0)
    assert main(["--gt", str(tmp_path / "gt"), "--tracks", str(tmp_path / "tracks")]) == 0
    table = capsys.readouterr().out
    assert "COMBINED" in table and "100.00" in table
    out = tmp_path / "scores.json"
    assert main(["--gt", str(tmp_path / "gt"), "--tracks", str(tmp_path / "tracks"), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["COMBINED"]["HOTA"] == pytest.approx(1.0)
    before = (tmp_path / "tracks" / "S1.txt").read_text()
    assert main(["--gt", str(tmp_path / "gt"), "--tracks", str(tmp_path / "tracks"), "--json",
                 str(tmp_path / "tracks" / "S1.txt")]) == 2
    assert (tmp_path / "tracks" / "S1.txt").read_text() == before
    (tmp_path / "tracks" / "S2.txt").unlink()
    assert main(["--gt", str(tmp_path / "gt"), "--tracks", str(tmp_path / "tracks")]) == 2
    assert "no tracks for sequence(s) S2" in capsys.readouterr().err


def test_the_synthetic_generator_is_seeded_and_its_presets_look_as_documented():
    a, b, c = generate("occlusion", seed=7, frames=120), generate("occlusion", seed=7, frames=120), \
        generate("occlusion", seed=8, frames=120)
    np.testing.assert_array_equal(a.det.boxes, b.det.boxes)
    assert len(a.det) != len(c.det) or not np.array_equal(a.det.boxes, c.det.boxes)
    per_frame = {p: len(generate(p, seed=1, frames=150).gt) / 150 for p in ("basic", "crowd")}
    assert 7 <= per_frame["basic"] <= 13 and 35 <= per_frame["crowd"] <= 55
    assert set(a.gt.classes.tolist()) == {0, 1} and (a.visibility < 0.2).any()
    # the detector misses hidden objects far more often than visible ones
    found = np.zeros(len(a.gt), bool)
    for frame, g in iter_frames(a.gt, a.num_frames):
        d = a.det.frames == frame
        if d.any() and len(g):
            found[g] = iou_xyxy(a.gt.boxes[g], a.det.boxes[d]).max(axis=1) >= 0.5
    assert found[a.visibility > 0.9].mean() > 0.85 > 0.3 > found[a.visibility < 0.1].mean()


def test_render_draws_each_object_in_its_class_colour():
    seq = generate("basic", seed=2, frames=5)
    image = render(seq, 3)
    assert image.shape == (720, 1280, 3) and image.dtype == np.uint8
    rows = np.flatnonzero(seq.gt.frames == 3)
    nearest = rows[np.argmax(seq.gt.boxes[rows, 3])]  # drawn last: nothing covers its centre
    x1, y1, x2, y2 = seq.gt.boxes[nearest]
    colour = image[int((y1 + y2) / 2), int((x1 + x2) / 2)]
    assert colour.tolist() == ([214, 96, 77] if seq.gt.classes[nearest] == 0 else [67, 147, 195])


def _frozen_fixture() -> tuple[MotRows, MotRows]:
    """Three objects over 12 frames; the tracks jitter by a few pixels, object 2 changes id at frame 6,
    object 3 is missed in frames 4-6 and a false positive shows in frames 2 and 9."""
    gt, tr = [], []
    for f in range(1, 13):
        for k in (1, 2, 3):
            x, y = 20 * k + 6 * f, 15 * k + (2 * f if k == 2 else 0)
            box = [x, y, x + 20 + 2 * k, y + 40]
            gt.append((f, k, box))
            if k == 3 and 4 <= f <= 6:
                continue
            d = ((f * 7 + k * 3) % 5) - 2
            tr.append((f, 30 if k == 2 and f >= 6 else 20 + k, [box[0] + d, box[1] - d, box[2] + 2 * d, box[3]]))
        if f in (2, 9):
            tr.append((f, 40, [300, 300, 330, 360]))
    return rows(gt), rows(tr)


def test_metrics_equal_trackevals_numbers_frozen_on_a_fixture():
    """TrackEval 1.3.0's own output on this fixture (computed once with trackeval.metrics HOTA, CLEAR and
    Identity; kept here so the check runs where TrackEval is not installed)."""
    trackeval = {"HOTA": 0.6663622422464274, "DetA": 0.7133398048620363, "AssA": 0.6225909435003065,
                 "LocA": 0.8645419522556248, "MOTA": 0.8333333333333334, "MOTP": 0.8378280680048864,
                 "IDF1": 0.7887323943661971, "IDSW": 1, "MT": 2, "PT": 1, "ML": 0, "Frag": 1}
    ours = summary(evaluate_sequence(*_frozen_fixture()))
    for key, value in trackeval.items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key
