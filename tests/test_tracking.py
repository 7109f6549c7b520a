"""SORT and ByteTrack (yolo3.tracking): identities through occlusions and crossings, id numbering, per-class
mode, bad boxes, and the line counter; all on hand-made detections whose right answer is known."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from yolo3.tracking import ByteTracker, SortTracker, TrackingError, Tracks, make_tracker
from yolo3.tracking.counting import LineCounter, parse_line

TRACKERS = [ByteTracker, SortTracker]


def box(x: float, y: float, w: float = 30, h: float = 60) -> list[float]:
    return [x, y, x + w, y + h]


def run(tracker, frames: list[list[list[float]]], scores=None, classes=None) -> list[Tracks]:
    out = []
    for i, boxes in enumerate(frames):
        n = len(boxes)
        s = np.full(n, 0.9) if scores is None else np.asarray(scores[i], float)
        c = np.zeros(n, int) if classes is None else np.asarray(classes[i], int)
        out.append(tracker.update(np.asarray(boxes, float).reshape(-1, 4), s, c))
    return out


def ids_of(tracks: Tracks) -> list[int]:
    return tracks.ids.tolist()


def occluded_walk(gap: int, before: int = 15, after: int = 10) -> list[list[list[float]]]:
    """One object walking right 4 px a frame, unseen for ``gap`` frames."""
    return [[] if before <= f < before + gap else [box(20 + 4 * f, 100)] for f in range(before + gap + after)]


@pytest.mark.parametrize("cls", TRACKERS)
def test_an_occlusion_shorter_than_the_buffer_keeps_the_id(cls):
    tracker = cls(track_buffer=10)
    tracks = run(tracker, occluded_walk(gap=8))
    assert ids_of(tracks[0]) == [1] and ids_of(tracks[14]) == [1]
    assert all(len(t) == 0 for t in tracks[15:23])
    assert {i for t in tracks[23:] for i in ids_of(t)} == {1}


@pytest.mark.parametrize("cls", TRACKERS)
def test_an_occlusion_longer_than_the_buffer_gets_a_new_id(cls):
    tracker = cls(track_buffer=10, min_hits=1)
    tracks = run(tracker, occluded_walk(gap=14))
    assert ids_of(tracks[14]) == [1]
    assert {i for t in tracks[29:] for i in ids_of(t)} == {2}


@pytest.mark.parametrize("cls", TRACKERS)
def test_the_buffer_scales_with_the_frame_rate(cls):
    """track_buffer counts 30-fps frames: at 60 fps a 14-frame gap is 7 frames of 30 fps, within 10."""
    tracks = run(cls(track_buffer=10, frame_rate=60), occluded_walk(gap=14))
    assert {i for t in tracks[29:] for i in ids_of(t)} == {1}


@pytest.mark.parametrize("cls", TRACKERS)
def test_two_objects_crossing_keep_their_ids(cls):
    """Two people walk towards each other on nearly the same line and pass through each other."""
    frames = [[box(10 + 5 * f, 100), box(400 - 5 * f, 104)] for f in range(70)]
    tracks = run(cls(), frames)
    for t in tracks[3:]:
        by_detection = dict(zip(t.detection_index.tolist(), t.ids.tolist()))
        assert by_detection == {0: 1, 1: 2}


@pytest.mark.parametrize("cls", TRACKERS)
def test_reset_and_new_instances_restart_ids_at_one(cls):
    frames = [[box(10 + 3 * f, 50), box(200, 60 + 2 * f)] for f in range(5)]
    first = cls()
    assert sorted(ids_of(run(first, frames)[-1])) == [1, 2]
    second = cls()  # a second instance shares nothing with the first
    assert sorted(ids_of(run(second, frames)[-1])) == [1, 2]
    assert sorted(ids_of(run(first, [[box(500, 500)]] * 5)[-1])) == [3]
    first.reset()
    assert first.frame_count == 0
    assert ids_of(run(first, [[box(500, 500)]] * 5)[-1]) == [1]


@pytest.mark.parametrize("cls", TRACKERS)
def test_ids_are_consecutive_and_only_confirmed_tracks_are_reported(cls):
    """A detection seen once (a false positive) never consumes an id, nor is it reported with a placeholder."""
    tracker = cls(min_hits=3)
    frames = [[box(10 + 2 * f, 10)] for f in range(6)]
    frames[4].append(box(300, 300))  # one-frame blip, after the first min_hits frames
    tracks = run(tracker, frames)
    assert all(t.ids.min() >= 1 for t in tracks if len(t))
    assert {i for t in tracks for i in ids_of(t)} == {1}
    new = run(tracker, [[box(400, 10 + 3 * f)] for f in range(4)])
    assert [ids_of(t) for t in new] == [[], [], [2], [2]]


@pytest.mark.parametrize("cls", TRACKERS)
def test_per_class_mode_never_matches_across_classes(cls):
    """The same box alternates between class 0 and class 1: per class that is two tracks, never one."""
    frames = [[box(100, 100)] for _ in range(12)]
    classes = [[f % 2] for f in range(12)]
    tracks = run(cls(per_class=True, min_hits=1), frames, classes=classes)
    for f, t in enumerate(tracks):
        assert t.class_ids.tolist() == [f % 2]
    ids_by_class = {c: {i for t, (k,) in zip(tracks, classes) if k == c for i in ids_of(t)} for c in (0, 1)}
    assert len(ids_by_class[0]) >= 1 and not ids_by_class[0] & ids_by_class[1]
    agnostic = run(cls(min_hits=1), frames, classes=classes)
    assert {i for t in agnostic for i in ids_of(t)} == {1}


@pytest.mark.parametrize("cls", TRACKERS)
def test_class_agnostic_tracks_keep_the_majority_class(cls):
    """A class flip in 1 frame of 10 neither breaks the track nor changes its class."""
    frames = [[box(50 + 2 * f, 50)] for f in range(10)]
    classes = [[3] if f != 6 else [5] for f in range(10)]
    tracks = run(cls(), frames, classes=classes)
    assert {i for t in tracks for i in ids_of(t)} == {1}
    assert {c for t in tracks for c in t.class_ids.tolist()} == {3}


@pytest.mark.parametrize("cls", TRACKERS)
def test_empty_frames_single_boxes_and_bad_boxes(cls):
    tracker = cls(min_hits=1)
    empty = tracker.update(np.zeros((0, 4)), np.zeros(0), np.zeros(0))
    assert len(empty) == 0 and empty.boxes.shape == (0, 4)
    one = tracker.update(np.array([box(10, 10)]), np.array([0.9]), np.array([2]))
    assert ids_of(one) == [1] and one.class_ids.tolist() == [2] and one.detection_index.tolist() == [0]
    np.testing.assert_allclose(one.boxes, [box(10, 10)])
    bad = np.array([[np.nan, 0, 5, 5], [20, 20, 20, 40], [30, 30, 10, 10], box(11, 10), [0, 0, np.inf, 5]])
    out = tracker.update(bad, np.array([0.9, 0.9, 0.9, 0.9, 0.9]), np.zeros(5))
    assert tracker.dropped == 4
    assert ids_of(out) == [1] and out.detection_index.tolist() == [3]
    tracker.update(np.array([box(12, 10)]), np.array([np.nan]), np.zeros(1))
    assert tracker.dropped == 5
    assert len(tracker.update(np.zeros((0, 4)))) == 0  # scores and classes may be left out


def test_bytetrack_keeps_a_track_on_low_score_detections():
    """An object whose score drops to 0.3 (partly hidden) stays tracked through ByteTrack's second matching;
    a low-score detection alone never starts a track."""
    frames = [[box(20 + 4 * f, 100), box(300, 20 + 3 * f)] for f in range(20)]
    scores = [[0.9 if not 8 <= f < 14 else 0.3, 0.3] for f in range(20)]
    tracks = run(ByteTracker(), frames, scores=scores)
    assert all(ids_of(t) == [1] and t.detection_index.tolist() == [0] for t in tracks)
    sort_tracks = run(SortTracker(new_track_thresh=0.5), frames, scores=scores)
    assert all(ids_of(t) == [1] for t in sort_tracks[3:])


def test_bad_parameters_and_mismatched_inputs_raise_tracking_errors():
    with pytest.raises(TrackingError, match="track_low_thresh"):
        ByteTracker(track_high_thresh=0.2, track_low_thresh=0.4)
    with pytest.raises(TrackingError, match="min_hits"):
        SortTracker(min_hits=0)
    with pytest.raises(TrackingError, match="unknown tracker"):
        make_tracker("deepsort")
    with pytest.raises(TrackingError, match="2 boxes, 3 scores"):
        SortTracker().update(np.zeros((2, 4)), np.zeros(3), np.zeros(2))


def test_line_counter_counts_each_track_once_per_direction():
    counter = LineCounter(parse_line("100,0,100,200"))  # vertical line, walking top -> bottom
    def frame(ids, xs, classes):
        boxes = np.array([[x - 5, 90, x + 5, 110] for x in xs], float).reshape(-1, 4)
        return Tracks(boxes, np.array(ids), np.ones(len(ids)), np.array(classes), np.arange(len(ids)))
    # track 1 (class 0) goes right across, wobbles back and forth over the line, and crosses left once
    path = [80, 95, 105, 98, 104, 120, 90, 85]
    events = [counter.update(frame([1, 2], [x, 300], [0, 1])) for x in path]
    assert [e for es in events for e in es] == [(1, 0, "out"), (1, 0, "in")]
    assert counter.counts == {(0, "out"): 1, (0, "in"): 1}
    # track 2 (class 1) starts exactly on the line, then moves left: counted when it leaves? no: it never
    # was on the other side; a line segment is finite: passing beside its end is not a crossing
    counter.update(frame([2], [150], [1]))
    counter.update(frame([2], [50], [1]))  # y = 100 within the segment: crossing right -> left
    assert counter.counts[(1, "in")] == 1
    far = LineCounter((100, 0, 100, 50))
    far.update(frame([7], [80], [0]))
    assert far.update(frame([7], [120], [0])) == []  # passes below the segment's end
    assert counter.totals() == {"in": 2, "out": 1}
    counter.reset()
    assert counter.totals() == {"in": 0, "out": 0}


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "5,5,5,5", "1,2,3,nan"])
def test_parse_line_refuses_bad_lines(text):
    with pytest.raises(TrackingError):
        parse_line(text)


def test_importing_the_tracking_package_does_not_import_tensorflow():
    code = ("import sys, yolo3.tracking, yolo3.tracking.metrics, yolo3.tracking.mot, yolo3.tracking.synthetic\n"
            "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("order", [pytest.param("import yolo3.tracking, keras", marks=pytest.mark.slow),
                                   "import yolo3.tracking, tensorflow as tf"])
def test_the_layers_register_whichever_comes_first(order):
    """yolo3/__init__.py imports TensorFlow only with Keras: its import hook registers the custom layers at the
    first import of either, and the module the user asked for is the real one (its own spec, one copy)."""
    code = (f"import sys\n{order}\nimport keras, yolo3\n"
            "registered = keras.saving.get_registered_object('yolo3>YoloHead')\n"
            "assert registered is not None and registered is yolo3.YoloHead\n"
            "assert keras.__spec__.origin.endswith('__init__.py') and sys.modules['keras'] is keras\n"
            "assert not any(type(f).__name__ == '_FirstTensorFlowImport' for f in sys.meta_path)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def _textbook_kalman(boxes, q, r, p0):
    """One box through a constant-velocity Kalman filter written out plainly (state x1, y1, x2, y2 and their
    velocities; the Joseph-form update, as ``trackers``' KalmanFilter): the predicted box before each
    measurement after the first."""
    f = np.eye(8) + np.eye(8, k=4)
    h = np.eye(4, 8)
    x = np.concatenate([boxes[0], np.zeros(4)])
    p = np.eye(8) * p0
    predicted = []
    for z in boxes[1:]:
        x, p = f @ x, f @ p @ f.T + np.eye(8) * q
        predicted.append(x[:4].copy())
        k = p @ h.T @ np.linalg.inv(h @ p @ h.T + np.eye(4) * r)
        x = x + k @ (z - h @ x)
        i_kh = np.eye(8) - k @ h
        p = i_kh @ p @ i_kh.T + k @ (np.eye(4) * r) @ k.T
    return np.array(predicted)


def test_constant_motion_noise_is_trackers_sort_filter():
    """motion_noise="constant" is trackers' SORT filter (Q = 0.01 I, R = 0.1 I, P0 = I): the bank's predictions
    equal a plainly written filter's; the default (noise scaled to the box) predicts differently."""
    from yolo3.tracking.kalman import KalmanBoxBank

    rng = np.random.default_rng(0)
    start = np.array([100.0, 50.0, 160.0, 170.0])
    boxes = start + np.arange(12)[:, None] * np.array([4.0, 1.0, 5.0, 1.5]) + rng.normal(0, 2, (12, 4))
    expected = _textbook_kalman(boxes, q=0.01, r=0.1, p0=1.0)
    for noise, equal in (("constant", True), ("scaled", False)):
        bank = KalmanBoxBank(noise)
        bank.add(boxes[:1])
        got = []
        for z in boxes[1:]:
            bank.predict()
            got.append(bank.boxes()[0])
            bank.update(np.array([0]), z[None])
        assert np.allclose(got, expected, atol=1e-6) == equal, noise
    tracker = SortTracker(motion_noise="constant")
    assert tracker.update(boxes[:1], np.array([0.9])).ids.tolist() == [1]  # the first frames report at once
    with pytest.raises(TrackingError, match="motion_noise"):
        ByteTracker(motion_noise="loud")
