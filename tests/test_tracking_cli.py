"""track.py end to end on generated MOTChallenge files: tracks written and scored, no TensorFlow imported,
file:line errors and exit code 2 for bad input, inputs never overwritten."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from yolo3.tracking.evaluate import evaluate_paths
from yolo3.tracking.mot import read_mot
from yolo3.tracking.synthetic import generate, write_sequence

ROOT = Path(__file__).resolve().parents[1]


def run_script(*args: str, script: str = "track.py") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)


@pytest.fixture(scope="module")
def mot_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mot")
    write_sequence(str(root), "S1", generate("basic", seed=11, frames=80))
    write_sequence(str(root), "S2", generate("crossing", seed=12, frames=80))
    return root


@pytest.mark.parametrize("tracker", ["bytetrack", "sort"])
def test_track_py_tracks_a_motchallenge_folder_and_the_tracks_score_well(mot_folder, tmp_path, tracker):
    out = tmp_path / "tracks"
    result = run_script("--det", str(mot_folder), "--out", str(out), "--tracker", tracker, "-q")
    assert result.returncode == 0, result.stderr
    assert "2 sequence(s), 160 frame(s)" in result.stderr and "frames/s" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["S1.txt", "S2.txt"]
    first = (out / "S1.txt").read_text().splitlines()[0].split(",")
    assert len(first) == 10 and first[0] == "1" and first[7:] == ["-1", "-1", "-1"]
    scores = evaluate_paths(str(mot_folder), str(out))
    assert scores["COMBINED"]["HOTA"] > 0.6 and scores["COMBINED"]["IDF1"] > 0.7


def test_track_py_on_one_file_imports_no_tensorflow(mot_folder, tmp_path):
    det = mot_folder / "S1" / "det" / "det.txt"
    out = tmp_path / "S1.txt"
    code = ("import sys\nfrom yolo3.cli.track import main\n"
            f"rc = main(['--det', {str(det)!r}, '--out', {str(out)!r}, '-q', '--fps', '15'])\n"
            "assert rc == 0, rc\nassert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    tracks = read_mot(str(out), "tracks")
    assert len(tracks) > 0 and tracks.ids.min() == 1


def test_track_py_reports_a_malformed_line_as_file_and_line(tmp_path):
    det = tmp_path / "det.txt"
    det.write_text("1,-1,10,10,20,40,0.9\n2,-1,10,10,20,forty,0.9\n")
    result = run_script("--det", str(det), "--out", str(tmp_path / "out.txt"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"track.py: error: {det}:2: not numbers: '2,-1,10,10,20,forty,0.9'"]
    assert not (tmp_path / "out.txt").exists()


def test_track_py_refuses_to_overwrite_its_input_and_bad_options(mot_folder, tmp_path):
    det = mot_folder / "S1" / "det" / "det.txt"
    before = det.read_bytes()
    result = run_script("--det", str(det), "--out", str(det))
    assert result.returncode == 2 and "would overwrite an input" in result.stderr
    assert det.read_bytes() == before
    result = run_script("--det", str(det), "--out", str(tmp_path / "x.txt"), "--match-thresh", "1.5")
    assert result.returncode == 2 and "argument --match-thresh: expected a number in [0, 1], got 1.5" in result.stderr
    result = run_script("--det", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "x.txt"))
    assert result.returncode == 2 and "no such file or folder" in result.stderr
    (tmp_path / "x.txt").write_text("mine\n")
    result = run_script("--det", str(mot_folder), "--out", str(tmp_path / "x.txt"))
    assert result.returncode == 2 and "must be a folder for a folder of detections" in result.stderr
    assert (tmp_path / "x.txt").read_text() == "mine\n"
