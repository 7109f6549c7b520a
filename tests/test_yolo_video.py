"""yolo_video.py end to end (subprocess, real files): Darknet's detections on the oracle pictures,
every kind of picture, a generated video, the prompt loop, and one-line user errors."""
from __future__ import annotations

import importlib.util
import json

import cv2
import numpy as np
import pytest
from conftest import DARKNET_IMAGES, RESOURCES, ROOT, require_shared, run_script
from PIL import Image

from yolo3.inference.pictures import write_detections_json


def _load_script():
    spec = importlib.util.spec_from_file_location("yolo_video_script", ROOT / "yolo_video.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


yolo_video = _load_script()


def match_oracle(ours: list[dict], ref: list[dict], px: float = 1.0, score: float = 0.02):
    """Greedy one-to-one matching: same class, every box corner within ``px``, score within ``score``.
    Returns (matched count, unmatched reference entries, extra detections of ours)."""
    free = list(range(len(ours)))
    missed = []
    for r in ref:
        cands = [i for i in free if ours[i]["class_id"] == r["class_id"]
                 and abs(ours[i]["score"] - r["score"]) <= score
                 and np.abs(np.subtract(ours[i]["box"], r["box"])).max() <= px]
        if cands:
            free.remove(min(cands, key=lambda i: np.abs(np.subtract(ours[i]["box"], r["box"])).max()))
        else:
            missed.append(r)
    return len(ref) - len(missed), missed, [ours[i] for i in free]


@pytest.fixture(scope="module")
def random_model_path(tmp_path_factory) -> str:
    """A small 80-class single-head YOLO with random weights (no download, quick to load) as .keras."""
    from test_detector import mini_yolo_model

    from yolo3.modeling.saving import save_model

    path = tmp_path_factory.mktemp("random") / "mini80.keras"
    save_model(mini_yolo_model(80), str(path))
    return str(path)


@pytest.mark.parametrize("oracle_name,score,min_fraction,exact,px", [
    ("darknet_yolov3_tiny.json", "0.25", 1.0, True, 0.3),  # README: all of Darknet's boxes within 0.3 px
    pytest.param("darknet_yolov3_tiny_thresh0.005.json", "0.005", 0.98, False, 1.0, marks=pytest.mark.slow),
])
def test_real_weights_give_darknets_detections(tiny_model_path, tmp_path, oracle_name, score, min_fraction, exact,
                                               px):
    oracle = json.loads(require_shared("oracle", oracle_name).read_text())
    images = [str(require_shared("darknet", "images", name)) for name in oracle["images"]]
    out = tmp_path / "detections.json"
    result = run_script("yolo_video.py", "--model", tiny_model_path, "--image", *images, "--score", score,
                        "--iou", "0.45", "--json", str(out), "--batch-size", "2")
    assert result.returncode == 0, result.stderr
    records = {r["image"]: r for r in json.loads(out.read_text())}
    matched = total = 0
    for name, ref in oracle["images"].items():
        record = records[str(DARKNET_IMAGES / name)]
        assert [record["width"], record["height"]] == oracle["image_size"][name]
        ours = record["detections"]
        for d in ours:
            assert set(d) == {"class_id", "class", "score", "box"} and len(d["box"]) == 4
        n, missed, extra = match_oracle(ours, ref, px=px)
        if exact:
            assert not missed and not extra, f"{name}: missed {missed}, extra {extra}"
        matched += n
        total += len(ref)
        assert len(extra) <= max(1, 0.02 * len(ref)), f"{name}: extra {extra}"
    assert matched >= min_fraction * total, f"matched {matched} of {total}"
    print(f"oracle {oracle_name}: matched {matched}/{total}")


@pytest.mark.slow  # minutes on 2 cores (training graphs / fresh processes); CI runs it with `make test-slow`
def test_all_kinds_of_pictures_and_a_corrupt_one(tiny_model_path, tmp_path):
    """RGBA, 16-bit, greyscale and EXIF-rotated versions of dog.jpg; a corrupt file is named and
    skipped, the rest processed, exit code 1."""
    dog = np.asarray(Image.open(require_shared("darknet", "images", "dog.jpg")).convert("RGB"))
    folder = tmp_path / "pics"
    folder.mkdir()
    Image.fromarray(dog).save(folder / "a_rgb.png")
    Image.fromarray(np.dstack([dog, np.full(dog.shape[:2], 77, np.uint8)]), "RGBA").save(folder / "b_rgba.png")
    cv2.imwrite(str(folder / "c_16bit.png"), (dog[..., ::-1].astype(np.uint16) * 257))
    Image.fromarray(dog).convert("L").save(folder / "d_grey.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated 90 degrees counter-clockwise; viewers turn it back
    Image.fromarray(np.ascontiguousarray(np.rot90(dog, 1))).save(folder / "e_exif.png", exif=exif)
    (folder / "f_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    (folder / "notes.txt").write_text("not a picture, ignored")
    out_dir, out_json = tmp_path / "drawn", tmp_path / "d.json"
    result = run_script("yolo_video.py", "--model", tiny_model_path, "--image", str(folder),
                        "--output", str(out_dir), "--json", str(out_json), "--batch-size", "3")
    assert result.returncode == 1, result.stderr
    assert "f_corrupt.jpg" in result.stderr and "Traceback" not in result.stderr
    records = {r["image"].rsplit("/", 1)[-1]: r for r in json.loads(out_json.read_text())}
    assert sorted(records) == ["a_rgb.png", "b_rgba.png", "c_16bit.png", "d_grey.png", "e_exif.png"]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(records)
    base = records["a_rgb.png"]["detections"]
    assert {d["class"] for d in base} >= {"dog", "bicycle"}
    for name in ("b_rgba.png", "c_16bit.png", "e_exif.png"):  # the same pixels once decoded
        record = records[name]
        assert (record["width"], record["height"]) == (768, 576), name
        assert [d["class_id"] for d in record["detections"]] == [d["class_id"] for d in base], name
        np.testing.assert_allclose([d["box"] for d in record["detections"]], [d["box"] for d in base], atol=1e-2)
    assert records["d_grey.png"]["detections"]  # greyscale still finds things


@pytest.mark.slow  # minutes on 2 cores (training graphs / fresh processes); CI runs it with `make test-slow`
def test_video_end_to_end(tiny_model_path, tmp_path):
    src, out, out_json = tmp_path / "in.avi", tmp_path / "out.mp4", tmp_path / "v.json"
    dog = cv2.resize(cv2.imread(str(require_shared("darknet", "images", "dog.jpg"))), (320, 240))
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 12.5, (320, 240))
    for i in range(24):
        writer.write(np.roll(dog, 4 * i, axis=1))
    writer.release()
    result = run_script("yolo_video.py", "--model", tiny_model_path, "--input", str(src), "--output", str(out),
                        "--json", str(out_json), "--batch-size", "4")  # 6 full batches
    assert result.returncode == 0, result.stderr
    assert "24 frame(s) of 320x240" in result.stderr and "frames/s" in result.stderr
    capture = cv2.VideoCapture(str(out))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 24
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12.5)
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (320, 240)
    ok, frame = capture.read()
    capture.release()
    assert ok and frame.shape == (240, 320, 3)
    records = json.loads(out_json.read_text())
    assert [r["image"] for r in records] == list(range(24))
    assert all(r["width"] == 320 and r["height"] == 240 for r in records)
    assert any(d["class"] == "dog" for d in records[0]["detections"])  # RGB frames, not BGR


class _RecordingDetector:
    """Stands in for a Detector in the video loop: keeps the frames it is given, detects nothing."""

    class_names = ["thing"]
    copies = True

    def __init__(self):
        self.frames = []

    def detect(self, images, **kwargs):
        from yolo3.core.detections import Detections

        self.frames.extend(np.array(image) if self.copies else image for image in images)
        empty = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
        return [empty for _ in images]


def test_video_frames_reach_the_model_as_rgb(tmp_path):
    """A video whose left half is red and right half blue (written by OpenCV, so BGR on disk): the
    frames the detector gets have red on the left in channel 0 (a loop feeding BGR fails)."""
    from yolo3.inference.video import process_video

    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :32] = (0, 0, 230)  # BGR red
    frame[:, 32:] = (230, 0, 0)  # BGR blue
    src = tmp_path / "colours.avi"
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(3):
        writer.write(frame)
    writer.release()
    detector = _RecordingDetector()
    process_video(detector, str(src), batch_size=2, progress=False, draw=False)
    assert len(detector.frames) == 3
    for rgb in detector.frames:
        left, right = rgb[8:40, 4:28].mean(axis=(0, 1)), rgb[8:40, 36:60].mean(axis=(0, 1))
        assert left[0] > 180 and left[2] < 50, left    # red where the red was
        assert right[2] > 180 and right[0] < 50, right  # blue where the blue was


class _ReferenceKeepingDetector(_RecordingDetector):
    """Keeps the frames it is given themselves (no copies), and draws by copying, as Detector.draw does."""

    copies = False

    def draw(self, image, detections):
        return image.copy()


def test_video_loop_frames_are_their_own_and_written_in_their_colours(tmp_path):
    """The reader decodes into one reused buffer and the writer converts its drawn copy to BGR in place:
    every frame the detector got must still hold its own picture after the loop (a frame aliasing the
    decode buffer would hold the last one), and the written video must keep the source's colours."""
    from yolo3.inference.video import process_video

    src, out = tmp_path / "levels.avi", tmp_path / "out.avi"
    levels = [20, 70, 120, 170, 220]
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for level in levels:
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[:, :32] = (0, 0, level)  # BGR: red on the left, its brightness the frame's number
        frame[:, 32:] = (230, 0, 0)  # blue on the right
        writer.write(frame)
    writer.release()
    detector = _ReferenceKeepingDetector()
    process_video(detector, str(src), output=str(out), batch_size=2, progress=False)
    assert len(detector.frames) == len(levels)
    for rgb, level in zip(detector.frames, levels):
        assert abs(rgb[8:40, 4:28, 0].mean() - level) < 12, (rgb[8:40, 4:28].mean(axis=(0, 1)), level)
    capture = cv2.VideoCapture(str(out))
    for level in levels:
        ok, bgr = capture.read()
        assert ok
        left, right = bgr[8:40, 4:28].mean(axis=(0, 1)), bgr[8:40, 36:60].mean(axis=(0, 1))
        assert abs(left[2] - level) < 12 and left[0] < 50, (left, level)  # red stays red, in BGR on disk
        assert right[0] > 180 and right[2] < 50, right
    capture.release()


@pytest.mark.slow  # minutes on 2 cores (training graphs / fresh processes); CI runs it with `make test-slow`
def test_prompt_loop_like_keras_yolo3(random_model_path, tmp_path):
    dog = str(require_shared("darknet", "images", "dog.jpg"))
    result = run_script("yolo_video.py", "--model", random_model_path, "--image", "--output", str(tmp_path),
                        "--score", "0.2", input=f"{dog}\n{tmp_path / 'missing.jpg'}\n\n")
    assert result.returncode == 0, result.stderr
    assert "Open Error! Try again!" in result.stdout and "missing.jpg" in result.stdout
    assert f"{dog}: " in result.stdout and (tmp_path / "dog.jpg").exists()


@pytest.mark.slow  # minutes on 2 cores (training graphs / fresh processes); CI runs it with `make test-slow`
def test_class_count_mismatch_is_one_line_exit_2(random_model_path):
    result = run_script("yolo_video.py", "--model", random_model_path, "--classes",
                        str(RESOURCES / "voc_classes.txt"), "--image", "x.jpg")
    assert result.returncode == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "20" in lines[0] and "80" in lines[0], result.stderr


def _run_main(argv, capsys):
    code = yolo_video.main(argv)
    err = capsys.readouterr().err
    return code, [ln for ln in err.splitlines() if ln.strip()]


def test_user_errors_exit_2_with_one_line(random_model_path, tmp_path, capsys):
    (tmp_path / "garbage.mp4").write_bytes(b"\x00" * 100)
    (tmp_path / "anchors.txt").write_text("10,13, 16,30, 33,23, 30,61, 62,45, 59,119\n")
    cases = {
        "nothing to do": [],
        "model file not found": ["--model", str(tmp_path / "none.keras"), "--image", "a.jpg"],
        "classes file not found": ["--model", random_model_path, "--classes", str(tmp_path / "c.txt"), "--image"],
        "anchors file not found": ["--model", random_model_path, "--anchors", str(tmp_path / "a.txt"), "--image"],
        "multiple of 32": ["--model", random_model_path, "--size", "300", "--image"],
        "differ from the model": ["--model", random_model_path, "--anchors", str(tmp_path / "anchors.txt"),
                                  "--image"],
        "video file not found": ["--model", random_model_path, "--input", str(tmp_path / "none.mp4")],
        "cannot open video": ["--model", random_model_path, "--input", str(tmp_path / "garbage.mp4")],
        "unsupported video output": ["--model", random_model_path, "--input", "0", "--output", "o.xyz"],
        "either --image or --input": ["--model", random_model_path, "--input", "0", "--image"],
    }
    for needle, argv in cases.items():
        code, lines = _run_main(argv, capsys)
        assert code == 2, (needle, lines)
        assert len(lines) == 1 and needle in lines[0], (needle, lines)


def test_json_coco_format(tmp_path):
    names = [ln.strip() for ln in (RESOURCES / "coco_classes.txt").read_text().splitlines() if ln.strip()]
    records = [{"image": "/x/000000000139.jpg", "width": 10, "height": 10,
                "detections": [{"class_id": 16, "class": "dog", "score": 0.5, "box": [1.0, 2.0, 4.0, 8.0]}]},
               {"image": "/x/000000000285.jpg", "width": 10, "height": 10, "detections": []}]
    write_detections_json(str(tmp_path / "c.json"), records, "coco", names)
    assert json.loads((tmp_path / "c.json").read_text()) == [
        {"image_id": 139, "category_id": 18, "bbox": [1.0, 2.0, 3.0, 6.0], "score": 0.5}]
    records[0]["image"] = "/x/dog.jpg"
    write_detections_json(str(tmp_path / "c.json"), records, "coco", names)
    assert json.loads((tmp_path / "c.json").read_text())[0]["image_id"] == 1  # no number in the name


def test_webcam_index_opens_as_int_and_codecs():
    from yolo3.inference.video import fourcc_for, parse_source

    assert parse_source("0") == 0 and parse_source(" 2 ") == 2
    assert parse_source("rtsp://host/stream") == "rtsp://host/stream" and parse_source("v.mp4") == "v.mp4"
    assert fourcc_for("a.MP4") == "mp4v" and fourcc_for("b.avi") == "MJPG"


@pytest.mark.slow  # minutes on 2 cores (training graphs / fresh processes); CI runs it with `make test-slow`
def test_help_lists_original_flags():
    result = run_script("yolo_video.py", "--help", timeout=60)
    assert result.returncode == 0
    for flag in ("--model_path", "--anchors_path", "--classes_path", "--gpu_num", "--image", "--input",
                 "--output", "--score", "--iou", "--size", "--batch-size", "--json", "--json-format",
                 "--show", "--backend"):
        assert flag in result.stdout, flag
