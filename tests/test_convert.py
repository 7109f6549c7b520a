"""convert.py end to end: the real yolov3-tiny weights, weights-only output, and every user error."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import require_shared, run_python, run_script

from yolo3.modeling.architectures import tiny_yolov3_cfg


def _no_traceback(result):
    assert "Traceback" not in result.stderr, result.stderr
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.startswith("convert.py: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_real_tiny_weights_convert_and_load_in_fresh_process(tiny_model_path, tiny_weights_path, tmp_path):
    code = f"""
import numpy as np, keras, yolo3
from yolo3.core.heads import get_head_specs
m = keras.models.load_model({tiny_model_path!r}, safe_mode=True)
specs = get_head_specs(m)
print(m.count_params(), [s.mask for s in specs], specs[0].anchors.tolist())
out = m(np.full((1, 416, 416, 3), 0.5, np.float32))
print([tuple(o.shape) for o in out])
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.strip().splitlines()[-2:]
    assert first.startswith("8858734 [(3, 4, 5), (0, 1, 2)] [[81.0, 82.0], [135.0, 169.0], [344.0, 319.0]]")
    assert second == "[(1, 13, 13, 255), (1, 26, 26, 255)]"


def test_convert_reports_no_bytes_left_over(tiny_weights_path, tmp_path):
    cfg = require_shared("darknet", "cfg", "yolov3-tiny.cfg")
    out = tmp_path / "yolo_weights.h5"
    result = run_script("convert.py", "-w", str(cfg), tiny_weights_path, str(out), "-q")
    assert result.returncode == 0, result.stderr
    assert "version 0.2.0" in result.stdout and "8,858,734 values, nothing left over" in result.stdout
    # the weights-only file loads by name into a fresh model with another class count
    code = f"""
import yolo3
from yolo3.modeling.factory import create_model
from yolo3.modeling.saving import load_weights_into
m = create_model("tiny", 3)
loaded, skipped = load_weights_into(m, {str(out)!r})
print(len(loaded), sorted(skipped))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "22 ['conv_15', 'conv_22']"


def test_converted_real_model_matches_darknet_weights_file(tiny_weights_path, tiny_model_path):
    import keras

    import yolo3  # noqa: F401

    model = keras.models.load_model(tiny_model_path)
    raw = np.fromfile(tiny_weights_path, dtype="<f4", offset=20)
    # first conv: 16 filters with BN (beta, gamma, mean, var) then a 16x3x3x3 kernel
    beta, gamma, mean, var = raw[:16], raw[16:32], raw[32:48], raw[48:64]
    kernel = raw[64:64 + 16 * 27].reshape(16, 3, 3, 3).transpose(2, 3, 1, 0)
    np.testing.assert_array_equal(model.get_layer("conv_0").get_weights()[0], kernel)
    g, b, m, v = model.get_layer("bn_0").get_weights()
    for got, want in ((g, gamma), (b, beta), (m, mean), (v, var)):
        np.testing.assert_array_equal(got, want)
    assert model.get_layer("bn_0").epsilon == pytest.approx(1e-6)


def _weights_file(path, values: int, major=0, minor=2):
    header = np.array([major, minor, 0], "<i4").tobytes()
    header += np.array([0], "<u8").tobytes() if major * 10 + minor >= 2 else np.array([0], "<i4").tobytes()
    path.write_bytes(header + np.zeros(values, "<f4").tobytes())
    return str(path)


@pytest.fixture(scope="module")
def small_cfg(tmp_path_factory):
    d = tmp_path_factory.mktemp("cfg")
    text = tiny_yolov3_cfg(num_classes=2)
    path = d / "tiny2.cfg"
    path.write_text(text)
    from yolo3.modeling.builder import build_model_from_cfg
    from yolo3.modeling.cfg import parse_cfg
    from yolo3.modeling.darknet_weights import conv_weight_count

    cfg = parse_cfg(str(path))
    return str(path), conv_weight_count(build_model_from_cfg(cfg), cfg)


def test_custom_class_count_cfg_converts(small_cfg, tmp_path):
    cfg, needed = small_cfg
    out = tmp_path / "m.keras"
    result = run_script("convert.py", cfg, _weights_file(tmp_path / "w.weights", needed), str(out), "-q")
    assert result.returncode == 0, result.stderr
    assert "yolo_0: 2 classes" in result.stdout and out.exists()


def test_old_header_with_32bit_seen_is_read(small_cfg, tmp_path):
    cfg, needed = small_cfg
    result = run_script("convert.py", cfg, _weights_file(tmp_path / "w.weights", needed, major=0, minor=1),
                        str(tmp_path / "m.keras"), "-q")
    assert result.returncode == 0, result.stderr
    assert "version 0.1.0" in result.stdout


@pytest.mark.parametrize("delta,word", [(-5, "shorter"), (7, "longer")])
def test_weights_length_mismatch_names_both_counts(small_cfg, tmp_path, delta, word):
    cfg, needed = small_cfg
    out = tmp_path / "m.keras"
    result = run_script("convert.py", cfg, _weights_file(tmp_path / "w.weights", needed + delta), str(out), "-q")
    assert result.returncode == 2
    line = _no_traceback(result)
    assert word in line and str(needed + delta) in line and str(needed) in line
    assert list(tmp_path.iterdir()) == [tmp_path / "w.weights"]  # nothing half-written


def test_unknown_key_reports_file_and_line(small_cfg, tmp_path):
    cfg, needed = small_cfg
    bad = tmp_path / "bad.cfg"
    lines = open(cfg).read().splitlines()
    lines.insert(25, "strid=2")
    bad.write_text("\n".join(lines))
    result = run_script("convert.py", str(bad), _weights_file(tmp_path / "w.weights", needed),
                        str(tmp_path / "m.keras"))
    assert result.returncode == 2
    assert f"{bad}:26: " in _no_traceback(result) and "unknown key 'strid'" in result.stderr


@pytest.mark.parametrize("case", ["missing_cfg", "missing_weights", "missing_outdir", "bad_suffix"])
def test_user_errors_exit_2_with_one_line(small_cfg, tmp_path, case):
    cfg, needed = small_cfg
    weights = _weights_file(tmp_path / "w.weights", needed)
    args = {
        "missing_cfg": (str(tmp_path / "nope.cfg"), weights, str(tmp_path / "m.keras")),
        "missing_weights": (cfg, str(tmp_path / "nope.weights"), str(tmp_path / "m.keras")),
        "missing_outdir": (cfg, weights, str(tmp_path / "no" / "m.keras")),
        "bad_suffix": (cfg, weights, str(tmp_path / "m.pb")),
    }[case]
    result = run_script("convert.py", *args)
    assert result.returncode == 2
    line = _no_traceback(result)
    assert {"missing_cfg": "cfg file not found", "missing_weights": "weights file not found",
            "missing_outdir": "output directory does not exist", "bad_suffix": ".keras or .h5"}[case] in line


def test_help():
    result = run_script("convert.py", "--help")
    assert result.returncode == 0 and "-w" in result.stdout and "--plot" in result.stdout
