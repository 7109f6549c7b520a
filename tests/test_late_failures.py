"""Category 2 of issue 14: failures found before the long work, not hours into it.

Every image is decoded once up front with the decoder the run uses (training: ``tf.io.decode_image``
through ``yolo3.training.pipeline.load_image``; evaluation: ``read_image_rgb``), in parallel, cached by
path/size/mtime; output destinations are checked for writability before any model is loaded.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

import eval as eval_script
import export as export_script
import kmeans as kmeans_script
import yolo_video
from yolo3.datasets.decode_check import UndecodableImagesError, check_decodable, find_undecodable
from yolo3.datasets.imageio import read_image_rgb
from yolo3.training.pipeline import load_image


def make_images(folder: Path) -> dict[str, Path]:
    """A good JPEG, the same JPEG cut in half, and a PPM (PIL opens it, TensorFlow does not)."""
    folder.mkdir(parents=True, exist_ok=True)
    good = folder / "good.jpg"
    Image.effect_noise((256, 192), 60).convert("RGB").save(good, quality=95)  # headers far from the middle
    truncated = folder / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    ppm = folder / "picture.ppm"
    Image.new("RGB", (64, 48), (10, 200, 30)).save(ppm)
    return {"good": good, "truncated": truncated, "ppm": ppm}


def test_the_training_decoder_finds_what_header_checks_miss(tmp_path):
    images = make_images(tmp_path / "img")
    with Image.open(images["truncated"]) as im, Image.open(images["ppm"]) as im2:  # headers read fine
        assert im.size == (256, 192) and im2.size == (64, 48)
    report = find_undecodable([str(p) for p in images.values()], load_image, "tf", cache_dir=str(tmp_path),
                              progress=False)
    bad = {Path(p).name: reason for p, reason in report.bad}
    assert set(bad) == {"truncated.jpg", "picture.ppm"} and report.checked == 3
    assert "Unknown image file format" in bad["picture.ppm"] and "function_node" not in bad["picture.ppm"]
    pil = find_undecodable([str(p) for p in images.values()], read_image_rgb, "pil", cache_dir=str(tmp_path),
                           progress=False)
    assert [Path(p).name for p, _ in pil.bad] == ["truncated.jpg"]  # each decoder has its own answers


def test_the_second_run_is_answered_from_the_cache(tmp_path):
    images = make_images(tmp_path / "img")
    calls: list[str] = []

    def decode(path: str):
        calls.append(path)
        return load_image(path)

    paths = [str(p) for p in images.values()]
    first = find_undecodable(paths, decode, "tf", cache_dir=str(tmp_path), progress=False)
    assert len(calls) == 3 and first.checked == 3 and first.cached == 0
    second = find_undecodable(paths, decode, "tf", cache_dir=str(tmp_path), progress=False)
    assert len(calls) == 3 and second.cached == 3 and second.bad == first.bad
    Image.new("RGB", (64, 48)).save(images["truncated"], format="JPEG")  # repaired: new size and mtime
    os.utime(images["truncated"], ns=(1, 10**18))
    third = find_undecodable(paths, decode, "tf", cache_dir=str(tmp_path), progress=False)
    assert calls[3:] == [str(images["truncated"])] and [Path(p).name for p, _ in third.bad] == ["picture.ppm"]


def test_check_decodable_names_the_files_or_skips_them(tmp_path):
    images = make_images(tmp_path / "img")
    paths = [str(p) for p in images.values()]
    with pytest.raises(UndecodableImagesError) as info:
        check_decodable(paths, load_image, "tf", cache_dir=str(tmp_path), progress=False)
    assert "2 image(s)" in str(info.value) and "truncated.jpg" in str(info.value) and "\n" not in str(info.value)
    assert check_decodable(paths, load_image, "tf", skip_bad=True, cache_dir=str(tmp_path),
                           progress=False) == [str(images["good"])]


def test_eval_decodes_every_image_before_loading_the_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("YOLO3_CACHE", str(tmp_path / "cache"))
    images = make_images(tmp_path / "img")
    ann = tmp_path / "val.txt"
    ann.write_text(f"{images['good']} 1,1,20,20,0\n{images['truncated']} 1,1,20,20,0\n")
    (tmp_path / "c.txt").write_text("thing\n")
    (tmp_path / "model.keras").write_bytes(b"never loaded")
    argv = ["--model", str(tmp_path / "model.keras"), "--annotation", str(ann), "--classes", str(tmp_path / "c.txt"),
            "--no-progress"]
    assert eval_script.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be decoded" in err[0] and "truncated.jpg" in err[0], err
    assert eval_script.main(argv + ["--skip-missing"]) == 2  # on to the model, which is not one
    captured = capsys.readouterr()
    assert "left out 1 missing or undecodable" in captured.out and "not a model file" in captured.err


@pytest.mark.parametrize("tool, argv, flag", [
    ("yolo_video", ["--image", "{img}", "--json", "{blocker}/d.json"], "--json"),
    ("yolo_video", ["--image", "{img}", "--output", "{blocker}/drawn"], "--output"),
    ("yolo_video", ["--input", "{img}", "--output", "{blocker}/o.mp4"], "--output"),
    ("kmeans", ["--annot_file", "{ann}", "--plot", "{blocker}/a.png"], "--plot"),
    ("kmeans", ["--annot_file", "{ann}", "--out_file", "{blocker}/a.txt"], "--out_file"),
    ("eval", ["--detections", "{ann}", "--annotation", "{ann}", "--classes", "{ann}", "--out", "{blocker}/r"],
     "--out"),
    ("export", ["--model", "{ann}", "--format", "onnx", "--output", "{blocker}/m.onnx"], "--output"),
])
def test_unwritable_destinations_are_refused_before_the_work(tmp_path, capsys, tool, argv, flag):
    """The destination's folder cannot be made (a file stands where it would be): exit 2, one line."""
    images = make_images(tmp_path / "img")
    (tmp_path / "blocker").write_text("a file, not a folder")
    ann = tmp_path / "train.txt"
    ann.write_text(f"{images['good']} 1,1,20,20,0 2,2,30,40,0\n")
    values = {"img": str(images["good"]), "blocker": str(tmp_path / "blocker"), "ann": str(ann)}
    main = {"yolo_video": yolo_video.main, "kmeans": kmeans_script.main, "eval": eval_script.main,
            "export": export_script.main}[tool]
    extra = ["--model", str(ann)] if tool == "yolo_video" else []  # never loaded: the check comes first
    if tool == "yolo_video":
        extra = ["--model", str(ann), "--classes", "model_data/coco_classes.txt"]
    assert main(extra + [a.format(**values) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and (flag in err[0] or "cannot write" in err[0]) and "blocker" in err[0], err


def test_training_preparation_decodes_with_the_training_decoder(tmp_path, monkeypatch):
    """prepare_annotations(..., decode=load_image): what train.py and train_bottleneck.py call; a PPM and a
    truncated JPEG pass the header check but not TensorFlow's decoder."""
    from yolo3.datasets.cleaning import DataError, prepare_annotations

    monkeypatch.setenv("YOLO3_CACHE", str(tmp_path / "cache"))
    images = make_images(tmp_path / "img")
    ann = tmp_path / "train.txt"
    ann.write_text("".join(f"{p} 1,1,20,20,0\n" for p in images.values()))
    clean = tmp_path / "clean.txt"
    assert prepare_annotations(str(ann), str(clean), progress=False).images == 3  # headers only: all pass
    clean.unlink()
    with pytest.raises(DataError, match="2 images unreadable") as info:
        prepare_annotations(str(ann), str(clean), progress=False, decode=load_image)
    assert "truncated.jpg" in str(info.value) and "picture.ppm" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "img", "train.txt"]  # no clean, no temp
    report = prepare_annotations(str(ann), str(clean), progress=False, decode=load_image, skip_missing=True)
    assert report.images == 1 and report.boxes == 1 and len(report.unreadable) == 2
    assert clean.read_text().split("\t")[0] == str(images["good"])
