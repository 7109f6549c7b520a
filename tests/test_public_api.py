"""``yolo3/__init__.py`` declares the public API: every name resolves, lazily."""
from __future__ import annotations

import subprocess
import sys

import yolo3


def test_every_public_name_resolves_to_the_object_of_its_module():
    for name in yolo3.__all__:
        value = getattr(yolo3, name)
        assert value is not None, name
        if name in yolo3._PUBLIC:
            module = sys.modules[yolo3._PUBLIC[name]]
            assert getattr(module, name) is value, name
    assert set(yolo3._PUBLIC) <= set(dir(yolo3))


def test_unknown_names_raise_attribute_error():
    try:
        yolo3.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("no AttributeError")


def test_import_registers_the_layers_but_loads_no_heavy_layer():
    code = ("import sys, keras, yolo3\n"
            "assert keras.saving.get_registered_object('yolo3>YoloHead') is yolo3.YoloHead\n"
            "heavy = [m for m in ('yolo3.training.run', 'yolo3.evaluation.metrics', 'yolo3.export.api',"
            " 'pycocotools') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "yolo3.Detector\n"
            "assert 'yolo3.inference.detector' in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
