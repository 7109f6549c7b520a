"""An installed package works without the repository checkout (slow: builds and installs a wheel).

``pip install .`` into a fresh virtual environment, then, from another directory (so the checkout is
not importable): the console commands run, and ``Detector.from_pretrained("yolov3-tiny")`` fetches
(sha256 checked), converts with the bundled cfg, caches, and detects on a picture with COCO names.
The new environment borrows this one's third-party packages through a ``.pth`` file, so the test
installs yolo3 itself and downloads nothing but the weights (which come from the cache when this
machine fetched them before).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import DARKNET_IMAGES, ROOT

pytestmark = pytest.mark.slow

COMMANDS = ("yolo3-convert", "yolo3-detect", "yolo3-train", "yolo3-train-bottleneck", "yolo3-kmeans",
            "yolo3-voc-annotation", "yolo3-eval", "yolo3-export", "yolo3-coco", "yolo3-weights", "yolo3-shapes")


@pytest.fixture(scope="module")
def installed(tmp_path_factory, tiny_weights_path):
    """(venv bin folder, environment, a working directory outside the checkout)."""
    base = tmp_path_factory.mktemp("install")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # this environment's packages (TensorFlow, NumPy, setuptools ...) without copying them
    Path(site, "borrowed_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    # a copy of the checkout's tracked files: the build must not write into the working tree
    src = base / "src"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    result = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                             str(src)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    cache = base / "cache"
    cache.mkdir()
    shutil.copy2(tiny_weights_path, cache / "yolov3-tiny.weights")  # verified again by sha256 when used
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", YOLO3_CACHE=str(cache), PATH=f"{bin_dir}{os.pathsep}{env['PATH']}")
    work = base / "work"
    work.mkdir()
    return bin_dir, env, work


def test_the_checkout_is_not_what_gets_imported(installed):
    bin_dir, env, work = installed
    out = subprocess.run([str(bin_dir / "python"), "-c", "import yolo3; print(yolo3.__file__)"], cwd=work,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert not Path(out.stdout.strip()).resolve().is_relative_to(ROOT)


@pytest.mark.parametrize("command", COMMANDS)
def test_console_commands_run(installed, command):
    bin_dir, env, work = installed
    out = subprocess.run([str(bin_dir / command), "--help"], cwd=work, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout


def test_from_pretrained_detects_with_coco_names_from_the_installed_package(installed):
    bin_dir, env, work = installed
    picture = DARKNET_IMAGES / "dog.jpg"
    if not picture.exists():
        pytest.skip(f"{picture} is absent (../shared is only beside the project checkout)")
    code = ("import sys, yolo3\n"
            "from yolo3.datasets.imageio import read_image_rgb\n"
            "detector = yolo3.Detector.from_pretrained('yolov3-tiny')\n"
            f"found = detector.detect([read_image_rgb({str(picture)!r})])[0]\n"
            "names = sorted({detector.class_names[int(c)] for c in found.class_ids})\n"
            "print(','.join(names))\n")
    out = subprocess.run([str(bin_dir / "python"), "-c", code], cwd=work, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    assert {"dog", "car"} <= set(out.stdout.strip().split(",")), out.stdout
    cache = Path(env["YOLO3_CACHE"])
    assert any(p.suffix == ".keras" for p in cache.iterdir()), list(cache.iterdir())  # converted once, kept


def test_the_weights_command_prints_the_cached_file(installed):
    bin_dir, env, work = installed
    out = subprocess.run([str(bin_dir / "yolo3-weights"), "yolov3-tiny", "-q"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()) == Path(env["YOLO3_CACHE"]) / "yolov3-tiny.weights"


def test_the_installed_commands_convert_and_detect(installed, tmp_path):
    """yolo3-weights --keras converts once with the bundled cfg; yolo3-detect uses the bundled COCO names."""
    bin_dir, env, work = installed
    picture = DARKNET_IMAGES / "dog.jpg"
    if not picture.exists():
        pytest.skip(f"{picture} is absent (../shared is only beside the project checkout)")
    model = subprocess.run([str(bin_dir / "yolo3-weights"), "yolov3-tiny", "--keras", "-q"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=600)
    assert model.returncode == 0, model.stderr
    assert model.stdout.strip().endswith(".keras")
    out = tmp_path / "out"
    out.mkdir()
    detect = subprocess.run([str(bin_dir / "yolo3-detect"), "--model", model.stdout.strip(), "--image", str(picture),
                             "--output", str(out), "--json", str(out / "dets.json")], cwd=work, env=env,
                            capture_output=True, text=True, timeout=600)
    assert detect.returncode == 0, detect.stderr
    records = json.loads((out / "dets.json").read_text())
    assert {"dog", "car"} <= {d["class"] for d in records[0]["detections"]}
    assert (out / "dog.jpg").is_file()
