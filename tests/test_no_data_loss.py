"""Category 1 of issue 14: never lose a user's file.

An output that is an input is refused up front (exit 2, nothing touched); writes are atomic; a run
that fails leaves earlier outputs exactly as they were and no temporary files. Each case drives the
real tool (the root script in a fresh process, or its ``main`` in this one) on real files and
compares every file's bytes before and after.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import RESOURCES, run_script
from test_voc import write_image, write_xml

import convert as convert_script
import eval as eval_script
import kmeans as kmeans_script
import voc_annotation
import yolo_video
from yolo3.core.files import OutputError, StagedFiles, atomic_open, atomic_path, check_output_file
from yolo3.datasets.annotations import AnnotationError
from yolo3.datasets.cleaning import prepare_annotations


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones included) -> sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def mini_model(tmp_path_factory) -> str:
    from test_detector import mini_yolo_model

    from yolo3.modeling.saving import save_model

    path = tmp_path_factory.mktemp("mini") / "mini80.keras"
    save_model(mini_yolo_model(80), str(path))
    return str(path)


def pictures(folder: Path, count: int = 2) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        path = folder / f"p{i}.jpg"
        write_image(path, (48 + 16 * i, 40))
        out.append(path)
    return out


# -- the shared pieces ----------------------------------------------------------------------------
def test_atomic_writes_keep_the_old_file_and_leave_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("earlier")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "earlier" and snapshot(tmp_path) == {"out.txt": snapshot(tmp_path)["out.txt"]}
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            Path(tmp).write_text("half")
            raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"] and target.read_text() == "earlier"
    with atomic_open(target) as f:
        f.write("new")
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"] and target.read_text() == "new"


def test_staged_files_all_or_nothing(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")
    with StagedFiles() as staged:
        Path(staged.path_for(a)).write_text("new a")
        Path(staged.path_for(b)).write_text("new b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"] and a.read_text() == "old a"
    with StagedFiles() as staged:
        Path(staged.path_for(a)).write_text("new a")
        Path(staged.path_for(b)).write_text("new b")
        staged.commit()
    assert a.read_text() == "new a" and b.read_text() == "new b" and len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize("case", ["is input", "via link", "folder", "no folder", "under a file"])
def test_check_output_file_refuses_up_front(tmp_path, case):
    source = tmp_path / "in.txt"
    source.write_text("x")
    (tmp_path / "link.txt").symlink_to(source)
    output = {"is input": source, "via link": tmp_path / "link.txt", "folder": tmp_path,
              "no folder": tmp_path / "none" / "o.txt", "under a file": source / "o.txt"}[case]
    with pytest.raises(OutputError) as info:
        check_output_file(output, "--out", [source])
    assert "\n" not in str(info.value)
    assert source.read_text() == "x"


# -- yolo_video.py ----------------------------------------------------------------------------------
@pytest.mark.slow  # minutes on 2 cores (training graphs / fresh processes); CI runs it with `make test-slow`
def test_drawn_pictures_never_replace_the_originals(mini_model, tmp_path):
    """The issue's first example, as the user ran it: --image DIR --output DIR."""
    photos = tmp_path / "photos"
    pictures(photos)
    before = snapshot(tmp_path)
    r = run_script("yolo_video.py", "--model", mini_model, "--image", str(photos), "--output", str(photos), "-q",
                   "--json", str(tmp_path / "d.json"))
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "would replace the input picture" in r.stderr, r.stderr
    assert snapshot(tmp_path) == before  # nothing written, not even the JSON


def test_detect_refusals_touch_nothing(mini_model, tmp_path, capsys):
    photos = tmp_path / "photos"
    pics = pictures(photos)
    video = tmp_path / "v.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    before = snapshot(tmp_path)
    cases = {
        "is an input of this run": ["--input", str(video), "--output", str(video)],
        "is a folder": ["--image", str(pics[0]), "--json", str(photos)],
        "--json": ["--image", str(pics[0]), "--json", mini_model],
        "would replace the input picture": ["--image", str(pics[1]), "--output", str(photos)],
        "output directory does not exist": ["--image", str(pics[0]), "--json", str(tmp_path / "no" / "d.json")],
    }
    for needle, argv in cases.items():
        assert yolo_video.main(["--model", mini_model, "-q", *argv]) == 2, needle
        assert needle in one_error_line(capsys)
        assert snapshot(tmp_path) == before, needle


def test_a_run_that_reads_no_picture_keeps_the_earlier_json(mini_model, tmp_path, capsys):
    earlier = tmp_path / "d.json"
    earlier.write_text('[{"image": "kept"}]')
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    assert yolo_video.main(["--model", mini_model, "-q", "--image", str(tmp_path / "broken.jpg"),
                            "--json", str(earlier)]) == 1
    assert "not written" in capsys.readouterr().err
    assert earlier.read_text() == '[{"image": "kept"}]'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.jpg", "d.json"]


def test_max_frames_zero_is_refused_and_no_video_claimed(mini_model, tmp_path, capsys):
    assert yolo_video.main(["--model", mini_model, "--input", "0", "--max-frames", "0",
                            "--output", str(tmp_path / "o.mp4")]) == 2
    line = one_error_line(capsys)
    assert "--max-frames" in line and "wrote" not in line and not list(tmp_path.iterdir())


# -- convert.py -------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["cfg", "weights"])
def test_convert_refuses_an_output_that_is_an_input(tmp_path, capsys, which):
    cfg = tmp_path / "m.cfg"
    shutil.copy(RESOURCES / "yolov3-tiny.cfg", cfg)
    weights = tmp_path / "m.weights"
    weights.write_bytes(np.zeros(5, np.int32).tobytes())
    before = snapshot(tmp_path)
    out = cfg if which == "cfg" else weights
    for flags in ([], ["-w"]):
        assert convert_script.main([str(cfg), str(weights), str(out), *flags]) == 2
        assert "is an input of this run" in one_error_line(capsys)
    assert snapshot(tmp_path) == before


# -- voc_annotation.py --------------------------------------------------------------------------------
def _voc(tmp_path: Path) -> Path:
    voc = tmp_path / "single"
    write_xml(voc / "Annotations" / "a.xml", "a.jpg", (64, 48), [("dog", 1, 1, 9, 9, 0), ("gnu", 1, 1, 5, 5, 0)])
    write_image(voc / "JPEGImages" / "a.jpg")
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "ImageSets" / "Main" / "train.txt").write_text("a\n")
    (voc / "ImageSets" / "Main" / "val.txt").write_text("a\n")
    return voc


def test_voc_strict_failure_leaves_the_earlier_files(tmp_path, capsys):
    voc = _voc(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.txt").write_text("earlier train\n")
    before = snapshot(tmp_path)
    assert voc_annotation.main(["--voc-root", str(voc), "--out-dir", str(out), "--strict", "--no-progress"]) == 2
    assert "no file written" in one_error_line(capsys)
    assert snapshot(tmp_path) == before  # train.txt as it was, no val.txt, no temporary file
    assert voc_annotation.main(["--voc-root", str(voc), "--out-dir", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["train.txt", "val.txt"]


def test_voc_refuses_to_write_over_its_image_set_lists(tmp_path, capsys):
    voc = _voc(tmp_path)
    before = snapshot(tmp_path)
    assert voc_annotation.main(["--voc-root", str(voc), "--out-dir", str(voc / "ImageSets" / "Main"),
                                "--no-progress"]) == 2
    assert "is an input of this run" in one_error_line(capsys)
    assert snapshot(tmp_path) == before


# -- kmeans.py, eval.py -------------------------------------------------------------------------------
@pytest.mark.parametrize("tool, argv", [
    ("kmeans", ["--annot_file", "train.txt", "--out_file", "train.txt", "--no-progress"]),
    ("kmeans", ["--annot_file", "train.txt", "--plot", "train.txt", "--no-progress"]),
    ("eval", ["--detections", "d.json", "--annotation", "train.txt", "--classes", "c.txt", "--json", "train.txt"]),
    ("eval", ["--detections", "d.json", "--annotation", "train.txt", "--classes", "c.txt", "--json", "d.json"]),
])
def test_kmeans_and_eval_refuse_to_write_over_their_inputs(tmp_path, capsys, monkeypatch, tool, argv):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.txt").write_text("a.jpg 1,1,20,20,0 3,3,40,30,0\n")
    (tmp_path / "c.txt").write_text("thing\n")
    (tmp_path / "d.json").write_text("[]")
    before = snapshot(tmp_path)
    assert {"kmeans": kmeans_script.main, "eval": eval_script.main}[tool](argv) == 2
    assert "is an input of this run" in one_error_line(capsys)
    assert snapshot(tmp_path) == before


def test_eval_unwritable_out_is_refused_before_the_work(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.txt").write_text("a.jpg 1,1,20,20,0\n")
    (tmp_path / "c.txt").write_text("thing\n")
    (tmp_path / "d.json").write_text("[]")
    (tmp_path / "file").write_text("x")
    for flag, value in (("--out", "file/reports"), ("--json", "file/m.json"), ("--json", ".")):
        assert eval_script.main(["--detections", "d.json", "--annotation", "train.txt", "--classes", "c.txt",
                                 flag, value]) == 2, (flag, value)
        assert flag in one_error_line(capsys)


# -- the clean file training reads ---------------------------------------------------------------------
def test_an_annotation_error_leaves_no_temporary_file_and_the_earlier_clean_file(tmp_path):
    (tmp_path / "img.jpg").parent.mkdir(exist_ok=True)
    write_image(tmp_path / "img.jpg")
    (tmp_path / "train.txt").write_text(f"{tmp_path / 'img.jpg'} 1,1,9,9,0\n{tmp_path / 'img.jpg'} 1,1,x,9,0\n")
    clean = tmp_path / "clean.txt"
    clean.write_text("earlier")
    before = snapshot(tmp_path)
    with pytest.raises(AnnotationError, match="train.txt:2:"):
        prepare_annotations(str(tmp_path / "train.txt"), str(clean), progress=False)
    assert snapshot(tmp_path) == before


def test_detections_json_is_written_whole(tmp_path):
    from yolo3.inference.pictures import write_detections_json

    out = tmp_path / "d.json"
    out.write_text("[]")
    with pytest.raises(TypeError):
        write_detections_json(str(out), [{"image": object()}], "native", ["a"])
    assert out.read_text() == "[]" and [p.name for p in tmp_path.iterdir()] == ["d.json"]
    write_detections_json(str(out), [{"image": "x", "detections": []}], "native", ["a"])
    assert json.loads(out.read_text()) == [{"image": "x", "detections": []}]


# -- yolo3-coco, eval.py --out -----------------------------------------------------------------------
def test_coco_converter_refuses_to_write_over_its_inputs(tmp_path, capsys):
    from yolo3.cli import coco as coco_cli

    instances = tmp_path / "instances.json"
    instances.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}))
    (tmp_path / "val.txt").write_text("x.jpg 1,1,5,5,0\n")
    (tmp_path / "c.names").write_text("a\n")
    before = snapshot(tmp_path)
    runs = [["to-annotation", str(instances), "--images-dir", str(tmp_path), "--out", str(instances)],
            ["to-annotation", str(instances), "--images-dir", str(tmp_path), "--out", str(tmp_path / "o.txt"),
             "--names", str(instances)],
            ["from-annotation", str(tmp_path / "val.txt"), "--classes", str(tmp_path / "c.names"), "--out",
             str(tmp_path / "val.txt")]]
    for argv in runs:
        assert coco_cli.main(argv) == 2, argv
        assert "is an input of this run" in one_error_line(capsys)
    assert snapshot(tmp_path) == before


def test_a_failing_report_run_leaves_the_earlier_reports(tmp_path, monkeypatch):
    """write_reports puts its five files in place together: a failure in the middle changes none."""
    from yolo3.evaluation import reports

    out = tmp_path / "reports"
    out.mkdir()
    for name in reports.REPORT_FILES:
        (out / name).write_text(f"earlier {name}")
    before = snapshot(tmp_path)

    def broken_plot(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(reports, "plot_pr_curves", broken_plot)
    result = type("R", (), {"headline": "", "coco_line": "", "source": "s", "ground_truth": [], "annotation":
                            str(tmp_path / "a.txt"), "rows": [], "class_names": ["a"], "voc": None,
                            "detections": [], "metrics": lambda self: {}})()
    with pytest.raises(OSError):
        reports.write_reports(str(out), result)
    assert snapshot(tmp_path) == before


# -- export.py, python -m yolo3.cli.onnx ---------------------------------------------------------------
def test_exporters_refuse_to_write_over_the_model(mini_model, tmp_path, capsys):
    import export as export_script
    from yolo3.cli import onnx as onnx_cli

    model = tmp_path / "m.keras"
    shutil.copy(mini_model, model)
    before = snapshot(tmp_path)
    runs = [(export_script.main, ["--model", str(model), "--format", "saved_model", "--output", str(tmp_path)]),
            (export_script.main, ["--model", str(model), "--format", "tflite", "--output", str(model)]),
            (onnx_cli.main, [str(model), str(model)])]
    for main, argv in runs:
        assert main(argv) == 2, argv
        line = one_error_line(capsys)
        assert any(n in line for n in ("is an input of this run", "holds the model", "holds no SavedModel")), line
    assert snapshot(tmp_path) == before


# -- the video writer ---------------------------------------------------------------------------------
class _FailingDetector:
    """Detects nothing, then raises ``error`` on call ``fail_at`` (a crash, or the user's Ctrl-C)."""

    class_names = ["thing"]

    def __init__(self, fail_at: int, error: BaseException):
        self.calls, self.fail_at, self.error = 0, fail_at, error

    def detect(self, images, **kwargs):
        from yolo3.core.detections import Detections

        self.calls += 1
        if self.calls >= self.fail_at:
            raise self.error
        return [Detections() for _ in images]

    def draw(self, image, det):
        return image


@pytest.mark.parametrize("error", [RuntimeError("crash"), KeyboardInterrupt()], ids=["crash", "ctrl-c"])
def test_a_failed_video_run_keeps_the_earlier_video(tmp_path, error):
    """A crash leaves the earlier output video as it was; Ctrl-C keeps the frames written (a stopped
    recording); neither leaves a temporary file."""
    from yolo3.inference.video import process_video

    source = tmp_path / "in.avi"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(6):
        writer.write(np.full((48, 64, 3), 30 * i, np.uint8))
    writer.release()
    out = tmp_path / "out.avi"
    out.write_bytes(b"earlier video")
    with pytest.raises(type(error)):
        process_video(_FailingDetector(4, error), str(source), output=str(out), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.avi", "out.avi"]
    if isinstance(error, RuntimeError):
        assert out.read_bytes() == b"earlier video"
    else:
        capture = cv2.VideoCapture(str(out))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
        capture.release()
