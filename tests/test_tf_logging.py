"""TF_CPP_MIN_LOG_LEVEL holds for the lines TensorFlow 2.21 prints through uninitialised Abseil logging."""
from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT, run_python

from yolo3.tf_logging import filter_import_log, min_log_level

PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
INFO = "I0000 00:00:1796131799.939985    3054 port.cc:153] oneDNN custom operations are on.\n"
WARN = "W0000 00:00:1796131799.939985    3054 foo.cc:1] a warning\n"
ERROR = "E0000 00:00:1796131799.939985    3054 cuda_dnn.cc:8579] Unable to register cuDNN factory\n"


def test_levels_filter_abseil_lines_by_severity():
    text = PREAMBLE + INFO + WARN + ERROR
    assert filter_import_log(text, 0) == text
    assert filter_import_log(text, 1) == WARN + ERROR
    assert filter_import_log(text, 2) == ERROR
    assert filter_import_log(text, 3) == ""


def test_other_lines_are_kept_and_continuations_follow_their_message():
    warning = "/x/y.py:3: UserWarning: something\n  warnings.warn(msg)\n"
    text = INFO + "   continued info\n" + warning + PREAMBLE + "plain line\n"
    assert filter_import_log(text, 2) == warning + "plain line\n"


def test_min_log_level_parses_the_variable():
    assert min_log_level({}) == 0
    assert min_log_level({"TF_CPP_MIN_LOG_LEVEL": "2"}) == 2
    assert min_log_level({"TF_CPP_MIN_LOG_LEVEL": "x"}) == 0


def test_import_yolo3_is_silent_at_level_2():
    result = run_python("import yolo3, tensorflow as tf; print(tf.constant(1).numpy())",
                        env={"TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
    assert result.stderr == "", result.stderr


def test_another_thread_can_import_while_the_first_keras_import_runs():
    """yolo3's hook imported TensorFlow inside ``find_spec``, which Python calls holding its global
    import lock: a thread importing anything meanwhile waited for the whole TensorFlow import, and
    deadlocked it when TensorFlow waited for that thread (7 runs in 8 of ``import openvino;
    import yolo3.core.heads`` hung). An audit hook, in TensorFlow's own import, lets a thread import
    a module and waits up to 10 s for it."""
    code = """
import sys, threading
import yolo3
waited = []
def hook(event, args):
    if event == "import" and str(args[0]).startswith("tensorflow.") and not waited:
        thread = threading.Thread(target=lambda: __import__("wave"), daemon=True)
        thread.start()
        thread.join(10)
        waited.append(thread.is_alive())
sys.addaudithook(hook)
import keras
print(waited, "wave" in sys.modules, keras.saving.get_registered_object("yolo3>YoloHead") is not None)
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[False]", "True", "True"], result.stdout


def test_python_m_tool_defaults_to_quiet_without_the_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run([sys.executable, "-m", "yolo3.cli.coco", "to-annotation", str(tmp_path / "missing.json"),
                             "--images-dir", str(tmp_path), "--out", str(tmp_path / "o.txt")],
                            capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"python -m yolo3.cli.coco: error: COCO JSON not found: {tmp_path / 'missing.json'}"]
