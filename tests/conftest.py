"""Shared test helpers: where the reference data and the real weights are, and how to run scripts."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RESOURCES = ROOT / "yolo3" / "resources"  # the bundled cfgs, anchors and class lists
DARKNET_CFG = SHARED / "darknet" / "cfg"
DARKNET_IMAGES = SHARED / "darknet" / "images"
ORACLE = SHARED / "oracle"


def require_shared(*parts: str) -> Path:
    """Path under ../shared, or skip: the reference data lives beside the project, not in it."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data {path} is absent (../shared is only beside the project checkout)")
    return path


@pytest.fixture(scope="session")
def tiny_weights_path() -> str:
    """The real yolov3-tiny.weights, fetched (and sha256-verified) through yolo3.modeling.pretrained."""
    from yolo3.modeling.pretrained import FetchError, fetch_weights

    try:
        return fetch_weights("yolov3-tiny", quiet=True, timeout=10)
    except (FetchError, OSError) as exc:
        skip_or_fail_in_ci(f"real yolov3-tiny weights unavailable: {exc}")


def in_ci() -> bool:
    """True under CI (``CI=true``, as .ci/run and most CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_or_fail_in_ci(reason: str) -> None:
    """Skip on a user's machine; fail under CI, where everything a test needs must be there."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: CI must run this test, so this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tiny_model_path(tiny_weights_path, tmp_path_factory) -> str:
    """The real yolov3-tiny converted once with convert.py (.keras)."""
    cfg = require_shared("darknet", "cfg", "yolov3-tiny.cfg")
    out = tmp_path_factory.mktemp("tiny") / "yolov3-tiny.keras"
    result = run_script("convert.py", str(cfg), tiny_weights_path, str(out), "-q")
    assert result.returncode == 0, result.stderr
    return str(out)


def run_script(script: str, *args: str, timeout: float = 600, input: str | None = None,
               env: dict | None = None, cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """Run a top-level script of the project in a fresh Python process."""
    full_env = dict(os.environ)
    full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True,
                          timeout=timeout, input=input, env=full_env, cwd=str(cwd or ROOT))


def run_python(code: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run Python code in a fresh process with the project importable."""
    full_env = dict(os.environ)
    full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=str(ROOT))
