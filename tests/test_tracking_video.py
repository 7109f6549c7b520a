"""Tracking in the video loop (yolo3.inference.tracking_video, yolo_video.py --track): ids drawn and in the
JSON records, MOTChallenge output, counting lines, ids restarting per video, folders of frames; the
tracker's own correctness is tested on synthetic detections in test_tracking.py."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import run_script

from yolo3.core.detections import Detections
from yolo3.inference.tracking_video import VideoTracking, id_color, track_video
from yolo3.tracking import ByteTracker, SortTracker
from yolo3.tracking.mot import read_mot

SIZE = (160, 120)  # width, height


def write_video(path, frames: int = 20, fps: float = 10.0) -> None:
    """A grey video with a white square moving right 6 px a frame (its box: x 10+6f .. 30+6f, y 40..60)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, SIZE)
    for f in range(frames):
        frame = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
        cv2.rectangle(frame, (10 + 6 * f, 40), (30 + 6 * f, 60), (255, 255, 255), -1)
        writer.write(frame)
    writer.release()


class SquareFinder:
    """A stand-in detector: finds white pixels; the box of them, score 0.9, class 1 ("square")."""

    class_names = ["background", "square"]

    def detect(self, images, **kwargs):
        out = []
        for image in images:
            ys, xs = np.nonzero(image.min(axis=2) > 200)
            if len(xs):
                box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
                out.append(Detections(box, np.array([0.9], np.float32), np.array([1])))
            else:
                out.append(Detections())
        return out


def test_track_video_draws_ids_writes_records_and_mot_and_counts(tmp_path):
    src, out = tmp_path / "in.avi", tmp_path / "out.avi"
    write_video(src)
    tracking = VideoTracking(SortTracker(min_hits=1), trails=5, lines=[(80, 0, 80, 120)])
    records: list = []
    stats = track_video(SquareFinder(), str(src), tracking, output=str(out), records=records, progress=False)
    assert stats.frames == 20
    assert all(len(r["detections"]) == 1 and r["detections"][0]["track_id"] == 1 for r in records)
    assert tracking.counters[0].counts == {(1, "in"): 1} or tracking.counters[0].counts == {(1, "out"): 1}
    assert tracking.count_lines(SquareFinder.class_names)[0].startswith("line 1 (80,0,80,120) square: in")
    mot = [line.split(",") for line in tracking.mot]
    assert [int(m[0]) for m in mot] == list(range(1, 21)) and {m[1] for m in mot} == {"1"}
    capture = cv2.VideoCapture(str(out))
    frames = [capture.read()[1] for _ in range(20)]
    capture.release()
    color = np.array(id_color(1)[::-1], float)  # BGR in the file
    last = frames[-1].reshape(-1, 3).astype(float)
    assert (np.abs(last - color).sum(axis=1) < 60).sum() > 30  # the id's colour is drawn (box, trail)
    second: list = []
    track_video(SquareFinder(), str(src), tracking, records=second, progress=False)
    assert second[0]["detections"][0]["track_id"] == 1  # a new video restarts ids at 1
    assert tracking.mot[0].startswith("1,1,")


def test_low_score_detections_reach_records_only_through_a_track(tmp_path):
    src = tmp_path / "in.avi"
    write_video(src, frames=10)

    class Fading(SquareFinder):
        def detect(self, images, **kwargs):
            dets = super().detect(images)
            self.calls = getattr(self, "calls", 0) + 1
            extra = np.array([[100, 5, 120, 25]], np.float32)  # a lone low-score box: never a track
            return [Detections(np.concatenate([d.boxes, extra]),
                               np.array([0.9 if self.calls < 6 else 0.3, 0.2], np.float32), np.array([1, 1]))
                    for d in dets]

    tracking = VideoTracking(ByteTracker(), min_score=0.5)
    records: list = []
    track_video(Fading(), str(src), tracking, records=records, progress=False)
    assert [len(r["detections"]) for r in records] == [1] * 10
    assert [r["detections"][0]["track_id"] for r in records] == [1] * 10  # kept by ByteTrack's second stage


def test_a_folder_of_frames_is_read_in_name_order(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for f in range(6):
        frame = np.full((SIZE[1], SIZE[0], 3), 90, np.uint8)
        cv2.rectangle(frame, (10 + 6 * f, 40), (30 + 6 * f, 60), (255, 255, 255), -1)
        cv2.imwrite(str(folder / f"frame_{f:03d}.png"), frame)
    (folder / "notes.txt").write_text("not a frame")
    tracking = VideoTracking(SortTracker(min_hits=1))
    records: list = []
    stats = track_video(SquareFinder(), str(folder), tracking, records=records, progress=False)
    assert stats.frames == 6
    xs = [r["detections"][0]["box"][0] for r in records]
    assert xs == sorted(xs) and xs[0] == pytest.approx(10)


@pytest.fixture(scope="module")
def random_model_path(tmp_path_factory) -> str:
    from test_detector import mini_yolo_model

    from yolo3.modeling.saving import save_model

    path = tmp_path_factory.mktemp("random") / "mini80.keras"
    save_model(mini_yolo_model(80), str(path))
    return str(path)


def test_yolo_video_track_end_to_end(random_model_path, tmp_path):
    """yolo_video.py --track --mot-out --json --output --trails --count-line on a generated video: the real
    script with a random model (a smoke test of the whole path, not of tracking quality)."""
    src, out, mot, js = tmp_path / "in.avi", tmp_path / "out.avi", tmp_path / "tracks.txt", tmp_path / "d.json"
    write_video(src, frames=12)
    result = run_script("yolo_video.py", "--model", random_model_path, "--input", str(src), "--output", str(out),
                        "--json", str(js), "--track", "bytetrack", "--mot-out", str(mot), "--trails", "8",
                        "--count-line", "80,0,80,120", "--score", "0.1", "--track-high-thresh", "0.1",
                        "--track-low-thresh", "0.05", "--new-track-thresh", "0.1", "--batch-size", "4", "-q")
    assert result.returncode == 0, result.stderr
    assert "12 frame(s) of 160x120" in result.stderr and "track(s) with bytetrack; wrote" in result.stderr
    assert "line 1 (80,0,80,120)" in result.stderr
    records = json.loads(js.read_text())
    assert len(records) == 12 and all("track_id" in d for r in records for d in r["detections"])
    tracked = [d for r in records for d in r["detections"] if d["track_id"] is not None]
    rows = read_mot(str(mot), "tracks")
    assert len(rows) == len(tracked) and (rows.frames >= 1).all() and (rows.frames <= 12).all()
    assert len(rows) and rows.ids.min() == 1
    assert all(d["score"] > 0.1 for r in records for d in r["detections"] if d["track_id"] is None)


@pytest.mark.parametrize("args, message", [
    (["--trails", "4"], "--trails needs --track"),
    (["--track", "sort", "--count-line", "1,2,3"], "--count-line: a counting line is x1,y1,x2,y2"),
    (["--track", "sort", "--track-buffer", "-1"], "argument --track-buffer: expected an integer >= 0, got -1"),
    (["--track", "bytetrack", "--mot-out", "/no/such/folder/t.txt"], "folder for --mot-out does not exist"),
])
def test_yolo_video_tracking_flags_are_checked_before_the_model_loads(tmp_path, capsys, args, message):
    from yolo3.cli.detect import main

    src, model = tmp_path / "in.avi", tmp_path / "model.keras"
    write_video(src, frames=2)
    model.write_bytes(b"not loaded: the options fail first")
    assert main(["--model", str(model), "--input", str(src), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


class ColourBoxes:
    """A stand-in detector for rendered synthetic frames: each connected blob of a class colour is a box."""

    class_names = ["person", "car"]
    colours = ([214, 96, 77], [67, 147, 195])

    def detect(self, images, **kwargs):
        out = []
        for image in images:
            boxes, classes = [], []
            for klass, colour in enumerate(self.colours):
                mask = (np.abs(image.astype(int) - colour).sum(axis=2) < 30).astype(np.uint8)
                count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
                for x, y, w, h, area in stats[1:count]:
                    if area >= 30:
                        boxes.append([x - 2, y - 2, x + w + 2, y + h + 2])  # the 2-pixel outline
                        classes.append(klass)
            out.append(Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32),
                                  np.array(classes, np.int64)))
        return out


def test_rendered_video_to_detector_to_tracker_to_mot_to_metrics(tmp_path):
    """The whole path on a rendered synthetic sequence: video file -> detector -> ByteTrack -> MOTChallenge
    file -> HOTA against the sequence's ground truth (a colour-blob detector stands in for a trained one)."""
    from yolo3.tracking.evaluate import evaluate_paths
    from yolo3.tracking.mot import write_mot
    from yolo3.tracking.synthetic import generate, render, write_sequence

    seq = generate("basic", seed=3, frames=40)
    write_sequence(str(tmp_path / "mot"), "S", seq)
    video = tmp_path / "S.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (1280, 720))
    for frame in range(1, 41):
        writer.write(cv2.cvtColor(render(seq, frame), cv2.COLOR_RGB2BGR))
    writer.release()
    tracking = VideoTracking(ByteTracker())
    stats = track_video(ColourBoxes(), str(video), tracking, progress=False)
    assert stats.frames == 40
    (tmp_path / "tracks").mkdir()
    write_mot(str(tmp_path / "tracks" / "S.txt"), tracking.mot)
    scores = evaluate_paths(str(tmp_path / "mot"), str(tmp_path / "tracks"))["S"]
    assert scores["HOTA"] > 0.9 and scores["IDSW"] == 0, scores  # 0.977 and 0 when written
