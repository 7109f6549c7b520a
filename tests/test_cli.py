"""yolo3.cli: the shared helpers (sizes, names, program names, error mapping) and that every console
command of pyproject.toml resolves to a tool with build_parser() and main()."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

import pytest
import tomllib
from conftest import ROOT

from yolo3.cli import common
from yolo3.cli.common import UsageError, first_names, parse_size, prog_name, run, size_type
from yolo3.errors import Yolo3Error


def test_parse_size_orders_and_checks():
    assert parse_size("416") == (416, 416)
    assert parse_size("320x416") == (320, 416) and parse_size("320,416") == (320, 416)
    assert parse_size("608x416", order="wh", multiple=1) == (416, 608)  # WxH flags: (height, width) out
    assert parse_size("100", multiple=1) == (100, 100)
    cases = (("300", "multiple of 32"), ("abc", "N or HxW"), ("0", "multiple of 32"), ("32x32x32", "N or HxW"))
    for bad, words in cases:
        with pytest.raises(UsageError, match=words):
            parse_size(bad)


def test_size_type_speaks_argparse():
    ap = argparse.ArgumentParser(prog="tool")
    ap.add_argument("--input-size", type=size_type("--input-size", multiple=1, order="wh"))
    assert ap.parse_args(["--input-size", "608x416"]).input_size == (416, 608)
    with pytest.raises(argparse.ArgumentTypeError, match=r"^expected N or WxH, got 'x'$"):
        size_type("--input-size", 1, "wh")("x")


def test_first_names():
    assert first_names(["a", "b"]) == "a, b"
    assert first_names(list("abcdefg")) == "a, b, c, d, e and 2 more"
    assert first_names(list("abc"), 2, sep="; ") == "a; b and 1 more"


def test_prog_name(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/venv/bin/yolo3-eval"])
    assert prog_name("eval.py", "yolo3.cli.evaluate") == "yolo3-eval"
    monkeypatch.setattr(sys, "argv", [os.path.join(os.path.dirname(common.__file__), "evaluate.py")])
    assert prog_name("eval.py", "yolo3.cli.evaluate") == "python -m yolo3.cli.evaluate"
    monkeypatch.setattr(sys, "argv", [str(ROOT / "eval.py")])
    assert prog_name("eval.py", "yolo3.cli.evaluate") == "eval.py"


def test_run_maps_package_errors_to_one_line_and_exit_2(capsys):
    def broken() -> int:
        raise Yolo3Error("bad input\nsecond line")

    assert run(broken, "tool") == 2
    assert capsys.readouterr().err == "tool: error: bad input\n"
    assert run(lambda: 0, "tool") == 0 and run(lambda: None, "tool") == 0

    def bug() -> int:
        raise KeyError("a bug keeps its traceback")

    with pytest.raises(KeyError):
        run(bug, "tool")


def test_every_console_command_has_a_tool():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert {"yolo3-convert", "yolo3-detect", "yolo3-kmeans", "yolo3-voc-annotation", "yolo3-eval", "yolo3-export",
            "yolo3-coco", "yolo3-weights", "yolo3-shapes"} <= set(scripts)
    for name, target in scripts.items():
        module_name, func = target.split(":")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, func)), name
        parser = module.build_parser()
        assert isinstance(parser, argparse.ArgumentParser) and parser.format_help(), name
